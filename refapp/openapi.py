"""The OpenAPI 3.1 description of the public API. A test checks it covers every /api/v1/ route."""

from __future__ import annotations

from typing import Any

ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "Malformed or invalid request (codes: malformed_json, invalid_request)",
        401: "Missing or invalid key (missing_api_key, invalid_api_key)",
        403: "Key of another program or mode (wrong_program, wrong_mode, origin_not_allowed)",
        404: "Unknown program or object (unknown_program, not_found)",
        409: "Conflict (code_taken, email_taken, invalid_transition)",
        413: "Body over 64 KiB (payload_too_large)",
        429: "Rate limited (rate_limited)",
    }
    return {str(c): {"description": text[c], **_json(ERROR)} for c in codes}


AUTH_ERRORS = (400, 401, 403, 413, 429)

COMMISSION_OUT = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "example": "com_…"},
        "amount_cents": {"type": "integer"},
        "currency": {"type": "string"},
        "status": {"type": "string", "enum": ["pending", "approved", "paid", "rejected"]},
        "hold_until": {"type": "string", "format": "date-time"},
    },
}

AFFILIATE = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "email": {"type": "string"},
        "name": {"type": "string"},
        "code": {"type": "string"},
        "status": {"type": "string", "enum": ["pending", "active", "suspended", "rejected"]},
        "group": {"type": ["string", "null"]},
        "links": {"type": "object", "properties": {"referral": {"type": "string"}, "go": {"type": "string"}}},
        "created_at": {"type": "string", "format": "date-time"},
    },
}

RULE_IN = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "event": {"type": "string", "default": "sale"},
        "type": {"type": "string", "enum": ["percent", "fixed"]},
        "rate_bp": {"type": "integer", "minimum": 0, "maximum": 10000},
        "amount_cents": {"type": "integer", "minimum": 0},
        "group": {"type": "string"},
        "affiliate": {"type": "string"},
        "first_event_only": {"type": "boolean"},
        "duration_months": {"type": "integer", "minimum": 1},
        "max_events": {"type": "integer", "minimum": 1},
        "tiers": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"min_cents": {"type": "integer"}, "rate_bp": {"type": "integer"}},
            },
        },
    },
}


def _list(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"data": {"type": "array", "items": item}, "next_cursor": {"type": ["string", "null"]}},
    }


PAGING = [
    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
    {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
    },
]


