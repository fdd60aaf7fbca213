"""The panel navigation: its program sections, and the programs a staff user may switch to."""

from django.http import HttpRequest

from .access import programs_for_staff

# Program sections of the panel navigation, in order: (URL name taking the program slug, label).
PANEL_SECTIONS = [
    ("panel:affiliate-list", "Affiliates"),
    ("panel:group-list", "Groups"),
    ("panel:rule-list", "Rules"),
    ("panel:commission-list", "Commissions"),
    ("panel:event-list", "Events"),
    ("panel:click-list", "Clicks"),
    ("panel:reports", "Reports"),
    ("panel:fraud-queue", "Fraud"),
    ("panel:payout-list", "Payouts"),
    ("panel:reconciliation", "Reconciliation"),
    ("panel:webhook-list", "Webhooks"),
    ("panel:team", "Team"),
    ("panel:privacy", "Privacy"),
    ("panel:activity", "Activity"),
]


def navigation(request: HttpRequest) -> dict:
    context: dict = {}
    if request.path.startswith("/panel/"):
        context["panel_sections"] = PANEL_SECTIONS
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.is_staff:
            context["staff_programs"] = programs_for_staff(user).only("slug", "name")
    return context
