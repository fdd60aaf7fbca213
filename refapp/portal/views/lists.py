"""Portal: the affiliate's conversions and commissions, live mode only, newest first."""

from __future__ import annotations

from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import HttpResponse
from django.views.decorators.http import require_GET

from commissions import stats
from commissions.calculation import explain
from commissions.models import Commission
from refapp.htmx import render_page

from ..access import PortalRequest, portal_required

PAGE_SIZE = 25


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
    return render_page(request, "portal/conversions.html", context, partial="table")


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
    return render_page(request, "portal/commissions.html", context, partial="table")
