"""The webhooks API: endpoints and deliveries, private targets refused, keys see their program and mode."""

import pytest

from tests.factories import ProgramFactory
from webhooks.delivery import payload_of
from webhooks.models import WebhookEndpoint, WebhookMessage

from .helpers import make_endpoint

pytestmark = pytest.mark.django_db

ENDPOINTS = "/api/v1/webhook-endpoints"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[fd00:ec2::254]/hook",
        "http://localhost:8000/hook",
        "http://0.0.0.0/hook",
        "https://192.168.1.1/hook",
        "ftp://example.com/hook",
        "http://user:pw@93.184.215.14/hook",
    ],
)
def test_private_and_unusual_targets_are_refused(api_client, url):
    answer = api_client.post(ENDPOINTS, {"url": url, "events": ["commission.created"]})
    assert answer.status_code == 400
    assert answer.json()["error"]["fields"]["url"]
    assert not WebhookEndpoint.objects.exists()


def test_loopback_is_allowed_with_the_setting(api_client, settings):
    settings.REFAPP_WEBHOOKS_ALLOW_PRIVATE = True
    answer = api_client.post(ENDPOINTS, {"url": "http://localhost:9/hook", "events": ["payout.paid"]})
    assert answer.status_code == 201


def test_create_read_update_rotate_delete(api_client, settings):
    settings.REFAPP_WEBHOOKS_ALLOW_PRIVATE = True
    created = api_client.post(
        ENDPOINTS, {"url": "http://127.0.0.1:9/a", "events": ["commission.created"], "description": "CRM"}
    ).json()
    url = f"{ENDPOINTS}/{created['id']}"
    assert api_client.get(ENDPOINTS).json()["data"] == [{k: v for k, v in created.items() if k != "secret"}]
    changed = api_client.patch(url, {"events": ["payout.paid", "payout.failed"], "active": False})
    assert changed.status_code == 200
    assert changed.json()["events"] == ["payout.paid", "payout.failed"] and changed.json()["active"] is False
    rotated = api_client.post(f"{url}/rotate-secret").json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    assert api_client.delete(url).status_code == 200
    assert api_client.get(url).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"url": "http://127.0.0.1:9/a"},
        {"url": "http://127.0.0.1:9/a", "events": []},
        {"url": "http://127.0.0.1:9/a", "events": ["commission.exploded"]},
        {"url": "http://127.0.0.1:9/a", "events": "commission.created"},
        {"url": 5, "events": ["commission.created"]},
        {"url": "http://127.0.0.1:9/a", "events": ["commission.created"], "secret": "mine"},
    ],
)
def test_invalid_bodies_answer_the_error_shape(api_client, settings, body):
    settings.REFAPP_WEBHOOKS_ALLOW_PRIVATE = True
    answer = api_client.post(ENDPOINTS, body)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_request"


def test_bad_delivery_filters_answer_400(api_client):
    assert api_client.get("/api/v1/webhook-deliveries?status=exploded").status_code == 400
    assert api_client.get("/api/v1/webhook-deliveries?endpoint=we_nope").status_code == 400
    assert api_client.get("/api/v1/webhook-deliveries?limit=0").status_code == 400
    assert api_client.get("/api/v1/webhook-deliveries").json() == {"data": [], "next_cursor": None}


def test_keys_see_only_their_program_and_mode(api_client, test_api_client, program, settings):
    settings.REFAPP_WEBHOOKS_ALLOW_PRIVATE = True
    live = make_endpoint(program, "http://127.0.0.1:9/live")
    test = make_endpoint(program, "http://127.0.0.1:9/test", livemode=False)
    other = make_endpoint(ProgramFactory(slug="globex"), "http://127.0.0.1:9/other")
    assert [e["id"] for e in api_client.get(ENDPOINTS).json()["data"]] == [live.public_id]
    assert [e["id"] for e in test_api_client.get(ENDPOINTS).json()["data"]] == [test.public_id]
    assert api_client.get(f"{ENDPOINTS}/{test.public_id}").status_code == 404
    assert api_client.get(f"{ENDPOINTS}/{other.public_id}").status_code == 403
    assert api_client.delete(f"{ENDPOINTS}/{other.public_id}").status_code == 403
    assert WebhookEndpoint.objects.count() == 3


