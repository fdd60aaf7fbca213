from django.urls import path

from .views import panel as views

urlpatterns = [
    path("p/<slug:slug>/payouts/", views.payout_list, name="payout-list"),
    path("p/<slug:slug>/payouts/run/", views.payout_run, name="payout-run"),
    path("p/<slug:slug>/payouts/export.csv", views.payout_export, name="payout-export"),
    path("p/<slug:slug>/payouts/<str:public_id>/", views.payout_detail, name="payout-detail"),
    path(
        "p/<slug:slug>/payouts/<str:public_id>/mark-paid/",
        views.payout_mark_paid_view,
        name="payout-mark-paid",
    ),
    path("p/<slug:slug>/payouts/<str:public_id>/retry/", views.payout_retry_view, name="payout-retry"),
]
