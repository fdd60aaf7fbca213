from __future__ import annotations

import html
import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.http import require_GET


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Each dependency's state. 503 only when the database is unreachable: without Redis or the
    broker the web still answers (tracking degrades to direct inserts, rate limits fail open), so a
    load balancer must not take every web process out because Redis is down: 200, "degraded"."""
    from . import ratelimit

    state = {"database": "ok", "broker": "ok"}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # report, never raise: this endpoint exists to describe failures
        state["database"] = f"error: {exc.__class__.__name__}"
    if settings.REDIS_URL:
        try:
            ratelimit._redis().ping()
        except ratelimit.UNREACHABLE as exc:
            ratelimit.redis_failed(exc)
            state["redis"] = "down"
        else:
            ratelimit.redis_reset()  # reachable again: stop skipping it before the breaker times out
            state["redis"] = "ok"
    try:
        from refapp.celery import app

        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        state["broker"] = f"error: {exc.__class__.__name__}"
    healthy = all(v == "ok" for v in state.values())
    return JsonResponse(
        {"status": "ok" if healthy else "degraded", **state}, status=200 if state["database"] == "ok" else 503
    )


# The two views below get the document's builder from the URLconf (refapp/urls_api.py): it
# imports every app, and this module sits on the ground floor.
DocumentBuilder = Callable[[str], dict[str, Any]]


@require_GET
def openapi_json(request: HttpRequest, document: DocumentBuilder) -> JsonResponse:
    return JsonResponse(document(settings.BASE_URL))


# Redoc's standalone bundle, vendored from the npm registry (static/vendor/, with its licence).
REDOC_JS = "vendor/redoc-2.5.4.standalone.js"
# The page CSP, widened for this page only: Redoc injects its styles (styled-components) and runs its
# search index in a worker it builds from a blob: URL. Scripts still come only from 'self'.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'self'; form-action 'self'"
)


@require_GET
def api_docs(request: HttpRequest, document: DocumentBuilder) -> HttpResponse:
    """The OpenAPI document rendered for people by Redoc, which loads /api/v1/openapi.json; without
    JavaScript the same operations are rendered server-side (the <noscript> part)."""
    from django.templatetags.static import static

    doc = document(settings.BASE_URL)
    title = html.escape(doc["info"]["title"])
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' content='width=device-width'>",
        f"<title>{title}</title>",
        "<style>body{margin:0}noscript>div{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
        "padding:0 1rem}noscript code,noscript pre{background:#f4f4f5;border-radius:4px;padding:.1rem .3rem}"
        "noscript pre{padding:.6rem;overflow:auto}noscript h3{margin-top:2rem}"
        ".m{font-weight:700;text-transform:uppercase;margin-right:.5rem}</style></head><body>",
        f"<redoc spec-url='{html.escape(reverse('api-openapi'))}'></redoc>",
        f"<script src='{html.escape(static(REDOC_JS))}'></script>",
        f"<noscript><div><h1>{title}</h1><p>{html.escape(doc['info']['description'])}</p>",
        "<p>Machine-readable: <a href='/api/v1/openapi.json'>/api/v1/openapi.json</a></p>",
    ]
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            if method == "options":
                continue
            parts.append(f"<h3><span class='m'>{method}</span><code>{html.escape(path)}</code></h3>")
            parts.append(f"<p>{html.escape(op.get('summary', ''))}</p>")
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body:
                parts.append(f"<pre>{html.escape(json.dumps(body, indent=2))}</pre>")
            codes = ", ".join(
                f"{code} {html.escape(r['description'])}" for code, r in op["responses"].items()
            )
            parts.append(f"<p><small>Responses: {codes}</small></p>")
    parts.append("</div></noscript></body></html>")
    response = HttpResponse("".join(parts))
    response["Content-Security-Policy"] = DOCS_CSP
    return response
