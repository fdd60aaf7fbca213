import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from affiliates.models import Affiliate
from commissions.models import Commission
from commissions.services import approve_due_commissions
from payouts.models import StripeEvent
from tests.factories import AffiliateFactory, ClickFactory, CommissionRuleFactory
from tests.fakestripe import build_charge, build_checkout_session, build_dispute, build_invoice, sign_payload
from tests.payouts.conftest import WEBHOOK_SECRET
from tracking.models import Event, Referral

pytestmark = pytest.mark.django_db


@pytest.fixture
def deliver(fake_stripe):
    """Emit an event at the fake Stripe and deliver it, signed, to our endpoint via the test client."""
    client = Client()

    def target(payload, headers):
        response = client.post(
            "/webhooks/stripe",
            data=payload,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=headers["Stripe-Signature"],
        )
        return response.status_code, response.content

    fake_stripe.set_webhook(target, WEBHOOK_SECRET)

    def send(event_type, obj):
        event = fake_stripe.emit(event_type, obj)
        delivery = fake_stripe.deliveries[-1]
        assert delivery["status"] == 200, delivery
        return event, json.loads(delivery["body"])

    return send


@pytest.fixture
def referred_visitor(program):
    # The fake Stripe sends test-mode events (livemode false): they are test events, attributed to
    # test affiliates only and paid by test rules only.
    affiliate = AffiliateFactory(program=program, code="JOHN", livemode=False)
    CommissionRuleFactory(program=program, rate_bp=2000, livemode=False)
    ClickFactory(
        affiliate=affiliate, visitor_id="visitor-stripe-1", created_at=timezone.now() - timedelta(hours=1)
    )
    return affiliate


def test_checkout_payment_records_sale_and_ties_customer(deliver, referred_visitor):
    session = build_checkout_session(
        client_reference_id="visitor-stripe-1", customer="cus_1", amount_total=5000, payment_intent="pi_1"
    )
    _, body = deliver("checkout.session.completed", session)
    assert body["result"].startswith("recorded")
    event = Event.objects.get(order_id="pi_1")
    assert event.affiliate == referred_visitor and event.source == "stripe" and event.amount_cents == 5000
    assert Referral.objects.get(customer_id="cus_1").affiliate == referred_visitor
    assert Commission.objects.get().amount_cents == 1000


def test_subscription_checkout_then_invoices_pay_recurring(deliver, referred_visitor):
    deliver(
        "checkout.session.completed",
        build_checkout_session(
            client_reference_id="visitor-stripe-1",
            customer="cus_2",
            amount_total=3000,
            mode="subscription",
            subscription="sub_1",
            invoice="in_first",
        ),
    )
    # the first invoice's own event arrives after the checkout: a replay, not a second sale
    _, first = deliver(
        "invoice.paid",
        build_invoice(
            id="in_first", customer="cus_2", amount_paid=3000, billing_reason="subscription_create"
        ),
    )
    assert first["result"].startswith("already recorded")
    _, renewal = deliver(
        "invoice.paid", build_invoice(id="in_second", customer="cus_2", amount_paid=3000, charge="ch_2")
    )
    assert renewal["result"].startswith("recorded")
    assert sorted(Event.objects.values_list("order_id", flat=True)) == ["in_first", "in_second"]
    assert list(Commission.objects.values_list("amount_cents", flat=True)) == [600, 600]


def test_invoice_of_unreferred_customer_is_ignored(deliver, referred_visitor):
    _, body = deliver("invoice.paid", build_invoice(customer="cus_stranger", amount_paid=9900))
    assert body["result"] == "ignored: customer was not referred" and not Event.objects.exists()


def test_charge_refunded_partial_then_full(deliver, referred_visitor):
    deliver(
        "checkout.session.completed",
        build_checkout_session(
            client_reference_id="visitor-stripe-1",
            customer="cus_3",
            amount_total=10000,
            payment_intent="pi_3",
        ),
    )
    _, partial = deliver(
        "charge.refunded", build_charge(id="ch_3", amount=10000, amount_refunded=2500, payment_intent="pi_3")
    )
    assert partial["result"].startswith("refunded 2500")
    assert Commission.objects.get(kind="reversal").amount_cents == -500
    _, full = deliver(
        "charge.refunded", build_charge(id="ch_3", amount=10000, amount_refunded=10000, payment_intent="pi_3")
    )
    assert full["result"].startswith("refunded 7500")
    assert set(Commission.objects.values_list("status", flat=True)) == {"rejected"}


