"""A Stripe refund and an API refund of one order, at the same moment, on a real PostgreSQL."""

import json
import threading
import time
import urllib.error
import urllib.request

import pytest
from django.db import connection
from django.utils import timezone

from affiliates.services import apikey_create
from commissions import stripe_intake
from commissions.models import Commission, Refund
from commissions.services import EventInput, event_ingest
from refapp.models import Actor
from tests.factories import AffiliateFactory, CommissionRuleFactory, ProgramFactory
from tests.fakestripe import build_charge, sign_payload
from tracking.models import Event

SECRET = "whsec_race"


def _post(url: str, body: bytes, headers: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_api_refund_and_stripe_refund_of_one_order_together_both_land(live_server, settings, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("row locks are proven on PostgreSQL; set DATABASE_URL to run it")
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    program = ProgramFactory(slug="refund-race")
    AffiliateFactory(program=program, code="JOHN")
    CommissionRuleFactory(program=program, rate_bp=2000)
    secret = apikey_create(program=program)[1]
    event_ingest(
        program=program,
        livemode=True,
        data=EventInput(
            name="sale",
            order_id="pi_race",
            referral_code="JOHN",
            amount_cents=10000,
            metadata={"stripe_payment_intent": "pi_race"},
            source="stripe",
        ),
        actor=Actor("stripe"),
        now=timezone.now(),
    )
    [original] = Commission.objects.all()
    assert original.amount_cents == 2000

    # The race, made certain: the webhook has found the order (read without a lock) when the API
    # refund of the same order runs and commits; only then does the webhook go on.
    webhook_read = threading.Event()
    api_refunded = threading.Event()
    order_for = stripe_intake._order_for

    def order_for_then_wait(*args, **kwargs):
        found = order_for(*args, **kwargs)
        webhook_read.set()
        assert api_refunded.wait(30)
        return found

    monkeypatch.setattr(stripe_intake, "_order_for", order_for_then_wait)
    results: dict[str, tuple[int, dict]] = {}

    def stripe_refund():
        # Stripe reports 80.00 of the 100.00 charge refunded in Stripe.
        charge = build_charge(id="ch_race", amount=10000, amount_refunded=8000, payment_intent="pi_race")
        payload = json.dumps(
            {
                "id": "evt_race",
                "object": "event",
                "type": "charge.refunded",
                "livemode": True,
                "created": int(time.time()),
                "data": {"object": charge},
            }
        ).encode()
        headers = {"Content-Type": "application/json", "Stripe-Signature": sign_payload(payload, SECRET)}
        results["stripe"] = _post(f"{live_server.url}/webhooks/stripe", payload, headers)

    def api_refund():
        assert webhook_read.wait(30)
        try:
            body = json.dumps({"order_id": "pi_race", "refund_id": "re_api", "amount_cents": 3000}).encode()
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {secret}"}
            results["api"] = _post(f"{live_server.url}/api/v1/refunds", body, headers)
        finally:
            api_refunded.set()

    threads = [threading.Thread(target=stripe_refund), threading.Thread(target=api_refund)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert results["api"][0] == 201, results["api"]
    assert results["stripe"][0] == 200 and results["stripe"][1]["result"].startswith("refunded 5000"), results
    # Both recorded: the API's 30.00, and Stripe's refund brought the order to the 80.00 Stripe reports.
    refunds = dict(Refund.objects.values_list("refund_id", "amount_cents"))
    assert refunds == {"re_api": 3000, "stripe:ch_race:8000": 5000}
    assert Event.objects.get(order_id="pi_race").refunded_cents == 8000 == sum(refunds.values())
    # The commission is reversed by exactly the refunded share of their sum: 20 % of 80.00.
    reversals = Commission.objects.filter(reverses=original).exclude(status="rejected")
    assert sum(r.amount_cents for r in reversals) == -1600
    assert sum(c.amount_cents for c in Commission.objects.exclude(status="rejected")) == 400
