"""A WSGI layer in front of Django for the hot endpoints: POST /api/v1/track/click, POST
/api/v1/events, GET /t.js (the tracker every page view of every merchant site requests) and the
redirect links GET /go/<program>/<code>[/<path>].

It also answers GET /livez with 204 before Django (a liveness probe). Every affiliate link visit
posts to the click endpoint, in bursts, and merchant backends report conversions in waves (renewals
on the 1st). Neither endpoint needs a session, user, template, CSRF, URL resolving or middleware,
so both are answered straight from the WSGI environ by the same cores the Django views use
(`click_ingest`, `event_answer`: identical validation, answers and rows). Every other request,
including the click endpoint's CORS preflight and other methods, goes to Django untouched.

`/t.js` and `/go/` are pages of the site rather than API endpoints: their answers carry the
headers Django's middleware adds (`_middleware_headers`), so they are the same bytes whichever
door answered (tests/refapp/test_fastpath_parity.py). What the middleware would refuse or redirect
instead (a Host not in ALLOWED_HOSTS, plain HTTP under SECURE_SSL_REDIRECT, a NUL in the path or
query, an unknown program's 404) is handed to Django, which answers it as it always did.

It lives on the wiring floor (beside refapp/wsgi.py) because it calls into tracking and
commissions. `wsgi_application()` builds the production callable; refapp/wsgi.py serves it and the
tests' API client calls one built the same way, so the tests run the code path production runs.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from http import HTTPStatus
from types import SimpleNamespace
from urllib.parse import parse_qsl

from django.conf import settings
from django.core.exceptions import TooManyFieldsSent
from django.core.handlers.wsgi import WSGIHandler, get_bytes_from_wsgi, get_path_info
from django.core.signals import setting_changed
from django.db import close_old_connections
from django.dispatch import receiver
from django.http import QueryDict
from django.http.request import split_domain_port, validate_host
from django.utils import timezone

from commissions.api import event_answer
from refapp.api import (
    ApiError,
    error_body,
    invalid,
    pairs_problem,
    query_problem,
    read_json_stream,
    server_error_body,
    text_problem,
)
from refapp.hashing import client_ip
from refapp.middleware import SecurityHeadersMiddleware
from refapp.tracker import tracker_answer, tracker_bundle
from tracking.redirects import GO_PATH_RE, GoAnswer, go_redirect
from tracking.services import click_ingest

logger = logging.getLogger(__name__)
CLICK_PATH = "/api/v1/track/click"
EVENTS_PATH = "/api/v1/events"
# Liveness for a load balancer or orchestrator: the process answers, nothing else is checked (no
# database, no broker: /healthz reports those). Also the benchmark's "static 204" of the server.
LIVENESS_PATH = "/livez"
TRACKER_PATH = "/t.js"
GO_PREFIX = "/go/"
_STATUS_LINES = {s.value: f"{s.value} {s.phrase}" for s in HTTPStatus}


class TrackingFastPath:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD")
        if path == LIVENESS_PATH and method in ("GET", "HEAD"):
            start_response("204 No Content", [("Cache-Control", "no-store")])
            return []
        if method == "POST":
            if path == CLICK_PATH and settings.REFAPP_CLICK_FAST_PATH:
                return self.answer(environ, start_response, self.click, cors=True)
            if path == EVENTS_PATH and settings.REFAPP_EVENTS_FAST_PATH:
                return self.answer(environ, start_response, self.event, cors=False)
        elif path == TRACKER_PATH:
            if method in ("GET", "HEAD") and settings.REFAPP_TRACKER_FAST_PATH:
                return self.tracker(environ, start_response)
        elif method == "GET" and path.startswith(GO_PREFIX) and settings.REFAPP_GO_FAST_PATH:
            return self.go(environ, start_response)
        return self.app(environ, start_response)

    def tracker(self, environ, start_response):
        """GET or HEAD /t.js: the view's answer (refapp.tracker.tracker_answer) and the middleware's
        headers, with no work per request but choosing among bytes and headers built once."""
        middleware = _middleware()
        secure = middleware.is_secure(environ)
        query = environ.get("QUERY_STRING", "")
        if not middleware.would_serve(environ, secure) or query_problem(query):
            return self.app(environ, start_response)
        if not query:
            version = None
        elif query == _versioned_query():
            version = tracker_bundle()[1]
        else:
            try:
                version = _query_dict(environ).get("v")
            except TooManyFieldsSent:
                return self.app(environ, start_response)
        status, headers, body = tracker_answer(
            head=environ["REQUEST_METHOD"] == "HEAD",
            version=version,
            accept_encoding=environ.get("HTTP_ACCEPT_ENCODING", ""),
            if_none_match=environ.get("HTTP_IF_NONE_MATCH", ""),
        )
        start_response(_STATUS_LINES[status], middleware.fixed_headers(headers, secure))
        return [body] if body else []

    def go(self, environ, start_response):
        """GET /go/<program>/<code>[/<path>]: the view's answer (tracking.redirects.go_redirect),
        with the middleware's headers. An unknown program, or a link the view would not answer
        (the input gate's refusals, a path the URLconf does not route), goes to Django."""
        middleware = _middleware()
        secure = middleware.is_secure(environ)
        if not middleware.would_serve(environ, secure):
            return self.app(environ, start_response)
        path_info = get_path_info(environ)  # decoded as Django decodes it for the URLconf
        match = GO_PATH_RE.fullmatch(path_info[1:])
        if match is None or text_problem(path_info):
            return self.app(environ, start_response)
        try:
            pairs = _query_pairs(environ)
        except TooManyFieldsSent:
            return self.app(environ, start_response)
        if pairs_problem(pairs):
            return self.app(environ, start_response)
        try:
            answer = go_redirect(
                program_slug=match["program_slug"],
                code=match["code"],
                path=match["path"] or "",
                params=dict(pairs).items(),  # QueryDict.items(): each name once, its last value
                user_agent=environ.get("HTTP_USER_AGENT", ""),
                referrer=environ.get("HTTP_REFERER", ""),
                ip=client_ip(SimpleNamespace(META=environ)),
                country=environ.get("HTTP_CF_IPCOUNTRY", ""),
                now=timezone.now(),
            )
        except Exception:
            # go_redirect stores the click last, so a failure (the database down) stored none:
            # Django's view runs the link again and answers whatever the failure calls for.
            logger.exception("fast path failed: %s", path_info)
            answer = None
        finally:
            close_old_connections()  # as after a click (see answer())
        if answer is None:  # an unknown program: Django's 404 page
            return self.app(environ, start_response)
        start_response("302 Found", middleware.go_headers(answer, secure))
        return []

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


# --- what Django's middleware does around the /t.js and /go/ views ----------------------------------


class _Middleware:
    """What Django's middleware does around the /t.js and /go/ views, from the settings it reads.

    Read once (and again after a setting changes: tests override them), so that the tracker's answer
    costs no settings lookups: each was about 0.3 µs, and the first version of this class that
    read them per request spent 5 µs per /t.js on headers that never change.
    """

    def __init__(self) -> None:
        self.ssl_redirect = settings.SECURE_SSL_REDIRECT
        self.proxy_ssl_header = settings.SECURE_PROXY_SSL_HEADER
        self.disallowed_user_agents = bool(settings.DISALLOWED_USER_AGENTS)
        self.forwarded_host = settings.USE_X_FORWARDED_HOST
        self.forwarded_port = settings.USE_X_FORWARDED_PORT
        self.allowed_hosts = settings.ALLOWED_HOSTS
        if settings.DEBUG and not self.allowed_hosts:
            self.allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]
        self.hosts: dict[str, bool] = {}
        self.answers: dict[tuple[int, bool], list[tuple[str, str]]] = {}
        self.go_answers: dict[bool, tuple[list[tuple[str, str]], int]] = {}
        hsts = ""
        if settings.SECURE_HSTS_SECONDS:
            hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
            if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
                hsts += "; includeSubDomains"
            if settings.SECURE_HSTS_PRELOAD:
                hsts += "; preload"
        self.hsts = hsts
        self.nosniff = settings.SECURE_CONTENT_TYPE_NOSNIFF
        self.opener_policy = settings.SECURE_CROSS_ORIGIN_OPENER_POLICY
        self.frame_options = getattr(settings, "X_FRAME_OPTIONS", "DENY").upper()

    def is_secure(self, environ) -> bool:
        """request.is_secure(), from the environ (SECURE_PROXY_SSL_HEADER, else the WSGI scheme)."""
        if self.proxy_ssl_header:
            header, secure_value = self.proxy_ssl_header
            value = environ.get(header)
            if value is not None:
                return value.split(",", 1)[0].strip() == secure_value
        return environ.get("wsgi.url_scheme") == "https"

    def would_serve(self, environ, secure: bool) -> bool:
        """False when the middleware would answer instead of the view: a redirect to HTTPS
        (SecurityMiddleware), a Host outside ALLOWED_HOSTS or a refused user agent
        (CommonMiddleware). Those rare requests go to Django, which answers them as it always did."""
        if (self.ssl_redirect and not secure) or self.disallowed_user_agents:
            return False
        if self.forwarded_host and "HTTP_X_FORWARDED_HOST" in environ:
            host = environ["HTTP_X_FORWARDED_HOST"]
        elif "HTTP_HOST" in environ:
            host = environ["HTTP_HOST"]
        else:  # PEP 333's reconstruction, as HttpRequest._get_raw_host()
            host = environ["SERVER_NAME"]
            if self.forwarded_port and "HTTP_X_FORWARDED_PORT" in environ:
                port = environ["HTTP_X_FORWARDED_PORT"]
            else:
                port = str(environ["SERVER_PORT"])
            if port != ("443" if secure else "80"):
                host = f"{host}:{port}"
        allowed = self.hosts.get(host)
        if allowed is None:  # HttpRequest.get_host()'s check, remembered per Host (a site has a few)
            domain, _ = split_domain_port(host)
            allowed = bool(domain and validate_host(domain, self.allowed_hosts))
            if len(self.hosts) >= 256:
                self.hosts.clear()
            self.hosts[host] = allowed
        return allowed

    def headers(self, headers: list[tuple[str, str]], secure: bool) -> list[tuple[str, str]]:
        """A view's headers plus those Django's middleware adds to its answer (SecurityMiddleware,
        SecurityHeadersMiddleware, XFrameOptionsMiddleware), so the fast path and the view answer
        alike; tests/refapp/test_fastpath_parity.py compares them."""
        names = {name.lower() for name, _ in headers}
        out = list(headers)
        content_type = next((value for name, value in headers if name.lower() == "content-type"), "")
        if content_type.startswith("text/html") and "content-security-policy" not in names:
            out.append(("Content-Security-Policy", SecurityHeadersMiddleware.CSP))
        if "referrer-policy" not in names:
            out.append(("Referrer-Policy", SecurityHeadersMiddleware.REFERRER_POLICY))
        if self.hsts and secure and "strict-transport-security" not in names:
            out.append(("Strict-Transport-Security", self.hsts))
        if self.nosniff and "x-content-type-options" not in names:
            out.append(("X-Content-Type-Options", "nosniff"))
        if self.opener_policy and "cross-origin-opener-policy" not in names:
            out.append(("Cross-Origin-Opener-Policy", self.opener_policy))
        if "x-frame-options" not in names:
            out.append(("X-Frame-Options", self.frame_options))
        return out

    def fixed_headers(self, headers: list[tuple[str, str]], secure: bool) -> list[tuple[str, str]]:
        """headers(), remembered for a header list that never changes (the tracker's, built once)."""
        key = (id(headers), secure)
        out = self.answers.get(key)
        if out is None:
            out = self.answers[key] = self.headers(headers, secure)
        return out

    def go_headers(self, answer: GoAnswer, secure: bool) -> list[tuple[str, str]]:
        """headers(answer.headers(), secure), from a list built once per scheme: the headers of
        every link's 302 but its Location are the same, and so are the middleware's additions
        (they depend on the names and the Content-Type only). Building both per link cost a
        /go/ answer about 7 µs more than a click's (bench/LOG.md, 2026-12-07). Rebuilt with the
        rest of this object when a setting changes (DEFAULT_CHARSET, the security settings)."""
        cached = self.go_answers.get(secure)
        if cached is None:
            template = self.headers(GoAnswer("").headers(), secure)
            index = next(i for i, (name, _) in enumerate(template) if name == "Location")
            cached = self.go_answers[secure] = (template, index)
        template, index = cached
        out = template.copy()
        out[index] = ("Location", answer.uri())
        return out


