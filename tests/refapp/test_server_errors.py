"""An unexpected exception in any API endpoint answers the JSON error shape with 500, through
Django's views and through the WSGI fast path alike, and is logged with its traceback."""

import io
import json
import logging

import pytest
from django.core import signals
from django.db import close_old_connections
from django.test import Client

from refapp import fastpath

pytestmark = pytest.mark.django_db

SERVER_ERROR = {"error": {"code": "server_error", "message": "The request could not be completed."}}
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"
CLICK = {"program": "acme", "ref": "JOHN", "visitor_id": "visitor-0001"}
SALE = {"event": "sale", "order_id": "BOOM-1", "amount_cents": 100}


def boom(*args, **kwargs):
    raise RuntimeError("kaboom")


def test_django_api_views_answer_json_500(api_client, affiliate, monkeypatch, caplog):
    from commissions.views import api as commissions_views

    monkeypatch.setattr(commissions_views, "refund_apply", boom)
    with caplog.at_level(logging.ERROR, logger="refapp.api"):
        response = api_client.post("/api/v1/refunds", {"order_id": "A"})
    assert response.status_code == 500 and response["Content-Type"] == "application/json"
    assert response.json() == SERVER_ERROR
    assert "kaboom" in caplog.text  # logged with its traceback, not lost


def test_django_events_view_answers_json_500(api_client, affiliate, monkeypatch, settings, caplog):
    from commissions.views import api as commissions_views

    settings.REFAPP_EVENTS_FAST_PATH = False
    monkeypatch.setattr(commissions_views, "event_answer", boom)
    with caplog.at_level(logging.ERROR, logger="refapp.api"):
        response = api_client.post("/api/v1/events", SALE)
    assert response.status_code == 500 and response.json() == SERVER_ERROR
    assert "kaboom" in caplog.text


def test_django_click_view_answers_json_500_with_cors(affiliate, monkeypatch, settings, caplog):
    from tracking.views import public

    settings.REFAPP_CLICK_FAST_PATH = False
    monkeypatch.setattr(public, "click_ingest", boom)
    with caplog.at_level(logging.ERROR, logger="tracking.views.public"):
        response = Client().post(
            "/api/v1/track/click",
            data=json.dumps(CLICK),
            content_type="text/plain",
            HTTP_USER_AGENT=UA,
            HTTP_ORIGIN="https://acme.example",
        )
    assert response.status_code == 500 and response.json() == SERVER_ERROR
    assert response["Access-Control-Allow-Origin"] == "https://acme.example"
    assert "kaboom" in caplog.text


def _call_fast_path(path: str, body: dict, **extra) -> tuple[int, dict, bytes]:
    raw = json.dumps(body).encode()
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "wsgi.input": io.BytesIO(raw),
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
        "CONTENT_LENGTH": str(len(raw)),
        "REMOTE_ADDR": "203.0.113.9",
        "HTTP_USER_AGENT": UA,
        **extra,
    }
    captured = {}

    def start_response(status, headers):
        captured["status"], captured["headers"] = int(status.split()[0]), dict(headers)

    signals.request_started.disconnect(close_old_connections)
    try:
        content = b"".join(fastpath.wsgi_application()(environ, start_response))
    finally:
        signals.request_started.connect(close_old_connections)
    return captured["status"], captured["headers"], content


@pytest.mark.parametrize(
    ("path", "target", "body"),
    [("/api/v1/track/click", "click_ingest", CLICK), ("/api/v1/events", "event_answer", SALE)],
)
def test_fast_path_answers_json_500(affiliate, live_key, monkeypatch, caplog, path, target, body):
    monkeypatch.setattr(fastpath, target, boom)
    monkeypatch.setattr(fastpath, "close_old_connections", lambda: None)  # keep the test transaction
    with caplog.at_level(logging.ERROR, logger="refapp.fastpath"):
        status, headers, content = _call_fast_path(path, body, HTTP_AUTHORIZATION=f"Bearer {live_key}")
    assert status == 500 and headers["Content-Type"] == "application/json"
    assert json.loads(content) == SERVER_ERROR
    assert "kaboom" in caplog.text
