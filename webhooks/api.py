"""The JSON of the webhooks API and its schemas, side by side (/api/v1/openapi.json)."""

from __future__ import annotations

from typing import Any

from .models import EVENT_TYPES, WebhookDelivery, WebhookEndpoint, WebhookMessage

_STR = {"type": "string"}
_TIME = {"type": "string", "format": "date-time"}
_TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
_EVENTS = {"type": "array", "minItems": 1, "items": {"type": "string", "enum": EVENT_TYPES}}


def _iso(moment) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


ENDPOINT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "examples": ["we_…"]},
        "url": _STR,
        "description": _STR,
        "events": {"type": "array", "items": _STR},
        "active": {"type": "boolean"},
        "disabled_reason": _STR,
        "livemode": {"type": "boolean"},
        "created_at": _TIME,
        "updated_at": _TIME,
    },
}
ENDPOINT_SCHEMA["required"] = list(ENDPOINT_SCHEMA["properties"])

# The answer of a creation or a rotation: the only times the secret is shown.
ENDPOINT_WITH_SECRET_SCHEMA: dict[str, Any] = {
    **ENDPOINT_SCHEMA,
    "properties": {**ENDPOINT_SCHEMA["properties"], "secret": {"type": "string", "pattern": "^whsec_"}},
    "required": [*ENDPOINT_SCHEMA["required"], "secret"],
}


def endpoint_json(endpoint: WebhookEndpoint, *, with_secret: bool = False) -> dict[str, Any]:
    body = {
        "id": endpoint.public_id,
        "url": endpoint.url,
        "description": endpoint.description,
        "events": list(endpoint.events),
        "active": endpoint.is_active,
        "disabled_reason": endpoint.disabled_reason,
        "livemode": endpoint.livemode,
        "created_at": _iso(endpoint.created_at),
        "updated_at": _iso(endpoint.updated_at),
    }
    if with_secret:
        body["secret"] = endpoint.secret
    return body


ENDPOINT_CREATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["url", "events"],
    "additionalProperties": False,
    "properties": {
        "url": {"type": "string", "maxLength": 2000},
        "events": _EVENTS,
        "description": {"type": "string", "maxLength": 500},
    },
}

ENDPOINT_UPDATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "url": {"type": "string", "maxLength": 2000},
        "events": _EVENTS,
        "description": {"type": "string", "maxLength": 500},
        "active": {"type": "boolean"},
    },
}

DELIVERY_STATUSES = list(WebhookDelivery.Status.values)
DELIVERY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "examples": ["whd_…"]},
        "endpoint": _STR,
        "message": {"type": "string", "description": "The webhook-id header, the same on every attempt."},
        "type": _STR,
        "attempt": {"type": "integer"},
        "status": {"type": "string", "enum": DELIVERY_STATUSES},
        "response_code": {"type": ["integer", "null"]},
        "duration_ms": {"type": "integer"},
        "response_body": {"type": "string", "description": "The first kilobyte of the answer."},
        "error": _STR,
        "attempted_at": _TIME,
        "next_retry_at": _TIME_OR_NULL,
    },
}
DELIVERY_SCHEMA["required"] = list(DELIVERY_SCHEMA["properties"])


def delivery_json(delivery: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": delivery.public_id,
        "endpoint": delivery.endpoint.public_id,
        "message": delivery.message.public_id,
        "type": delivery.message.event_type,
        "attempt": delivery.attempt,
        "status": delivery.status,
        "response_code": delivery.response_code,
        "duration_ms": delivery.duration_ms,
        "response_body": delivery.response_body,
        "error": delivery.error,
        "attempted_at": _iso(delivery.attempted_at),
        "next_retry_at": _iso(delivery.next_retry_at),
    }


DELIVERY_LIST_PARAMETERS: list[dict[str, Any]] = [
    {"name": "endpoint", "in": "query", "schema": {"type": "string"}, "description": "An endpoint id."},
    {"name": "status", "in": "query", "schema": {"type": "string", "enum": DELIVERY_STATUSES}},
]

MESSAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "description": "The webhook-id header."},
        "endpoint": _STR,
        "type": _STR,
        "status": {"type": "string", "enum": list(WebhookMessage.Status.values)},
        "attempts": {"type": "integer"},
        "next_attempt_at": _TIME_OR_NULL,
        "created_at": _TIME,
    },
}
MESSAGE_SCHEMA["required"] = list(MESSAGE_SCHEMA["properties"])


def message_json(message: WebhookMessage) -> dict[str, Any]:
    return {
        "id": message.public_id,
        "endpoint": message.endpoint.public_id,
        "type": message.event_type,
        "status": message.status,
        "attempts": message.attempts,
        "next_attempt_at": _iso(message.next_attempt_at),
        "created_at": _iso(message.created_at),
    }