def openapi_document(base_url: str) -> dict[str, Any]:
    secured = [{"secretKey": []}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "refapp API",
            "version": "1",
            "description": "Track clicks, report conversions and refunds, and run an affiliate program. "
            "Authenticate with 'Authorization: Bearer sk_live_…' (or sk_test_… for test mode).",
        },
        "servers": [{"url": base_url}],
        "components": {
            "securitySchemes": {"secretKey": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                                "fields": {
                                    "type": "object",
                                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                                },
                            },
                        }
                    },
                },
                "Affiliate": AFFILIATE,
                "Commission": COMMISSION_OUT,
            },
        },
        "paths": {
            "/api/v1/track/click": {
                "post": {
                    "summary": "Report a click from the tracker (no key; CORS limited to the program's origins).",
                    "requestBody": _json(
                        {
                            "type": "object",
                            "required": ["program", "ref"],
                            "properties": {
                                "program": {"type": "string"},
                                "ref": {"type": "string"},
                                "visitor_id": {"type": "string"},
                                "url": {"type": "string"},
                                "referrer": {"type": "string"},
                            },
                        }
                    ),
                    "responses": {
                        "202": {
                            "description": "Accepted",
                            **_json(
                                {
                                    "type": "object",
                                    "properties": {
                                        "visitor_id": {"type": "string"},
                                        "attributed": {"type": "boolean"},
                                    },
                                }
                            ),
                        },
                        **_errors(400, 403, 404, 413, 429),
                    },
                }
            },
            "/api/v1/events": {
                "post": {
                    "summary": "Report a conversion (sale, signup, renewal, …). Idempotent by order_id.",
                    "security": secured,
                    "requestBody": _json(
                        {
                            "type": "object",
                            "required": ["event"],
                            "properties": {
                                "event": {"type": "string", "pattern": "^[a-z0-9_.-]{1,64}$"},
                                "order_id": {"type": "string"},
                                "customer_id": {"type": "string"},
                                "visitor_id": {"type": "string"},
                                "referral_code": {"type": "string"},
                                "amount": {"type": "string", "example": "99.00"},
                                "amount_cents": {"type": "integer", "minimum": 0},
                                "currency": {"type": "string", "example": "USD"},
                                "customer_email": {"type": "string"},
                                "metadata": {"type": "object", "maxProperties": 50},
                                "occurred_at": {"type": "string", "format": "date-time"},
                            },
                        }
                    ),
                    "responses": {
                        "201": {
                            "description": "Recorded",
                            **_json(
                                {
                                    "type": "object",
                                    "properties": {
                                        "id": {"type": "string"},
                                        "attributed": {"type": "boolean"},
                                        "affiliate": {"type": ["object", "null"]},
                                        "referral": {"type": ["string", "null"]},
                                        "commissions": {"type": "array", "items": COMMISSION_OUT},
                                    },
                                }
                            ),
                        },
                        "200": {"description": "Replay of a known order_id: the body of the first answer"},
                        **_errors(*AUTH_ERRORS),
                    },
                }
            },
            "/api/v1/refunds": {
                "post": {
                    "summary": "Refund an order in full or in part; commissions are reversed in proportion.",
                    "security": secured,
                    "requestBody": _json(
                        {
                            "type": "object",
                            "required": ["order_id"],
                            "properties": {
                                "order_id": {"type": "string"},
                                "refund_id": {"type": "string"},
                                "amount_cents": {"type": "integer", "minimum": 1},
                            },
                        }
                    ),
                    "responses": {
                        "201": {"description": "Refund applied"},
                        "200": {"description": "Replay: nothing changed"},
                        **_errors(*AUTH_ERRORS, 404),
                    },
                }
            },
            "/api/v1/affiliates": {
                "get": {
                    "summary": "List affiliates, newest first.",
                    "security": secured,
                    "parameters": [
                        *PAGING,
                        {"name": "status", "in": "query", "schema": {"type": "string"}},
                        {"name": "q", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": {"description": "A page", **_json(_list(AFFILIATE))},
                        **_errors(400, 401, 429),
                    },
                },
                "post": {
                    "summary": "Create an affiliate.",
                    "security": secured,
                    "requestBody": _json(
                        {
                            "type": "object",
                            "required": ["email", "name"],
                            "properties": {
                                "email": {"type": "string"},
                                "name": {"type": "string"},
                                "code": {"type": "string"},
                                "status": {"type": "string", "enum": ["active", "pending"]},
                                "group": {"type": "string"},
                            },
                        }
                    ),
                    "responses": {
                        "201": {"description": "Created", **_json(AFFILIATE)},
                        **_errors(*AUTH_ERRORS, 409),
                    },
                },
            },
            "/api/v1/affiliates/{id}": {
                "get": {
                    "summary": "Read one affiliate.",
                    "security": secured,
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": {
                        "200": {"description": "The affiliate", **_json(AFFILIATE)},
                        **_errors(401, 403, 404),
                    },
                },
                "patch": {
                    "summary": "Change an affiliate's status (with a reason) or group.",
                    "security": secured,
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "requestBody": _json(
                        {
                            "type": "object",
                            "properties": {
                                "status": {"type": "string", "enum": ["active", "suspended", "rejected"]},
                                "reason": {"type": "string"},
                                "group": {"type": ["string", "null"]},
                            },
                        }
                    ),
                    "responses": {
                        "200": {"description": "Updated", **_json(AFFILIATE)},
                        **_errors(*AUTH_ERRORS, 404, 409),
                    },
                },
            },
            "/api/v1/commission-rules": {
                "get": {
                    "summary": "List commission rules.",
                    "security": secured,
                    "parameters": PAGING,
                    "responses": {"200": {"description": "A page"}, **_errors(400, 401, 429)},
                },
                "post": {
                    "summary": "Create a commission rule (percent or fixed; scoped to the program, a group or an affiliate).",
                    "security": secured,
                    "requestBody": _json(RULE_IN),
                    "responses": {"201": {"description": "Created"}, **_errors(*AUTH_ERRORS)},
                },
            },
            "/api/v1/commission-rules/{id}": {
                "get": {
                    "summary": "Read one rule.",
                    "security": secured,
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": {"200": {"description": "The rule"}, **_errors(401, 403, 404)},
                },
                "delete": {
                    "summary": "Deactivate a rule (commissions keep pointing at it).",
                    "security": secured,
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": {"200": {"description": "Deactivated"}, **_errors(401, 403, 404)},
                },
            },
            "/api/v1/commissions": {
                "get": {
                    "summary": "List commissions with their explanation.",
                    "security": secured,
                    "parameters": [
                        *PAGING,
                        {"name": "status", "in": "query", "schema": {"type": "string"}},
                        {"name": "affiliate", "in": "query", "schema": {"type": "string"}},
                        {"name": "order_id", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {"200": {"description": "A page"}, **_errors(400, 401, 429)},
                }
            },
            "/api/v1/openapi.json": {
                "get": {"summary": "This document.", "responses": {"200": {"description": "OpenAPI 3.1"}}}
            },
            "/api/v1/docs": {
                "get": {
                    "summary": "This document rendered for people.",
                    "responses": {"200": {"description": "HTML"}},
                }
            },
        },
    }
