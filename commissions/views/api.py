"""Merchant and automation API endpoints that need commissions (/api/v1/openapi.json).

Thin: parsing, answers and their JSON schemas live in commissions/api.py.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from affiliates.api import affiliate_param
from affiliates.auth import KeyContext, authenticate, check_program
from affiliates.models import Affiliate, PartnerGroup
from refapp.api import (
    ApiError,
    Fields,
    api_view,
    choice_param,
    day_end,
    day_start,
    error_response,
    invalid,
    paginate,
    query_dates,
    query_range,
    read_json_object,
)
from refapp.money import MAX_AMOUNT_MINOR
from tracking.views.api import event_list

from ..api import commission_json, event_answer, rule_json
from ..models import Commission, CommissionRule
from ..reports import GROUP_BY, summary
from ..rules import RuleInvalid, rule_create, rule_deactivate
from ..services import RefundError, refund_apply
from ..stats import DateRange


def _method_not_allowed(allowed: str) -> JsonResponse:
    response = error_response(405, "method_not_allowed", f"Use {allowed}.")
    response["Allow"] = allowed
    return response


@api_view
def events(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return event_list(request)  # the events log is tracking's read
    if request.method != "POST":
        return _method_not_allowed("GET, POST")
    status, body = event_answer(request.META, request.read)
    return JsonResponse(body, status=status)


@api_view
def refunds(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _method_not_allowed("POST")
    ctx = authenticate(request)
    data = read_json_object(request)
    check_program(ctx, data.get("program"))
    f = Fields(data)
    order_id = f.str("order_id", required=True, max_length=255)
    refund_id = f.str("refund_id", max_length=255)
    amount_cents = f.int("amount_cents", min_value=1, max_value=MAX_AMOUNT_MINOR)
    f.raise_if_any()
    try:
        body, created = refund_apply(
            program=ctx.program,
            livemode=ctx.livemode,
            order_id=order_id or "",
            refund_id=refund_id,
            amount_cents=amount_cents,
            actor=ctx.actor,
            now=timezone.now(),
        )
    except RefundError as exc:
        raise ApiError(
            exc.status, exc.code, exc.message, {exc.field: [exc.message]} if exc.field else None
        ) from None
    return JsonResponse(body, status=201 if created else 200)


# --- commission rules ------------------------------------------------------------------------


def _owned(ctx: KeyContext, obj: Any, kind: str) -> Any:
    """The object if the key's program holds it in the key's mode. Another mode's object answers
    404 as if it did not exist: a test key never reads or changes live rules or affiliates."""
    if obj is None:
        raise ApiError(404, "not_found", f"No such {kind}.")
    if obj.program_id != ctx.program.pk:
        raise ApiError(403, "wrong_program", f"This {kind} belongs to another program.")
    if getattr(obj, "livemode", ctx.livemode) != ctx.livemode:
        raise ApiError(404, "not_found", f"No such {kind}.")
    return obj


@api_view
def commission_rules(request: HttpRequest) -> HttpResponse:
    ctx = authenticate(request)
    if request.method == "GET":
        qs = CommissionRule.objects.filter(program=ctx.program, livemode=ctx.livemode).select_related(
            "program", "group", "affiliate"
        )
        if request.GET.get("active") in ("true", "false"):
            qs = qs.filter(is_active=request.GET["active"] == "true")
        return paginate(request, qs, rule_json)
    if request.method != "POST":
        return _method_not_allowed("GET, POST")
    data = read_json_object(request)
    f = Fields(data)
    event_name = f.str("event", default="sale", max_length=64) or "sale"
    rule_type = f.str("type", required=True, max_length=10)
    rate_bp = f.int("rate_bp")
    amount_cents = f.int("amount_cents")
    currency = f.str("currency", max_length=3)
    first_event_only = f.bool("first_event_only")
    duration_months = f.int("duration_months", min_value=1, max_value=1200)
    max_events = f.int("max_events", min_value=1, max_value=1_000_000)
    tiers = data.get("tiers") or []
    if not isinstance(tiers, list):
        f.add("tiers", 'Must be a list of {"min_cents", "rate_bp"}.')
        tiers = []
    group = affiliate = None
    group_id = f.str("group", max_length=32)
    affiliate_id = f.str("affiliate", max_length=32)
    f.raise_if_any()
    if group_id:
        group = _owned(ctx, PartnerGroup.objects.filter(public_id=group_id).first(), "group")
    if affiliate_id:
        affiliate = _owned(ctx, Affiliate.objects.filter(public_id=affiliate_id).first(), "affiliate")
    try:
        rule = rule_create(
            program=ctx.program,
            event_name=event_name,
            type=rule_type or "",
            rate_bp=rate_bp,
            amount_cents=amount_cents,
            group=group,
            affiliate=affiliate,
            first_event_only=first_event_only,
            duration_months=duration_months,
            max_events=max_events,
            tiers=tiers,
            currency=currency,
            actor=ctx.actor,
            livemode=ctx.livemode,
        )
    except RuleInvalid as exc:
        raise invalid("The rule is not valid.", exc.errors) from None
    return JsonResponse(rule_json(rule), status=201)


@api_view
def commission_rule_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    ctx = authenticate(request)
    rule = _owned(
        ctx,
        CommissionRule.objects.select_related("program", "group", "affiliate")
        .filter(public_id=public_id)
        .first(),
        "rule",
    )
    if request.method == "GET":
        return JsonResponse(rule_json(rule))
    if request.method == "DELETE":
        rule = rule_deactivate(rule=rule, actor=ctx.actor)
        return JsonResponse(rule_json(rule))
    return _method_not_allowed("GET, DELETE")


# --- commissions ---------------------------------------------------------------------------------


@api_view
def commissions(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return _method_not_allowed("GET")
    ctx = authenticate(request)
    qs = Commission.objects.filter(program=ctx.program, livemode=ctx.livemode).select_related(
        "affiliate", "event", "rule", "reverses"
    )
    status = request.GET.get("status")
    if status:
        if status not in Commission.Status.values:
            raise invalid(
                "Unknown status.", {"status": [f"Use one of {', '.join(Commission.Status.values)}."]}
            )
        qs = qs.filter(status=status)
    # An id or a code; an unknown one is a 400, not the empty list it used to be.
    affiliate = affiliate_param(request, program=ctx.program, livemode=ctx.livemode)
    if affiliate is not None:
        qs = qs.filter(affiliate=affiliate)
    if request.GET.get("order_id"):
        qs = qs.filter(event__order_id=request.GET["order_id"])
    first, last = query_dates(request)
    if first:
        qs = qs.filter(created_at__gte=day_start(first))
    if last:
        qs = qs.filter(created_at__lt=day_end(last))
    return paginate(request, qs, commission_json)


# --- reports (issue 17 part B) -------------------------------------------------------------------


@api_view
def report_summary(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return _method_not_allowed("GET")
    ctx = authenticate(request)
    first, last = query_range(request)
    group_by = choice_param(request, "group_by", GROUP_BY) or "day"
    body = summary(
        program=ctx.program, livemode=ctx.livemode, period=DateRange(first, last), group_by=group_by
    )
    return JsonResponse(body)