@functools.cache
def _middleware() -> _Middleware:
    return _Middleware()


@receiver(setting_changed)
def _settings_changed(**kwargs) -> None:
    _middleware.cache_clear()


@functools.cache
def _versioned_query() -> str:
    return f"v={tracker_bundle()[1]}"


def _query_dict(environ) -> QueryDict:
    """request.GET, built as WSGIRequest builds it."""
    return QueryDict(get_bytes_from_wsgi(environ, "QUERY_STRING", ""))


# A query string with nothing to decode: no "%" escapes, no "+" for a space, ASCII only.
_PLAIN_QUERY = re.compile(r"[A-Za-z0-9_.~=&-]*")


def _query_pairs(environ) -> list[tuple[str, str]]:
    """Every (name, value) of request.GET in order, decoded as QueryDict decodes the query string,
    without building the QueryDict (a twentieth of a /go/ link's CPU). Raises TooManyFieldsSent
    as QueryDict does."""
    query = environ.get("QUERY_STRING", "")
    if not query:
        return []
    if _PLAIN_QUERY.fullmatch(query):
        # Nothing to decode or unquote (a link's usual query, utm fields and ids): what parse_qsl
        # answers for it, without its bytes round trip and per-field unquoting (3 µs of a /go/).
        fields = query.split("&")
        most = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        if most is not None and len(fields) > most:
            raise TooManyFieldsSent("The number of GET parameters exceeded DATA_UPLOAD_MAX_NUMBER_FIELDS.")
        return [(name, value) for name, _, value in (field.partition("=") for field in fields if field)]
    raw = get_bytes_from_wsgi(environ, "QUERY_STRING", "")
    charset = settings.DEFAULT_CHARSET
    try:
        text = raw.decode(charset)
    except UnicodeDecodeError:
        text = raw.decode("iso-8859-1")
    try:
        return parse_qsl(
            text,
            keep_blank_values=True,
            encoding=charset,
            max_num_fields=settings.DATA_UPLOAD_MAX_NUMBER_FIELDS,
        )
    except ValueError as exc:
        raise TooManyFieldsSent(
            "The number of GET parameters exceeded DATA_UPLOAD_MAX_NUMBER_FIELDS."
        ) from exc


def wsgi_application() -> TrackingFastPath:
    """The WSGI callable production serves: the fast path in front of Django's handler.

    Django must be set up first (refapp/wsgi.py does, as get_wsgi_application() would; under
    pytest, pytest-django has)."""
    return TrackingFastPath(WSGIHandler())