def test_dispute_holds_then_won_releases(deliver, referred_visitor):
    deliver(
        "checkout.session.completed",
        build_checkout_session(
            client_reference_id="visitor-stripe-1",
            customer="cus_4",
            amount_total=10000,
            payment_intent="pi_4",
        ),
    )
    commission = Commission.objects.get()
    deliver(
        "charge.dispute.created", build_dispute(id="dp_1", charge="ch_4", amount=10000, payment_intent="pi_4")
    )
    assert approve_due_commissions(now=commission.hold_until + timedelta(days=1)) == 0  # held
    deliver(
        "charge.dispute.closed",
        build_dispute(id="dp_1", charge="ch_4", amount=10000, payment_intent="pi_4", status="won"),
    )
    assert approve_due_commissions(now=commission.hold_until + timedelta(days=1)) == 1


def test_lost_dispute_reverses(deliver, referred_visitor):
    deliver(
        "checkout.session.completed",
        build_checkout_session(
            client_reference_id="visitor-stripe-1",
            customer="cus_5",
            amount_total=10000,
            payment_intent="pi_5",
        ),
    )
    deliver(
        "charge.dispute.created", build_dispute(id="dp_2", charge="ch_5", amount=10000, payment_intent="pi_5")
    )
    deliver(
        "charge.dispute.closed",
        build_dispute(id="dp_2", charge="ch_5", amount=10000, payment_intent="pi_5", status="lost"),
    )
    commission = Commission.objects.get()
    assert commission.status == "rejected" and "dispute" in commission.status_reason


def test_account_updated_tracks_payouts_enabled(deliver, program, fake_stripe):
    affiliate = AffiliateFactory(program=program, stripe_account_id="acct_9", payout_method="stripe")
    fake_stripe.set_account("acct_9", payouts_enabled=False)
    fake_stripe.set_webhook(fake_stripe._webhook_target, WEBHOOK_SECRET)
    deliver("account.updated", {"id": "acct_9", "object": "account", "payouts_enabled": True})
    assert Affiliate.objects.get(pk=affiliate.pk).stripe_payouts_enabled


def test_account_updated_is_audited_with_stripe_as_actor_once(deliver, program, fake_stripe):
    from refapp.models import AuditLog

    affiliate = AffiliateFactory(program=program, stripe_account_id="acct_10", payout_method="stripe")
    fake_stripe.set_account("acct_10", payouts_enabled=False)
    account = {"id": "acct_10", "object": "account", "payouts_enabled": True}
    _, first = deliver("account.updated", account)
    _, again = deliver("account.updated", account)  # a second event saying the same: no change
    assert first["result"].endswith("1 changed") and again["result"].endswith("0 changed")
    [row] = AuditLog.objects.filter(object_type="affiliates.affiliate", object_id=affiliate.public_id)
    assert row.action == "affiliate.stripe_payouts_enabled"
    assert row.actor_label == "stripe" and row.actor_id is None and row.program_id == program.pk
    assert row.data["stripe_account"] == "acct_10" and row.data["payouts_enabled"] is True

    deliver("account.updated", {**account, "payouts_enabled": False})
    assert not Affiliate.objects.get(pk=affiliate.pk).stripe_payouts_enabled
    assert AuditLog.objects.filter(
        object_id=affiliate.public_id, action="affiliate.stripe_payouts_disabled", actor_label="stripe"
    ).exists()


def test_event_delivered_twice_is_processed_once(deliver, fake_stripe, referred_visitor):
    event, _ = deliver(
        "checkout.session.completed",
        build_checkout_session(
            client_reference_id="visitor-stripe-1", customer="cus_6", amount_total=5000, payment_intent="pi_6"
        ),
    )
    status, body = fake_stripe.deliver(event)
    assert status == 200 and json.loads(body)["duplicate"] is True
    assert Event.objects.count() == 1 and Commission.objects.count() == 1
    assert StripeEvent.objects.filter(event_id=event["id"]).count() == 1


def test_unknown_type_is_acknowledged_and_ignored(deliver, program):
    _, body = deliver("customer.created", {"id": "cus_x", "object": "customer"})
    assert body["result"] == "ignored: unhandled type"


def test_bad_signature_is_400_and_records_nothing(client, fake_stripe, program):
    payload = json.dumps({"id": "evt_forged", "type": "invoice.paid", "data": {"object": {}}}).encode()
    header = sign_payload(payload, "whsec_wrong")
    response = client.post(
        "/webhooks/stripe", data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_signature"
    assert client.post("/webhooks/stripe", data=b"{}", content_type="application/json").status_code == 400
    assert not StripeEvent.objects.exists()


def test_unconfigured_webhook_secret_is_503(client, settings, db):
    settings.STRIPE_WEBHOOK_SECRET = ""
    assert client.post("/webhooks/stripe", data=b"{}", content_type="application/json").status_code == 503
