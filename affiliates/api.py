"""The JSON of the affiliates API and its schemas, side by side.

refapp/openapi.py puts these schemas in /api/v1/openapi.json and the contract test holds every
response to them, so a field added to affiliate_json without its schema fails the suite.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from refapp.api import invalid

from .models import Affiliate, FriendReward, Program
from .rewards import promotion_code_of

_STR = {"type": "string"}

AFFILIATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "examples": ["aff_…"]},
        "email": _STR,
        "name": _STR,
        "code": _STR,
        "promotion_code": {
            "type": "string",
            "description": "The code their audience enters at checkout: their own code unless edited.",
        },
        "status": {"type": "string", "enum": list(Affiliate.Status.values)},
        "status_reason": _STR,
        "group": {"type": ["string", "null"]},
        "livemode": {"type": "boolean"},
        "kind": {"type": "string", "enum": list(Affiliate.Kind.values)},
        "payout_method": {"type": "string", "enum": list(Affiliate.PayoutMethod.values)},
        "paypal_email": _STR,
        "links": {
            "type": "object",
            "required": ["referral", "go"],
            "additionalProperties": False,
            "properties": {"referral": _STR, "go": _STR},
        },
        "created_at": {"type": "string", "format": "date-time"},
    },
}
AFFILIATE_SCHEMA["required"] = list(AFFILIATE_SCHEMA["properties"])


def affiliate_json(affiliate: Affiliate) -> dict[str, Any]:
    return {
        "id": affiliate.public_id,
        "email": affiliate.email,
        "name": affiliate.name,
        "code": affiliate.code,
        "promotion_code": promotion_code_of(affiliate),
        "status": affiliate.status,
        "status_reason": affiliate.status_reason,
        "group": affiliate.group.public_id if affiliate.group_id else None,
        "livemode": affiliate.livemode,
        "kind": affiliate.kind,
        "payout_method": affiliate.payout_method,
        "paypal_email": affiliate.paypal_email,
        "links": affiliate.links(),
        "created_at": affiliate.created_at.isoformat().replace("+00:00", "Z"),
    }


AFFILIATE_CREATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["email", "name"],
    "properties": {
        "email": {"type": "string", "maxLength": 254},
        "name": {"type": "string", "maxLength": 200},
        "code": {"type": "string", "maxLength": 64},
        "status": {"type": "string", "enum": [Affiliate.Status.ACTIVE, Affiliate.Status.PENDING]},
        "group": {"type": "string"},
    },
}

AFFILIATE_UPDATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "status": {
            "type": "string",
            "enum": [Affiliate.Status.ACTIVE, Affiliate.Status.SUSPENDED, Affiliate.Status.REJECTED],
        },
        "reason": {"type": "string", "maxLength": 500},
        "group": {"type": ["string", "null"]},
        "code": {"type": "string", "maxLength": 64},
        "promotion_code": {"type": "string", "maxLength": 64},
        "paypal_email": {"type": ["string", "null"], "maxLength": 254},
    },
}

AFFILIATE_LIST_PARAMETERS: list[dict[str, Any]] = [
    {"name": "status", "in": "query", "schema": {"type": "string", "enum": list(Affiliate.Status.values)}},
    {"name": "q", "in": "query", "schema": {"type": "string"}, "description": "Search email, name, code."},
    {"name": "code", "in": "query", "schema": {"type": "string"}, "description": "Exact code, any case."},
    {"name": "email", "in": "query", "schema": {"type": "string"}, "description": "Exact email, any case."},
]

# The `affiliate` filter of every list and report.
AFFILIATE_FILTER_PARAMETER: dict[str, Any] = {
    "name": "affiliate",
    "in": "query",
    "schema": {"type": "string"},
    "description": "An affiliate's id (aff_…) or code.",
}


# --- customer referrers (refer-a-friend, issue 16 item 4) ---------------------------------------

REFERRER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        **AFFILIATE_SCHEMA["properties"],
        "customer_id": _STR,
    },
}
REFERRER_SCHEMA["required"] = list(REFERRER_SCHEMA["properties"])

REFERRER_CREATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["email", "customer_id"],
    "properties": {
        "email": {"type": "string", "format": "email", "maxLength": 254},
        "customer_id": {"type": "string", "minLength": 1, "maxLength": 255},
        "name": {"type": "string", "maxLength": 200},
    },
}


def referrer_json(affiliate: Affiliate) -> dict[str, Any]:
    """A customer referrer: the affiliate's JSON with its kind and the customer it belongs to."""
    return {**affiliate_json(affiliate), "customer_id": affiliate.customer_id or ""}


