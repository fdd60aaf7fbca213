"""Automation API reads of tracking: referrals, events and clicks.

Thin: the JSON and its schemas live in tracking/api.py. A key reads its own program in its own
mode. Clicks have no mode: a key reads the clicks of its mode's affiliates (docs/decisions.md,
"REST API and reports"). Every filter value that names nothing is a 400, never an empty list.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from affiliates.api import affiliate_param
from affiliates.auth import KeyContext, authenticate
from refapp.api import api_view, day_end, day_start, method_not_allowed, paginate, query_dates

from ..api import click_json, event_json, referral_json
from ..models import Click, Event, Referral


def _common(request: HttpRequest, ctx: KeyContext, qs: QuerySet, time_field: str) -> QuerySet:
    """The affiliate and from/to filters every tracking list takes."""
    affiliate = affiliate_param(request, program=ctx.program, livemode=ctx.livemode)
    first, last = query_dates(request)
    if affiliate is not None:
        qs = qs.filter(affiliate=affiliate)
    if first:
        qs = qs.filter(**{f"{time_field}__gte": day_start(first)})
    if last:
        qs = qs.filter(**{f"{time_field}__lt": day_end(last)})
    return qs


def _exact(request: HttpRequest, qs: QuerySet, *names: str, field: dict[str, str] | None = None) -> QuerySet:
    for name in names:
        value = request.GET.get(name)
        if value:
            qs = qs.filter(**{(field or {}).get(name, name): value})
    return qs


@api_view
def referrals(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return method_not_allowed("GET")
    ctx = authenticate(request)
    qs = Referral.objects.filter(program=ctx.program, livemode=ctx.livemode).select_related("affiliate")
    qs = _exact(request, _common(request, ctx, qs, "created_at"), "customer_id")
    return paginate(request, qs, referral_json)


def event_list(request: HttpRequest) -> HttpResponse:
    """GET /api/v1/events; commissions/views/api.py `events` answers the path's POST and hands GET
    here (the fast path in refapp/fastpath.py takes POST only, so GET reaches Django)."""
    ctx = authenticate(request)
    qs = Event.objects.filter(program=ctx.program, livemode=ctx.livemode).select_related(
        "affiliate", "referral"
    )
    qs = _exact(
        request,
        _common(request, ctx, qs, "occurred_at"),
        "customer_id",
        "order_id",
        "event",
        field={"event": "name"},
    )
    attributed = request.GET.get("attributed")
    if attributed in ("true", "false"):
        qs = qs.filter(affiliate__isnull=attributed == "false")
    return paginate(request, qs, event_json)


@api_view
def clicks(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return method_not_allowed("GET")
    ctx = authenticate(request)
    qs = Click.objects.filter(program=ctx.program, affiliate__livemode=ctx.livemode).select_related(
        "affiliate"
    )
    qs = _exact(request, _common(request, ctx, qs, "created_at"), "visitor_id", "sub_id", "utm_campaign")
    return paginate(request, qs, click_json)
