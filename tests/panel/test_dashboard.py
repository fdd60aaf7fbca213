"""The panel dashboard: its charts as data (this period, the previous one, the breakdowns by
campaign, sub id and source) and the needs-attention strip."""

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from affiliates.models import Affiliate
from tests.factories import (
    AffiliateFactory,
    ClickFactory,
    CommissionFactory,
    EventFactory,
    FraudFlagFactory,
    PayoutFactory,
    webhook_endpoint_with_failed_delivery,
)
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db

PAGE = "/panel/p/acme/"
BREAKDOWN = "/panel/p/acme/breakdown/"


def charts_on(html: str) -> dict[str, dict]:
    """Every chart's JSON on a page, by the id of its script element."""
    found = re.findall(r'<script id="([^"]+)" type="application/json">(.*?)</script>', html, re.S)
    return {name: json.loads(body) for name, body in found}


@pytest.fixture
def two_weeks(affiliate):
    """The last 7 days: 3 clicks and a 100.00 sale through one of them, today. The 7 days before
    them: a click and a 40.00 sale, 8 days ago."""
    now = timezone.now()
    today = now.replace(hour=0, minute=5, second=0, microsecond=0)
    for _ in range(2):
        ClickFactory(
            affiliate=affiliate, created_at=today, utm_campaign="spring", sub_id="yt-1", utm_source="youtube"
        )
    ClickFactory(affiliate=affiliate, created_at=today - timedelta(days=8), utm_campaign="winter")
    click = ClickFactory(
        affiliate=affiliate, created_at=today, utm_campaign="spring", sub_id="yt-1", utm_source="youtube"
    )
    sale = EventFactory(
        affiliate=affiliate, occurred_at=today, click=click, attribution="click", amount_cents=10000
    )
    CommissionFactory(affiliate=affiliate, created_at=today, event=sale, amount_cents=2000)
    old = EventFactory(affiliate=affiliate, occurred_at=today - timedelta(days=8), amount_cents=4000)
    CommissionFactory(affiliate=affiliate, created_at=today - timedelta(days=8), event=old, amount_cents=800)
    return today.date()


def test_daily_charts_are_one_measure_each_with_the_previous_period(staff_client, two_weeks):
    today = two_weeks
    html = staff_client.get(PAGE + "?range=7").content.decode()
    charts = charts_on(html)
    clicks, conversions, revenue = (
        charts[f"dashboard-chart-{k}"] for k in ("clicks", "conversions", "revenue_cents")
    )
    days = [(today - timedelta(days=6 - i)).isoformat() for i in range(7)]
    before = [(today - timedelta(days=13 - i)).isoformat() for i in range(7)]
    assert clicks["labels"] == days and clicks["unit"] == "count"
    this, previous = clicks["series"]
    assert this["data"] == [0, 0, 0, 0, 0, 0, 3] and "previous" not in this
    assert previous["previous"] is True and previous["labels"] == before
    assert previous["data"] == [0, 0, 0, 0, 0, 1, 0]  # 8 days ago is the 6th of the 7 days before
    assert conversions["series"][0]["data"][-1] == 1 and sum(conversions["series"][1]["data"]) == 1
    # Money as exact decimal strings, with its unit and currency for the tooltip.
    assert (revenue["unit"], revenue["currency"]) == ("money", "USD")
    assert revenue["series"][0]["data"][-1] == "100.00" and "40.00" in revenue["series"][1]["data"]
    # Stat tiles never break an amount from its currency.
    assert 'data-stat="revenue">100.00\u00a0USD<' in html


def test_breakdowns_by_campaign_sub_id_and_source(staff_client, two_weeks):
    response = staff_client.get(BREAKDOWN + "?range=7", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="breakdown">')
    charts = charts_on(html)
    by = {chart["group_by"]: chart for chart in charts.values()}
    assert set(by) == {"campaign", "sub_id", "source"}
    assert by["campaign"]["labels"] == ["spring"]  # winter's click is before the range
    assert by["campaign"]["series"][0]["data"] == [1]
    assert by["campaign"]["notes"] == [["Clicks: 3", "Conversions: 1", "Revenue: 100.00 USD"]]
    assert by["sub_id"]["labels"] == ["yt-1"] and by["source"]["labels"] == ["youtube"]
    assert all(chart["horizontal"] and chart["unit"] == "count" for chart in by.values())


def test_the_dashboard_loads_its_breakdown_with_the_same_range(staff_client, two_weeks):
    html = staff_client.get(PAGE + "?range=7").content.decode()
    assert 'hx-get="/panel/p/acme/breakdown/?range=7"' in html


def test_breakdown_over_a_too_long_range_says_so(staff_client, db):
    response = staff_client.get(BREAKDOWN + "?range=custom&start=2024-01-01&end=2025-12-31")
    html = response.content.decode()
    assert "Choose at most 366 days" in html and "application/json" not in html


def test_breakdown_answers_its_staff_only(staff_client, other_staff_client, client):
    assert staff_client.get(BREAKDOWN).status_code == 200
    assert other_staff_client.get(BREAKDOWN).status_code == 404
    assert client.get(BREAKDOWN).status_code == 302


def test_needs_attention_counts_and_links(staff_client, program, affiliate):
    AffiliateFactory(program=program, status=Affiliate.Status.PENDING)
    AffiliateFactory(program=program, status=Affiliate.Status.PENDING)
    FraudFlagFactory(affiliate=affiliate)
    PayoutFactory(affiliate=affiliate, status="failed")
    endpoint, _ = webhook_endpoint_with_failed_delivery(program)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now())
    html = staff_client.get(PAGE).content.decode()
    strip = re.search(r"<nav class=\"attention\".*?</nav>", html, re.S).group(0)
    items = re.findall(
        r'<a href="([^"]+)" data-attention-item="(\w+)"><span class="count">(\d+)</span> ([^<]+)</a>', strip
    )
    assert items == [
        ("/panel/p/acme/affiliates/?status=pending", "applications", "2", "pending applications"),
        ("/panel/p/acme/fraud/", "fraud", "1", "open fraud flag"),
        ("/panel/p/acme/payouts/?status=failed", "payouts", "1", "failed payout"),
        ("/panel/p/acme/webhooks/", "webhooks", "1", "failing webhook endpoint"),
    ]
    # Each link leads to a page that answers.
    for url, *_ in items:
        assert staff_client.get(url).status_code == 200


def test_needs_attention_leaves_out_zeros_and_is_hidden_when_all_are_zero(staff_client, program, affiliate):
    assert "data-attention" not in staff_client.get(PAGE).content.decode()
    PayoutFactory(affiliate=affiliate, status="paid")  # nothing to do about a paid payout
    AffiliateFactory(program=program, status=Affiliate.Status.ACTIVE)
    assert "data-attention" not in staff_client.get(PAGE).content.decode()
    AffiliateFactory(program=program, status=Affiliate.Status.PENDING)
    html = staff_client.get(PAGE).content.decode()
    assert 'data-attention-item="applications"' in html and 'data-attention-item="fraud"' not in html


def test_another_programs_queue_does_not_show(staff_client, other_staff_client, program):
    from affiliates.models import Program

    globex = Program.objects.get(slug="globex")
    AffiliateFactory(program=globex, status=Affiliate.Status.PENDING)
    assert "data-attention" not in staff_client.get(PAGE).content.decode()
