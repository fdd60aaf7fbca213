from django.urls import path

from .views import portal as views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("conversions/", views.conversions, name="conversions"),
    path("commissions/", views.commissions, name="commissions"),
]
