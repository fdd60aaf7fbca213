"""Merchant and automation API endpoints that need commissions (DESIGN.md 4.4, 4.5, 4.8)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from affiliates.auth import KeyContext, authenticate, authenticate_meta, check_program
from affiliates.models import Affiliate, PartnerGroup
from refapp.api import (
    ApiError,
    Fields,
    api_view,
    error_response,
    invalid,
    paginate,
    read_json_object,
    read_json_stream,
)
from refapp.hashing import email_hash
from refapp.money import MAX_AMOUNT_MINOR, MoneyError, is_currency, parse_amount
from tracking.services import VISITOR_RE

from ..calculation import explain
from ..models import Commission, CommissionRule
from ..rules import RuleInvalid, rule_create, rule_deactivate
from ..services import EventInput, RefundError, event_ingest, iso, refund_apply

EVENT_NAME_RE = re.compile(r"^[a-z0-9_.-]{1,64}$")
FUTURE_TOLERANCE = timedelta(hours=1)


def _method_not_allowed(allowed: str) -> JsonResponse:
    response = error_response(405, "method_not_allowed", f"Use {allowed}.")
    response["Allow"] = allowed
    return response


def parse_event(data: dict[str, Any], *, program_currency: str, now: datetime) -> EventInput:
    f = Fields(data)
    name = f.str("event", required=True, max_length=64)
    if name and not EVENT_NAME_RE.match(name):
        f.add("event", "Use 1 to 64 characters of a-z, 0-9, '_', '.' or '-'.")
    order_id = f.str("order_id", max_length=255)
    customer_id = f.str("customer_id", max_length=255, default="")
    visitor_id = f.str("visitor_id", max_length=64, default="")
    if visitor_id and not VISITOR_RE.match(visitor_id):
        f.add("visitor_id", "Use the refapp_vid cookie value: 8 to 64 letters, digits, '-' or '_'.")
    referral_code = f.str("referral_code", max_length=64, default="")

    currency = f.str("currency", max_length=3) or program_currency
    currency_ok = True
    if not is_currency(currency):
        f.add("currency", f"{currency!r} is not an ISO 4217 currency code.")
        currency_ok = False
    elif currency.upper() != program_currency:
        f.add("currency", f"This program is in {program_currency}; send amounts in {program_currency}.")
        currency_ok = False
    currency = currency.upper()

    amount_cents = 0
    if "amount" in data and "amount_cents" in data:
        f.add("amount", "Send either amount or amount_cents, not both.")
    elif "amount_cents" in data:
        amount_cents = f.int("amount_cents", min_value=0, max_value=MAX_AMOUNT_MINOR) or 0
    elif "amount" in data and currency_ok:
        raw = data["amount"]
        try:
            amount_cents = parse_amount(raw if isinstance(raw, str) else "", currency)
        except MoneyError as exc:
            f.add("amount", str(exc))
        else:
            if amount_cents < 0:
                f.add("amount", "Must not be negative; report refunds to /api/v1/refunds.")
            elif amount_cents > MAX_AMOUNT_MINOR:
                f.add("amount", "Is larger than any real order.")

    customer_email = f.str("customer_email", max_length=254, default="")
    if customer_email and "@" not in customer_email:
        f.add("customer_email", "Is not an email address.")
    metadata = data.get("metadata", {})
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        f.add("metadata", "Must be an object.")
        metadata = {}
    elif len(metadata) > 50:
        f.add("metadata", "At most 50 keys.")
    elif any(
        len(str(k)) > 40 or (isinstance(v, str) and len(v) > 500) or isinstance(v, (dict, list))
        for k, v in metadata.items()
    ):
        f.add(
            "metadata",
            "Keys up to 40 characters; values are strings up to 500 characters, numbers, booleans or null.",
        )

    occurred_at = None
    raw_time = data.get("occurred_at")
    if raw_time is not None:
        parsed = parse_datetime(raw_time) if isinstance(raw_time, str) else None
        if parsed is None:
            f.add("occurred_at", "Use an ISO 8601 time such as 2026-11-20T10:00:00Z.")
        elif parsed.tzinfo is None:
            f.add("occurred_at", "Include a time zone, e.g. a trailing Z for UTC.")
        elif parsed > now + FUTURE_TOLERANCE:
            f.add("occurred_at", "Is in the future.")
        else:
            occurred_at = parsed.astimezone(UTC)
    f.raise_if_any()
    return EventInput(
        name=name or "",
        order_id=order_id,
        customer_id=customer_id or "",
        visitor_id=visitor_id or "",
        referral_code=referral_code or "",
        amount_cents=amount_cents,
        currency=currency,
        customer_email_hash=email_hash(customer_email) if customer_email else "",
        metadata=metadata,
        occurred_at=occurred_at,
    )


@api_view
def events(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _method_not_allowed("POST")
    status, body = event_answer(request.META, request.read)
    return JsonResponse(body, status=status)


def event_answer(meta: Mapping[str, Any], read: Callable[[int], bytes]) -> tuple[int, dict[str, Any]]:
    """(status, body) of POST /api/v1/events from the request's headers and body stream, or an
    ApiError. Shared by the Django view and the WSGI fast path (tracking/fastpath.py)."""
    ctx = authenticate_meta(meta)
    data = read_json_stream(meta.get("CONTENT_LENGTH"), read)
    check_program(ctx, data.get("program"))
    now = timezone.now()
    event_input = parse_event(data, program_currency=ctx.program.currency, now=now)
    body, created = event_ingest(
        program=ctx.program, livemode=ctx.livemode, data=event_input, actor=ctx.actor, now=now
    )
    return (201 if created else 200), body


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


def rule_json(rule: CommissionRule) -> dict[str, Any]:
    return {
        "id": rule.public_id,
        "event": rule.event_name,
        "type": rule.type,
        "rate_bp": rule.rate_bp,
        "amount_cents": rule.amount_cents,
        "currency": rule.program.currency,
        "scope": rule.scope,
        "group": rule.group.public_id if rule.group_id else None,
        "affiliate": rule.affiliate.public_id if rule.affiliate_id else None,
        "first_event_only": rule.first_event_only,
        "duration_months": rule.duration_months,
        "max_events": rule.max_events,
        "tiers": rule.tiers,
        "active": rule.is_active,
        "description": rule.describe(),
        "created_at": iso(rule.created_at),
    }


def _owned(ctx: KeyContext, obj: Any, kind: str) -> Any:
    if obj is None:
        raise ApiError(404, "not_found", f"No such {kind}.")
    if obj.program_id != ctx.program.pk:
        raise ApiError(403, "wrong_program", f"This {kind} belongs to another program.")
    return obj


@api_view
def commission_rules(request: HttpRequest) -> HttpResponse:
    ctx = authenticate(request)
    if request.method == "GET":
        qs = CommissionRule.objects.filter(program=ctx.program).select_related(
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


def commission_json(c: Commission) -> dict[str, Any]:
    return {
        "id": c.public_id,
        "affiliate": c.affiliate.public_id,
        "event": c.event.public_id,
        "order_id": c.event.order_id,
        "kind": c.kind,
        "reverses": c.reverses.public_id if c.reverses_id else None,
        "amount_cents": c.amount_cents,
        "currency": c.currency,
        "status": c.status,
        "status_reason": c.status_reason,
        "hold_until": iso(c.hold_until),
        "rule": c.rule.public_id if c.rule_id else None,
        "livemode": c.livemode,
        "explanation": explain(c),
        "created_at": iso(c.created_at),
    }


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
    if request.GET.get("affiliate"):
        qs = qs.filter(affiliate__public_id=request.GET["affiliate"])
    if request.GET.get("order_id"):
        qs = qs.filter(event__order_id=request.GET["order_id"])
    return paginate(request, qs, commission_json)
