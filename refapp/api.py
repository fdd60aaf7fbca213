"""Shared JSON API plumbing: the one error shape, body parsing with limits, cursor pagination.

Every API error is `{"error": {"code", "message", "fields"?}}` with a stable machine code.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import math
import re
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.dateparse import parse_datetime

logger = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: dict[str, list[str]] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}
        self.headers = headers or {}  # e.g. Retry-After of a 429; both the views and the fast path send them


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
    data = loads_json(raw)
    if not isinstance(data, dict):
        raise invalid("Request body must be a JSON object.")
    return data


# --- the input gate (docs/architecture.md, "Security") ------------------------------------------------------
#
# Every public entry point refuses, with a 4xx before any of it reaches the ORM, what no database
# column can hold or no calendar has: NUL characters and unpaired surrogates in any string (PostgreSQL
# refuses both in text, and a lone surrogate cannot even be encoded to UTF-8), JSON nested deeper
# than MAX_JSON_DEPTH, integers beyond a bigint, non-finite numbers, and impossible timestamps.
# JSON bodies pass through loads_json(); paths, query strings and forms through InputGateMiddleware
# (refapp/middleware.py) and, for the two endpoints answered before Django, refapp/fastpath.py.

MAX_JSON_DEPTH = 32
BIGINT_MAX = 2**63 - 1
BIGINT_MIN = -(2**63)
# After a strict UTF-8 decode, a JSON string can only hold these through a \u escape.
_BAD_TEXT_RE = re.compile("[\x00\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """Why a string cannot be accepted anywhere (a NUL or an unpaired surrogate), or None."""
    match = _BAD_TEXT_RE.search(value)
    if match is None:
        return None
    if match.group() == "\x00":
        return "Must not contain a NUL character."
    return "Must not contain an unpaired surrogate (not valid Unicode)."


def pairs_problem(pairs: Iterable[tuple[str, str]]) -> tuple[str, str] | None:
    """(name, reason) of the first key or value of a query string or form that text_problem()
    refuses, or None. The name is made printable, as it goes back in the error."""
    for key, value in pairs:
        reason = text_problem(key) or text_problem(value)
        if reason:
            return _printable(key), reason
    return None


def query_problem(query_string: str) -> tuple[str, str] | None:
    """pairs_problem() of a raw query string, decoded the way Django decodes request.GET."""
    if not query_string or ("%" not in query_string and not _BAD_TEXT_RE.search(query_string)):
        return None  # nothing percent-encoded: the raw string is what the view would see
    from urllib.parse import parse_qsl

    return pairs_problem(parse_qsl(query_string, keep_blank_values=True, errors="replace"))


def _printable(name: str) -> str:
    return _BAD_TEXT_RE.sub("\ufffd", name)[:100] or "(empty)"


def _bad_json_constant(name: str) -> Any:
    raise invalid(f"{name} is not a JSON number.")


def _json_int(text: str) -> int:
    value = int(text)
    if not BIGINT_MIN <= value <= BIGINT_MAX:
        raise invalid("Integers must fit in 64 bits.")
    return value


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise invalid("Numbers must be finite.")
    return value


def loads_json(raw: bytes) -> Any:
    """Parse a JSON body through the input gate: strict UTF-8, no NUL or lone surrogate in any key
    or string, nesting at most MAX_JSON_DEPTH, integers within a bigint, finite numbers. ApiError
    400 otherwise."""
    try:
        # Strict: json.loads(bytes) would decode with surrogatepass and let encoded surrogates in.
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "malformed_json", f"Request body is not valid UTF-8: {exc}") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        data = json.loads(
            text, parse_int=_json_int, parse_float=_json_float, parse_constant=_bad_json_constant
        )
    except RecursionError:
        # The C scanner's own limit (about 1000 levels) reached before the depth check below could.
        raise _too_deep() from None
    except ValueError as exc:
        raise ApiError(400, "malformed_json", f"Request body is not valid JSON: {exc}") from None
    # The walk is only needed when a string may hold an escaped NUL or surrogate, or when there
    # are enough brackets to nest too deep: neither is true of an ordinary click or event, so the
    # hot paths pay two substring scans, not a walk.
    if "\\u" in text or text.count("{") + text.count("[") > MAX_JSON_DEPTH:
        _check_json_value(data)
    return data


def _too_deep() -> ApiError:
    return invalid(f"JSON nested deeper than {MAX_JSON_DEPTH} levels.")


def _check_json_value(data: Any) -> None:
    """Walk a parsed JSON value without recursion; raise the first problem, named by its top-level key."""
    stack: list[tuple[Any, int, str]] = [(data, 1, "")]
    while stack:
        value, depth, top = stack.pop()
        if isinstance(value, str):
            reason = text_problem(value)
            if reason:
                raise _field_error(top, reason)
        elif isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise _too_deep()
            if isinstance(value, dict):
                for key, item in value.items():
                    name = top or _printable(key)
                    reason = text_problem(key)
                    if reason:
                        raise _field_error(name, f"Key: {reason}")
                    stack.append((item, depth + 1, name))
            else:
                stack.extend((item, depth + 1, top) for item in value)


def _field_error(name: str, reason: str) -> ApiError:
    if not name:
        return invalid(reason)
    return invalid("Some fields are invalid.", {name: [reason]})


# Timestamps the API accepts: the product's lifetime with room on both sides; anything else is a
# typo or a probe, and the bound keeps every conversion and interval computation far from overflow.
TIMESTAMP_MIN_YEAR = 2000
TIMESTAMP_MAX_YEAR = 2100


def parse_timestamp(value: Any) -> tuple[datetime | None, str | None]:
    """The one parser of timestamp input: (aware UTC datetime, None) or (None, a field message).

    Refuses what is not ISO 8601, impossible dates and times (February 30, minute 99, hour 25),
    a missing time zone, and years outside TIMESTAMP_MIN_YEAR..TIMESTAMP_MAX_YEAR (which also keeps
    the conversion to UTC from overflowing at year 1 or 9999)."""
    hint = "Use an ISO 8601 time such as 2026-11-20T10:00:00Z."
    if not isinstance(value, str) or text_problem(value):
        return None, hint
    try:
        parsed = parse_datetime(value)
    except ValueError:  # well formed, but no such moment
        return None, f"Is not a real date and time. {hint}"
    if parsed is None:
        return None, hint
    if parsed.tzinfo is None:
        return None, "Include a time zone, e.g. a trailing Z for UTC."
    if not TIMESTAMP_MIN_YEAR <= parsed.year <= TIMESTAMP_MAX_YEAR:
        return None, f"Use a year from {TIMESTAMP_MIN_YEAR} to {TIMESTAMP_MAX_YEAR}."
    try:
        return parsed.astimezone(UTC), None
    except (OverflowError, ValueError):  # pragma: no cover - the year bounds keep this away
        return None, f"Is not a real date and time. {hint}"


def api_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Turn ApiErrors into the error shape; an unexpected exception still answers JSON, not HTML."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except ApiError as exc:
            response = error_response(exc.status, exc.code, exc.message, exc.fields)
            for name, value in exc.headers.items():
                response[name] = value
            return response
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
        # Every integer the API takes lands in a bigint column at most.
        min_value = BIGINT_MIN if min_value is None else min_value
        max_value = BIGINT_MAX if max_value is None else max_value
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


# --- list filters --------------------------------------------------------------------------------

# Reports read at most this many days at once (a year, leap day included).
MAX_RANGE_DAYS = 366

# The `from`/`to` query parameters of the lists and reports, as OpenAPI parameter objects.
DATE_RANGE_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": name,
        "in": "query",
        "schema": {"type": "string", "format": "date"},
        "description": f"{label} UTC day (YYYY-MM-DD), inclusive.",
    }
    for name, label in (("from", "First"), ("to", "Last"))
]


def query_dates(
    request: HttpRequest, *, required: bool = False, max_days: int | None = None
) -> tuple[date | None, date | None]:
    """The `from` and `to` UTC days of a query, inclusive, or an ApiError 400 naming each bad one.

    A list takes either bound alone; a report (required=True) needs both and at most max_days."""
    errors: dict[str, list[str]] = {}
    bounds: dict[str, date | None] = {}
    for name in ("from", "to"):
        raw = request.GET.get(name, "")
        bounds[name] = None
        if not raw:
            if required:
                errors[name] = ["This parameter is required (YYYY-MM-DD)."]
            continue
        try:
            day = date.fromisoformat(raw) if len(raw) == 10 else None
        except ValueError:
            day = None
        if day is None or not TIMESTAMP_MIN_YEAR <= day.year <= TIMESTAMP_MAX_YEAR:
            errors[name] = [f"Use a date YYYY-MM-DD from {TIMESTAMP_MIN_YEAR} to {TIMESTAMP_MAX_YEAR}."]
            continue
        bounds[name] = day
    first, last = bounds["from"], bounds["to"]
    if first and last and last < first:
        errors["to"] = ["Must not be before from."]
    elif first and last and max_days and (last - first).days >= max_days:
        errors["to"] = [f"The range may span at most {max_days} days."]
    if errors:
        raise invalid("Some query parameters are invalid.", errors)
    return first, last


def day_start(day: date) -> datetime:
    """Midnight UTC opening `day`."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def day_end(day: date) -> datetime:
    """Exclusive bound: midnight UTC after `day`."""
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)


def choice_param(request: HttpRequest, name: str, choices: Iterable[str]) -> str | None:
    """An optional enum query parameter, or a 400 that lists what it takes."""
    value = request.GET.get(name)
    if not value:
        return None
    allowed = list(choices)
    if value not in allowed:
        raise invalid(f"Unknown {name}.", {name: [f"Use one of {', '.join(allowed)}."]})
    return value


def method_not_allowed(allowed: str) -> JsonResponse:
    response = error_response(405, "method_not_allowed", f"Use {allowed}.")
    response["Allow"] = allowed
    return response


def query_range(request: HttpRequest, *, max_days: int = MAX_RANGE_DAYS) -> tuple[date, date]:
    """The required `from` and `to` days of a report, at most max_days apart, or a 400."""
    first, last = query_dates(request, required=True, max_days=max_days)
    if first is None or last is None:  # pragma: no cover - required=True raised already
        raise invalid("from and to are required.")
    return first, last
