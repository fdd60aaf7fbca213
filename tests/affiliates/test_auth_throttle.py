"""Failed API authentication is throttled per client address, without starving valid keys or clicks."""

import json
import socket

import pytest
from django.test import Client

from refapp import ratelimit
from tracking.models import Click

pytestmark = pytest.mark.django_db
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"


@pytest.fixture(autouse=True)
def _limit(settings):
    settings.REFAPP_RATE_LIMITS = {**settings.REFAPP_RATE_LIMITS, "auth-fail": 20}


def wrong(client: Client, path: str = "/api/v1/affiliates", secret: str = "sk_live_wrong-guess"):
    return client.get(path, HTTP_AUTHORIZATION=f"Bearer {secret}")


def test_wrong_keys_are_throttled_after_twenty_failures(program):
    client = Client()
    statuses = [wrong(client, secret=f"sk_live_guess{i}").status_code for i in range(25)]
    assert statuses == [401] * 20 + [429] * 5
    throttled = wrong(client)
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(throttled["Retry-After"]) <= 60
    # Missing keys and malformed ones count too; events are throttled like the rest.
    assert client.get("/api/v1/affiliates").status_code == 429
    assert client.post("/api/v1/events", "{}", content_type="application/json").status_code == 429


def test_a_valid_key_from_a_throttled_address_still_gets_in(program, live_key):
    client = Client()
    for _ in range(25):
        wrong(client)
    assert wrong(client).status_code == 429
    assert wrong(client, secret=live_key).status_code == 200


def test_clicks_from_a_throttled_address_are_not_refused(affiliate):
    client = Client()
    for _ in range(25):
        wrong(client)
    body = json.dumps({"program": "acme", "ref": "JOHN", "visitor_id": "visitor-throttled"})
    response = client.post("/api/v1/track/click", body, content_type="text/plain", HTTP_USER_AGENT=UA)
    assert response.status_code == 202 and Click.objects.count() == 1


def test_another_address_is_not_throttled(program):
    for _ in range(25):
        wrong(Client(REMOTE_ADDR="203.0.113.7"))
    assert wrong(Client(REMOTE_ADDR="203.0.113.8")).status_code == 401


def test_the_throttle_fails_open_while_redis_is_down(program, settings, monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    monkeypatch.setattr(ratelimit, "_down_until", 0.0, raising=False)
    client = Client()
    assert {wrong(client).status_code for _ in range(30)} == {401}


def test_the_fast_path_says_when_to_come_back_too(program):
    """POST /api/v1/events is answered by the WSGI fast path; its 429 carries Retry-After as well."""
    from tests.conftest import ApiClient

    client = ApiClient("sk_live_wrong-guess")  # the production WSGI application, fast path included
    body = {"event": "sale", "order_id": "ORD-1", "amount_cents": 100}
    assert [client.post("/api/v1/events", body).status_code for _ in range(20)] == [401] * 20
    throttled = client.post("/api/v1/events", body)
    assert throttled.status_code == 429
    assert 1 <= int(throttled["Retry-After"]) <= 60
