"""Public, unauthenticated tracking endpoints: the tracker script, click beacons and redirect links.

These are the hot paths (DESIGN.md section 8): no session, no template, cached lookups, one INSERT.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode, urlsplit, urlunsplit

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from refapp.api import ApiError, error_response, read_json_object, server_error_body
from refapp.hashing import client_ip
from refapp.tracker import tracker_bundle

from .. import lookup
from ..services import click_ingest, click_record, is_bot, new_visitor_id

logger = logging.getLogger(__name__)


@require_GET
def tracker_js(request: HttpRequest) -> HttpResponse:
    body, digest = tracker_bundle()
    etag = f'"{digest}"'
    if request.headers.get("If-None-Match") == etag:
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(body, content_type="application/javascript; charset=utf-8")
    response["ETag"] = etag
    if request.GET.get("v") == digest:
        response["Cache-Control"] = "public, max-age=31536000, immutable"
    else:
        # The unversioned URL in pasted snippets: short cache so tracker fixes reach every site within
        # the hour, with stale-while-revalidate so no visitor ever waits on a revalidation.
        response["Cache-Control"] = "public, max-age=3600, stale-while-revalidate=86400"
    response["Access-Control-Allow-Origin"] = "*"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
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
    """Redirect link: record the click server-side (works behind ad blockers), then 302 to the site."""
    program = lookup.program_by_slug(program_slug)
    if program is None:
        raise Http404("Unknown program")
    target = urlsplit(program.website)
    target_path = "/" + path.lstrip("/") if path else (target.path or "/")
    params = [(k, v) for k, v in request.GET.items() if k not in {"ref", "refapp_vid"}]
    affiliate = lookup.active_affiliate_by_code(program, code)
    ip = client_ip(request)
    user_agent = request.headers.get("User-Agent", "")
    if affiliate is not None:
        visitor_id = new_visitor_id()
        params += [("ref", affiliate[1]), ("refapp_vid", visitor_id)]
        if not is_bot(user_agent):
            landing = urlunsplit((target.scheme, target.netloc, target_path, urlencode(params), ""))
            # Over the sender's rate limit the visitor is still redirected; the click is not stored.
            click_record(
                limit="go",
                program=program,
                affiliate_id=affiliate[0],
                visitor_id=visitor_id,
                url=landing,
                referrer=request.headers.get("Referer", ""),
                user_agent=user_agent,
                ip=ip,
                country=request.headers.get("CF-IPCountry", ""),
                source="link",
                now=timezone.now(),
            )
    # An unknown or inactive code still lands the visitor on the merchant's site: never a dead link.
    location = urlunsplit((target.scheme, target.netloc, target_path, urlencode(params), ""))
    response = HttpResponseRedirect(location)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer-when-downgrade"
    return response
