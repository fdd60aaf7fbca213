from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from affiliates.views import api as affiliates_api
from commissions.views import api as commissions_api
from payouts.views import webhooks as payout_webhooks
from tracking.views import public as tracking_public

from . import urls_panel, urls_portal, views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("t.js", tracking_public.tracker_js, name="tracker-js"),
    path("api/v1/track/click", tracking_public.track_click, name="api-track-click"),
    re_path(
        r"^go/(?P<program_slug>[a-z0-9-]+)/(?P<code>[A-Za-z0-9_-]+)(?:/(?P<path>.*))?$",
        tracking_public.go,
        name="go",
    ),
    path("api/v1/events", commissions_api.events, name="api-events"),
    path("api/v1/refunds", commissions_api.refunds, name="api-refunds"),
    path("api/v1/affiliates", affiliates_api.affiliates, name="api-affiliates"),
    path("api/v1/affiliates/<str:public_id>", affiliates_api.affiliate_detail, name="api-affiliate-detail"),
    path("api/v1/commission-rules", commissions_api.commission_rules, name="api-commission-rules"),
    path(
        "api/v1/commission-rules/<str:public_id>",
        commissions_api.commission_rule_detail,
        name="api-commission-rule-detail",
    ),
    path("api/v1/commissions", commissions_api.commissions, name="api-commissions"),
    path("api/v1/openapi.json", views.openapi_json, name="api-openapi"),
    path("api/v1/docs", views.api_docs, name="api-docs"),
    path("webhooks/stripe", payout_webhooks.stripe_webhook, name="stripe-webhook"),
    path("panel/", include(urls_panel)),
    path("portal/", include(urls_portal)),
    path("join/", include(urls_portal.join_patterns)),
    # One login policy for every staff sign-in (refapp/lockout.py): the admin's own login page, which
    # has no lockout, is replaced by the panel's; its session opens the admin (staff only, as before).
    path("admin/login/", RedirectView.as_view(url="/panel/login/?next=/admin/"), name="admin-login"),
    path("admin/", admin.site.urls),
]