def affiliate_named(*, program: Program, livemode: bool, value: str) -> Affiliate | None:
    """The affiliate of a program and mode named by its public id or by its code (any case).

    Codes are unique per program across both modes (docs/decisions.md, "Test mode"), so a value
    names at most one affiliate; one of the other mode is None, as if it did not exist."""
    qs = Affiliate.objects.filter(program=program, livemode=livemode).select_related("program", "group")
    if value.startswith("aff_"):
        found = qs.filter(public_id=value).first()
        if found is not None:
            return found
    return qs.filter(code_key=value.lower()).first()


def affiliate_param(request: HttpRequest, *, program: Program, livemode: bool) -> Affiliate | None:
    """The `affiliate` query filter resolved, or a 400: an unknown affiliate never reads as an
    empty list, which a client could not tell from an affiliate with nothing yet."""
    value = request.GET.get("affiliate", "")
    if not value:
        return None
    affiliate = affiliate_named(program=program, livemode=livemode, value=value)
    if affiliate is None:
        raise invalid(
            "Unknown affiliate.", {"affiliate": ["No affiliate of this program has this id or code."]}
        )
    return affiliate


# --- friend rewards (/api/v1/friend-rewards) ------------------------------------------------------

_INT_OR_NULL = {"type": ["integer", "null"]}

FRIEND_REWARD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "examples": ["frw_…"]},
        "group": {"type": ["string", "null"], "description": "The group it is for; null: the program's."},
        "type": {"type": "string", "enum": list(FriendReward.Kind.values)},
        "percent_bp": _INT_OR_NULL,
        "amount_cents": _INT_OR_NULL,
        "currency": {"type": ["string", "null"]},
        "duration": {"type": "string", "enum": list(FriendReward.Duration.values)},
        "duration_months": _INT_OR_NULL,
        "description": {"type": "string", "examples": ["20 % off your first 3 months"]},
        "stripe_coupon": {"type": ["string", "null"]},
        "active": {"type": "boolean"},
    },
}
FRIEND_REWARD_SCHEMA["required"] = list(FRIEND_REWARD_SCHEMA["properties"])

FRIEND_REWARD_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "group": {"type": "string", "description": "A group id: the reward overrides the program's for it."},
        "type": {"type": "string", "enum": list(FriendReward.Kind.values)},
        "percent_bp": {"type": "integer", "minimum": 1, "maximum": 10_000, "examples": [2000]},
        "amount_cents": {"type": "integer", "minimum": 1},
        "currency": {"type": "string", "description": "The program's currency (the default)."},
        "duration": {"type": "string", "enum": list(FriendReward.Duration.values)},
        "duration_months": {"type": "integer", "minimum": 1, "maximum": 120},
        "stripe_coupon": {
            "type": "string",
            "description": "An existing Stripe coupon to use instead of creating one.",
        },
    },
}


def friend_reward_json(reward: FriendReward) -> dict[str, Any]:
    return {
        "id": reward.public_id,
        "group": reward.group.public_id if reward.group_id else None,
        "type": reward.kind,
        "percent_bp": reward.percent_bp,
        "amount_cents": reward.amount_cents,
        "currency": reward.currency or None,
        "duration": reward.duration,
        "duration_months": reward.duration_months,
        "description": reward.describe(),
        "stripe_coupon": reward.stripe_coupon_id or None,
        "active": reward.is_active,
    }
