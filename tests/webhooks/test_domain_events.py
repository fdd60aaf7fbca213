"""The domain's changes beyond conversions become messages: approvals, reversals, payouts."""

from datetime import timedelta

import pytest
from django.utils import timezone

from commissions.services import approve_due_commissions, refund_apply
from payouts.services import payout_fail, payout_mark_paid, payouts_create
from refapp.models import Actor
from tests.factories import AffiliateFactory, CommissionFactory
from webhooks.models import WebhookMessage

from .helpers import make_endpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint(program, settings):
    settings.REFAPP_WEBHOOKS_ALLOW_PRIVATE = True
    return make_endpoint(program, "http://127.0.0.1:9/all")


def _types(endpoint):
    return [m.event_type for m in WebhookMessage.objects.filter(endpoint=endpoint).order_by("pk")]


def test_hourly_approvals_and_a_refund_write_their_messages(
    endpoint, api_client, program, affiliate, sale_rule
):
    sale = {"event": "sale", "order_id": "O-1", "referral_code": "JOHN", "amount_cents": 5000}
    commission_id = api_client.post("/api/v1/events", sale).json()["commissions"][0]["id"]
    WebhookMessage.objects.all().delete()
    assert approve_due_commissions(now=timezone.now() + timedelta(days=60)) == 1
    assert _types(endpoint) == ["commission.approved"]
    refund_apply(
        program=program,
        livemode=True,
        order_id="O-1",
        refund_id=None,
        amount_cents=None,
        actor=Actor.system(),
        now=timezone.now(),
    )
    assert _types(endpoint) == ["commission.approved", "commission.reversed"]
    payloads = [m.payload["data"] for m in WebhookMessage.objects.order_by("pk")]
    assert [p["id"] for p in payloads] == [commission_id, commission_id]
    assert [p["status"] for p in payloads] == ["approved", "rejected"]


def test_payouts_created_paid_and_failed_write_their_messages(endpoint, program):
    now = timezone.now()
    paypal = AffiliateFactory(program=program, code="PAY", payout_method="paypal", paypal_email="p@x.example")
    other = AffiliateFactory(program=program, code="PAL", payout_method="paypal", paypal_email="q@x.example")
    for who in (paypal, other):
        CommissionFactory(
            affiliate=who,
            amount_cents=10_000,
            status="approved",
            hold_until=now - timedelta(days=10),
            approved_at=now,
        )
    first, second = sorted(payouts_create(program=program, now=now), key=lambda p: p.pk)
    payout_mark_paid(payout=first, now=now, actor=Actor.system(), reference="PP-1")
    payout_fail(payout=second, reason="bounced", actor=Actor.system(), now=now)
    assert _types(endpoint) == ["payout.created", "payout.created", "payout.paid", "payout.failed"]
    paid = WebhookMessage.objects.get(event_type="payout.paid").payload["data"]
    assert paid["id"] == first.public_id and paid["status"] == "paid" and paid["reference"] == "PP-1"


def test_disabled_endpoints_are_left_out_of_the_sweep(endpoint, program):
    from affiliates.services import affiliate_create
    from webhooks.tasks import sweep_due_messages

    affiliate_create(
        program=program, email="a@x.example", name="A", code=None, status="active", group=None, actor=None
    )
    assert sweep_due_messages() == 1
    endpoint.is_active = False
    endpoint.save()
    assert sweep_due_messages() == 0
