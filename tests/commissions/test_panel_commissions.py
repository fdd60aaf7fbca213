import csv
from datetime import UTC, datetime

import pytest

from affiliates.models import ProgramStaff
from commissions.models import Commission
from refapp.models import AuditLog
from refapp.panel import selectors
from tests.factories import AffiliateFactory, ClickFactory, CommissionFactory, EventFactory, ProgramFactory
from tests.helpers import csv_lines, staff_client_with_role

pytestmark = pytest.mark.django_db

LIST = "/panel/p/acme/commissions/"
BULK = "/panel/p/acme/commissions/bulk/"
EXPORT = "/panel/p/acme/commissions/export.csv"


def detail(commission):
    return f"/panel/p/acme/commissions/{commission.public_id}/"


@pytest.fixture
def commission(affiliate, sale_rule):
    return CommissionFactory(affiliate=affiliate, rule=sale_rule, order_id="ORD-1")


# --- access ------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["list", "export", "detail"])
def test_pages_answer_their_staff_and_hide_from_others(
    page, staff_client, other_staff_client, client, staff_user, commission
):
    url = {"list": LIST, "export": EXPORT, "detail": detail(commission)}[page]
    assert staff_client.get(url).status_code == 200
    assert other_staff_client.get(url).status_code == 404
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/panel/login/")


def test_bulk_is_refused_to_outsiders_viewers_and_anonymous(
    program, other_staff_client, client, staff_user, commission
):
    viewer = staff_client_with_role(program, ProgramStaff.Role.VIEWER)
    body = {"action": "approve", "ids": [commission.public_id]}
    assert other_staff_client.post(BULK, body).status_code == 404
    assert viewer.post(BULK, body).status_code == 404
    assert client.post(BULK, body)["Location"].startswith("/panel/login/")
    assert staff_client_get_status(commission) == "pending"


def staff_client_get_status(commission) -> str:
    commission.refresh_from_db()
    return commission.status


def test_foreign_commission_is_404(staff_client):
    stranger = AffiliateFactory(program=ProgramFactory(slug="globex"))
    assert staff_client.get(detail(CommissionFactory(affiliate=stranger))).status_code == 404


def test_viewer_sees_no_checkboxes(program, commission):
    viewer = staff_client_with_role(program, ProgramStaff.Role.VIEWER)
    response = viewer.get(LIST)
    assert commission.public_id in response.text and 'name="ids"' not in response.text


# --- list --------------------------------------------------------------------------------------


def test_filters(staff_client, program, affiliate):
    mary = AffiliateFactory(program=program, code="MARY")
    pending = CommissionFactory(
        affiliate=affiliate, order_id="A", created_at=datetime(2026, 3, 1, 12, tzinfo=UTC)
    )
    approved = CommissionFactory(
        affiliate=affiliate,
        status="approved",
        order_id="B",
        created_at=datetime(2026, 3, 5, 23, 59, tzinfo=UTC),
    )
    marys = CommissionFactory(affiliate=mary, order_id="C", created_at=datetime(2026, 3, 10, tzinfo=UTC))
    reversal = CommissionFactory(
        affiliate=affiliate,
        amount_cents=-500,
        kind="reversal",
        reverses=approved,
        event=approved.event,
        created_at=datetime(2026, 3, 6, tzinfo=UTC),
    )
    test_mode = CommissionFactory(affiliate=affiliate, livemode=False, order_id="T")

    def ids(**params):
        return {c.public_id for c in staff_client.get(LIST, params).context["page"].object_list}

    assert ids() == {pending.public_id, approved.public_id, marys.public_id, reversal.public_id}
    assert ids(status="approved") == {approved.public_id}
    assert ids(affiliate="mary") == {marys.public_id}
    assert ids(affiliate=affiliate.public_id) == {pending.public_id, approved.public_id, reversal.public_id}
    assert ids(order="B") == {approved.public_id, reversal.public_id}
    assert ids(order=marys.event.public_id) == {marys.public_id}
    assert ids(kind="reversal") == {reversal.public_id}
    assert ids(date_from="2026-03-05", date_to="2026-03-06") == {approved.public_id, reversal.public_id}
    assert ids(mode="test") == {test_mode.public_id}


def test_invalid_date_range_shows_an_error(staff_client, commission):
    response = staff_client.get(LIST, {"date_from": "2026-03-05", "date_to": "2026-03-01"})
    assert "The end date is before the start date." in response.text
    assert len(response.context["page"].object_list) == 1


