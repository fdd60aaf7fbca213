"""The JSON of the affiliates API and its schemas, side by side (DESIGN.md 4.8).

refapp/openapi.py puts these schemas in /api/v1/openapi.json and the contract test holds every
response to them, so a field added to affiliate_json without its schema fails the suite.
"""

from __future__ import annotations

from typing import Any

from .models import Affiliate

_STR = {"type": "string"}

AFFILIATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "examples": ["aff_…"]},
        "email": _STR,
        "name": _STR,
        "code": _STR,
        "status": {"type": "string", "enum": list(Affiliate.Status.values)},
        "status_reason": _STR,
        "group": {"type": ["string", "null"]},
        "livemode": {"type": "boolean"},
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
        "status": affiliate.status,
        "status_reason": affiliate.status_reason,
        "group": affiliate.group.public_id if affiliate.group_id else None,
        "livemode": affiliate.livemode,
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
    },
}

AFFILIATE_LIST_PARAMETERS: list[dict[str, Any]] = [
    {"name": "status", "in": "query", "schema": {"type": "string", "enum": list(Affiliate.Status.values)}},
    {"name": "q", "in": "query", "schema": {"type": "string"}, "description": "Search email, name, code."},
]
