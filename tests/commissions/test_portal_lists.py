import pytest
import time_machine
from django.utils import timezone

from commissions.models import Commission
from commissions.services import commission_set_status
from refapp.models import Actor
from tests.factories import CommissionFactory, CommissionRuleFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def sale(api_client, sale_rule):
    def make(order_id, code="JOHN", amount_cents=10000, client=None):
        body = {"event": "sale", "order_id": order_id, "referral_code": code, "amount_cents": amount_cents}
        response = (client or api_client).post("/api/v1/events", body)
        assert response.status_code == 201, response.content
        return response.json()

    return make


# --- conversions ------------------------------------------------------------------------------


def test_conversions_list_the_affiliates_own_events(portal_client, other_portal_client, sale):
    john = sale("A")
    mary = sale("B", code="MARY", amount_cents=4000)
    response = portal_client.get("/portal/conversions/")
    content = response.content.decode()
    assert response.status_code == 200
    assert john["id"] in content and mary["id"] not in content
    assert "100.00 USD" in content and "20.00 USD" in content and "Referral code" in content
    other = other_portal_client.get("/portal/conversions/").content.decode()
    assert mary["id"] in other and john["id"] not in other


def test_conversions_show_refunds(portal_client, sale, api_client):
    event = sale("A")
    api_client.post("/api/v1/refunds", {"order_id": "A", "refund_id": "r1", "amount_cents": 2500})
    content = portal_client.get("/portal/conversions/").content.decode()
    assert event["id"] in content and "75.00 USD" in content and "25.00 USD refunded" in content


def test_test_mode_conversions_are_hidden(portal_client, sale, test_api_client):
    live = sale("A")
    test = sale("T", client=test_api_client)
    content = portal_client.get("/portal/conversions/").content.decode()
    assert live["id"] in content and test["id"] not in content


def test_conversions_paginate_with_htmx_partial(portal_client, sale):
    for i in range(26):
        sale(f"O{i}")
    first = portal_client.get("/portal/conversions/").content.decode()
    assert first.count("data-event=") == 25 and "Page 1 of 2" in first
    assert 'href="?page=2"' in first and 'hx-get="?page=2"' in first
    second = portal_client.get("/portal/conversions/?page=2", **HTMX).content.decode()
    assert second.lstrip().startswith('<div id="conversions">') and second.count("data-event=") == 1


def test_conversions_empty_state(portal_client, affiliate):
    assert b"No conversions yet" in portal_client.get("/portal/conversions/").content


def test_conversions_anonymous_redirects_to_login(client, db):
    assert client.get("/portal/conversions/")["Location"].startswith(
        "/portal/login/?next=%2Fportal%2Fconversions%2F"
    )


# --- commissions ------------------------------------------------------------------------------


def test_commissions_explain_each_amount(portal_client, sale):
    with time_machine.travel("2026-05-10T12:00:00Z", tick=False):
        body = sale("A")
    content = portal_client.get("/portal/commissions/").content.decode()
    commission_id = body["commissions"][0]["id"]
    assert f'data-commission="{commission_id}"' in content
    assert (
        "20.00 USD = 20 % of 100.00 USD, rounded half up, for a sale attributed through your referral code."
        in content
    )
    assert "Unlocks on 2026-06-09." in content and 'data-label="Unlocks">2026-06-09</td>' in content
    assert "Rule: 20 % of sale" in content


def test_rejected_commission_says_why(portal_client, affiliate, sale, program):
    sale("A")
    commission = Commission.objects.get()
    commission_set_status(
        commission=commission,
        status="rejected",
        reason="order cancelled by the customer",
        actor=Actor("user:1"),
        now=timezone.now(),
    )
    content = portal_client.get("/portal/commissions/?status=rejected").content.decode()
    assert "Rejected: order cancelled by the customer." in content
    assert commission.public_id in content
    assert (
        commission.public_id not in portal_client.get("/portal/commissions/?status=pending").content.decode()
    )


def test_commissions_of_others_and_test_mode_are_hidden(portal_client, other_portal_client, sale, affiliate):
    john = sale("A")["commissions"][0]["id"]
    mary = sale("B", code="MARY")["commissions"][0]["id"]
    # A test event no longer pays a live affiliate; a test-mode row of John's (made before test
    # affiliates existed) must still stay out of his portal.
    test = CommissionFactory(affiliate=affiliate, livemode=False, order_id="T").public_id
    content = portal_client.get("/portal/commissions/").content.decode()
    assert john in content and mary not in content and test not in content
    other = other_portal_client.get("/portal/commissions/").content.decode()
    assert mary in other and john not in other


def test_commissions_filter_htmx_partial_and_pagination_keep_the_status(portal_client, program, sale):
    CommissionRuleFactory(program=program, event_name="sale", type="fixed", rate_bp=None, amount_cents=100)
    for i in range(13):
        sale(f"O{i}")  # two commissions each: 20 % plus a fixed 1.00
    response = portal_client.get("/portal/commissions/?status=pending", **HTMX)
    content = response.content.decode()
    assert content.lstrip().startswith('<div id="commissions">')
    assert content.count("data-commission=") == 25
    assert 'href="?status=pending&amp;page=2"' in content


def test_unknown_status_filter_shows_everything(portal_client, sale):
    sale("A")
    assert b"data-commission=" in portal_client.get("/portal/commissions/?status=bogus").content


def test_commissions_anonymous_redirects_to_login(client, db):
    assert client.get("/portal/commissions/")["Location"].startswith("/portal/login/")


# --- payouts ----------------------------------------------------------------------------------


def test_payouts_page_is_an_honest_empty_state_with_the_estimate(portal_client, sale):
    with time_machine.travel("2026-05-10T12:00:00Z", tick=False):
        sale("A")
        content = portal_client.get("/portal/payouts/").content.decode()
    assert "No payouts yet" in content
    assert "Next payout run: <strong>June 1, 2026</strong>" in content
    assert "50.00 USD more to reach the minimum payout of 50.00 USD" in content
    assert "payout method" in content  # none set yet


def test_payouts_page_of_another_affiliate_shows_their_balance(other_portal_client, sale):
    sale("A")
    content = other_portal_client.get("/portal/payouts/").content.decode()
    assert "20.00 USD" not in content


def test_payouts_anonymous_redirects_to_login(client, db):
    assert client.get("/portal/payouts/")["Location"].startswith("/portal/login/")
