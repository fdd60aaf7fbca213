from django.urls import path

from .views import portal as views

urlpatterns = [
    path("payouts/", views.payouts, name="payouts"),
    path("settings/payout/stripe/", views.stripe_connect, name="stripe-connect"),
    path("settings/payout/stripe/return/", views.stripe_return, name="stripe-return"),
    path("settings/payout/stripe/refresh/", views.stripe_refresh, name="stripe-refresh"),
]
