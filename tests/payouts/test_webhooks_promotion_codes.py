"""Stripe sales that carry an affiliate's promotion code (issue 16, item 3): attributed without a
click, the customer bound for life, renewals paid to the same affiliate."""

import json

import pytest
from django.test import Client

from affiliates.models import PromotionCode
from affiliates.promotions import friend_reward_set
from commissions.models import Commission
from tests.factories import AffiliateFactory, CommissionRuleFactory
from tests.fakestripe import build_checkout_session, build_invoice
from tests.payouts.conftest import WEBHOOK_SECRET
from tracking.models import Event, Referral

pytestmark = pytest.mark.django_db


@pytest.fixture
def deliver(fake_stripe):
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
        fake_stripe.emit(event_type, obj)
        delivery = fake_stripe.deliveries[-1]
        assert delivery["status"] == 200, delivery
        return json.loads(delivery["body"])

    return send


@pytest.fixture
def provisioned(program, fake_stripe, django_capture_on_commit_callbacks):
    """A test-mode affiliate (the fake's events are test mode) with a 20 % reward's promotion code
    provisioned in the fake Stripe, and a 20 % commission rule."""
    jo = AffiliateFactory(program=program, code="JO", name="Jo Doe", livemode=False)
    CommissionRuleFactory(program=program, rate_bp=2000, livemode=False)
    with django_capture_on_commit_callbacks(execute=True):
        friend_reward_set(
            program=program, group=None, actor=None, kind="percent", percent_bp=2000, duration="forever"
        )
    row = PromotionCode.objects.get(affiliate=jo)
    assert row.stripe_id and row.stripe_active
    return jo, row


def test_checkout_with_promotion_code_and_no_click_is_attributed_and_renewals_follow(
    deliver, fake_stripe, provisioned
):
    jo, row = provisioned
    session = fake_stripe.checkout_session_with_discount(
        promotion_code=row.stripe_id,
        amount_subtotal=5000,
        customer="cus_promo",
        mode="subscription",
        subscription="sub_promo",
        invoice="in_first",
    )
    assert session["client_reference_id"] is None
    body = deliver("checkout.session.completed", session)
    assert body["result"].startswith("recorded"), body
    first = Event.objects.get(order_id="in_first")
    assert first.affiliate == jo and first.attribution == Event.Attribution.COUPON
    assert first.coupon_code == "JO" and first.amount_cents == 4000
    assert Referral.objects.get(customer_id="cus_promo").affiliate == jo
    commission = Commission.objects.get(event=first)
    assert commission.amount_cents == 800
    assert commission.inputs["attribution"] == "coupon"
    assert commission.inputs["attribution_detail"]["won"] == "promotion_code"

    # The renewal carries no discount id we can read (Stripe sends ids): the customer binding pays.
    renewal = fake_stripe.invoice_with_discount(
        promotion_code=row.stripe_id, subtotal=5000, customer="cus_promo", subscription="sub_promo"
    )
    deliver("invoice.paid", renewal)
    paid = Event.objects.get(order_id=renewal["id"])
    assert paid.affiliate == jo and paid.attribution == Event.Attribution.CUSTOMER
    assert Commission.objects.get(event=paid).amount_cents == 800
    # A renewal without any discount pays the same affiliate too.
    deliver("invoice.paid", build_invoice(customer="cus_promo", amount_paid=5000, subscription="sub_promo"))
    assert Commission.objects.filter(affiliate=jo).count() == 3


def test_first_invoice_with_an_expanded_discount_binds_the_customer(deliver, fake_stripe, provisioned):
    jo, row = provisioned
    invoice = fake_stripe.invoice_with_discount(
        promotion_code=row.stripe_id, subtotal=10000, customer="cus_inv", expand=True
    )
    deliver("invoice.paid", invoice)
    event = Event.objects.get(order_id=invoice["id"])
    assert event.affiliate == jo and event.attribution == Event.Attribution.COUPON
    assert Referral.objects.get(customer_id="cus_inv").affiliate == jo


def test_a_foreign_promotion_code_and_no_click_is_ignored(deliver, fake_stripe, provisioned):
    coupon = fake_stripe.coupons
    assert coupon
    session = build_checkout_session(
        customer="cus_x",
        amount_total=4000,
        payment_intent="pi_x",
        discounts=[{"coupon": next(iter(coupon)), "promotion_code": "promo_notours"}],
    )
    body = deliver("checkout.session.completed", session)
    assert body["result"].startswith("ignored")
    assert not Event.objects.exists()


def test_click_and_code_disagree_last_click_gives_the_code(deliver, fake_stripe, provisioned, program):
    from django.utils import timezone

    from tests.factories import ClickFactory

    jo, row = provisioned
    other = AffiliateFactory(program=program, code="ANN", livemode=False)
    ClickFactory(affiliate=other, visitor_id="visitor-ann-1", created_at=timezone.now())
    session = fake_stripe.checkout_session_with_discount(
        promotion_code=row.stripe_id,
        amount_subtotal=5000,
        customer="cus_both",
        payment_intent="pi_both",
        client_reference_id="visitor-ann-1",
    )
    deliver("checkout.session.completed", session)
    event = Event.objects.get(order_id="pi_both")
    assert event.affiliate == jo
    detail = Commission.objects.get(event=event).inputs["attribution_detail"]
    assert detail["won"] == "promotion_code" and detail["click_affiliate"] == other.public_id
    assert "last click" in detail["why"]
