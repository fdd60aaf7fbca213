from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from payouts.views import webhooks as payout_webhooks
from tracking.redirects import GO_PATH
from tracking.views import public as tracking_public

from . import urls_api, views
from .portal import urls as portal_urls

urlpatterns = [
    # The root is the panel: its sign-in, or the first-run setup on a fresh install.
    path("", RedirectView.as_view(pattern_name="panel:home"), name="root"),
    path("healthz", views.healthz, name="healthz"),
    path("t.js", tracking_public.tracker_js, name="tracker-js"),
    re_path(GO_PATH, tracking_public.go, name="go"),
    path("", include(urls_api)),
    path("webhooks/stripe", payout_webhooks.stripe_webhook, name="stripe-webhook"),
    path("panel/", include("refapp.panel.urls")),
    path("portal/", include("refapp.portal.urls")),
    path("join/", include(portal_urls.join_patterns)),
    path("refer/", include(portal_urls.refer_patterns)),
    # One login policy for every staff sign-in (refapp/lockout.py): the admin's own login page, which
    # has no lockout, is replaced by the panel's; its session opens the admin (staff only, as before).
    path("admin/login/", RedirectView.as_view(url="/panel/login/?next=/admin/"), name="admin-login"),
    path("admin/", admin.site.urls),
]
