"""Public, unauthenticated tracking endpoints: the tracker script, click beacons and redirect links.

These are the hot paths (docs/architecture.md, "Performance"): no session, no template, cached lookups, one INSERT.
"""

from __future__ import annotations

import logging

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_safe

from refapp.api import ApiError, error_response, read_json_object, server_error_body
from refapp.hashing import client_ip
from refapp.tracker import tracker_answer

from ..redirects import go_redirect
from ..services import click_ingest

logger = logging.getLogger(__name__)


@require_safe
def tracker_js(request: HttpRequest) -> HttpResponse:
    """The tracker script, as the WSGI fast path answers it before Django (refapp/fastpath.py):
    this view serves `runserver` and requests the fast path hands on, from the same answer."""
    status, headers, body = tracker_answer(
        head=request.method == "HEAD",
        version=request.GET.get("v"),
        accept_encoding=request.headers.get("Accept-Encoding", ""),
        if_none_match=request.headers.get("If-None-Match", ""),
    )
    response = HttpResponse(body, status=status)
    del response["Content-Type"]  # a 304 has none; a 200 sets its own below
    for name, value in headers:
        response[name] = value
    return response


def _cors(response: HttpResponse, origin: str) -> HttpResponse:
    if origin:
        response["Access-Control-Allow-Origin"] = origin
        response["Vary"] = "Origin"
    return response


@csrf_exempt
def track_click(request: HttpRequest) -> HttpResponse:
    origin = request.headers.get("Origin", "")
    if request.method == "OPTIONS":
        response = HttpResponse(status=204)
        response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = "Content-Type"
        response["Access-Control-Max-Age"] = "86400"
        return _cors(response, origin)
    if request.method != "POST":
        return error_response(405, "method_not_allowed", "Use POST.")
    try:
        return _cors(_track_click(request, origin), origin)
    except ApiError as exc:
        return _cors(error_response(exc.status, exc.code, exc.message, exc.fields), origin)
    except Exception:
        # The beacon is an API endpoint: an unexpected failure answers the error shape, not HTML.
        logger.exception("click failed")
        return _cors(JsonResponse(server_error_body(), status=500), origin)


def _track_click(request: HttpRequest, origin: str) -> HttpResponse:
    data = read_json_object(request)  # sendBeacon posts text/plain JSON, so no content-type check
    status, body = click_ingest(
        data=data,
        origin=origin,
        ip=client_ip(request),
        user_agent=request.headers.get("User-Agent", ""),
        country=request.headers.get("CF-IPCountry", "") or request.headers.get("X-Country", ""),
        now=timezone.now(),
    )
    return JsonResponse(body, status=status)


@require_GET
def go(request: HttpRequest, program_slug: str, code: str, path: str = "") -> HttpResponse:
    """Redirect link: record the click server-side (works behind ad blockers), then 302 to the site.
    The WSGI fast path answers these before Django with the same function (refapp/fastpath.py)."""
    answer = go_redirect(
        program_slug=program_slug,
        code=code,
        path=path,
        params=request.GET.items(),
        user_agent=request.headers.get("User-Agent", ""),
        referrer=request.headers.get("Referer", ""),
        ip=client_ip(request),
        country=request.headers.get("CF-IPCountry", ""),
        now=timezone.now(),
    )
    if answer is None:
        raise Http404("Unknown program")
    return answer.response()
