"""The portal navigation."""

from django.http import HttpRequest

PORTAL_SECTIONS = [
    ("portal:dashboard", "Dashboard"),
    ("portal:conversions", "Conversions"),
    ("portal:commissions", "Commissions"),
    ("portal:payouts", "Payouts"),
    ("portal:payout-settings", "Payout settings"),
    ("portal:tax-details", "Tax details"),
    ("portal:profile", "Profile"),
]


def navigation(request: HttpRequest) -> dict:
    if request.path.startswith("/portal/"):
        return {"portal_sections": PORTAL_SECTIONS}
    return {}