def test_a_test_key_endpoint_gets_test_events_only(api_client, test_api_client, program, settings):
    settings.REFAPP_WEBHOOKS_ALLOW_PRIVATE = True
    live = make_endpoint(program, "http://127.0.0.1:9/live", events=["affiliate.created"])
    test = make_endpoint(program, "http://127.0.0.1:9/test", events=["affiliate.created"], livemode=False)
    assert api_client.post("/api/v1/affiliates", {"email": "l@x.example", "name": "L"}).status_code == 201
    assert (
        test_api_client.post("/api/v1/affiliates", {"email": "t@x.example", "name": "T"}).status_code == 201
    )
    live_messages = WebhookMessage.objects.filter(endpoint=live)
    test_messages = WebhookMessage.objects.filter(endpoint=test)
    assert [m.payload["data"]["email"] for m in live_messages] == ["l@x.example"]
    assert [m.payload["data"]["email"] for m in test_messages] == ["t@x.example"]
    assert test_messages.get().payload["data"]["livemode"] is False


def test_a_conversion_writes_referral_conversion_and_commission_messages(
    api_client, program, affiliate, sale_rule, settings, event_write_path
):
    settings.REFAPP_WEBHOOKS_ALLOW_PRIVATE = True
    endpoint = make_endpoint(program, "http://127.0.0.1:9/all")
    sale = {
        "event": "sale",
        "order_id": "O-1",
        "customer_id": "cus_1",
        "referral_code": "JOHN",
        "amount_cents": 5000,
    }
    body = api_client.post("/api/v1/events", sale).json()
    written = WebhookMessage.objects.filter(endpoint=endpoint)
    # The conversion's own messages are written without their data: the first attempt reads it.
    assert {m.event_type for m in written if m.payload is None} == {
        "commission.created",
        "conversion.created",
    }
    messages = {m.event_type: payload_of(m) for m in written}
    assert sorted(messages) == ["commission.created", "conversion.created", "referral.created"]
    assert messages["conversion.created"]["data"] == body
    assert messages["referral.created"]["data"]["id"] == body["referral"]
    assert messages["commission.created"]["data"]["id"] == body["commissions"][0]["id"]
    assert api_client.post("/api/v1/events", sale).status_code == 200  # a replay writes nothing new
    assert WebhookMessage.objects.count() == 3


def test_retry_of_a_delivery_queues_its_message_again(api_client, program, settings):
    from webhooks.models import WebhookDelivery

    settings.REFAPP_WEBHOOKS_ALLOW_PRIVATE = True
    endpoint = make_endpoint(program, "http://127.0.0.1:9/x", events=["affiliate.created"])
    api_client.post("/api/v1/affiliates", {"email": "l@x.example", "name": "L"})
    message = WebhookMessage.objects.get()
    attempt = WebhookDelivery.objects.create(
        message=message, endpoint=endpoint, attempt=1, status="failed", attempted_at=message.created_at
    )
    answer = api_client.post(f"/api/v1/webhook-deliveries/{attempt.public_id}/retry")
    assert answer.status_code == 202 and answer.json()["id"] == message.public_id
    assert api_client.post("/api/v1/webhook-deliveries/whd_nope/retry").status_code == 404


def test_a_program_without_endpoints_pays_no_query_per_conversion(
    api_client, program, affiliate, sale_rule, event_write_path, monkeypatch
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from refapp import models as audit

    def queries_of(order_id):
        sale = {"event": "sale", "order_id": order_id, "referral_code": "JOHN", "amount_cents": 5000}
        with CaptureQueriesContext(connection) as captured:
            assert api_client.post("/api/v1/events", sale).status_code == 201
        return len(captured)

    queries_of("warm-up")  # the key, the program and the watched check are cached from here on
    with_webhooks = queries_of("O-1")
    monkeypatch.setattr(audit, "_watchers", [])  # as if the webhooks app were not installed
    without_webhooks = queries_of("O-2")
    assert with_webhooks == without_webhooks
    assert not WebhookMessage.objects.exists()
