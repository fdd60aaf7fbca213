import csv
from datetime import UTC, datetime

import pytest

from affiliates.models import ProgramStaff
from tests.factories import AffiliateFactory, ClickFactory, EventFactory, ProgramFactory
from tests.helpers import csv_lines, staff_client_with_role

pytestmark = pytest.mark.django_db

EVENTS = "/panel/p/acme/events/"
EXPORT = "/panel/p/acme/events/export.csv"
CLICKS = "/panel/p/acme/clicks/"


@pytest.mark.parametrize("url", [EVENTS, EXPORT, CLICKS])
def test_logs_answer_their_staff_and_hide_from_others(
    url, staff_client, other_staff_client, client, staff_user
):
    assert staff_client.get(url).status_code == 200
    assert other_staff_client.get(url).status_code == 404
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/panel/login/")


@pytest.mark.parametrize("url", [EVENTS, CLICKS])
def test_viewers_may_read_the_logs(url, program):
    assert staff_client_with_role(program, ProgramStaff.Role.VIEWER).get(url).status_code == 200


@pytest.mark.parametrize("url", [EVENTS, EXPORT, CLICKS])
def test_logs_are_read_only(url, staff_client):
    assert staff_client.post(url).status_code == 405


@pytest.fixture
def events(program, affiliate):
    return {
        "sale": EventFactory(
            program=program,
            affiliate=affiliate,
            order_id="A-1",
            occurred_at=datetime(2026, 3, 1, 9, tzinfo=UTC),
        ),
        "signup": EventFactory(
            program=program,
            affiliate=None,
            name="signup",
            order_id="S-1",
            occurred_at=datetime(2026, 3, 2, tzinfo=UTC),
        ),
        "late": EventFactory(
            program=program,
            affiliate=affiliate,
            order_id="A-2",
            occurred_at=datetime(2026, 3, 3, 23, 59, tzinfo=UTC),
        ),
        "test": EventFactory(program=program, affiliate=affiliate, order_id="A-1", livemode=False),
        "foreign": EventFactory(program=ProgramFactory(slug="globex"), affiliate=None, order_id="G-1"),
    }


def test_event_filters(staff_client, events):
    def ids(**params):
        return {e.public_id for e in staff_client.get(EVENTS, params).context["page"].object_list}

    def of(*names):
        return {events[n].public_id for n in names}

    assert ids() == of("sale", "signup", "late")
    assert ids(name="signup") == of("signup")
    assert ids(attributed="yes") == of("sale", "late")
    assert ids(attributed="no") == of("signup")
    assert ids(order_id="A-1") == of("sale")
    assert ids(order_id="A-1", mode="test") == of("test")
    assert ids(date_from="2026-03-02", date_to="2026-03-03") == of("signup", "late")


def test_event_htmx_returns_only_the_table(staff_client, events):
    response = staff_client.get(EVENTS, {"name": "sale"}, headers={"HX-Request": "true"})
    assert response.text.lstrip().startswith('<div id="event-table">')
    assert "<html" not in response.text and "A-1" in response.text
    assert "HX-Request" in response["Vary"]
    assert "export.csv?name=sale" in response.text


def test_event_log_pages_without_counting(staff_client, program):
    for n in range(51):
        EventFactory(program=program, affiliate=None, order_id=f"O-{n}")
    first = staff_client.get(EVENTS)
    assert len(first.context["page"].object_list) == 50 and first.context["page"].has_next()
    assert "Older →" in first.text
    second = staff_client.get(EVENTS, {"page": "2"})
    assert len(second.context["page"].object_list) == 1 and not second.context["page"].has_next()
    assert staff_client.get(EVENTS, {"page": "junk"}).context["page"].number == 1


def test_event_export_streams_the_filtered_rows_safely(staff_client, program, affiliate, events):
    EventFactory(program=program, affiliate=affiliate, order_id="@SUM(1+1)", amount_cents=1_050)
    response = staff_client.get(EXPORT, {"attributed": "yes"})
    assert response.streaming
    assert 'filename="acme-events-' in response["Content-Disposition"]
    rows = list(csv.DictReader(csv_lines(response)))
    assert {r["order_id"] for r in rows} == {"A-1", "A-2", "'@SUM(1+1)"}
    injected = next(r for r in rows if r["order_id"].startswith("'"))
    assert injected["amount"] == "10.50" and injected["amount_cents"] == "1050"
    assert injected["affiliate_code"] == "JOHN" and injected["livemode"] == "true"


def test_click_filters(staff_client, program, affiliate):
    mary = AffiliateFactory(program=program, code="MARY")
    johns = ClickFactory(
        program=program, affiliate=affiliate, created_at=datetime(2026, 3, 1, tzinfo=UTC), utm_source="news"
    )
    marys = ClickFactory(
        program=program, affiliate=mary, created_at=datetime(2026, 3, 5, tzinfo=UTC), source="link"
    )
    ClickFactory(program=ProgramFactory(slug="globex"), affiliate=AffiliateFactory(code="G"))

    def ids(**params):
        return {c.pk for c in staff_client.get(CLICKS, params).context["page"].object_list}

    assert ids() == {johns.pk, marys.pk}
    assert ids(code="john") == {johns.pk}
    assert ids(code=mary.public_id) == {marys.pk}
    assert ids(source="link") == {marys.pk}
    assert ids(utm_source="news") == {johns.pk}
    assert ids(date_from="2026-03-02") == {marys.pk}
    assert ids(date_to="2026-03-01") == {johns.pk}


def test_click_htmx_returns_only_the_table(staff_client, program, affiliate):
    ClickFactory(program=program, affiliate=affiliate, landing_url="https://acme.example/?ref=JOHN")
    response = staff_client.get(CLICKS, headers={"HX-Request": "true"})
    assert response.text.lstrip().startswith('<div id="click-table">')
    assert "<html" not in response.text and "JOHN" in response.text
