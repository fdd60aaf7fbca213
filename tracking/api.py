"""The JSON of the tracking reads (referrals, events, clicks) and their schemas, side by side.

refapp/openapi.py puts these schemas in /api/v1/openapi.json and the contract test holds every
response to them, so a field added to a serializer without its schema fails the suite. No click or
event JSON carries an address or its hash: the hashes exist for fraud checks, not for clients.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .models import Click, Event, Referral

_STR = {"type": "string"}
_STR_OR_NULL = {"type": ["string", "null"]}
_TIME = {"type": "string", "format": "date-time"}


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _required(schema: dict[str, Any]) -> dict[str, Any]:
    schema["required"] = list(schema["properties"])
    return schema


REFERRAL_SCHEMA: dict[str, Any] = _required(
    {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "examples": ["ref_…"]},
            "affiliate": _STR,
            "customer_id": _STR_OR_NULL,
            "visitor_id": _STR,
            "method": _STR,
            "click": _STR_OR_NULL,
            "livemode": {"type": "boolean"},
            "created_at": _TIME,
        },
    }
)


def click_public_id(click_id: int) -> str:
    """Clicks are written in bulk from the buffer and carry no public id column; this is their id."""
    return f"clk_{click_id}"


def referral_json(referral: Referral) -> dict[str, Any]:
    return {
        "id": referral.public_id,
        "affiliate": referral.affiliate.public_id,
        "customer_id": referral.customer_id,
        "visitor_id": referral.visitor_id,
        "method": referral.method,
        "click": click_public_id(referral.click_id) if referral.click_id else None,
        "livemode": referral.livemode,
        "created_at": _iso(referral.created_at),
    }


EVENT_SCHEMA: dict[str, Any] = _required(
    {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "examples": ["evt_…"]},
            "event": _STR,
            "order_id": _STR_OR_NULL,
            "customer_id": _STR,
            "visitor_id": _STR,
            "referral_code": _STR,
            "amount_cents": {"type": "integer"},
            "refunded_cents": {"type": "integer"},
            "currency": _STR,
            "disputed": {"type": "boolean"},
            "affiliate": _STR_OR_NULL,
            "referral": _STR_OR_NULL,
            "attribution": {"type": "string", "enum": list(Event.Attribution.values)},
            "source": _STR,
            "metadata": {"type": "object"},
            "livemode": {"type": "boolean"},
            "occurred_at": _TIME,
            "received_at": _TIME,
        },
    }
)


def event_json(event: Event) -> dict[str, Any]:
    return {
        "id": event.public_id,
        "event": event.name,
        "order_id": event.order_id,
        "customer_id": event.customer_id,
        "visitor_id": event.visitor_id,
        "referral_code": event.referral_code,
        "amount_cents": event.amount_cents,
        "refunded_cents": event.refunded_cents,
        "currency": event.currency,
        "disputed": event.disputed,
        "affiliate": event.affiliate.public_id if event.affiliate_id else None,
        "referral": event.referral.public_id if event.referral_id else None,
        "attribution": event.attribution,
        "source": event.source,
        "metadata": event.metadata if isinstance(event.metadata, dict) else {},
        "livemode": event.livemode,
        "occurred_at": _iso(event.occurred_at),
        "received_at": _iso(event.received_at),
    }


CLICK_SCHEMA: dict[str, Any] = _required(
    {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "examples": ["clk_…"]},
            "affiliate": _STR,
            "visitor_id": _STR,
            "landing_url": _STR,
            "referrer": _STR,
            "utm_source": _STR,
            "utm_medium": _STR,
            "utm_campaign": _STR,
            "utm_term": _STR,
            "utm_content": _STR,
            "sub_id": _STR,
            "country": _STR,
            "source": _STR,
            "created_at": _TIME,
        },
    }
)


def click_json(click: Click) -> dict[str, Any]:
    return {
        "id": click_public_id(click.pk),
        "affiliate": click.affiliate.public_id,
        "visitor_id": click.visitor_id,
        "landing_url": click.landing_url,
        "referrer": click.referrer,
        "utm_source": click.utm_source,
        "utm_medium": click.utm_medium,
        "utm_campaign": click.utm_campaign,
        "utm_term": click.utm_term,
        "utm_content": click.utm_content,
        "sub_id": click.sub_id,
        "country": click.country,
        "source": click.source,
        "created_at": _iso(click.created_at),
    }


def _query(name: str, description: str = "") -> dict[str, Any]:
    parameter: dict[str, Any] = {"name": name, "in": "query", "schema": {"type": "string"}}
    if description:
        parameter["description"] = description
    return parameter


REFERRAL_FILTERS = [_query("customer_id")]
EVENT_FILTERS = [
    _query("customer_id"),
    _query("order_id"),
    _query("event", "An event name such as sale."),
    {"name": "attributed", "in": "query", "schema": {"enum": ["true", "false"]}},
]
CLICK_FILTERS = [_query("visitor_id"), _query("sub_id"), _query("utm_campaign")]
