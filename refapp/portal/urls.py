"""The partner portal's URL namespace `portal:` and the public join flow's `join:`."""

from django.urls import path

from .views import dashboard, join, lists, login, payouts, refer, settings

app_name = "portal"

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("login/", login.login, name="login"),
    path("login/<str:token>/", login.magic, name="magic"),
    path("logout/", login.logout, name="logout"),
    path("switch/<slug:slug>/", login.switch, name="switch"),
    path("conversions/", lists.conversions, name="conversions"),
    path("commissions/", lists.commissions, name="commissions"),
    path("payouts/", payouts.payouts, name="payouts"),
    path("settings/payout/", settings.payout_settings, name="payout-settings"),
    path("settings/payout/stripe/", settings.stripe_connect, name="stripe-connect"),
    path("settings/payout/stripe/return/", settings.stripe_return, name="stripe-return"),
    path("settings/payout/stripe/refresh/", settings.stripe_refresh, name="stripe-refresh"),
    path("settings/tax/", settings.tax_details, name="tax-details"),
    path("profile/", settings.profile, name="profile"),
]

join_patterns = (
    [
        path("<slug:slug>/", join.apply, name="apply"),
        path("<slug:slug>/verify/<str:token>/", join.verify, name="verify"),
        path("<slug:slug>/thanks/", join.thanks, name="thanks"),
    ],
    "join",
)

# Refer-a-friend for customers (issue 16, item 4): ask for the link by email, then the link's page.
refer_patterns = (
    [
        path("<slug:slug>/", refer.request_link, name="request"),
        path("<slug:slug>/<str:token>/", refer.page, name="page"),
    ],
    "refer",
)
