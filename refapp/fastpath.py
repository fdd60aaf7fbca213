"""A WSGI layer in front of Django for the two hot endpoints: POST /api/v1/track/click and
POST /api/v1/events.

It also answers GET /livez with 204 before Django (a liveness probe). Every affiliate link visit
posts to the click endpoint, in bursts, and merchant backends report conversions in waves (renewals
on the 1st). Neither endpoint needs a session, user, template, CSRF, URL resolving or middleware,
so both are answered straight from the WSGI environ by the same cores the Django views use
(`click_ingest`, `event_answer`: identical validation, answers and rows). Every other request,
including the click endpoint's CORS preflight and other methods, goes to Django untouched.

It lives on the wiring floor (beside refapp/wsgi.py) because it calls into tracking and
commissions. `wsgi_application()` builds the production callable; refapp/wsgi.py serves it and the
tests' API client calls one built the same way, so the tests run the code path production runs.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from types import SimpleNamespace

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from django.utils import timezone

from commissions.api import event_answer
from refapp.api import ApiError, error_body, invalid, query_problem, read_json_stream, server_error_body
from refapp.hashing import client_ip
from tracking.services import click_ingest

logger = logging.getLogger(__name__)
CLICK_PATH = "/api/v1/track/click"
EVENTS_PATH = "/api/v1/events"
# Liveness for a load balancer or orchestrator: the process answers, nothing else is checked (no
# database, no broker: /healthz reports those). Also the benchmark's "static 204" of the server.
LIVENESS_PATH = "/livez"
_STATUS_LINES = {s.value: f"{s.value} {s.phrase}" for s in HTTPStatus}


class TrackingFastPath:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO")
        method = environ.get("REQUEST_METHOD")
        if path == LIVENESS_PATH and method in ("GET", "HEAD"):
            start_response("204 No Content", [("Cache-Control", "no-store")])
            return []
        if method == "POST":
            if path == CLICK_PATH and settings.REFAPP_CLICK_FAST_PATH:
                return self.answer(environ, start_response, self.click, cors=True)
            if path == EVENTS_PATH and settings.REFAPP_EVENTS_FAST_PATH:
                return self.answer(environ, start_response, self.event, cors=False)
        return self.app(environ, start_response)

    @staticmethod
    def click(environ) -> tuple[int, dict]:
        data = read_json_stream(environ.get("CONTENT_LENGTH"), environ["wsgi.input"].read)
        return click_ingest(
            data=data,
            origin=environ.get("HTTP_ORIGIN", ""),
            ip=client_ip(SimpleNamespace(META=environ)),
            user_agent=environ.get("HTTP_USER_AGENT", ""),
            country=environ.get("HTTP_CF_IPCOUNTRY", "") or environ.get("HTTP_X_COUNTRY", ""),
            now=timezone.now(),
        )

    @staticmethod
    def event(environ) -> tuple[int, dict]:
        return event_answer(environ, environ["wsgi.input"].read)

    def answer(self, environ, start_response, core, *, cors: bool):
        """Run one endpoint's core and answer its (status, body) as JSON, errors in the API shape."""
        try:
            # The input gate, as InputGateMiddleware applies it to requests Django answers (the
            # path is one of ours exactly; the JSON body is gated by read_json_stream).
            problem = query_problem(environ.get("QUERY_STRING", ""))
            if problem:
                name, reason = problem
                raise invalid(f"{name}: {reason}", {name: [reason]})
            status, body = core(environ)
            extra = ()
        except ApiError as exc:
            status, body = exc.status, error_body(exc.code, exc.message, exc.fields)
            extra = tuple(exc.headers.items())
        except Exception:
            logger.exception("fast path failed: %s", environ.get("PATH_INFO"))
            status, body, extra = 500, server_error_body(), ()
        finally:
            # What Django's request_started and request_finished receivers do that matters here:
            # close a connection this request left broken or that outlived CONN_MAX_AGE. Called
            # directly: sending both signals cost more than the rest of a buffered click's answer
            # but its Redis round trip (their receivers also reset the query log, kept only under
            # DEBUG, and the URLconf and caches, which neither endpoint touches).
            close_old_connections()
        payload = json.dumps(body).encode()
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
            ("X-Content-Type-Options", "nosniff"),
            ("Cache-Control", "no-store"),
            *extra,
        ]
        origin = environ.get("HTTP_ORIGIN", "")
        if cors and origin:
            headers += [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
        start_response(_STATUS_LINES[status], headers)
        return [payload]


def wsgi_application() -> TrackingFastPath:
    """The WSGI callable production serves: the fast path in front of Django's handler.

    Django must be set up first (refapp/wsgi.py does, as get_wsgi_application() would; under
    pytest, pytest-django has)."""
    return TrackingFastPath(WSGIHandler())
