from django.urls import path

from .views import panel as views

urlpatterns = [
    path("p/<slug:slug>/affiliates/", views.affiliate_list, name="affiliate-list"),
    path("p/<slug:slug>/affiliates/invite/", views.affiliate_invite, name="affiliate-invite"),
    path("p/<slug:slug>/affiliates/export.csv", views.affiliate_export, name="affiliate-export"),
    path("p/<slug:slug>/affiliates/<str:public_id>/", views.affiliate_detail, name="affiliate-detail"),
    path("p/<slug:slug>/affiliates/<str:public_id>/status/", views.affiliate_status, name="affiliate-status"),
    path("p/<slug:slug>/groups/", views.group_list, name="group-list"),
    path("p/<slug:slug>/groups/new/", views.group_create, name="group-create"),
    path("p/<slug:slug>/groups/<str:public_id>/", views.group_edit, name="group-edit"),
    path("p/<slug:slug>/rules/", views.rule_list, name="rule-list"),
    path("p/<slug:slug>/rules/new/", views.rule_create, name="rule-create"),
    path("p/<slug:slug>/rules/<str:public_id>/", views.rule_edit, name="rule-edit"),
    path("p/<slug:slug>/rules/<str:public_id>/deactivate/", views.rule_deactivate, name="rule-deactivate"),
    path("p/<slug:slug>/commissions/", views.commission_list, name="commission-list"),
    path("p/<slug:slug>/commissions/bulk/", views.commission_bulk, name="commission-bulk"),
    path("p/<slug:slug>/commissions/export.csv", views.commission_export, name="commission-export"),
    path("p/<slug:slug>/commissions/<str:public_id>/", views.commission_detail, name="commission-detail"),
    path("p/<slug:slug>/fraud/", views.fraud_queue, name="fraud-queue"),
    path("p/<slug:slug>/fraud/<int:flag_id>/resolve/", views.fraud_resolve, name="fraud-resolve"),
]
