import csv

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from affiliates.models import Affiliate, ProgramStaff
from commissions.models import Commission
from refapp.models import AuditLog
from tests.factories import (
    AffiliateFactory,
    ClickFactory,
    CommissionFactory,
    CommissionRuleFactory,
    EventFactory,
    FraudFlagFactory,
    PartnerGroupFactory,
)
from tests.helpers import csv_lines, staff_client_with_role

pytestmark = pytest.mark.django_db

LIST = "/panel/p/acme/affiliates/"
INVITE = "/panel/p/acme/affiliates/invite/"
EXPORT = "/panel/p/acme/affiliates/export.csv"


def detail(affiliate):
    return f"/panel/p/acme/affiliates/{affiliate.public_id}/"


def status_url(affiliate):
    return f"/panel/p/acme/affiliates/{affiliate.public_id}/status/"


@pytest.fixture
def viewer_client(program):
    return staff_client_with_role(program, ProgramStaff.Role.VIEWER)


# --- access ------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["list", "invite", "export", "detail"])
def test_pages_answer_their_staff_and_hide_from_others(
    page, staff_client, other_staff_client, client, staff_user, affiliate
):
    url = {"list": LIST, "invite": INVITE, "export": EXPORT, "detail": detail(affiliate)}[page]
    assert staff_client.get(url).status_code == 200
    assert other_staff_client.get(url).status_code == 404
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/panel/login/")


@pytest.mark.parametrize("page", ["invite", "detail", "status"])
def test_posts_are_refused_to_outsiders_viewers_and_anonymous(
    page, other_staff_client, viewer_client, client, staff_user, affiliate
):
    url = {"invite": INVITE, "detail": detail(affiliate), "status": status_url(affiliate)}[page]
    body = {"name": "X", "email": "x@example.com", "status": "suspended", "reason": "spam", "group": ""}
    assert other_staff_client.post(url, body).status_code == 404
    assert viewer_client.post(url, body).status_code == 404
    anonymous = client.post(url, body)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/panel/login/")
    affiliate.refresh_from_db()
    assert affiliate.status == "active"
    assert Affiliate.objects.count() == 1


def test_viewer_sees_the_list_without_write_actions(viewer_client, affiliate):
    response = viewer_client.get(LIST)
    assert response.status_code == 200
    assert INVITE not in response.text
    page = viewer_client.get(detail(affiliate))
    assert page.status_code == 200 and status_url(affiliate) not in page.text


def test_unknown_or_foreign_affiliate_is_404(staff_client, db):
    from tests.factories import ProgramFactory

    foreign = AffiliateFactory(program=ProgramFactory(slug="globex"))
    assert staff_client.get("/panel/p/acme/affiliates/aff_nope/").status_code == 404
    assert staff_client.get(detail(foreign)).status_code == 404


# --- list --------------------------------------------------------------------------------------


def test_list_searches_filters_and_flags(staff_client, program, affiliate):
    mary = AffiliateFactory(
        program=program, name="Mary", email="mary@x.example", code="MARY", status="pending"
    )
    FraudFlagFactory(commission=CommissionFactory(affiliate=mary, status="rejected"))
    response = staff_client.get(LIST, {"q": "mary"})
    assert "Mary" in response.text and "john@partner.example" not in response.text
    assert "⚑ flagged" in response.text
    pending = staff_client.get(LIST, {"status": "pending"})
    assert "Mary" in pending.text and "John" not in pending.text
    by_code = staff_client.get(LIST, {"q": "joh"})
    assert "John" in by_code.text and "Mary" not in by_code.text


