"""Portal: the affiliate's dashboard (figures over a date range, balances, links, link builder).

Every query here starts from `request.affiliate`, the membership the signed-in email is viewing,
and reads live-mode rows only: test-mode data never reaches an affiliate.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from affiliates.models import Affiliate
from affiliates.rewards import promotion_code_of, reward_for
from commissions import stats
from payouts.reconcile import carried_balance
from refapp.htmx import render_page, wants_partial

from ..access import PortalRequest, portal_required
from ..figures import (
    affiliate_charts,
    commission_terms,
    go_link,
    next_payout_at,
    payout_estimate,
    referral_link,
    tax_hold,
)
from ..forms import LinkBuilderForm


@require_GET
@portal_required
def dashboard(request: PortalRequest) -> HttpResponse:
    affiliate = request.affiliate
    program = affiliate.program
    now = timezone.now()
    context: dict = {"affiliate": affiliate, "program": program}
    if affiliate.status == Affiliate.Status.PENDING:
        context["terms"] = commission_terms(program, affiliate)
        return render_page(request, "portal/dashboard.html", context)

    period, preset, errors = stats.parse_range(request.GET, now.date())
    builder = LinkBuilderForm(request.GET if "build" in request.GET else None, program=program)
    built = builder.build(go_link(program, affiliate.code)) if builder.is_bound and builder.is_valid() else ""
    if wants_partial(request) and request.htmx.target == "link-builder" and affiliate.is_active:
        context |= {"builder": builder, "built": built}
        return render_page(request, "portal/dashboard.html", context, partial="builder")

    summary, series = stats.affiliate_overview(affiliate, period)
    previous = stats.affiliate_series(affiliate, stats.previous_period(period))
    balances = stats.affiliate_balances(affiliate)
    summary["earnings_cents"] = (
        summary["commission_pending_cents"]
        + summary["commission_approved_cents"]
        + summary["commission_paid_cents"]
    )
    context |= {
        "period": period,
        "preset": preset,
        "presets": stats.PRESETS,
        "errors": errors,
        "summary": summary,
        "charts": affiliate_charts(program.currency, series, previous),
        "rate_help": stats.CONVERSION_RATE_HELP,
        "has_data": bool(summary["clicks"] or summary["conversions"]),
        "builder": builder,
        "built": built,
        "balances": balances,
        "tax_hold": tax_hold(affiliate),
        "terms": commission_terms(program, affiliate),
        "estimate": payout_estimate(balances, next_payout_at(program, now), carried_balance(affiliate)),
        "links_work": affiliate.is_active,
        "referral_link": referral_link(program, affiliate.code),
        "go_link": go_link(program, affiliate.code),
        "promotion_code": promotion_code_of(affiliate),
        "friend_reward": reward_for(affiliate),
    }
    # Only the report swaps itself; other htmx requests (boosted links) get the whole page.
    partial = "report" if request.htmx and request.htmx.target == "report" else None
    return render_page(request, "portal/dashboard.html", context, partial=partial)
