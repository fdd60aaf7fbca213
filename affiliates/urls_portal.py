from django.urls import path

from .views import join, portal

urlpatterns = [
    path("login/", portal.login, name="login"),
    path("login/<str:token>/", portal.magic, name="magic"),
    path("logout/", portal.logout, name="logout"),
    path("switch/<slug:slug>/", portal.switch, name="switch"),
    path("settings/payout/", portal.payout_settings, name="payout-settings"),
    path("profile/", portal.profile, name="profile"),
]

join_urlpatterns = [
    path("<slug:slug>/", join.apply, name="apply"),
    path("<slug:slug>/verify/<str:token>/", join.verify, name="verify"),
    path("<slug:slug>/thanks/", join.thanks, name="thanks"),
]
