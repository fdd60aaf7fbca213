"""The panel's URL namespace `panel:` gathers the panel pages of every app."""

from django.urls import path

from affiliates.views import panel_programs as programs
from commissions.urls_panel import urlpatterns as commission_patterns
from commissions.views import panel_dashboard as dashboard
from payouts.urls_panel import urlpatterns as payout_patterns
from tracking.urls_panel import urlpatterns as tracking_patterns

app_name = "panel"

urlpatterns = [
    path("", programs.home, name="home"),
    path("setup/", programs.setup, name="setup"),
    path("login/", programs.login_view, name="login"),
    path("logout/", programs.logout_view, name="logout"),
    path("password/", programs.password_change, name="password-change"),
    path("programs/", programs.program_list, name="program-list"),
    path("programs/new/", programs.program_create, name="program-create"),
    path("p/<slug:slug>/", dashboard.dashboard, name="dashboard"),
    path("p/<slug:slug>/settings/", programs.program_settings, name="program-settings"),
    path("p/<slug:slug>/keys/", programs.program_keys, name="program-keys"),
    path("p/<slug:slug>/keys/<int:key_id>/revoke/", programs.program_key_revoke, name="program-key-revoke"),
    *commission_patterns,
    *tracking_patterns,
    *payout_patterns,
]
