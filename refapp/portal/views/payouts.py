"""Portal: the affiliate's balances, the next payout's estimate, and their payout history."""

from __future__ import annotations

from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from commissions import stats
from payouts.models import Payout
from payouts.reconcile import carried_balance
from payouts.stripe_client import stripe_enabled
from refapp.htmx import render_page

from ..access import PortalRequest, portal_required
from ..figures import next_payout_at, payout_estimate, tax_hold


@require_GET
@portal_required
def payouts(request: PortalRequest) -> HttpResponse:
    affiliate = request.affiliate
    balances = stats.affiliate_balances(affiliate)
    context = {
        "affiliate": affiliate,
        "program": affiliate.program,
        "balances": balances,
        "tax_hold": tax_hold(affiliate),
        "estimate": payout_estimate(
            balances, next_payout_at(affiliate.program, timezone.now()), carried_balance(affiliate)
        ),
        "payouts": Payout.objects.filter(affiliate=affiliate).order_by("-created_at")[:100],
        "stripe_enabled": stripe_enabled(),
    }
    return render_page(request, "portal/payouts.html", context)
