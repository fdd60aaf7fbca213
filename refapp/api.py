"""Shared JSON API plumbing: the one error shape, body parsing with limits, cursor pagination.

Every API error is `{"error": {"code", "message", "fields"?}}` with a stable machine code.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, fields: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}


def invalid(message: str, fields: dict[str, list[str]] | None = None) -> ApiError:
    return ApiError(400, "invalid_request", message, fields)


# The JSON schemas of the shapes this module writes; refapp/openapi.py puts them in the document.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "string", "pattern": "^[a-z_]+$"},
                "message": {"type": "string"},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
            },
        }
    },
}

SERVER_ERROR_MESSAGE = "The request could not be completed."


def list_schema(item: dict[str, Any]) -> dict[str, Any]:
    """The envelope paginate() answers around `item` rows."""
    return {
        "type": "object",
        "required": ["data", "next_cursor"],
        "additionalProperties": False,
        "properties": {"data": {"type": "array", "items": item}, "next_cursor": {"type": ["string", "null"]}},
    }


def error_body(code: str, message: str, fields: dict | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


def server_error_body() -> dict[str, Any]:
    """What any unexpected exception answers: the error shape, no detail that could leak internals."""
    return error_body("server_error", SERVER_ERROR_MESSAGE)


def error_response(status: int, code: str, message: str, fields: dict | None = None) -> JsonResponse:
    return JsonResponse(error_body(code, message, fields), status=status)


def read_json_object(request: HttpRequest) -> dict[str, Any]:
    """The request body as a JSON object, or an ApiError (413 oversized, 400 malformed)."""
    return read_json_stream(request.META.get("CONTENT_LENGTH"), request.read)


def read_json_stream(content_length: str | None, read: Callable[[int], bytes]) -> dict[str, Any]:
    """Read and parse at most the body limit from any stream (a Django request or a WSGI input)."""
    try:
        declared_len = int(content_length or 0)
    except ValueError:
        declared_len = 0
    limit = settings.REFAPP_MAX_BODY_BYTES
    if declared_len > limit:
        raise ApiError(413, "payload_too_large", f"Request body is larger than {limit // 1024} KiB.")
    # Read at most limit+1 bytes so a lying Content-Length cannot make us buffer more.
    raw = read(limit + 1) if declared_len or content_length is None else b""
    if len(raw) > limit:
        raise ApiError(413, "payload_too_large", f"Request body is larger than {limit // 1024} KiB.")
    if not raw.strip():
        raise invalid("Request body must be a JSON object.")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "malformed_json", f"Request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise invalid("Request body must be a JSON object.")
    return data


def api_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Turn ApiErrors into the error shape; an unexpected exception still answers JSON, not HTML."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except ApiError as exc:
            return error_response(exc.status, exc.code, exc.message, exc.fields)
        except Exception:
            # Django would answer its HTML 500 page; an API client gets the error shape, and the
            # traceback goes to the log (Django's own 500 logging never sees a caught exception).
            logger.exception("API request failed: %s %s", request.method, request.path)
            return JsonResponse(server_error_body(), status=500)

    wrapper.csrf_exempt = True  # type: ignore[attr-defined]
    return wrapper


# --- small field validators shared by the endpoints -------------------------------------------


class Fields:
    """Collects per-field errors so a client learns every mistake of one request at once."""

    def __init__(self, data: dict[str, Any]):
        self.data = data
        self.errors: dict[str, list[str]] = {}

    def add(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def str(
        self, name: str, *, required: bool = False, max_length: int = 255, default: str | None = None
    ) -> str | None:
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                self.add(name, "This field is required.")
            return default
        if not isinstance(value, str):
            self.add(name, "Must be a string.")
            return default
        if len(value) > max_length:
            self.add(name, f"At most {max_length} characters.")
            return default
        return value

    def int(
        self, name: str, *, required: bool = False, min_value: int | None = None, max_value: int | None = None
    ) -> int | None:
        value = self.data.get(name)
        if value is None:
            if required:
                self.add(name, "This field is required.")
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(name, "Must be an integer.")
            return None
        if min_value is not None and value < min_value:
            self.add(name, f"Must be at least {min_value}.")
            return None
        if max_value is not None and value > max_value:
            self.add(name, f"Must be at most {max_value}.")
            return None
        return value

    def bool(self, name: str, default: bool = False) -> bool:
        value = self.data.get(name, default)
        if not isinstance(value, bool):
            self.add(name, "Must be true or false.")
            return default
        return value

    def raise_if_any(self) -> None:
        if self.errors:
            raise invalid("Some fields are invalid.", self.errors)


# --- cursor pagination -------------------------------------------------------------------------


# The query parameters paginate() reads, as OpenAPI parameter objects.
LIST_PARAMETERS: list[dict[str, Any]] = [
    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
    {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
    },
]


def paginate(request: HttpRequest, queryset: QuerySet, render: Callable[[Any], dict]) -> JsonResponse:
    """Newest first by primary key; the cursor is the last id seen, opaque to clients."""
    try:
        limit = int(request.GET.get("limit", "20"))
    except ValueError:
        raise invalid("limit must be an integer.", {"limit": ["Must be an integer from 1 to 100."]}) from None
    if not 1 <= limit <= 100:
        raise invalid("limit must be between 1 and 100.", {"limit": ["Must be an integer from 1 to 100."]})
    cursor = request.GET.get("cursor")
    if cursor:
        try:
            last_pk = int(base64.urlsafe_b64decode(cursor.encode() + b"==").decode())
        except (ValueError, UnicodeDecodeError):
            raise invalid(
                "cursor is not valid.", {"cursor": ["Use next_cursor from a previous page."]}
            ) from None
        queryset = queryset.filter(pk__lt=last_pk)
    rows = list(queryset.order_by("-pk")[: limit + 1])
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = base64.urlsafe_b64encode(str(rows[-1].pk).encode()).decode().rstrip("=")
    return JsonResponse({"data": [render(row) for row in rows], "next_cursor": next_cursor})
