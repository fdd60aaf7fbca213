"""Tracking degrades, never fails, when Redis is down (docs/architecture.md, "Security").

The settings point at a loopback port where nothing listens: every Redis call is refused. Clicks
must still answer 202 and land in the clicks table (the buffer's direct-insert path), redirect
links must still redirect, and /healthz must say what is missing.
"""

import io
import json
import socket
import time

import pytest
from django.db import close_old_connections
from django.test import Client

from refapp import ratelimit
from tracking.models import Click

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(params=["buffered", "direct"])
def dead_redis(request, settings, monkeypatch):
    """REDIS_URL (rate limits, click buffer) at a port where nothing listens."""
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    settings.REFAPP_CLICK_BUFFER = request.param == "buffered"
    monkeypatch.setattr(ratelimit, "_down_until", 0.0, raising=False)  # the breaker closed, and after
    return request.param


def click_body(visitor_id: str) -> str:
    return json.dumps(
        {"program": "acme", "ref": "JOHN", "visitor_id": visitor_id, "url": "https://acme.example/"}
    )


@pytest.mark.django_db
def test_a_click_is_accepted_and_stored_while_redis_is_down(dead_redis, affiliate):
    response = Client().post(
        "/api/v1/track/click",
        data=click_body("visitor-down-1"),
        content_type="text/plain",
        HTTP_USER_AGENT=UA,
    )
    assert response.status_code == 202, response.content
    assert response.json() == {"visitor_id": "visitor-down-1", "attributed": True}
    assert Click.objects.filter(visitor_id="visitor-down-1").count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_wsgi_fast_path_stores_clicks_while_redis_is_down(dead_redis, affiliate):
    from refapp.wsgi import application

    body = click_body("visitor-down-2").encode()
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v1/track/click",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_ADDR": "203.0.113.9",
        "HTTP_USER_AGENT": UA,
    }
    statuses = []
    content = b"".join(application(environ, lambda status, headers: statuses.append(status)))
    close_old_connections()
    assert statuses == ["202 Accepted"], content
    assert Click.objects.filter(visitor_id="visitor-down-2").count() == 1


@pytest.mark.django_db
def test_go_links_redirect_and_record_while_redis_is_down(dead_redis, affiliate, client):
    response = client.get("/go/acme/JOHN/pricing", HTTP_USER_AGENT=UA)
    assert response.status_code == 302
    assert response["Location"].startswith("https://acme.example/pricing?ref=JOHN&refapp_vid=")
    assert Click.objects.get().source == "link"


@pytest.mark.django_db
def test_a_dead_redis_is_skipped_for_a_while_after_the_first_failure(dead_redis, affiliate, settings):
    settings.REFAPP_REDIS_RETRY_SECONDS = 60
    assert ratelimit.hit("click", "198.51.100.1") is True  # fails open, and opens the breaker
    assert ratelimit.redis_down()
    calls = []
    original = ratelimit._redis
    ratelimit._redis = lambda: calls.append(1) or original()
    try:
        started = time.monotonic()
        for i in range(20):
            Client().post(
                "/api/v1/track/click",
                data=click_body(f"visitor-skip-{i:02d}"),
                content_type="text/plain",
                HTTP_USER_AGENT=UA,
            )
        assert time.monotonic() - started < 5
    finally:
        ratelimit._redis = original
    assert calls == []  # no request tried Redis while the breaker was open
    assert Click.objects.count() == 20


@pytest.mark.django_db
def test_healthz_reports_redis_down_as_degraded_but_serving(dead_redis, client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded" and body["redis"] == "down" and body["database"] == "ok"


def test_redis_clients_use_short_timeouts(settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    kwargs = ratelimit._redis().connection_pool.connection_kwargs
    assert 0 < kwargs["socket_connect_timeout"] <= 0.5 and 0 < kwargs["socket_timeout"] <= 0.5
    from tracking import buffer

    push = buffer._push_connection()
    assert 0 < push.socket_connect_timeout <= 0.5 and 0 < push.socket_timeout <= 0.5
