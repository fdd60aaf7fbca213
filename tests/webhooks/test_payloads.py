"""A new commission's message carries the API's JSON of the commission, the same whether it was
serialized from the rows the conversion handed over or read back from the database; a conversion's
own messages are written without their data and frozen at their first attempt."""

from datetime import timedelta

import pytest
from django.utils import timezone

from commissions.api import commission_json
from commissions.models import Commission
from commissions.services import approve_due_commissions
from refapp.models import Actor
from webhooks.delivery import payload_of
from webhooks.models import WebhookMessage
from webhooks.services import message_replay
from webhooks.tasks import deliver_message

from .helpers import make_endpoint

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("rejected", [False, True], ids=["pending", "self-referral"])
def test_commission_created_data_is_the_commission_as_read_back(
    api_client, program, affiliate, sale_rule, receiver, event_write_path, rejected
):
    make_endpoint(program, receiver.url, events=["commission.created"])
    sale = {"event": "sale", "order_id": "ORD-1", "referral_code": "JOHN", "amount_cents": 12345}
    if rejected:
        sale["customer_email"] = affiliate.email  # a self-referral: rejected with a reason
    answer = api_client.post("/api/v1/events", sale)
    assert answer.status_code == 201
    (item,) = answer.json()["commissions"]
    message = WebhookMessage.objects.get(event_type="commission.created")
    commission = Commission.objects.select_related("affiliate", "event", "reverses", "rule").get(
        public_id=item["id"]
    )
    assert commission.status == ("rejected" if rejected else "pending")
    assert payload_of(message)["data"] == commission_json(commission)
    (listed,) = api_client.get("/api/v1/commissions?order_id=ORD-1").json()["data"]
    assert payload_of(message)["data"] == listed


def _sale(api_client, order_id="ORD-1"):
    answer = api_client.post(
        "/api/v1/events",
        {"event": "sale", "order_id": order_id, "referral_code": "JOHN", "amount_cents": 5000},
    )
    assert answer.status_code == 201
    return answer.json()


def test_a_conversions_messages_are_frozen_at_their_first_attempt_and_replayed_byte_for_byte(
    api_client, program, affiliate, sale_rule, receiver, event_write_path
):
    make_endpoint(program, receiver.url, events=["conversion.created", "commission.created"])
    body = _sale(api_client)
    written = {m.event_type: m for m in WebhookMessage.objects.all()}
    assert [m.payload for m in written.values()] == [None, None]  # no JSON serialized in the conversion

    for message in written.values():
        deliver_message(message.pk)  # the first attempt
    sent = {headers["webhook-id"]: raw for headers, raw in receiver.requests}
    stored = {m.event_type: m for m in WebhookMessage.objects.all()}
    conversion, commission = stored["conversion.created"], stored["commission.created"]
    assert conversion.payload["data"] == body and conversion.payload["type"] == "conversion.created"
    assert commission.payload["id"] == commission.public_id
    assert commission.payload["data"]["status"] == "pending"
    assert commission.payload["created"] == commission.created_at.isoformat().replace("+00:00", "Z")

    # The commission changes afterwards; a replay still sends the bytes of the first attempt.
    assert approve_due_commissions(now=timezone.now() + timedelta(days=400)) == 1
    receiver.requests.clear()
    message_replay(message=commission, actor=Actor.system(), now=timezone.now())
    deliver_message(commission.pk, force=True)  # what the replay queues once committed
    ((headers, raw),) = receiver.requests
    assert headers["webhook-id"] == commission.public_id and raw == sent[commission.public_id]


def test_a_commission_changed_before_the_first_attempt_is_sent_as_it_is_then(
    api_client, program, affiliate, sale_rule, receiver, event_write_path
):
    make_endpoint(program, receiver.url, events=["commission.created"])
    body = _sale(api_client)
    assert approve_due_commissions(now=timezone.now() + timedelta(days=400)) == 1
    message = WebhookMessage.objects.get()
    deliver_message(message.pk)
    data = WebhookMessage.objects.get().payload["data"]
    assert data["id"] == body["commissions"][0]["id"] and data["status"] == "approved"


def test_an_object_deleted_before_the_first_attempt_is_sent_as_deleted(
    api_client, program, affiliate, sale_rule, receiver, event_write_path
):
    make_endpoint(program, receiver.url, events=["conversion.created", "commission.created"])
    body = _sale(api_client)
    Commission.objects.all().delete()
    for message in WebhookMessage.objects.order_by("pk"):
        deliver_message(message.pk)
    payloads = {m.event_type: m.payload["data"] for m in WebhookMessage.objects.all()}
    assert payloads["commission.created"] == {"id": body["commissions"][0]["id"], "deleted": True}
    assert payloads["conversion.created"] == body
    assert WebhookMessage.objects.filter(status="delivered").count() == 2
