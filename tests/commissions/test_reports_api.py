"""GET /api/v1/reports/summary: the figures per day, affiliate, campaign, sub id and source, in
the key's program and mode, and 400 for a bad range or grouping."""

from datetime import timedelta

import pytest
from django.utils import timezone

from affiliates.services import apikey_create
from tests.conftest import ApiClient
from tests.factories import AffiliateFactory, ClickFactory, CommissionFactory, EventFactory, ProgramFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def noon():
    return timezone.now().replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=3)


def _report(client, first, last, group_by=None):
    query = f"from={first.date().isoformat()}&to={last.date().isoformat()}"
    response = client.get(f"/api/v1/reports/summary?{query}" + (f"&group_by={group_by}" if group_by else ""))
    assert response.status_code == 200, response.content
    return response.json()


def _rows(report):
    return {row["key"]: row for row in report["data"]}


def test_by_day_counts_clicks_visitors_conversions_revenue_and_commissions_by_status(
    api_client, affiliate, noon
):
    ClickFactory(affiliate=affiliate, created_at=noon, visitor_id="v1")
    ClickFactory(affiliate=affiliate, created_at=noon, visitor_id="v1")
    ClickFactory(affiliate=affiliate, created_at=noon, visitor_id="v2")
    CommissionFactory(affiliate=affiliate, created_at=noon, amount_cents=2000)
    CommissionFactory(affiliate=affiliate, created_at=noon, amount_cents=500, status="approved")
    CommissionFactory(affiliate=affiliate, created_at=noon, amount_cents=700, status="rejected")
    CommissionFactory(
        affiliate=affiliate, created_at=noon - timedelta(days=1), amount_cents=300, status="paid"
    )
    report = _report(api_client, noon - timedelta(days=1), noon)
    assert report["group_by"] == "day" and report["currency"] == "USD" and report["livemode"] is True
    rows = _rows(report)
    assert list(rows) == [(noon - timedelta(days=1)).date().isoformat(), noon.date().isoformat()]
    day = rows[noon.date().isoformat()]
    assert (day["clicks"], day["visitors"], day["conversions"], day["revenue_cents"]) == (3, 2, 3, 30_000)
    assert day["commissions"] == {
        "pending_cents": 2000,
        "approved_cents": 500,
        "processing_cents": 0,
        "paid_cents": 0,
        "rejected_cents": 700,
    }
    assert report["totals"]["commissions"]["paid_cents"] == 300 and report["totals"]["conversions"] == 4


def test_by_affiliate_names_each_affiliate(api_client, program, affiliate, noon):
    ann = AffiliateFactory(program=program, code="ANN", name="Ann")
    ClickFactory(affiliate=ann, created_at=noon)
    CommissionFactory(affiliate=affiliate, created_at=noon)
    rows = _rows(_report(api_client, noon, noon, "affiliate"))
    assert set(rows) == {affiliate.public_id, ann.public_id}
    assert rows[ann.public_id]["clicks"] == 1 and rows[ann.public_id]["label"] == "Ann (ANN)"
    assert rows[affiliate.public_id]["commissions"]["pending_cents"] == 2000


def test_by_campaign_follows_the_click_of_the_event_or_of_its_referral(api_client, affiliate, noon):
    spring = ClickFactory(affiliate=affiliate, created_at=noon, utm_campaign="spring")
    ClickFactory(affiliate=affiliate, created_at=noon, utm_campaign="spring", visitor_id="v2")
    event = EventFactory(
        affiliate=affiliate, occurred_at=noon, click=spring, attribution="click", amount_cents=5000
    )
    CommissionFactory(affiliate=affiliate, created_at=noon, event=event, amount_cents=1000)
    CommissionFactory(affiliate=affiliate, created_at=noon, amount_cents=400)  # by code: no campaign
    report = _report(api_client, noon, noon, "campaign")
    rows = _rows(report)
    assert (rows["spring"]["clicks"], rows["spring"]["visitors"], rows["spring"]["conversions"]) == (2, 2, 1)
    assert rows["spring"]["revenue_cents"] == 5000 and rows["spring"]["commissions"]["pending_cents"] == 1000
    assert rows[""]["label"] == "(none)" and rows[""]["commissions"]["pending_cents"] == 400
    assert report["totals"]["conversions"] == 2


def test_by_sub_id(api_client, affiliate, noon):
    ClickFactory(affiliate=affiliate, created_at=noon, sub_id="s-1")
    assert _rows(_report(api_client, noon, noon, "sub_id"))["s-1"]["clicks"] == 1


def test_source_is_utm_source_else_the_referrers_host(api_client, affiliate, noon):
    ClickFactory(affiliate=affiliate, created_at=noon, utm_source="newsletter", referrer="https://x.example/")
    ClickFactory(affiliate=affiliate, created_at=noon, referrer="https://Blog.Example/post/1?x=1")
    ClickFactory(affiliate=affiliate, created_at=noon, referrer="https://blog.example")
    ClickFactory(affiliate=affiliate, created_at=noon, referrer="not a url")
    rows = _rows(_report(api_client, noon, noon, "source"))
    assert {key: row["clicks"] for key, row in rows.items()} == {"newsletter": 1, "blog.example": 2, "": 1}


def test_test_key_reports_test_data_and_live_key_live_data(
    api_client, test_api_client, program, affiliate, noon
):
    tester = AffiliateFactory(program=program, livemode=False, code="TESTY")
    CommissionFactory(affiliate=affiliate, created_at=noon, amount_cents=2000)
    CommissionFactory(affiliate=tester, livemode=False, created_at=noon, amount_cents=900)
    ClickFactory(affiliate=tester, created_at=noon, utm_campaign="t")
    live = _report(api_client, noon, noon, "affiliate")
    test = _report(test_api_client, noon, noon, "affiliate")
    assert set(_rows(live)) == {affiliate.public_id} and set(_rows(test)) == {tester.public_id}
    assert test["livemode"] is False and test["totals"]["commissions"]["pending_cents"] == 900
    assert _report(test_api_client, noon, noon)["totals"]["clicks"] == 1
    assert "t" not in _rows(_report(api_client, noon, noon, "campaign"))


def test_another_programs_key_sees_none_of_it(program, affiliate, noon):
    CommissionFactory(affiliate=affiliate, created_at=noon)
    other = ApiClient(apikey_create(program=ProgramFactory(slug="other"), mode="live")[1])
    for group_by in ("day", "affiliate", "campaign"):
        assert _report(other, noon, noon, group_by)["totals"]["conversions"] == 0


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("to=2026-01-01", "from"),
        ("from=2026-01-01", "to"),
        ("from=2026-13-01&to=2026-12-01", "from"),
        ("from=2026-02-01&to=2026-01-01", "to"),
        ("from=2025-01-01&to=2026-01-02", "to"),
        ("from=2026-01-01&to=2026-01-02&group_by=country", "group_by"),
    ],
)
def test_a_bad_range_or_grouping_is_a_400(api_client, query, field):
    response = api_client.get(f"/api/v1/reports/summary?{query}")
    assert response.status_code == 400 and field in response.json()["error"]["fields"]


def test_a_full_year_is_allowed(api_client):
    assert api_client.get("/api/v1/reports/summary?from=2024-01-01&to=2024-12-31").status_code == 200


def test_without_a_key_is_401(client):
    assert client.get("/api/v1/reports/summary?from=2026-01-01&to=2026-01-02").status_code == 401
