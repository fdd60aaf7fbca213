"""The panel's reports page and its CSV: figures by campaign, sub id, source, affiliate or day."""

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from affiliates.models import ProgramStaff
from tests.factories import AffiliateFactory, ClickFactory, CommissionFactory, EventFactory
from tests.helpers import staff_client_with_role

pytestmark = pytest.mark.django_db

PAGE = "/panel/p/acme/reports/"
EXPORT = "/panel/p/acme/reports/export.csv"


@pytest.mark.parametrize("url", [PAGE, EXPORT])
def test_reports_answer_their_staff_and_hide_from_others(url, staff_client, other_staff_client, client):
    assert staff_client.get(url).status_code == 200
    assert other_staff_client.get(url).status_code == 404
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/panel/login/")


def test_viewers_may_read_reports(program):
    assert staff_client_with_role(program, ProgramStaff.Role.VIEWER).get(PAGE).status_code == 200


@pytest.mark.parametrize("url", [PAGE, EXPORT])
def test_reports_are_read_only(url, staff_client):
    assert staff_client.post(url).status_code == 405


@pytest.fixture
def spring(affiliate):
    now = timezone.now() - timedelta(minutes=5)
    click = ClickFactory(affiliate=affiliate, created_at=now, utm_campaign="spring", sub_id="s-1")
    event = EventFactory(
        affiliate=affiliate, occurred_at=now, click=click, attribution="click", amount_cents=5000
    )
    CommissionFactory(affiliate=affiliate, created_at=now, event=event, amount_cents=1000)
    return click


def test_page_shows_a_table_a_chart_and_a_nav_link(staff_client, spring):
    response = staff_client.get(PAGE + "?group_by=campaign&range=7")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-key="spring"' in html and "50.00" in html and "10.00" in html
    assert 'data-chart="#report-chart-clicks"' in html and '"horizontal": true' in html
    assert 'href="/panel/p/acme/reports/"' in html
    assert 'href="/panel/p/acme/reports/export.csv?group_by=campaign&amp;range=7"' in html


def test_htmx_swaps_only_the_report(staff_client, spring):
    response = staff_client.get(PAGE + "?group_by=sub_id", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="report">') and 'data-key="s-1"' in html


def test_a_bad_grouping_or_range_is_a_form_error_not_a_500(staff_client):
    response = staff_client.get(PAGE + "?group_by=country&range=custom&start=2026-02-01&end=2026-01-01")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Choose one of the listed groupings." in html and "before the start date" in html


def test_a_custom_range_over_a_year_is_refused(staff_client):
    response = staff_client.get(PAGE + "?range=custom&start=2024-01-01&end=2025-06-01")
    assert "Choose at most 366 days." in response.content.decode()


def test_csv_export_guards_formulas(staff_client, affiliate):
    now = timezone.now() - timedelta(minutes=5)
    ClickFactory(affiliate=affiliate, created_at=now, utm_campaign="=HYPERLINK(1)")
    response = staff_client.get(EXPORT + "?group_by=campaign&range=7")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:5] == ["key", "label", "clicks", "visitors", "conversions"]
    assert rows[1][0] == "'=HYPERLINK(1)" and rows[1][2] == "1"


def test_the_page_reports_live_data_only(staff_client, program):
    tester = AffiliateFactory(program=program, livemode=False, code="TESTY")
    ClickFactory(affiliate=tester, utm_campaign="testcamp")
    html = staff_client.get(PAGE + "?group_by=campaign").content.decode()
    assert "testcamp" not in html
