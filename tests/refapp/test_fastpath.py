"""The WSGI fast path answers clicks exactly like the Django view, and passes everything else on."""

import io
import json

import pytest
from django.core import signals
from django.db import close_old_connections
from django.test import Client

from refapp import fastpath
from tracking.models import Click

pytestmark = pytest.mark.django_db

# Paths of the fast-path answers that closed old connections once done (see call()).
closes: list[str] = []
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"


application = fastpath.wsgi_application()


def call(path="/api/v1/track/click", method="POST", body=b"", **extra):
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_ADDR": "203.0.113.9",
        "HTTP_USER_AGENT": UA,
        **extra,
    }
    captured = {}

    def start_response(status, headers):
        captured["status"], captured["headers"] = int(status.split()[0]), dict(headers)

    # As Django's test client does with the request signals: keep the test's transaction open,
    # which closing "old" connections would end (the fast path calls it without the signals).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    closer = fastpath.close_old_connections
    fastpath.close_old_connections = lambda: closes.append(path)
    try:
        content = b"".join(application(environ, start_response))
    finally:
        fastpath.close_old_connections = closer
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    return captured["status"], captured["headers"], content


def click_body(**extra):
    return json.dumps(
        {
            "program": "acme",
            "ref": "JOHN",
            "visitor_id": "visitor-0001",
            "url": "https://acme.example/?ref=JOHN&utm_source=x",
            **extra,
        }
    ).encode()


def test_fast_path_records_the_click_like_the_view(affiliate, client):
    status, headers, content = call(body=click_body(), HTTP_ORIGIN="https://acme.example")
    assert status == 202 and json.loads(content) == {"visitor_id": "visitor-0001", "attributed": True}
    assert headers["Access-Control-Allow-Origin"] == "https://acme.example"
    view = Client().post(
        "/api/v1/track/click",
        data=click_body(),
        content_type="text/plain",
        HTTP_USER_AGENT=UA,
        REMOTE_ADDR="203.0.113.9",
    )
    assert view.json() == json.loads(content)
    fast, slow = Click.objects.order_by("pk")
    fields = (
        "affiliate_id",
        "visitor_id",
        "landing_url",
        "utm_source",
        "ip_prefix",
        "ip_hash",
        "user_agent",
        "source",
    )
    assert [getattr(fast, f) for f in fields] == [getattr(slow, f) for f in fields]
    assert fast.ip_prefix == "203.0.113.0/24"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{nope", 400, "malformed_json"),
        (json.dumps({"ref": "JOHN"}).encode(), 400, "invalid_request"),
        (json.dumps({"program": "nope", "ref": "JOHN"}).encode(), 404, "unknown_program"),
        (b"x" * 70_000, 413, "payload_too_large"),
    ],
)
def test_fast_path_errors_have_the_documented_shape(affiliate, body, status, code):
    got_status, _, content = call(body=body)
    assert got_status == status and json.loads(content)["error"]["code"] == code
    assert Click.objects.count() == 0


def test_fast_path_refuses_other_origins(affiliate, program):
    program.allowed_origins = ["https://acme.example"]
    program.save()
    status, _, content = call(body=click_body(), HTTP_ORIGIN="https://evil.example")
    assert status == 403 and json.loads(content)["error"]["code"] == "origin_not_allowed"


def test_each_fast_path_answer_closes_old_connections_once(affiliate, sale_rule, secret):
    """What Django's request signals would do: drop a broken connection or one past CONN_MAX_AGE."""
    closes.clear()
    assert call(body=click_body())[0] == 202
    assert call(body=b"{")[0] == 400
    event = {"event": "sale", "order_id": "o-close", "amount_cents": 100, "currency": "USD"}
    status = call("/api/v1/events", body=json.dumps(event).encode(), HTTP_AUTHORIZATION=f"Bearer {secret}")[0]
    assert status == 201
    assert closes == ["/api/v1/track/click", "/api/v1/track/click", "/api/v1/events"]
    call("/livez", method="GET")
    assert len(closes) == 3


