import functools
import io
import json as jsonlib
import os
from urllib.parse import unquote

import pytest
from django.core import signals
from django.db import close_old_connections
from django.test import Client
from django.utils.datastructures import CaseInsensitiveMapping

from affiliates.services import apikey_create
from refapp import ratelimit
from tests import contract
from tests.factories import AffiliateFactory, CommissionRuleFactory, ProgramFactory
from tracking import lookup


@pytest.fixture(autouse=True)
def _fresh_caches():
    from django.core.cache import cache

    from webhooks import watch

    lookup.clear()
    cache.clear()
    ratelimit.clear_leases()
    watch.forget_all()
    yield
    lookup.clear()
    ratelimit.clear_leases()
    watch.forget_all()


# The SQL write path of conversions exists on PostgreSQL only; elsewhere the ORM path is the only one.
EVENT_WRITE_PATHS = ["sql", "orm"] if os.environ.get("DATABASE_URL", "").startswith("postgres") else ["orm"]


@pytest.fixture(params=EVENT_WRITE_PATHS)
def event_write_path(request, settings):
    """Run a test through each write path of conversions: on PostgreSQL both must give the same
    answers and rows (commissions/ingest_pg.py and services._event_ingest)."""
    settings.REFAPP_EVENT_SQL_PATH = request.param == "sql"
    return request.param


@pytest.fixture
def program(db):
    return ProgramFactory(slug="acme", name="Acme", website="https://acme.example")


@pytest.fixture
def affiliate(program):
    return AffiliateFactory(program=program, code="JOHN", email="john@partner.example", name="John")


@pytest.fixture
def sale_rule(program):
    return CommissionRuleFactory(program=program, event_name="sale", type="percent", rate_bp=2000)


class WsgiResponse:
    """What a test reads of a WSGI answer: status_code, content, json(), headers by name."""

    def __init__(self, status: str, headers: list[tuple[str, str]], content: bytes):
        self.status_code = int(status.split()[0])
        self.headers = CaseInsensitiveMapping(dict(headers))
        self.content = content

    def json(self):
        return jsonlib.loads(self.content)

    def __getitem__(self, name: str) -> str:
        return self.headers[name]

    def get(self, name: str, default=None):
        return self.headers.get(name, default)

    def __contains__(self, name: str) -> bool:
        return name in self.headers


@functools.cache
def production_application():
    """The callable production serves (refapp.fastpath.wsgi_application(): the fast path in front of
    Django's WSGIHandler), built once; refapp.wsgi itself is not imported, for its gc.freeze()."""
    from refapp.fastpath import wsgi_application

    return wsgi_application()


def keep_test_connection(app):
    """`app` as a WSGI callable that answers in full (one body chunk) and leaves the connection
    that holds the test's transaction open.

    What Django's test client does around a request: Django's request signals would close that
    connection (close_old_connections), and so would the fast path's direct call of it; both are
    what production runs otherwise."""
    from refapp import fastpath

    def call(environ, start_response):
        signals.request_started.disconnect(close_old_connections)
        signals.request_finished.disconnect(close_old_connections)
        closer, fastpath.close_old_connections = fastpath.close_old_connections, lambda: None
        try:
            result = app(environ, start_response)
            try:
                return [b"".join(result)]
            finally:
                if hasattr(result, "close"):
                    result.close()
        finally:
            fastpath.close_old_connections = closer
            signals.request_started.connect(close_old_connections)
            signals.request_finished.connect(close_old_connections)

    return call


def wsgi_call(method: str, path: str, body: bytes = b"", content_type: str = "", **headers) -> WsgiResponse:
    """One request through the production WSGI application, checked against the API contract."""
    path, _, query = path.partition("?")
    environ = {
        "REQUEST_METHOD": method.upper(),
        "PATH_INFO": unquote(path),
        "QUERY_STRING": query,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(body)),
        **({"CONTENT_TYPE": content_type} if content_type else {}),
        **headers,
    }
    captured = {}

    def start_response(status, response_headers, exc_info=None):
        captured["status"], captured["headers"] = status, response_headers

    content = keep_test_connection(production_application())(environ, start_response)[0]
    response = WsgiResponse(captured["status"], captured["headers"], content)
    if path.startswith("/api/v1/"):
        contract.check(method, path, response.status_code, response.get("Content-Type"), content)
    return response