def test_htmx_request_returns_only_the_table(staff_client, commission):
    response = staff_client.get(LIST, {"status": "pending"}, headers={"HX-Request": "true"})
    assert response.text.lstrip().startswith('<div id="commission-table">')
    assert "<html" not in response.text and commission.public_id in response.text
    # The bulk form comes back with the table, so it returns to the filtered list afterwards.
    assert 'name="next" value="/panel/p/acme/commissions/?status=pending"' in response.text


# --- bulk --------------------------------------------------------------------------------------


def test_bulk_approve_counts_changed_and_skipped(staff_client, program, affiliate):
    pending = [CommissionFactory(affiliate=affiliate) for _ in range(3)]
    paid = CommissionFactory(affiliate=affiliate, status="paid")
    already = CommissionFactory(affiliate=affiliate, status="approved")
    rejected = CommissionFactory(affiliate=affiliate, status="rejected")
    foreign = CommissionFactory(affiliate=AffiliateFactory(program=ProgramFactory(slug="globex")))
    ids = [c.public_id for c in [*pending, paid, already, rejected, foreign]]
    response = staff_client.post(
        BULK,
        {
            "action": "approve",
            "ids": ids,
            "next": "/panel/p/acme/commissions/?status=pending",
            "confirmed": "1",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/panel/p/acme/commissions/?status=pending"
    assert {staff_client_get_status(c) for c in pending} == {"approved"}
    assert staff_client_get_status(paid) == "paid" and staff_client_get_status(rejected) == "rejected"
    assert staff_client_get_status(foreign) == "pending"
    assert AuditLog.objects.filter(action="commission.approved").count() == 3
    page = staff_client.get(response["Location"])
    assert "3 commissions approved; 4 skipped" in page.text


def test_bulk_reject_needs_a_reason_and_records_it(staff_client, affiliate):
    rows = [CommissionFactory(affiliate=affiliate), CommissionFactory(affiliate=affiliate, status="approved")]
    ids = [c.public_id for c in rows]
    refused = staff_client.post(BULK, {"action": "reject", "ids": ids, "reason": ""}, follow=True)
    assert "Give a reason for rejecting" in refused.text
    assert {staff_client_get_status(c) for c in rows} == {"pending", "approved"}
    staff_client.post(BULK, {"action": "reject", "ids": ids, "reason": "fake orders", "confirmed": "1"})
    for row in rows:
        row.refresh_from_db()
        assert row.status == "rejected" and row.status_reason == "fake orders"
    assert AuditLog.objects.filter(action="commission.rejected", data__reason="fake orders").count() == 2


def test_bulk_without_selection_or_with_garbage_changes_nothing(staff_client, commission):
    empty = staff_client.post(BULK, {"action": "approve"}, follow=True)
    assert "Select at least one commission." in empty.text
    garbage = staff_client.post(BULK, {"action": "approve", "ids": ["evt_1"]}, follow=True)
    assert "not commissions" in garbage.text
    assert staff_client_get_status(commission) == "pending"


def test_bulk_ignores_an_offsite_next(staff_client, commission):
    response = staff_client.post(
        BULK,
        {
            "action": "approve",
            "ids": [commission.public_id],
            "next": "https://evil.example/",
            "confirmed": "1",
        },
    )
    assert response["Location"] == LIST


def test_manager_may_review(program, commission):
    manager = staff_client_with_role(program, ProgramStaff.Role.MANAGER, "manager")
    manager.post(BULK, {"action": "approve", "ids": [commission.public_id], "confirmed": "1"})
    assert staff_client_get_status(commission) == "approved"


# --- detail ------------------------------------------------------------------------------------


def test_detail_explains_a_click_attributed_commission(staff_client, program, affiliate, sale_rule):
    click = ClickFactory(
        program=program,
        affiliate=affiliate,
        landing_url="https://acme.example/pricing?sub_id=nl1",
        sub_id="nl1",
    )
    event = EventFactory(
        program=program,
        affiliate=affiliate,
        order_id="ORD-9",
        attribution="click",
        click=click,
        amount_cents=9_900,
    )
    commission = CommissionFactory(affiliate=affiliate, event=event, rule=sale_rule, amount_cents=1_980)
    AuditLog.objects.create(
        actor_label="system",
        action="commission.created",
        program_id=program.pk,
        object_type="tracking.event",
        object_id=event.public_id,
        data={"commissions": [commission.public_id]},
    )
    response = staff_client.get(detail(commission))
    text = response.text
    assert "19.80 USD = 20 % of 99.00 USD" in text  # from calculation.explain and the recorded inputs
    assert "99.00 USD × 20 % = 19.80 USD." in text
    assert "ORD-9" in text and "99.00 USD" in text
    assert "https://acme.example/pricing?sub_id=nl1" in text and "nl1" in text
    assert sale_rule.describe() in text and "Program" in text
    assert "commission.created" in text
    assert "Approve 19.80 USD now" in text


def test_detail_links_reversals_both_ways(staff_client, affiliate, commission):
    reversal = CommissionFactory(
        affiliate=affiliate,
        amount_cents=-500,
        kind="reversal",
        reverses=commission,
        event=commission.event,
        status="pending",
    )
    assert detail(reversal) in staff_client.get(detail(commission)).text
    assert detail(commission) in staff_client.get(detail(reversal)).text


def test_detail_review_form_posts_to_bulk_and_comes_back(staff_client, commission):
    response = staff_client.post(
        BULK,
        {
            "action": "reject",
            "ids": [commission.public_id],
            "reason": "duplicate",
            "next": detail(commission),
            "confirmed": "1",  # the detail page's buttons name the amount: they are the confirmation
        },
    )
    assert response["Location"] == detail(commission)
    page = staff_client.get(detail(commission))
    assert "duplicate" in page.text and "commission.rejected" in page.text


# --- export ------------------------------------------------------------------------------------


def test_export_streams_the_filtered_rows(staff_client, program, affiliate):
    keep = CommissionFactory(
        affiliate=affiliate, amount_cents=1_999, status="approved", order_id="=cmd|'/C calc'!A0"
    )
    CommissionFactory(affiliate=affiliate, status="pending")
    reversal = CommissionFactory(
        affiliate=affiliate,
        amount_cents=-250,
        kind="reversal",
        status="approved",
        reverses=keep,
        event=keep.event,
    )
    response = staff_client.get(EXPORT, {"status": "approved"})
    assert response.streaming
    assert 'filename="acme-commissions-' in response["Content-Disposition"]
    rows = list(csv.DictReader(csv_lines(response)))
    assert {r["id"] for r in rows} == {keep.public_id, reversal.public_id}
    by_id = {r["id"]: r for r in rows}
    assert by_id[keep.public_id]["amount"] == "19.99" and by_id[keep.public_id]["amount_cents"] == "1999"
    assert by_id[reversal.public_id]["amount"] == "-2.50"  # numbers stay numbers
    assert by_id[keep.public_id]["order_id"] == "'=cmd|'/C calc'!A0"
    assert by_id[reversal.public_id]["reverses"] == keep.public_id


def test_export_is_empty_but_valid_when_nothing_matches(staff_client, commission):
    lines = csv_lines(staff_client.get(EXPORT, {"status": "paid"}))
    assert len(lines) == 1 and lines[0].startswith("id,created_at")
    assert Commission.objects.count() == 1


def test_arithmetic_shows_the_rounding_and_the_tier(affiliate):
    commission = CommissionFactory(affiliate=affiliate, amount_cents=1_180)
    commission.inputs.update(
        event_amount_cents=5_901, monthly_revenue_cents=150_000, tier={"min_cents": 100_000, "rate_bp": 2000}
    )
    assert selectors.commission_arithmetic(commission) == [
        "Referred revenue this calendar month, this event included: 1,500.00 USD; the tier from 1,000.00 USD applies.",
        "59.01 USD × 20 % = 11.802 USD, rounded half up to 11.80 USD.",
    ]


def test_arithmetic_of_a_reversal(affiliate, commission):
    reversal = CommissionFactory(
        affiliate=affiliate, amount_cents=-1_000, kind="reversal", reverses=commission, event=commission.event
    )
    reversal.inputs = {
        "reverses": commission.public_id,
        "refunded_cents": 5_000,
        "order_amount_cents": 10_000,
        "target_reversed_cents": 1_000,
        "already_reversed_cents": 0,
    }
    lines = selectors.commission_arithmetic(reversal)
    assert lines[0] == "Order amount 100.00 USD, refunded so far 50.00 USD."
    assert lines[-1] == "This reversal: -10.00 USD."
