"""Assembles the OpenAPI 3.1 document of the public API from a table of operations.

No schema is written here: each JSON shape's schema sits beside the code that writes it (the apps'
api.py modules, tracking.services for the click, refapp.api for the error shape and the list
envelope). The table that names the paths, methods and every status each operation can answer
is wiring (refapp/urls_api.py, beside the routes), so this helper imports no app and stays on the
ground floor; the views that serve the document receive the table from the URLconf.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .api import ERROR_SCHEMA

ERROR_REF = {"$ref": "#/components/schemas/Error"}

# What each error status means across the API, with the machine codes it carries.
ERROR_DESCRIPTIONS = {
    400: "Malformed or invalid request (malformed_json, invalid_request)",
    401: "Missing or invalid key (missing_api_key, invalid_api_key)",
    403: "Key of another program or mode, or an origin not allowed (wrong_program, wrong_mode, origin_not_allowed)",
    404: "Unknown program or object (unknown_program, not_found)",
    405: "Method not allowed (method_not_allowed)",
    409: "Conflict (code_taken, email_taken, invalid_transition, customer_referrals_off)",
    413: "Body over 64 KiB (payload_too_large)",
    429: "Rate limited (rate_limited)",
    500: "Unexpected failure, logged on the server (server_error)",
}


@dataclass(frozen=True)
class Response:
    description: str
    schema: dict[str, Any] | None = None
    content_type: str = "application/json"


@dataclass(frozen=True)
class Operation:
    """One method on one path, and every status it can answer: successes with their body's schema,
    errors as status codes (all in the error shape). 400 and 500 are added to every operation: the
    input gate (refapp/middleware.py) refuses a NUL or lone surrogate in any path or query with 400."""

    path: str
    method: str
    summary: str
    responses: dict[int, Response]
    errors: tuple[int, ...] = ()
    request: dict[str, Any] | None = None
    parameters: list[dict[str, Any]] = field(default_factory=list)
    secured: bool = True

    def statuses(self) -> dict[int, Response]:
        out = dict(self.responses)
        for code in sorted({*self.errors, 400, 500}):
            out[code] = Response(ERROR_DESCRIPTIONS[code], ERROR_REF)
        return out


def _content(response: Response) -> dict[str, Any]:
    if response.schema is None:
        return {}
    return {"content": {response.content_type: {"schema": response.schema}}}


def build_document(base_url: str, operations: list[Operation], schemas: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document of `operations`; `schemas` become components (the error shape is added)."""
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        item: dict[str, Any] = {"summary": op.summary, "operationId": f"{op.method}:{op.path}"}
        if op.secured:
            item["security"] = [{"secretKey": []}]
        parameters = list(op.parameters)
        for name in _path_params(op.path):
            parameters.append({"name": name, "in": "path", "required": True, "schema": {"type": "string"}})
        if parameters:
            item["parameters"] = parameters
        if op.request is not None:
            item["requestBody"] = {"required": True, "content": {"application/json": {"schema": op.request}}}
        item["responses"] = {
            str(code): {"description": r.description, **_content(r)}
            for code, r in sorted(op.statuses().items())
        }
        paths.setdefault(op.path, {})[op.method] = item
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "refapp API",
            "version": "1",
            "description": "Track clicks, report conversions and refunds, and run an affiliate program. "
            "Authenticate with 'Authorization: Bearer sk_live_…' (or sk_test_… for test mode). "
            'Every error answers {"error": {"code", "message", "fields"?}}; a method a path '
            "does not list answers 405 in that shape.",
        },
        "servers": [{"url": base_url}],
        "components": {
            "securitySchemes": {"secretKey": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR_SCHEMA, **schemas},
        },
        "paths": paths,
    }


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]