class ApiClient:
    """A test client that speaks JSON with a Bearer key, through the production WSGI application
    (fast path included), holding every answer to the OpenAPI document (tests/contract.py)."""

    def __init__(self, secret: str):
        self.secret = secret

    def _call(self, method: str, path: str, body=None, **headers):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {self.secret}", **headers}
        raw, content_type = b"", ""
        if body is not None:
            raw = (
                body
                if isinstance(body, bytes)
                else (body if isinstance(body, str) else jsonlib.dumps(body)).encode()
            )
            content_type = "application/json"
        return wsgi_call(method, path, raw, content_type, **headers)

    def get(self, path, **kw):
        return self._call("get", path, **kw)

    def post(self, path, body=None, **kw):
        return self._call("post", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self._call("patch", path, body, **kw)

    def delete(self, path, **kw):
        return self._call("delete", path, **kw)

    def options(self, path, **kw):
        return self._call("options", path, **kw)


@pytest.fixture(autouse=True, scope="session")
def _contract_for_django_client():
    """Hold /api/v1/ answers got through Django's test client (the click beacon tests, the
    401 tests) to the same contract as ApiClient's."""
    original = Client.request

    def request(self, **req):
        response = original(self, **req)
        path = req.get("PATH_INFO", "")
        if path.startswith("/api/v1/") and not getattr(response, "streaming", False):
            contract.check(
                req["REQUEST_METHOD"],
                path,
                response.status_code,
                response.get("Content-Type"),
                response.content,
            )
        return response

    Client.request = request
    yield
    Client.request = original


@pytest.fixture
def live_key(program):
    return apikey_create(program=program, mode="live")[1]


@pytest.fixture
def api_client(live_key):
    return ApiClient(live_key)


@pytest.fixture
def test_api_client(program):
    return ApiClient(apikey_create(program=program, mode="test")[1])


# --- panel and portal users -------------------------------------------------------------------


@pytest.fixture
def staff_user(program, django_user_model):
    """A staff admin of `program` only."""
    from affiliates.models import ProgramStaff

    user = django_user_model.objects.create_user(
        "admin", "admin@acme.example", "correct horse battery", is_staff=True
    )
    ProgramStaff.objects.create(program=program, user=user, role=ProgramStaff.Role.ADMIN)
    return user


@pytest.fixture
def staff_client(staff_user):
    client = Client()
    client.force_login(staff_user)
    return client


@pytest.fixture
def other_staff_client(db, django_user_model):
    """A staff admin of another program: must get 404 on everything of `program`."""
    from affiliates.models import ProgramStaff

    other = ProgramFactory(slug="globex", name="Globex", website="https://globex.example")
    user = django_user_model.objects.create_user(
        "stranger", "s@globex.example", "correct horse battery", is_staff=True
    )
    ProgramStaff.objects.create(program=other, user=user, role=ProgramStaff.Role.ADMIN)
    client = Client()
    client.force_login(user)
    return client


def portal_login(client: Client, affiliate) -> Client:
    from affiliates.access import PORTAL_AFFILIATE, PORTAL_EMAIL

    session = client.session
    session[PORTAL_EMAIL] = affiliate.email
    session[PORTAL_AFFILIATE] = affiliate.pk
    session.save()
    return client


@pytest.fixture
def portal_client(affiliate):
    """The portal signed in as `affiliate` (John)."""
    return portal_login(Client(), affiliate)


@pytest.fixture
def other_portal_client(program):
    """Another affiliate of the same program: must never see John's rows."""
    other = AffiliateFactory(program=program, code="MARY", email="mary@partner.example", name="Mary")
    return portal_login(Client(), other)


def pytest_terminal_summary(terminalreporter):
    """What the API fuzz test sent and got (tests/refapp/test_api_fuzz.py), when it ran."""
    import sys

    fuzz = sys.modules.get("tests.refapp.test_api_fuzz")
    if fuzz is not None and fuzz.FUZZ_STATS["cases"]:
        stats = fuzz.FUZZ_STATS
        statuses = ", ".join(f"{k[7:]}: {v}" for k, v in sorted(stats.items()) if k.startswith("status "))
        terminalreporter.write_line(
            f"API fuzz: {stats['cases']} cases, {stats['5xx']} answered 5xx ({statuses})"
        )
