"""A new commission's message carries the API's JSON of the commission, the same whether it was
serialized from the rows the conversion handed over or read back from the database."""

import pytest

from commissions.api import commission_json
from commissions.models import Commission
from webhooks.models import WebhookMessage

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
    assert message.payload["data"] == commission_json(commission)
    (listed,) = api_client.get("/api/v1/commissions?order_id=ORD-1").json()["data"]
    assert message.payload["data"] == listed