def test_list_htmx_request_returns_only_the_table(staff_client, affiliate):
    response = staff_client.get(LIST, {"q": "john"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "<html" not in response.text and '<nav class="container-fluid subnav"' not in response.text
    assert response.text.lstrip().startswith('<div id="affiliate-table">')
    assert "John" in response.text
    assert "HX-Request" in response["Vary"]
    # The sort select comes along out of band, so the filter form keeps the table's order.
    assert 'hx-swap-oob="true"' in response.text
    full = staff_client.get(LIST, {"q": "john"})
    assert "<html" in full.text and 'id="affiliate-table"' in full.text


def test_list_sorts_by_earnings_from_hand_made_rows(staff_client, program, affiliate):
    low = AffiliateFactory(program=program, name="Low", code="LOW")
    high = AffiliateFactory(program=program, name="High", code="HIGH")
    none = AffiliateFactory(program=program, name="Nothing", code="NONE")
    CommissionFactory(affiliate=low, amount_cents=500)
    CommissionFactory(affiliate=high, amount_cents=3_000, status="approved")
    CommissionFactory(affiliate=high, amount_cents=4_000, status="paid")
    CommissionFactory(affiliate=high, amount_cents=-1_000, kind="reversal", status="approved")  # nets off
    CommissionFactory(affiliate=affiliate, amount_cents=1_500)
    CommissionFactory(affiliate=affiliate, amount_cents=99_999, status="rejected")  # rejected never counts
    CommissionFactory(affiliate=low, amount_cents=50_000, livemode=False)  # test mode never counts

    response = staff_client.get(LIST, {"sort": "-earnings"})
    order = [a.name for a in response.context["page"].object_list]
    assert order == ["High", "John", "Low", "Nothing"]
    assert [a.earnings_cents for a in response.context["page"].object_list] == [6_000, 1_500, 500, 0]
    ascending = staff_client.get(LIST, {"sort": "earnings"})
    assert [a.name for a in ascending.context["page"].object_list] == ["Nothing", "Low", "John", "High"]
    assert none.public_id in response.text


def test_list_counts_clicks_and_conversions(staff_client, program, affiliate):
    other = AffiliateFactory(program=program, name="Other", code="OTHER")
    for _ in range(3):
        ClickFactory(program=program, affiliate=other)
    ClickFactory(program=program, affiliate=affiliate)
    EventFactory(program=program, affiliate=affiliate)
    EventFactory(program=program, affiliate=affiliate)
    response = staff_client.get(LIST, {"sort": "-clicks"})
    rows = response.context["page"].object_list
    assert [(a.name, a.click_count, a.conversion_count) for a in rows] == [("Other", 3, 0), ("John", 1, 2)]
    by_conversions = staff_client.get(LIST, {"sort": "-conversions"})
    assert [a.name for a in by_conversions.context["page"].object_list] == ["John", "Other"]


def test_list_query_count_does_not_grow_with_rows(staff_client, program, affiliate):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert staff_client.get(LIST, {"sort": "-earnings"}).status_code == 200
        return len(captured)

    few = queries()
    for n in range(20):
        other = AffiliateFactory(program=program, group=PartnerGroupFactory(program=program))
        ClickFactory(program=program, affiliate=other)
        CommissionFactory(affiliate=other, amount_cents=n)
    assert queries() == few


def test_list_paginates_fifty_per_page(staff_client, program):
    AffiliateFactory.create_batch(51, program=program)
    first = staff_client.get(LIST)
    assert len(first.context["page"].object_list) == 50
    assert "page=2" in first.text
    second = staff_client.get(LIST, {"page": 2})
    assert len(second.context["page"].object_list) == 1


def test_invalid_filters_fall_back_to_everything(staff_client, affiliate):
    response = staff_client.get(LIST, {"status": "bogus", "sort": "'; drop"})
    assert response.status_code == 200 and "John" in response.text


# --- export ------------------------------------------------------------------------------------


def test_export_streams_the_filtered_rows(staff_client, program, affiliate):
    AffiliateFactory(program=program, name="Mary", code="MARY", status="pending")
    CommissionFactory(affiliate=affiliate, amount_cents=1_234)
    response = staff_client.get(EXPORT, {"status": "active"})
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="acme-affiliates-' in response["Content-Disposition"]
    rows = list(csv.reader(csv_lines(response)))
    assert rows[0][:4] == ["id", "name", "email", "code"]
    assert len(rows) == 2
    record = dict(zip(rows[0], rows[1], strict=True))
    assert record["code"] == "JOHN" and record["earnings"] == "12.34" and record["earnings_cents"] == "1234"
    assert record["currency"] == "USD"


def test_export_neutralises_spreadsheet_formulas(staff_client, program):
    AffiliateFactory(program=program, name='=HYPERLINK("http://evil")', code="EVIL", email="e@x.example")
    AffiliateFactory(program=program, name="+1 cmd", code="PLUS", email="p@x.example")
    AffiliateFactory(program=program, name="@SUM(A1)", code="AT", email="a@x.example")
    AffiliateFactory(program=program, name="-2+3", code="MINUS", email="m@x.example")
    rows = list(csv.reader(csv_lines(staff_client.get(EXPORT, {"sort": "name"}))))
    names = sorted(row[1] for row in rows[1:])
    assert names == ["'+1 cmd", "'-2+3", '\'=HYPERLINK("http://evil")', "'@SUM(A1)"]


# --- invite ------------------------------------------------------------------------------------


def test_invite_creates_an_active_affiliate_and_emails_them(
    staff_client, program, django_capture_on_commit_callbacks
):
    group = PartnerGroupFactory(program=program, name="Gold")
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            INVITE, {"name": "Ann", "email": "Ann@Example.com", "code": "ANN", "group": group.pk}
        )
    ann = Affiliate.objects.get(code="ANN")
    assert response.status_code == 302 and response["Location"] == detail(ann)
    assert ann.status == "active" and ann.email == "ann@example.com" and ann.group == group
    assert [m.to for m in mail.outbox] == [["ann@example.com"]]
    assert AuditLog.objects.filter(action="affiliate.created", object_id=ann.public_id).exists()
    page = staff_client.get(response["Location"])
    assert "a sign-in link is on its way" in page.text


def test_invite_shows_errors_for_taken_email_and_code(staff_client, affiliate):
    response = staff_client.post(INVITE, {"name": "Dup", "email": "JOHN@partner.example", "code": "john"})
    assert response.status_code == 200
    assert "already in this program" in response.text
    assert "already taken" in response.text
    assert Affiliate.objects.count() == 1
    assert not mail.outbox


def test_invite_rejects_a_bad_code_and_missing_fields(staff_client, program):
    response = staff_client.post(INVITE, {"name": "", "email": "not-an-email", "code": "no spaces"})
    assert response.status_code == 200
    form = response.context["form"]
    assert set(form.errors) == {"name", "email", "code"}
    assert not Affiliate.objects.exists()


# --- detail, group and status ------------------------------------------------------------------


def test_detail_shows_stats_links_payouts_rules_and_history(staff_client, program, affiliate):
    affiliate.payout_method = "paypal"
    affiliate.paypal_email = "pay@john.example"
    affiliate.save()
    ClickFactory(program=program, affiliate=affiliate)
    CommissionFactory(affiliate=affiliate, amount_cents=2_500)
    rule = CommissionRuleFactory(program=program, affiliate=affiliate, rate_bp=3000)
    AuditLog.objects.create(
        actor_label="system",
        action="affiliate.suspended",
        program_id=program.pk,
        object_type="affiliates.affiliate",
        object_id=affiliate.public_id,
        data={"reason": "test"},
    )
    response = staff_client.get(detail(affiliate))
    text = response.text
    assert "https://acme.example?ref=JOHN" in text
    assert "/go/acme/JOHN" in text and 'data-copy="#link-go"' in text
    assert "pay@john.example" in text
    assert rule.describe() in text
    assert f"/panel/p/acme/rules/new/?affiliate={affiliate.public_id}" in text
    assert "affiliate.suspended" in text
    assert response.context["summary"]["clicks"] == 1
    assert response.context["summary"]["commission_pending_cents"] == 2_500


def test_detail_range_htmx_returns_only_the_stats(staff_client, affiliate):
    response = staff_client.get(detail(affiliate), {"range": "7"}, headers={"HX-Request": "true"})
    assert response.text.lstrip().startswith('<div id="affiliate-stats">')
    assert "Referral links" not in response.text
    custom = staff_client.get(
        detail(affiliate), {"range": "custom", "start": "2026-02-01", "end": "2026-01-01"}
    )
    assert "The end date is before the start date." in custom.text


def test_group_change(staff_client, program, affiliate):
    group = PartnerGroupFactory(program=program, name="Gold")
    response = staff_client.post(detail(affiliate), {"group": group.pk})
    assert response.status_code == 302
    affiliate.refresh_from_db()
    assert affiliate.group == group
    staff_client.post(detail(affiliate), {"group": ""})
    affiliate.refresh_from_db()
    assert affiliate.group is None


def test_group_change_refuses_another_programs_group(staff_client, affiliate):
    foreign = PartnerGroupFactory(name="Foreign")
    response = staff_client.post(detail(affiliate), {"group": foreign.pk})
    assert response.status_code == 200 and "Select a valid choice" in response.text
    affiliate.refresh_from_db()
    assert affiliate.group is None


def test_approve_a_pending_applicant(staff_client, program, django_capture_on_commit_callbacks):
    applicant = AffiliateFactory(program=program, status="pending", email="new@x.example")
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(status_url(applicant), {"status": "active"})
    assert response.status_code == 302 and response["Location"] == detail(applicant)
    applicant.refresh_from_db()
    assert applicant.status == "active" and applicant.approved_at
    assert [m.to for m in mail.outbox] == [["new@x.example"]]


def test_reject_and_suspend_need_a_reason(staff_client, program, affiliate):
    response = staff_client.post(status_url(affiliate), {"status": "suspended", "reason": "  "})
    assert response.status_code == 200
    assert "Give a reason" in response.text
    affiliate.refresh_from_db()
    assert affiliate.status == "active"
    assert not AuditLog.objects.filter(action="affiliate.suspended").exists()


def test_suspend_then_reactivate(staff_client, affiliate):
    staff_client.post(status_url(affiliate), {"status": "suspended", "reason": "fake traffic"})
    affiliate.refresh_from_db()
    assert affiliate.status == "suspended" and affiliate.status_reason == "fake traffic"
    assert AuditLog.objects.filter(action="affiliate.suspended", data__reason="fake traffic").exists()
    page = staff_client.get(detail(affiliate))
    assert "Reactivate" in page.text
    staff_client.post(status_url(affiliate), {"status": "active"})
    affiliate.refresh_from_db()
    assert affiliate.status == "active"


def test_invalid_transition_is_reported_not_applied(staff_client, affiliate):
    response = staff_client.post(status_url(affiliate), {"status": "rejected", "reason": "no"}, follow=True)
    assert "cannot become rejected" in response.text
    affiliate.refresh_from_db()
    assert affiliate.status == "active"


def test_recent_commissions_link_to_their_detail(staff_client, affiliate):
    commission = CommissionFactory(affiliate=affiliate)
    response = staff_client.get(detail(affiliate))
    assert f"/panel/p/acme/commissions/{commission.public_id}/" in response.text
    assert Commission.objects.count() == 1


def test_list_figures_are_read_for_the_shown_page_only(
    staff_client, program, affiliate, django_assert_max_num_queries
):
    """Without a figure sort every figure still shows, and the page's cost does not grow with the program."""
    ClickFactory(program=program, affiliate=affiliate)
    EventFactory(program=program, affiliate=affiliate)
    CommissionFactory(affiliate=affiliate, amount_cents=700)
    response = staff_client.get(LIST)
    (row,) = response.context["page"].object_list
    # CommissionFactory brings its own event: two conversions.
    assert (row.click_count, row.conversion_count, row.earnings_cents) == (1, 2, 700)

    for i in range(60):
        AffiliateFactory(program=program, name=f"Extra {i}", code=f"EXTRA{i}")
    with django_assert_max_num_queries(20) as captured:
        second = staff_client.get(LIST, {"sort": "-earnings", "page": "2"})
    few = len(captured.captured_queries)
    assert len(second.context["page"].object_list) == 11  # 61 affiliates, 50 a page
    first = staff_client.get(LIST, {"sort": "-earnings"}).context["page"].object_list
    assert (first[0].name, first[0].earnings_cents, first[1].earnings_cents) == ("John", 700, 0)
    for i in range(60, 200):
        AffiliateFactory(program=program, name=f"Extra {i}", code=f"EXTRA{i}")
    with django_assert_max_num_queries(few):
        staff_client.get(LIST, {"sort": "-earnings", "page": "2"})


def test_test_mode_affiliates_stay_out_of_the_panel(staff_client, program, affiliate):
    """Affiliates made by a sk_test_ key are the API's test world: the panel shows live ones only."""
    testy = AffiliateFactory(
        program=program, name="Testy", email="testy@x.example", code="TESTY", livemode=False
    )
    listed = staff_client.get(LIST)
    assert "John" in listed.text and "Testy" not in listed.text
    assert staff_client.get(detail(testy)).status_code == 404
