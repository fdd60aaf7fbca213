"""A WSGI layer in front of Django for the hottest endpoint, POST /api/v1/track/click.

It also answers GET /livez with 204 before Django (a liveness probe). Every affiliate link visit
posts to the click endpoint, in bursts. The endpoint needs no session, user, template,
CSRF, URL resolving or middleware, so it is answered straight from the WSGI environ by the same
`click_ingest` core the Django view uses (identical validation, answers and rows). Every other
request, including the click endpoint's CORS preflight, goes to Django untouched.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from types import SimpleNamespace

from django.conf import settings
from django.core import signals
from django.utils import timezone

from refapp.api import ApiError, read_json_stream
from refapp.hashing import client_ip

from .services import click_ingest

logger = logging.getLogger(__name__)
CLICK_PATH = "/api/v1/track/click"
# Liveness for a load balancer or orchestrator: the process answers, nothing else is checked (no
# database, no broker: /healthz reports those). Also the benchmark's "static 204" of the server.
LIVENESS_PATH = "/livez"


class TrackingFastPath:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == LIVENESS_PATH and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            start_response("204 No Content", [("Cache-Control", "no-store")])
            return []
        if (
            environ.get("PATH_INFO") != CLICK_PATH
            or environ.get("REQUEST_METHOD") != "POST"
            or not settings.REFAPP_CLICK_FAST_PATH
        ):
            return self.app(environ, start_response)
        return self.click(environ, start_response)

    def click(self, environ, start_response):
        origin = environ.get("HTTP_ORIGIN", "")
        # The same signals Django's handler sends: they close broken or expired DB connections.
        signals.request_started.send(sender=self.__class__, environ=environ)
        try:
            data = read_json_stream(environ.get("CONTENT_LENGTH"), environ["wsgi.input"].read)
            status, body = click_ingest(
                data=data,
                origin=origin,
                ip=client_ip(SimpleNamespace(META=environ)),
                user_agent=environ.get("HTTP_USER_AGENT", ""),
                country=environ.get("HTTP_CF_IPCOUNTRY", "") or environ.get("HTTP_X_COUNTRY", ""),
                now=timezone.now(),
            )
        except ApiError as exc:
            error = {"code": exc.code, "message": exc.message}
            if exc.fields:
                error["fields"] = exc.fields
            status, body = exc.status, {"error": error}
        except Exception:
            logger.exception("click fast path failed")
            status, body = (
                500,
                {"error": {"code": "server_error", "message": "The click could not be recorded."}},
            )
        finally:
            signals.request_finished.send(sender=self.__class__)
        payload = json.dumps(body).encode()
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
            ("X-Content-Type-Options", "nosniff"),
            ("Cache-Control", "no-store"),
        ]
        if origin:
            headers += [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        return [payload]
