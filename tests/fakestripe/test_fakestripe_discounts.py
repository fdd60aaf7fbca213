"""The fake Stripe's coupons and promotion codes, and the discounts of its sessions and invoices,
driven through the real stripe library."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stripe

from .server import FakeStripe, StripeAPIFailure


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe() as fs:
        yield fs


@pytest.fixture
def client(fake: FakeStripe) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_x", base_addresses={"api": fake.url}, max_network_retries=0)


def test_coupons_percent_and_amount(client):
    percent = client.v1.coupons.create(
        params={"percent_off": "20", "duration": "repeating", "duration_in_months": 3, "name": "Friends"}
    )
    assert percent.object == "coupon" and percent.percent_off == 20.0 and percent.duration_in_months == 3
    amount = client.v1.coupons.create(params={"amount_off": 500, "currency": "EUR", "duration": "once"})
    assert amount.amount_off == 500 and amount.currency == "eur" and amount.percent_off is None
    assert client.v1.coupons.retrieve(percent.id).name == "Friends"
    assert {c.id for c in client.v1.coupons.list().data} == {percent.id, amount.id}


@pytest.mark.parametrize(
    "params",
    [
        {"percent_off": "120", "duration": "once"},
        {"percent_off": "0", "duration": "once"},
        {"amount_off": 500, "duration": "once"},  # no currency
        {"percent_off": "10", "amount_off": 5, "currency": "usd"},
        {"percent_off": "10", "duration": "repeating"},  # no months
        {"percent_off": "10", "duration": "sometimes"},
    ],
)
def test_coupon_refuses_what_stripe_refuses(client, params):
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.coupons.create(params=params)


def test_promotion_codes_create_update_and_list_by_code(client, fake):
    coupon = client.v1.coupons.create(params={"percent_off": "20", "duration": "once"})
    promo = client.v1.promotion_codes.create(
        params={"code": "JO20", "promotion": {"type": "coupon", "coupon": coupon.id}, "metadata": {"k": "v"}}
    )
    assert promo.object == "promotion_code" and promo.active and promo.code == "JO20"
    assert promo.promotion.coupon == coupon.id and promo.metadata["k"] == "v"

    listed = client.v1.promotion_codes.list(params={"code": "jo20"}).data
    assert [p.id for p in listed] == [promo.id]
    assert client.v1.promotion_codes.list(params={"code": "OTHER"}).data == []

    off = client.v1.promotion_codes.update(promo.id, params={"active": False})
    assert off.active is False
    assert client.v1.promotion_codes.list(params={"active": True}).data == []
    assert client.v1.promotion_codes.retrieve(promo.id).active is False
    assert client.v1.promotion_codes.update(promo.id, params={"active": True}).active is True
    assert fake.promotion_codes[0]["active"] is True


def test_an_active_code_is_unique_in_the_account(client):
    coupon = client.v1.coupons.create(params={"percent_off": "20", "duration": "once"})
    params = {"code": "JO20", "promotion": {"type": "coupon", "coupon": coupon.id}}
    first = client.v1.promotion_codes.create(params=params)
    with pytest.raises(stripe.InvalidRequestError) as taken:
        client.v1.promotion_codes.create(params={**params, "code": "jo20"})
    assert taken.value.param == "code"
    # Once the first is inactive the code can be made again, and the first not reactivated.
    client.v1.promotion_codes.update(first.id, params={"active": False})
    client.v1.promotion_codes.create(params=params)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.promotion_codes.update(first.id, params={"active": True})


def test_promotion_code_needs_a_real_coupon_and_valid_characters(client):
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.promotion_codes.create(
            params={"code": "X", "promotion": {"type": "coupon", "coupon": "nope"}}
        )
    assert missing.value.code == "resource_missing"
    coupon = client.v1.coupons.create(params={"percent_off": "5", "duration": "forever"})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.promotion_codes.create(
            params={"code": "JO_20", "promotion": {"type": "coupon", "coupon": coupon.id}}
        )


def test_idempotent_promotion_code_create_returns_the_same_object(client, fake):
    coupon = client.v1.coupons.create(params={"percent_off": "20", "duration": "once"})
    params = {"code": "JO20", "promotion": {"type": "coupon", "coupon": coupon.id}}
    first = client.v1.promotion_codes.create(params=params, options={"idempotency_key": "k1"})
    again = client.v1.promotion_codes.create(params=params, options={"idempotency_key": "k1"})
    assert first.id == again.id and len(fake.promotion_codes) == 1


def test_checkout_session_and_invoice_carry_the_discount(client, fake):
    coupon = client.v1.coupons.create(
        params={"percent_off": "20", "duration": "repeating", "duration_in_months": 3}
    )
    promo = client.v1.promotion_codes.create(
        params={"code": "JO20", "promotion": {"type": "coupon", "coupon": coupon.id}}
    )
    session = fake.checkout_session_with_discount(
        promotion_code=promo.id, amount_subtotal=5000, customer="cus_1"
    )
    assert session["amount_total"] == 4000 and session["amount_subtotal"] == 5000
    assert session["discounts"] == [{"coupon": coupon.id, "promotion_code": promo.id}]
    assert session["total_details"]["amount_discount"] == 1000
    # It parses as the library's own object.
    parsed = stripe.checkout.Session.construct_from(session, "sk_test_x")
    assert parsed.discounts[0].promotion_code == promo.id and parsed.total_details.amount_discount == 1000

    invoice = fake.invoice_with_discount(promotion_code=promo.id, subtotal=5000, customer="cus_1")
    assert invoice["amount_paid"] == 4000 and invoice["discounts"][0].startswith("di_")
    assert invoice["total_discount_amounts"] == [{"amount": 1000, "discount": invoice["discounts"][0]}]
    expanded = fake.invoice_with_discount(
        promotion_code=promo.id, subtotal=5000, customer="cus_1", expand=True
    )
    assert expanded["discounts"][0]["promotion_code"] == promo.id
    assert client.v1.promotion_codes.retrieve(promo.id).times_redeemed == 3

    client.v1.promotion_codes.update(promo.id, params={"active": False})
    with pytest.raises(StripeAPIFailure):
        fake.checkout_session_with_discount(promotion_code=promo.id, amount_subtotal=5000)


def test_amount_coupon_in_another_currency_is_refused_at_checkout(client, fake):
    coupon = client.v1.coupons.create(params={"amount_off": 500, "currency": "eur", "duration": "once"})
    promo = client.v1.promotion_codes.create(
        params={"code": "EUR5", "promotion": {"type": "coupon", "coupon": coupon.id}}
    )
    assert (
        fake.checkout_session_with_discount(promotion_code=promo.id, amount_subtotal=300, currency="eur")[
            "amount_total"
        ]
        == 0
    )
    with pytest.raises(StripeAPIFailure):
        fake.checkout_session_with_discount(promotion_code=promo.id, amount_subtotal=5000, currency="usd")
