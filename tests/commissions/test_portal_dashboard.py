import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.conf import settings

from commissions.models import Commission
from commissions.services import approve_due_commissions
from tests.factories import AffiliateFactory
from tracking.models import Click

pytestmark = pytest.mark.django_db

UA = {"HTTP_USER_AGENT": "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 Safari/605.1.15"}
HTMX = {"HTTP_HX_REQUEST": "true"}


def stat(response, name: str) -> str:
    match = re.search(rf'data-stat="{name}">([^<]*)<', response.content.decode())
    assert match, name
    return match.group(1)


@pytest.fixture
def sale(api_client, sale_rule):
    def make(order_id, code="JOHN", amount_cents=10000):
        body = {"event": "sale", "order_id": order_id, "referral_code": code, "amount_cents": amount_cents}
        response = api_client.post("/api/v1/events", body)
        assert response.status_code == 201, response.content
        return response.json()

    return make


def test_dashboard_shows_the_affiliates_links(portal_client, affiliate):
    response = portal_client.get("/portal/")
    assert response.status_code == 200
    content = response.content.decode()
    assert 'value="https://acme.example/?ref=JOHN"' in content
    assert f'value="{settings.BASE_URL}/go/acme/JOHN"' in content
    assert 'data-copy="#referral-link"' in content and 'data-copy="#go-link"' in content
    assert "vendor/chart-4.6.1.umd.min.js" in content


def test_another_affiliate_sees_only_their_own_links_and_numbers(
    other_portal_client, affiliate, sale, client
):
    client.get("/go/acme/JOHN", **UA)
    sale("A")
    response = other_portal_client.get("/portal/")
    content = response.content.decode()
    assert "?ref=MARY" in content and "JOHN" not in content
    assert stat(response, "clicks") == "0" and stat(response, "conversions") == "0"
    assert stat(response, "balance-pending") == "0.00\u00a0USD"


def test_dashboard_anonymous_redirects_to_login(client, db):
    response = client.get("/portal/")
    assert response.status_code == 302 and response["Location"] == "/portal/login/?next=%2Fportal%2F"


def test_stats_chart_and_balances(portal_client, affiliate, sale, client):
    with time_machine.travel("2026-05-10T12:00:00Z", tick=False):
        client.get("/go/acme/JOHN", **UA)
        client.get("/go/acme/JOHN", **UA)
        sale("A")
        sale("B", amount_cents=5000)
        response = portal_client.get("/portal/?range=7")
    assert stat(response, "clicks") == "2"
    assert stat(response, "conversions") == "2"
    assert stat(response, "earnings") == "30.00\u00a0USD"
    assert stat(response, "balance-pending") == "30.00\u00a0USD"
    assert stat(response, "balance-approved") == "0.00\u00a0USD"
    content = response.content.decode()
    charts = {
        name: json.loads(body)
        for name, body in re.findall(
            r'<script id="(portal-chart-[a-z_]+)" type="application/json">(.*?)</script>', content
        )
    }
    # One measure a chart, bars, this week beside the week before (nothing then).
    assert list(charts) == ["portal-chart-clicks", "portal-chart-conversions", "portal-chart-earnings_cents"]
    clicks, earnings = charts["portal-chart-clicks"], charts["portal-chart-earnings_cents"]
    assert len(clicks["labels"]) == 7 and clicks["labels"][-1] == "2026-05-10"
    assert [s["label"] for s in clicks["series"]] == ["This period", "Previous period"]
    assert clicks["series"][0]["data"][-1] == 2 and clicks["series"][1]["data"] == [0] * 7
    assert (
        clicks["series"][1]["labels"][0] == "2026-04-27" and clicks["series"][1]["labels"][-1] == "2026-05-03"
    )
    assert (earnings["unit"], earnings["currency"], earnings["title"]) == ("money", "USD", "Earnings (USD)")
    assert earnings["series"][0]["data"][-1] == "30.00"
    # Pending money unlocks after the 30-day hold, and 50.00 USD is the default minimum.
    assert "Jun 9, 2026: 30.00 USD" in content
    assert "50.00 USD more to reach the minimum payout of 50.00 USD" in content


def test_next_payout_estimate_counts_money_unlocking_before_the_run(portal_client, affiliate, sale):
    with time_machine.travel("2026-05-10T12:00:00Z", tick=False):
        for order in ("A", "B", "C"):
            sale(order)
    with time_machine.travel("2026-06-10T00:00:00Z", tick=False):
        approve_due_commissions(now=Commission.objects.first().hold_until)
        sale("D")
        response = portal_client.get("/portal/")
    assert stat(response, "balance-approved") == "60.00\u00a0USD"
    assert stat(response, "next-payout") == "60.00 USD"
    assert "July 1, 2026" in response.content.decode()


