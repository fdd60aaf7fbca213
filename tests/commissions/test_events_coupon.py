"""POST /api/v1/events with coupon_code (issue 16, item 3): merchants outside Stripe report the
promotion code used at checkout; it attributes the sale, binds the customer, and when a click names
someone else the program's attribution model decides, with the reason on the commission."""

from datetime import timedelta

import pytest
from django.utils import timezone

from affiliates.promotions import promotion_code_set
from commissions.models import Commission
from tests.factories import AffiliateFactory, ClickFactory
from tracking.models import Event, Referral

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("event_write_path")]


def sale(**extra):
    return {"event": "sale", "order_id": "ORD-C1", "amount_cents": 10000, "currency": "USD", **extra}


def test_the_affiliates_own_code_is_their_promotion_code(api_client, affiliate, sale_rule):
    response = api_client.post("/api/v1/events", sale(coupon_code="john", customer_id="cus_c1"))
    assert response.status_code == 201
    body = response.json()
    assert body["attributed"] is True and body["affiliate"]["id"] == affiliate.public_id
    event = Event.objects.get(public_id=body["id"])
    assert event.attribution == "coupon" and event.coupon_code == "john"
    assert Referral.objects.get(customer_id="cus_c1").affiliate == affiliate
    # Bound for life: the next sale of the customer needs no code.
    later = api_client.post("/api/v1/events", sale(order_id="ORD-C2", customer_id="cus_c1")).json()
    assert later["affiliate"]["id"] == affiliate.public_id


def test_an_edited_promotion_code_attributes_and_the_old_default_no_longer_does(
    api_client, affiliate, sale_rule
):
    promotion_code_set(affiliate=affiliate, code="JOHN-20", actor=None)
    assert api_client.post("/api/v1/events", sale(coupon_code="john-20")).json()["attributed"] is True
    assert (
        api_client.post("/api/v1/events", sale(order_id="ORD-C3", coupon_code="JOHN")).json()["attributed"]
        is False
    )


def test_unknown_or_suspended_code_is_stored_unattributed(api_client, affiliate, sale_rule, program):
    assert api_client.post("/api/v1/events", sale(coupon_code="NOBODY")).json()["attributed"] is False
    AffiliateFactory(program=program, code="GONE", status="suspended")
    assert (
        api_client.post("/api/v1/events", sale(order_id="ORD-C4", coupon_code="GONE")).json()["attributed"]
        is False
    )


@pytest.mark.parametrize(
    ("model", "winner", "why"),
    [("last_click", "code", "last click"), ("first_click", "click", "first click")],
)
def test_click_and_code_disagree_the_attribution_model_decides(
    api_client, affiliate, sale_rule, program, model, winner, why
):
    program.attribution_model = model
    program.save()
    other = AffiliateFactory(program=program, code="ANN")
    ClickFactory(
        affiliate=other, visitor_id="visitor-disagree", created_at=timezone.now() - timedelta(hours=2)
    )
    body = api_client.post("/api/v1/events", sale(coupon_code="JOHN", visitor_id="visitor-disagree")).json()
    expected = affiliate if winner == "code" else other
    assert body["affiliate"]["id"] == expected.public_id
    commission = Commission.objects.get(public_id=body["commissions"][0]["id"])
    detail = commission.inputs["attribution_detail"]
    assert detail["won"] == ("promotion_code" if winner == "code" else "click")
    assert detail["promotion_code_affiliate"] == affiliate.public_id
    assert detail["click_affiliate"] == other.public_id and why in detail["why"]
    listed = api_client.get("/api/v1/commissions?order_id=ORD-C1").json()["data"][0]
    assert why in listed["explanation"]


def test_coupon_code_too_long_is_a_field_error(api_client, affiliate, sale_rule):
    response = api_client.post("/api/v1/events", sale(coupon_code="X" * 65))
    assert response.status_code == 400
    assert "coupon_code" in response.json()["error"]["fields"]
    assert not Event.objects.exists()
