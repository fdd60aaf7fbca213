"""The JSON of the commissions API: request parsing, answers, and their schemas (/api/v1/openapi.json).

The events answer is computed here, from a header mapping and a body stream, so that the Django
view (views/api.py) and the WSGI fast path (refapp/fastpath.py) share one core and answer alike.
Each JSON shape's schema sits beside the function that writes or reads it; refapp/openapi.py puts
them in /api/v1/openapi.json and the contract test holds every response to them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from affiliates.auth import authenticate_meta, check_program
from refapp.api import Fields, parse_timestamp, read_json_stream
from refapp.hashing import email_hash
from refapp.money import MAX_AMOUNT_MINOR, MoneyError, is_currency, parse_amount
from tracking.services import VISITOR_RE

from .calculation import explain
from .models import Commission, CommissionRule
from .services import EventInput, event_ingest, iso

EVENT_NAME_RE = re.compile(r"^[a-z0-9_.-]{1,64}$")
FUTURE_TOLERANCE = timedelta(hours=1)

_STR = {"type": "string"}
_INT_OR_NULL = {"type": ["integer", "null"]}
_STR_OR_NULL = {"type": ["string", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_STATUS = {"type": "string", "enum": list(Commission.Status.values)}

# --- POST /api/v1/events ------------------------------------------------------------------------

EVENT_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["event"],
    "properties": {
        "event": {"type": "string", "pattern": EVENT_NAME_RE.pattern},
        "program": {"type": "string", "description": "Optional; must be the key's program."},
        "order_id": {"type": "string", "maxLength": 255},
        "customer_id": {"type": "string", "maxLength": 255},
        "visitor_id": {"type": "string", "pattern": VISITOR_RE.pattern},
        "referral_code": {"type": "string", "maxLength": 64},
        "coupon_code": {
            "type": "string",
            "maxLength": 64,
            "description": "The promotion code the customer used at checkout: attributes the event to "
            "that code's affiliate.",
        },
        "amount": {"type": "string", "examples": ["99.00"]},
        "amount_cents": {"type": "integer", "minimum": 0, "maximum": MAX_AMOUNT_MINOR},
        "currency": {"type": "string", "examples": ["USD"]},
        "customer_email": {"type": "string", "maxLength": 254},
        "metadata": {"type": ["object", "null"], "maxProperties": 50},
        "occurred_at": _TIME,
    },
}

# One commission as the events and refunds answers list it (commissions.services._commission_json;
# a refund adds "kind" and, for a clawback, "reverses").
EVENT_COMMISSION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "amount_cents", "currency", "status", "hold_until"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "examples": ["com_…"]},
        "amount_cents": {"type": "integer"},
        "currency": _STR,
        "status": _STATUS,
        "hold_until": _TIME,
        "kind": {"type": "string", "enum": list(Commission.Kind.values)},
        "reverses": _STR,
    },
}

# commissions.services.response_body: stored on the event, so a replay answers the same body.
EVENT_RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "livemode", "attributed", "affiliate", "referral", "commissions"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "examples": ["evt_…"]},
        "livemode": {"type": "boolean"},
        "attributed": {"type": "boolean"},
        "affiliate": {
            "oneOf": [
                {
                    "type": "object",
                    "required": ["id", "code"],
                    "additionalProperties": False,
                    "properties": {"id": _STR, "code": _STR},
                },
                {"type": "null"},
            ]
        },
        "referral": _STR_OR_NULL,
        "commissions": {"type": "array", "items": EVENT_COMMISSION_SCHEMA},
    },
}


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
    coupon_code = f.str("coupon_code", max_length=64, default="")

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
        parsed, problem = parse_timestamp(raw_time)
        if parsed is None:
            f.add("occurred_at", problem or "Is not a time.")
        elif parsed > now + FUTURE_TOLERANCE:
            f.add("occurred_at", "Is in the future.")
        else:
            occurred_at = parsed
    f.raise_if_any()
    return EventInput(
        name=name or "",
        order_id=order_id,
        customer_id=customer_id or "",
        visitor_id=visitor_id or "",
        referral_code=referral_code or "",
        coupon_code=(coupon_code or "").strip(),
        amount_cents=amount_cents,
        currency=currency,
        customer_email_hash=email_hash(customer_email) if customer_email else "",
        metadata=metadata,
        occurred_at=occurred_at,
    )


def event_answer(meta: Mapping[str, Any], read: Callable[[int], bytes]) -> tuple[int, dict[str, Any]]:
    """(status, body) of POST /api/v1/events from the request's headers and body stream, or an
    ApiError. Shared by the Django view and the WSGI fast path (refapp/fastpath.py)."""
    ctx = authenticate_meta(meta)
    data = read_json_stream(meta.get("CONTENT_LENGTH"), read)
    check_program(ctx, data.get("program"))
    now = timezone.now()
    event_input = parse_event(data, program_currency=ctx.program.currency, now=now)
    body, created = event_ingest(
        program=ctx.program, livemode=ctx.livemode, data=event_input, actor=ctx.actor, now=now
    )
    return (201 if created else 200), body


# --- POST /api/v1/refunds -----------------------------------------------------------------------

REFUND_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["order_id"],
    "properties": {
        "program": {"type": "string", "description": "Optional; must be the key's program."},
        "order_id": {"type": "string", "maxLength": 255},
        "refund_id": {"type": "string", "maxLength": 255},
        "amount_cents": {"type": "integer", "minimum": 1, "maximum": MAX_AMOUNT_MINOR},
    },
}

# commissions.services._refund_apply's body, stored on the refund and answered again on a replay.
REFUND_RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "order_id",
        "refund_id",
        "event",
        "amount_cents",
        "refunded_cents",
        "fully_refunded",
        "commissions",
    ],
    "additionalProperties": False,
    "properties": {
        "order_id": _STR,
        "refund_id": _STR_OR_NULL,
        "event": {"type": "string", "examples": ["evt_…"]},
        "amount_cents": {"type": "integer"},
        "refunded_cents": {"type": "integer"},
        "fully_refunded": {"type": "boolean"},
        "commissions": {"type": "array", "items": EVENT_COMMISSION_SCHEMA},
    },
}


# --- commission rules ---------------------------------------------------------------------------

RULE_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "event": {"type": "string", "default": "sale", "maxLength": 64},
        "type": {"type": "string", "enum": list(CommissionRule.Type.values)},
        "rate_bp": {"type": "integer", "minimum": 0, "maximum": 10000},
        "amount_cents": {"type": "integer", "minimum": 0},
        "currency": {"type": "string"},
        "group": {"type": "string", "description": "A partner group id: the rule applies to that group."},
        "affiliate": {
            "type": "string",
            "description": "An affiliate id: the rule applies to that affiliate.",
        },
        "first_event_only": {"type": "boolean"},
        "duration_months": {"type": "integer", "minimum": 1, "maximum": 1200},
        "max_events": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
        "tiers": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["min_cents", "rate_bp"],
                "properties": {"min_cents": {"type": "integer"}, "rate_bp": {"type": "integer"}},
            },
        },
    },
}

RULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "examples": ["rule_…"]},
        "event": _STR,
        "type": {"type": "string", "enum": list(CommissionRule.Type.values)},
        "rate_bp": _INT_OR_NULL,
        "amount_cents": _INT_OR_NULL,
        "currency": _STR,
        "scope": {"type": "string", "enum": ["program", "group", "affiliate"]},
        "group": _STR_OR_NULL,
        "affiliate": _STR_OR_NULL,
        "first_event_only": {"type": "boolean"},
        "duration_months": _INT_OR_NULL,
        "max_events": _INT_OR_NULL,
        "tiers": {"type": "array", "items": {"type": "object"}},
        "active": {"type": "boolean"},
        "livemode": {"type": "boolean"},
        "description": _STR,
        "created_at": _TIME,
    },
}


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
        "livemode": rule.livemode,
        "description": rule.describe(),
        "created_at": iso(rule.created_at),
    }


# Every key rule_json writes is required: the schema and the function cannot disagree silently.
RULE_SCHEMA["required"] = list(RULE_SCHEMA["properties"])


# --- commissions --------------------------------------------------------------------------------

COMMISSION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "examples": ["com_…"]},
        "affiliate": {"type": "string", "examples": ["aff_…"]},
        "event": {"type": "string", "examples": ["evt_…"]},
        "order_id": _STR_OR_NULL,
        "kind": {"type": "string", "enum": list(Commission.Kind.values)},
        "reverses": _STR_OR_NULL,
        "amount_cents": {"type": "integer"},
        "currency": _STR,
        "status": _STATUS,
        "status_reason": _STR,
        "hold_until": _TIME,
        "rule": _STR_OR_NULL,
        "livemode": {"type": "boolean"},
        "explanation": _STR,
        "created_at": _TIME,
    },
}
COMMISSION_SCHEMA["required"] = list(COMMISSION_SCHEMA["properties"])

COMMISSION_STATUS_PARAMETER = {"name": "status", "in": "query", "schema": _STATUS}


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
        "explanation": explain(c, reader="staff"),
        "created_at": iso(c.created_at),
    }
