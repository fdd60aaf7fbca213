"""A signed commission.created reaches a real HTTP receiver, through retries, and a panel replay."""

import json
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from webhooks.models import WebhookDelivery, WebhookMessage
from webhooks.tasks import sweep_due_messages

pytestmark = pytest.mark.django_db


def test_a_commission_reaches_the_receiver_signed_after_two_failures_and_a_panel_replay_sends_it_again(
    api_client,
    program,
    affiliate,
    sale_rule,
    receiver,
    staff_client,
    event_write_path,
    django_capture_on_commit_callbacks,
):
    created = api_client.post(
        "/api/v1/webhook-endpoints", {"url": receiver.url, "events": ["commission.created"]}
    )
    assert created.status_code == 201
    endpoint = created.json()
    assert endpoint["id"].startswith("we_") and endpoint["secret"].startswith("whsec_")
    assert "secret" not in api_client.get(f"/api/v1/webhook-endpoints/{endpoint['id']}").json()
    signer = Webhook(endpoint["secret"])
    receiver.answers = [500, 500]

    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        with django_capture_on_commit_callbacks(execute=True):
            sale = {"event": "sale", "order_id": "ORD-1", "referral_code": "JOHN", "amount_cents": 9900}
            answer = api_client.post("/api/v1/events", sale)
        assert answer.status_code == 201
        commission_id = answer.json()["commissions"][0]["id"]
        assert len(receiver.requests) == 1  # delivered on commit, answered 500

        clock.shift(timedelta(seconds=2))
        sweep_due_messages()  # the first retry is not due yet
        assert len(receiver.requests) == 1
        clock.shift(timedelta(seconds=4))
        sweep_due_messages()
        assert len(receiver.requests) == 2
        clock.shift(timedelta(minutes=5))
        sweep_due_messages()
        assert len(receiver.requests) == 3
        headers, body = receiver.requests[-1]
        payload = signer.verify(body, headers)
        sweep_due_messages()
        assert len(receiver.requests) == 3  # delivered: nothing more

    assert payload["type"] == "commission.created"
    assert payload["data"]["id"] == commission_id and payload["data"]["amount_cents"] == 1980
    assert {h["webhook-id"] for h, _ in receiver.requests} == {payload["id"]}
    message = WebhookMessage.objects.get()
    assert message.status == "delivered" and message.attempts == 3
    assert list(WebhookDelivery.objects.order_by("pk").values_list("status", "response_code")) == [
        ("failed", 500),
        ("failed", 500),
        ("succeeded", 200),
    ]
    first = WebhookDelivery.objects.order_by("pk").first()
    assert len(first.response_body) == 1024 and first.next_retry_at is not None

    # The delivery log answers through the API, and a replay from the panel sends it once more.
    log = api_client.get(f"/api/v1/webhook-deliveries?endpoint={endpoint['id']}").json()["data"]
    assert [d["status"] for d in log] == ["succeeded", "failed", "failed"]
    last = WebhookDelivery.objects.order_by("pk").last()
    with django_capture_on_commit_callbacks(execute=True):
        replay = staff_client.post(
            reverse("panel:webhook-delivery-replay", args=[program.slug, endpoint["id"], last.public_id])
        )
    assert replay.status_code == 302
    assert len(receiver.requests) == 4
    headers, body = receiver.requests[-1]
    assert signer.verify(body, headers)["id"] == payload["id"]
    assert json.loads(body)["data"]["id"] == commission_id
