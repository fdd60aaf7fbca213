"""Correctly signed Stripe webhooks whose bodies are not shaped as Stripe sends them answer 400.

Each of these answered 500 before, and Stripe retried the event for days. Nothing is recorded for
them, so a corrected delivery of the same event id is still handled.
"""

import json

import pytest
from django.test import Client

from payouts.models import StripeEvent
from tests.factories import AffiliateFactory, EventFactory, ReferralFactory
from tests.fakestripe import sign_payload
from tests.payouts.conftest import WEBHOOK_SECRET
from tracking.models import Event

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _webhook_secret(settings):
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET


def post_signed(body: bytes | str):
    body = body.encode() if isinstance(body, str) else body
    return Client().post(
        "/webhooks/stripe",
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign_payload(body, WEBHOOK_SECRET),
    )


def event(event_type: str, obj, event_id: str = "evt_bad_1") -> str:
    return json.dumps({"id": event_id, "type": event_type, "livemode": True, "data": {"object": obj}})


CHECKOUT = {"id": "cs_1", "client_reference_id": "visitor-0001", "currency": "usd", "payment_intent": "pi_1"}

MALFORMED = {
    "a list for the event": "[]",
    "a string for the event": '"evt"',
    "no id": json.dumps({"type": "invoice.paid", "data": {"object": {}}}),
    "a number for the id": json.dumps({"id": 7, "type": "invoice.paid", "data": {"object": {}}}),
    "a NUL in the id": event("invoice.paid", {}, event_id="evt_\u0000"),
    "a list for the type": json.dumps({"id": "evt_1", "type": [], "data": {"object": {}}}),
    "a string for data.object": event("checkout.session.completed", "cs_1"),
    "no data": json.dumps({"id": "evt_1", "type": "invoice.paid"}),
    "a string for amount_total": event("checkout.session.completed", {**CHECKOUT, "amount_total": "abc"}),
    "a negative amount_total": event("checkout.session.completed", {**CHECKOUT, "amount_total": -5}),
    "a dict for client_reference_id": event(
        "checkout.session.completed", {**CHECKOUT, "client_reference_id": {}}
    ),
    "an invoice without id": event("invoice.paid", {"customer": "cus_1", "amount_paid": 100}),
    "a list for invoice payments": event(
        "invoice.paid", {"id": "in_1", "customer": "cus_1", "amount_paid": 100, "payments": []}
    ),
    "a NUL in a charge id": event(
        "charge.refunded", {"id": "ch_\u0000", "amount": 100, "amount_refunded": 100}
    ),
    "a string for amount_refunded": event(
        "charge.refunded", {"id": "ch_1", "amount": 100, "amount_refunded": "x"}
    ),
    "a list for a dispute's charge": event("charge.dispute.created", {"id": "dp_1", "charge": ["ch_1"]}),
    "a NUL in an account id": event("account.updated", {"id": "acct_\u0000", "payouts_enabled": True}),
    "nested 20,000 deep": '{"id": "evt_1", "type": "invoice.paid", "data": '
    + "[" * 20000
    + "]" * 20000
    + "}",
}


@pytest.fixture
def known_order_and_customer(program):
    """An order and a referred customer, so that the handlers reach every field they read."""
    affiliate = AffiliateFactory(program=program, code="JOHN")
    ReferralFactory(affiliate=affiliate, customer_id="cus_1")
    EventFactory(affiliate=affiliate, order_id="pi_9", source="stripe", metadata={"stripe_charge": "ch_1"})


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_signed_but_malformed_event_is_refused_with_the_json_error_shape(known_order_and_customer, body):
    events = Event.objects.count()
    response = post_signed(body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] in {"invalid_request", "malformed_json"}
    assert not StripeEvent.objects.exists()
    assert Event.objects.count() == events


def test_a_corrected_delivery_of_a_refused_event_is_handled(program):
    assert (
        post_signed(event("checkout.session.completed", {**CHECKOUT, "amount_total": "abc"})).status_code
        == 400
    )
    response = post_signed(event("checkout.session.completed", {**CHECKOUT, "amount_total": 5000}))
    assert response.status_code == 200
    assert StripeEvent.objects.get(event_id="evt_bad_1").result


def test_an_absurd_created_time_falls_back_to_now(program):
    body = event("checkout.session.completed", {**CHECKOUT, "amount_total": 5000, "created": 10**18})
    assert post_signed(body).status_code == 200