def test_other_requests_and_preflight_go_to_django(affiliate):
    status, _, _ = call(method="OPTIONS", body=b"", HTTP_ORIGIN="https://acme.example")
    assert status == 204
    # GET and HEAD only (tests/refapp/test_fastpath_parity.py): Django refuses the rest, CSRF first.
    assert call(path="/t.js", method="POST")[0] == 403


def test_fast_path_can_be_switched_off(affiliate, settings):
    settings.REFAPP_CLICK_FAST_PATH = False
    status, headers, _ = call(body=click_body())
    assert status == 202 and "Content-Security-Policy" not in headers and Click.objects.count() == 1


def test_liveness_answers_204_without_touching_django(django_assert_num_queries):
    with django_assert_num_queries(0):
        status, headers, content = call("/livez", method="GET")
    assert (status, content, headers["Cache-Control"]) == (204, b"", "no-store")
    assert call("/livez", method="HEAD")[0] == 204
    assert call("/livez", method="POST")[0] == 404  # anything else goes to Django, which has no such page


# --- conversions: POST /api/v1/events ---------------------------------------------------------


@pytest.fixture
def secret(program):
    from affiliates.services import apikey_create

    return apikey_create(program=program)[1]


def sale(order_id="F-1", **extra):
    body = {"event": "sale", "order_id": order_id, "referral_code": "JOHN", "amount_cents": 10000}
    return json.dumps({**body, **extra}).encode()


@pytest.mark.usefixtures("event_write_path")
def test_fast_path_ingests_a_conversion_like_the_view(affiliate, sale_rule, secret):
    from commissions.models import Commission
    from tracking.models import Event

    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    status, headers, content = call("/api/v1/events", body=sale("F-1"), **auth)
    assert status == 201 and headers["Content-Type"] == "application/json"
    assert "X-Frame-Options" not in headers  # answered before Django's middleware
    fast = json.loads(content)
    assert fast["attributed"] and [c["amount_cents"] for c in fast["commissions"]] == [2000]
    # A replay answers the same body with 200, through either door.
    replay_status, _, replay = call("/api/v1/events", body=sale("F-1"), **auth)
    assert replay_status == 200 and json.loads(replay) == fast
    view = Client().post(
        "/api/v1/events",
        data=sale("F-1"),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert view.status_code == 200 and view.json() == fast
    # The view writes the same rows as the fast path.
    slow = (
        Client()
        .post(
            "/api/v1/events",
            data=sale("F-2"),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {secret}",
        )
        .json()
    )
    assert {k: v for k, v in slow.items() if k not in ("id", "referral", "commissions")} == {
        k: v for k, v in fast.items() if k not in ("id", "referral", "commissions")
    }
    assert Event.objects.count() == 2 and Commission.objects.count() == 2


@pytest.mark.parametrize(
    ("auth", "body", "status", "code"),
    [
        (None, sale(), 401, "missing_api_key"),
        ("Bearer sk_live_wrong", sale(), 401, "invalid_api_key"),
        ("key", b"{nope", 400, "malformed_json"),
        ("key", json.dumps({"event": "sale", "amount_cents": -5}).encode(), 400, "invalid_request"),
        ("key", sale(program="other"), 403, "wrong_program"),
        ("key", b"x" * 70_000, 413, "payload_too_large"),
    ],
)
def test_fast_path_event_errors_have_the_documented_shape(affiliate, secret, auth, body, status, code):
    from tracking.models import Event

    headers = {} if auth is None else {"HTTP_AUTHORIZATION": f"Bearer {secret}" if auth == "key" else auth}
    got_status, _, content = call("/api/v1/events", body=body, **headers)
    assert got_status == status and json.loads(content)["error"]["code"] == code
    assert Event.objects.count() == 0


def test_events_fast_path_can_be_switched_off_and_other_methods_go_to_django(affiliate, secret, settings):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    status, headers, _ = call("/api/v1/events", method="GET", **auth)
    assert status == 200 and headers["X-Frame-Options"] == "DENY"  # Django's view lists the events
    settings.REFAPP_EVENTS_FAST_PATH = False
    status, headers, _ = call("/api/v1/events", body=sale(), **auth)
    assert status == 201 and headers["X-Frame-Options"] == "DENY"  # added by Django's middleware