def test_range_presets_and_custom_errors(portal_client, affiliate):
    with time_machine.travel("2026-05-20T12:00:00Z", tick=False):
        month = portal_client.get("/portal/?range=month")
        assert "May 1, 2026 – May 20, 2026" in month.content.decode()
        custom = portal_client.get("/portal/?range=custom&start=2026-04-01&end=2026-04-03")
        assert "Apr 1, 2026 – Apr 3, 2026" in custom.content.decode()
        bad = portal_client.get("/portal/?range=custom&start=2026-04-05&end=2026-04-01")
        assert "The end date is before the start date." in bad.content.decode()
        assert "Apr 21, 2026 – May 20, 2026" in bad.content.decode()  # falls back to 30 days


def test_range_htmx_request_renders_only_the_report(portal_client, affiliate):
    response = portal_client.get("/portal/?range=90", HTTP_HX_TARGET="report", **HTMX)
    content = response.content.decode()
    assert content.lstrip().startswith('<div id="report">')
    assert "<html" not in content and "?ref=JOHN" not in content


def test_link_builder_plain_get(portal_client, affiliate, client):
    response = portal_client.get(
        "/portal/", {"build": "1", "path": "/pricing/annual", "campaign": "spring sale", "sub_id": "yt-1"}
    )
    content = response.content.decode()
    built = re.search(r'id="built-link" type="text" readonly value="([^"]+)"', content).group(1)
    assert (
        built == f"{settings.BASE_URL}/go/acme/JOHN/pricing/annual?utm_campaign=spring+sale&amp;sub_id=yt-1"
    )
    assert 'data-copy="#built-link"' in content
    # The link it hands out lands on the page and records the campaign and sub id.
    landing = client.get(built.replace(settings.BASE_URL, "").replace("&amp;", "&"), **UA)
    location = urlsplit(landing["Location"])
    assert (location.netloc, location.path) == ("acme.example", "/pricing/annual")
    assert parse_qs(location.query)["utm_campaign"] == ["spring sale"]
    click = Click.objects.get()
    assert (click.utm_campaign, click.sub_id, click.affiliate) == ("spring sale", "yt-1", affiliate)


def test_link_builder_htmx_renders_only_the_builder(portal_client, affiliate):
    response = portal_client.get(
        "/portal/",
        {"build": "1", "path": "https://acme.example/blog?lang=de", "campaign": ""},
        HTTP_HX_TARGET="link-builder",
        **HTMX,
    )
    content = response.content.decode()
    assert content.lstrip().startswith('<section id="link-builder">') and "<html" not in content
    assert f'value="{settings.BASE_URL}/go/acme/JOHN/blog?lang=de"' in content
    assert 'hx-get="/portal/"' in content and 'action="/portal/"' in content


def test_link_builder_without_path_links_to_the_home_page(portal_client, affiliate):
    response = portal_client.get("/portal/", {"build": "1", "path": "", "campaign": "", "sub_id": "x"})
    assert f'value="{settings.BASE_URL}/go/acme/JOHN?sub_id=x"' in response.content.decode()


def test_link_builder_refuses_other_sites(portal_client, affiliate):
    response = portal_client.get("/portal/", {"build": "1", "path": "https://evil.example/x"})
    content = response.content.decode()
    assert "Links can only point to https://acme.example" in content
    assert 'id="built-link"' not in content


def test_pending_affiliate_sees_the_review_notice_and_no_links(client, program):
    from tests.conftest import portal_login

    pending = AffiliateFactory(program=program, code="NEWBIE", email="new@partner.example", status="pending")
    response = portal_login(client, pending).get("/portal/")
    content = response.content.decode()
    assert response.status_code == 200 and "being reviewed" in content
    assert "NEWBIE" not in content and "/go/" not in content and "link-builder" not in content


def test_suspended_affiliate_sees_a_notice_and_no_links(portal_client, affiliate):
    affiliate.status = "suspended"
    affiliate.status_reason = "Spam"
    affiliate.save()
    content = portal_client.get("/portal/").content.decode()
    assert "Your account is suspended" in content and "Spam" in content
    assert "?ref=JOHN" not in content and "link-builder" not in content
    assert 'data-stat="balance-pending"' in content
