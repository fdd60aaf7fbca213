"""Partner portal pages about money: dashboard, conversions, commissions and payouts.

Every query here starts from `request.affiliate`, the membership the signed-in email is viewing,
and reads live-mode rows only: test-mode data never reaches an affiliate.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from urllib.parse import urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from affiliates.access import portal_required
from affiliates.forms import LinkBuilderForm
from affiliates.models import Affiliate, Program
from affiliates.views.portal import PortalRequest
from refapp.money import to_decimal

from .. import stats
from ..calculation import explain
from ..models import Commission

PAGE_SIZE = 25
PAYOUT_HOUR = 6  # payouts run on the program's payout day at 06:00 UTC


def referral_link(program: Program, code: str) -> str:
    """The program website with ?ref=CODE (kept valid when the website already has a query)."""
    parts = urlsplit(program.website)
    query = "&".join(p for p in (parts.query, urlencode({"ref": code})) if p)
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, ""))


def go_link(program: Program, code: str) -> str:
    return settings.BASE_URL + reverse("go", kwargs={"program_slug": program.slug, "code": code})


def next_payout_at(program: Program, now: datetime) -> datetime:
    """The next scheduled payout run: the program's payout day at 06:00 UTC, this month or next."""
    run = datetime.combine(now.date().replace(day=program.payout_day), time(PAYOUT_HOUR), tzinfo=UTC)
    if run <= now:
        first_next = (now.date().replace(day=1) + timedelta(days=32)).replace(day=program.payout_day)
        run = datetime.combine(first_next, time(PAYOUT_HOUR), tzinfo=UTC)
    return run


def payout_estimate(balances: dict, run: datetime) -> dict:
    """What the next run would pay: approved money plus pending money that unlocks before it."""
    unlocking = sum(u["amount_cents"] for u in balances["unlocks"] if u["day"] < run.date())
    expected = balances["approved_cents"] + unlocking
    minimum = balances["minimum_payout_cents"]
    return {
        "run_at": run,
        "expected_cents": expected,
        "unlocking_cents": unlocking,
        "reaches_minimum": expected > 0 and expected >= minimum,
        "short_cents": max(0, minimum - expected),
    }


def _chart(affiliate: Affiliate, series: dict) -> dict:
    currency = affiliate.program.currency
    return {
        "labels": series["labels"],
        "series": [
            {"label": "Clicks", "data": series["clicks"]},
            {"label": "Conversions", "data": series["conversions"]},
            {
                "label": f"Earnings ({currency})",
                # Decimal strings, not floats: the chart reads them as numbers, the amounts stay exact.
                "data": [str(to_decimal(cents, currency)) for cents in series["earnings_cents"]],
                "axis": "y2",
            },
        ],
    }


@require_GET
@portal_required
def dashboard(request: PortalRequest) -> HttpResponse:
    affiliate = request.affiliate
    program = affiliate.program
    now = timezone.now()
    context: dict = {"affiliate": affiliate, "program": program}
    if affiliate.status == Affiliate.Status.PENDING:
        return render(request, "portal/dashboard.html", context)

    period, preset, errors = stats.parse_range(request.GET, now.date())
    builder = LinkBuilderForm(request.GET if "build" in request.GET else None, program=program)
    built = builder.build(go_link(program, affiliate.code)) if builder.is_bound and builder.is_valid() else ""
    if request.htmx and request.htmx.target == "link-builder" and affiliate.is_active:
        context.update(builder=builder, built=built)
        return render(request, "portal/dashboard.html#builder", context)

    summary, series = stats.affiliate_overview(affiliate, period)
    balances = stats.affiliate_balances(affiliate)
    summary["earnings_cents"] = (
        summary["commission_pending_cents"]
        + summary["commission_approved_cents"]
        + summary["commission_paid_cents"]
    )
    context.update(
        period=period,
        preset=preset,
        presets=stats.PRESETS,
        errors=errors,
        summary=summary,
        chart=_chart(affiliate, series),
        has_data=bool(summary["clicks"] or summary["conversions"]),
        builder=builder,
        built=built,
        balances=balances,
        estimate=payout_estimate(balances, next_payout_at(program, now)),
        links_work=affiliate.is_active,
        referral_link=referral_link(program, affiliate.code),
        go_link=go_link(program, affiliate.code),
    )
    if request.htmx and request.htmx.target == "report":
        return render(request, "portal/dashboard.html#report", context)
    return render(request, "portal/dashboard.html", context)


@require_GET
@portal_required
def conversions(request: PortalRequest) -> HttpResponse:
    affiliate = request.affiliate
    own = Commission.objects.filter(affiliate=affiliate, livemode=True).order_by("pk")
    events = stats.affiliate_conversions(affiliate).prefetch_related(
        Prefetch("commissions", queryset=own, to_attr="own_commissions")
    )
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        {
            "event": event,
            "net_cents": event.amount_cents - event.refunded_cents,
            "earned_cents": sum(
                c.amount_cents for c in event.own_commissions if c.status != Commission.Status.REJECTED
            ),
            "statuses": sorted({c.status for c in event.own_commissions}),
        }
        for event in page
    ]
    context = {"affiliate": affiliate, "page": page, "rows": rows}
    template = "portal/conversions.html#table" if request.htmx else "portal/conversions.html"
    return render(request, template, context)


@require_GET
@portal_required
def commissions(request: PortalRequest) -> HttpResponse:
    affiliate = request.affiliate
    status = request.GET.get("status", "")
    if status not in Commission.Status.values:
        status = ""
    rows = (
        Commission.objects.filter(affiliate=affiliate, livemode=True)
        .select_related("event", "rule__program")
        .order_by("-created_at", "-pk")
    )
    if status:
        rows = rows.filter(status=status)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    items = [
        {"commission": c, "explanation": explain(c), "rule": c.rule.describe() if c.rule else ""}
        for c in page
    ]
    context = {
        "affiliate": affiliate,
        "page": page,
        "items": items,
        "status": status,
        "statuses": Commission.Status.choices,
        "query_prefix": urlencode({"status": status}) + "&" if status else "",
    }
    template = "portal/commissions.html#table" if request.htmx else "portal/commissions.html"
    return render(request, template, context)
