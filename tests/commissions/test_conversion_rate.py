"""The conversion rate: visitors who converted through their click ÷ unique visitors, the same on
every page.

The issue's example: an affiliate whose three visitors brought one clicked sale, that customer's
renewal and a sale by referral code has three conversions for three visitors; dividing every
conversion by visitors read 100 % (here a fourth conversion, the same visitor buying again, would
read 133 %). One visitor converted through a click: 33.33 %.
"""

import re
from datetime import date
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from commissions import stats
from tests.factories import CommissionRuleFactory
from tracking.models import Event

pytestmark = pytest.mark.django_db

UA = {"HTTP_USER_AGENT": "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 Safari/605.1.15"}


def visit() -> str:
    """A new visitor clicks John's tracked link; the visitor id the merchant's page receives."""
    response = Client().get("/go/acme/JOHN", **UA)
    assert response.status_code == 302
    return parse_qs(urlsplit(response["Location"]).query)["refapp_vid"][0]


def stat(response, name: str) -> str:
    match = re.search(rf'data-stat="{name}"[^>]*>([^<]*)<', response.content.decode())
    assert match, name
    return match.group(1)


@pytest.fixture
def one_clicked_sale_of_three(api_client, affiliate, sale_rule, program):
    CommissionRuleFactory(program=program, event_name="renewal", type="percent", rate_bp=1000)
    first, _second, _third = visit(), visit(), visit()

    def event(body):
        response = api_client.post("/api/v1/events", body)
        assert response.status_code == 201, response.content
        return response.json()

    # 1. the first visitor buys: attributed through their click
    event(
        {
            "event": "sale",
            "order_id": "S1",
            "visitor_id": first,
            "customer_id": "cus_1",
            "amount_cents": 10000,
        }
    )
    # 2. that customer renews: attributed to the referred customer, not a click
    event({"event": "renewal", "order_id": "R1", "customer_id": "cus_1", "amount_cents": 10000})
    # 3. someone else buys with John's code: no click behind it
    event(
        {
            "event": "sale",
            "order_id": "S2",
            "referral_code": "JOHN",
            "customer_id": "cus_2",
            "amount_cents": 5000,
        }
    )
    # 4. the first visitor buys again without a customer id: the same click, the same customer
    event({"event": "sale", "order_id": "S3", "visitor_id": first, "amount_cents": 2000})
    attributions = dict(Event.objects.values_list("order_id", "attribution"))
    assert attributions == {"S1": "click", "R1": "customer", "S2": "code", "S3": "click"}
    return affiliate


def test_one_clicked_sale_of_three_conversions_is_not_100_percent(one_clicked_sale_of_three, program):
    today = stats.parse_range({}, timezone.now().date())[0]
    summary = stats.affiliate_summary(one_clicked_sale_of_three, today)
    assert (summary["visitors"], summary["conversions"]) == (3, 4)
    assert summary["converted_visitors"] == 1
    assert summary["conversion_rate"] == 33.33  # 1 visitor converted through a click / 3 visitors
    program_summary = stats.program_summary(program, today)
    assert (program_summary["converted_visitors"], program_summary["conversion_rate"]) == (1, 33.33)


def test_the_rate_and_its_definition_are_the_same_on_every_page(
    one_clicked_sale_of_three, staff_client, portal_client, affiliate
):
    pages = [
        staff_client.get("/panel/p/acme/"),
        staff_client.get(f"/panel/p/acme/affiliates/{affiliate.public_id}/"),
        portal_client.get("/portal/"),
    ]
    for response in pages:
        assert response.status_code == 200
        assert stat(response, "rate") == "33.33&nbsp;%"
        assert stats.CONVERSION_RATE_HELP in response.content.decode()


def test_a_customer_counts_in_the_range_of_their_first_conversion_only(
    api_client, affiliate, sale_rule, program
):
    def sale(order_id, visitor=""):
        body = {"event": "sale", "order_id": order_id, "customer_id": "cus_9", "amount_cents": 100}
        response = api_client.post("/api/v1/events", body | ({"visitor_id": visitor} if visitor else {}))
        assert response.status_code == 201, response.content

    with time_machine.travel("2026-11-02 12:00Z"):
        sale("E1", visit())
    with time_machine.travel("2026-11-20 12:00Z"):
        sale("E2")  # the same customer buys again: a conversion, not a second won visitor
    early, late = (
        stats.DateRange(date(2026, 11, 1), date(2026, 11, 5)),
        stats.DateRange(date(2026, 11, 6), date(2026, 11, 30)),
    )
    assert stats.converted_visitors(early, program=program) == 1
    assert stats.converted_visitors(late, program=program) == 0
    assert stats.program_summary(program, late)["conversions"] == 1
