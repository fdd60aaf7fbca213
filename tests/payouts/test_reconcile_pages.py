"""The panel's reconciliation page: check now, findings, acknowledge and resolve; who may do what."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from affiliates.models import ProgramStaff
from payouts.models import BalanceAdjustment, ReconciliationFinding, ReconciliationRun
from payouts.reconcile import period_of
from refapp.models import AuditLog

pytestmark = pytest.mark.django_db

PAGE = "/panel/p/acme/reconciliation/"
CHECK = "/panel/p/acme/reconciliation/check/"


def decide_url(finding) -> str:
    return f"/panel/p/acme/reconciliation/{finding.public_id}/decide/"


@pytest.fixture
def viewer_client(program, django_user_model):
    user = django_user_model.objects.create_user(
        "viewer", "v@acme.example", "correct horse battery", is_staff=True
    )
    ProgramStaff.objects.create(program=program, user=user, role=ProgramStaff.Role.VIEWER)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def stray(connected, fake_stripe):
    """A transfer to John's account that names no payout."""
    return fake_stripe.plant_transfer(amount=1234, destination="acct_john", metadata={})


def check_now(client, django_capture_on_commit_callbacks, period=None):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(CHECK, {"period": period or period_of(timezone.now())})


def test_check_now_runs_the_check_and_lists_its_findings(
    staff_client, staff_user, stray, django_capture_on_commit_callbacks
):
    page = staff_client.get(PAGE)
    assert (
        page.status_code == 200 and b"Check now" in page.content and b"No check has run yet" in page.content
    )

    response = check_now(staff_client, django_capture_on_commit_callbacks)

    assert response.status_code == 302 and response["Location"] == PAGE
    run = ReconciliationRun.objects.get()
    assert (run.status, run.actor_label, run.transfers_seen) == ("done", f"user:{staff_user.pk}", 1)
    assert AuditLog.objects.filter(action="reconciliation.requested", actor=staff_user).exists()
    page = staff_client.get(PAGE)
    finding = ReconciliationFinding.objects.get()
    html = page.content.decode()
    assert stray["id"] in html and "Transfer with no paid payout" in html and finding.public_id in html
    assert "12.34 USD" in html and "Waiting for a decision (1)" in html


def test_a_bad_or_future_month_is_a_form_error(staff_client, fake_stripe, django_capture_on_commit_callbacks):
    for period, message in (("2026-13", "YYYY-MM"), ("soon", "YYYY-MM")):
        response = check_now(staff_client, django_capture_on_commit_callbacks, period)
        assert response.status_code == 400 and message in response.content.decode()
    future = period_of(timezone.now() + timedelta(days=62))
    response = check_now(staff_client, django_capture_on_commit_callbacks, future)
    assert response.status_code == 400 and "has not begun" in response.content.decode()
    assert ReconciliationRun.objects.count() == 0


def test_an_admin_acknowledges_then_resolves_a_finding_with_a_note(
    staff_client, staff_user, stray, django_capture_on_commit_callbacks
):
    check_now(staff_client, django_capture_on_commit_callbacks)
    finding = ReconciliationFinding.objects.get()

    no_note = staff_client.post(decide_url(finding), {"action": "resolved", "note": ""})
    assert no_note.status_code == 302
    finding.refresh_from_db()
    assert finding.status == "open"

    staff_client.post(decide_url(finding), {"action": "acknowledged", "note": "Asking finance"})
    finding.refresh_from_db()
    assert finding.status == "acknowledged" and finding.note == "Asking finance"

    response = staff_client.post(decide_url(finding), {"action": "resolved", "note": "A bonus paid by hand"})
    assert response.status_code == 302
    finding.refresh_from_db()
    assert (finding.status, finding.note, finding.decided_by) == (
        "resolved",
        "A bonus paid by hand",
        f"user:{staff_user.pk}",
    )
    audit = AuditLog.objects.get(action="reconciliation.finding_resolved", object_id=finding.public_id)
    assert audit.actor == staff_user and audit.data == {
        "from": "acknowledged",
        "note": "A bonus paid by hand",
    }
    assert AuditLog.objects.filter(action="reconciliation.finding_acknowledged").count() == 1

    again = staff_client.post(decide_url(finding), {"action": "resolved", "note": "again"}, follow=True)
    assert "already resolved" in again.content.decode()
    finding.refresh_from_db()
    assert finding.note == "A bonus paid by hand"
    page = staff_client.get(PAGE).content.decode()
    assert "Waiting for a decision (0)" in page and "Recently decided" in page

    # Checking the month again neither reopens it nor adds another.
    check_now(staff_client, django_capture_on_commit_callbacks)
    assert ReconciliationFinding.objects.get().status == "resolved"


def test_a_viewer_sees_the_findings_but_cannot_check_or_decide(
    staff_client, viewer_client, stray, django_capture_on_commit_callbacks
):
    check_now(staff_client, django_capture_on_commit_callbacks)
    finding = ReconciliationFinding.objects.get()

    page = viewer_client.get(PAGE)
    assert page.status_code == 200 and stray["id"] in page.content.decode()
    assert b"Check now" not in page.content and b"Mark resolved" not in page.content
    assert check_now(viewer_client, django_capture_on_commit_callbacks).status_code == 404
    assert viewer_client.post(decide_url(finding), {"action": "resolved", "note": "mine"}).status_code == 404
    finding.refresh_from_db()
    assert finding.status == "open" and finding.note == ""
    assert ReconciliationRun.objects.count() == 1
    assert not AuditLog.objects.filter(action__startswith="reconciliation.finding_resolved").exists()


@pytest.fixture
def reversed_payout(program, connected, fake_stripe, approved, django_capture_on_commit_callbacks):
    """John paid 70.00, of which Stripe reversed 30.00 after refapp marked it paid."""
    from payouts.services import payouts_create
    from payouts.stripe_client import stripe_client
    from refapp.models import Actor

    approved(connected, 7000)
    with django_capture_on_commit_callbacks(execute=True):
        [payout] = payouts_create(program=program, now=timezone.now(), actor=Actor.system())
    payout.refresh_from_db()
    stripe_client().v1.transfers.reversals.create(payout.transfer_id, params={"amount": 3000})
    return payout


def test_an_admin_pays_a_reversal_again_or_keeps_it_recovered_after_a_confirmation(
    staff_client, staff_user, reversed_payout, django_capture_on_commit_callbacks
):
    check_now(staff_client, django_capture_on_commit_callbacks)
    finding = ReconciliationFinding.objects.get(kind="reversed")
    html = staff_client.get(PAGE).content.decode()
    assert "Waiting for a decision (1)" in html and "Mark resolved" not in html
    assert 'data-confirm="Pay John 30.00 USD again in the next payout?"' in html
    assert "Keep it recovered" in html

    no_note = staff_client.post(decide_url(finding), {"action": "pay_again", "note": ""})
    assert no_note.status_code == 302 and BalanceAdjustment.objects.count() == 0

    staff_client.post(decide_url(finding), {"action": "pay_again", "note": "Reversed by mistake"})
    again = staff_client.post(decide_url(finding), {"action": "pay_again", "note": "twice"}, follow=True)
    assert "already paid again" in again.content.decode()
    finding.refresh_from_db()
    assert (finding.status, finding.note) == ("carried", "Reversed by mistake")
    [carry] = BalanceAdjustment.objects.all()
    assert carry.amount_cents == 3000
    audit = AuditLog.objects.get(action="payout.balance_carried")
    assert audit.actor == staff_user and audit.data["note"] == "Reversed by mistake"
    page = staff_client.get(PAGE).content.decode()
    assert "Reversals paid again in the next payout" in page and "30.00 USD" in page

    check_now(staff_client, django_capture_on_commit_callbacks)
    finding.refresh_from_db()
    assert finding.status == "carried" and BalanceAdjustment.objects.count() == 1


def test_an_admin_keeps_a_reversal_recovered(
    staff_client, reversed_payout, django_capture_on_commit_callbacks
):
    check_now(staff_client, django_capture_on_commit_callbacks)
    finding = ReconciliationFinding.objects.get(kind="reversed")
    staff_client.post(decide_url(finding), {"action": "keep_recovered", "note": "Overpaid last month"})
    finding.refresh_from_db()
    assert (finding.status, finding.note) == ("recovered", "Overpaid last month")
    assert BalanceAdjustment.objects.count() == 0
    assert AuditLog.objects.filter(action="reconciliation.finding_recovered").count() == 1
    assert "Kept recovered" in staff_client.get(PAGE).content.decode()


def test_a_viewer_cannot_pay_a_reversal_again_or_keep_it_recovered(
    staff_client, viewer_client, reversed_payout, django_capture_on_commit_callbacks
):
    check_now(staff_client, django_capture_on_commit_callbacks)
    finding = ReconciliationFinding.objects.get(kind="reversed")
    page = viewer_client.get(PAGE).content.decode()
    assert "Pay it again" not in page and "Keep it recovered" not in page
    for action in ("pay_again", "keep_recovered"):
        response = viewer_client.post(decide_url(finding), {"action": action, "note": "mine"})
        assert response.status_code == 404
    finding.refresh_from_db()
    assert finding.status == "open" and BalanceAdjustment.objects.count() == 0
    assert not AuditLog.objects.filter(action="payout.balance_carried").exists()


def test_other_programs_staff_and_anonymous_users_are_kept_out(
    staff_client, other_staff_client, stray, django_capture_on_commit_callbacks
):
    check_now(staff_client, django_capture_on_commit_callbacks)
    finding = ReconciliationFinding.objects.get()
    assert other_staff_client.get(PAGE).status_code == 404
    assert check_now(other_staff_client, django_capture_on_commit_callbacks).status_code == 404
    assert (
        other_staff_client.post(decide_url(finding), {"action": "resolved", "note": "x"}).status_code == 404
    )
    # Their own program's page does not show John's transfer.
    assert stray["id"] not in other_staff_client.get("/panel/p/globex/reconciliation/").content.decode()
    anonymous = Client()
    assert anonymous.get(PAGE).status_code == 302
    assert anonymous.post(decide_url(finding), {"action": "resolved", "note": "x"}).status_code == 302
    finding.refresh_from_db()
    assert finding.status == "open"


def test_a_transfer_of_no_program_is_shown_to_superusers_only(
    staff_client, fake_stripe, django_user_model, django_capture_on_commit_callbacks
):
    orphan = fake_stripe.plant_transfer(amount=500, destination="acct_nobody")
    check_now(staff_client, django_capture_on_commit_callbacks)
    finding = ReconciliationFinding.objects.get()
    assert finding.program is None
    assert orphan["id"] not in staff_client.get(PAGE).content.decode()
    assert staff_client.post(decide_url(finding), {"action": "resolved", "note": "x"}).status_code == 404
    root = django_user_model.objects.create_superuser("root", "root@example.com", "correct horse battery")
    client = Client()
    client.force_login(root)
    assert orphan["id"] in client.get(PAGE).content.decode()
    client.post(decide_url(finding), {"action": "resolved", "note": "Another platform's"})
    finding.refresh_from_db()
    assert finding.status == "resolved"


def test_htmx_polls_the_findings_while_a_check_runs(staff_client, fake_stripe):
    ReconciliationRun.objects.create(
        period=period_of(timezone.now()), actor_label="system", started_at=timezone.now()
    )
    page = staff_client.get(PAGE, headers={"HX-Request": "true"})
    html = page.content.decode()
    assert page.status_code == 200 and 'hx-trigger="every 2s"' in html
    assert "<html" not in html and "Check now" not in html  # the partial only
    assert page["Vary"].find("HX-Request") >= 0


def test_the_portal_estimate_includes_a_reversal_paid_again(
    portal_client, affiliate, program, fake_stripe, approved, django_capture_on_commit_callbacks
):
    from payouts.reconcile import finding_decide, reconcile_period
    from payouts.services import payouts_create
    from payouts.stripe_client import stripe_client
    from refapp.models import Actor

    fake_stripe.set_account("acct_john", payouts_enabled=True)
    affiliate.payout_method, affiliate.stripe_account_id, affiliate.stripe_payouts_enabled = (
        "stripe",
        "acct_john",
        True,
    )
    affiliate.save()
    approved(affiliate, 7000)
    with django_capture_on_commit_callbacks(execute=True):
        [payout] = payouts_create(program=program, now=timezone.now(), actor=Actor.system())
    payout.refresh_from_db()
    stripe_client().v1.transfers.reversals.create(payout.transfer_id, params={"amount": 1500})
    with django_capture_on_commit_callbacks(execute=True):
        reconcile_period(period=period_of(timezone.now()), actor=Actor.system(), now=timezone.now())
    approved(affiliate, 9000)
    for url in ("/portal/payouts/", "/portal/"):  # not carried until an admin decides
        html = portal_client.get(url).content.decode()
        assert 'data-stat="carried"' not in html and 'data-stat="next-payout">90.00 USD' in html, url

    finding_decide(
        finding=ReconciliationFinding.objects.get(kind="reversed"),
        status="pay_again",
        note="Reversed by mistake",
        actor=Actor("user:1"),
        now=timezone.now(),
    )

    for url in ("/portal/payouts/", "/portal/"):
        html = portal_client.get(url).content.decode()
        assert "15.00 USD is added to it" in html, url
        assert 'data-stat="next-payout">105.00 USD' in html, url  # 90.00 approved + 15.00 paid again


def test_the_payout_that_pays_a_reversal_again_shows_it(
    staff_client, program, connected, fake_stripe, approved, django_capture_on_commit_callbacks
):
    from payouts.reconcile import reconcile_period
    from payouts.services import payouts_create
    from payouts.stripe_client import stripe_client
    from refapp.models import Actor

    approved(connected, 7000)
    with django_capture_on_commit_callbacks(execute=True):
        [first] = payouts_create(program=program, now=timezone.now(), actor=Actor.system())
    first.refresh_from_db()
    stripe_client().v1.transfers.reversals.create(first.transfer_id, params={"amount": 1500})
    with django_capture_on_commit_callbacks(execute=True):
        reconcile_period(period=period_of(timezone.now()), actor=Actor.system(), now=timezone.now())
    finding = ReconciliationFinding.objects.get(kind="reversed")
    staff_client.post(decide_url(finding), {"action": "pay_again", "note": "Reversed by mistake"})
    approved(connected, 9000)
    with django_capture_on_commit_callbacks(execute=True):
        [second] = payouts_create(program=program, now=timezone.now() + timedelta(days=32))
    assert second.amount_cents == 10500
    html = staff_client.get(f"/panel/p/acme/payouts/{second.public_id}/").content.decode()
    assert "Reversals paid again in this payout" in html and "15.00 USD" in html
    assert first.transfer_id in html and "Reversed by mistake" in html
    page = staff_client.get(PAGE).content.decode()
    assert second.public_id in page  # the carry's "netted by" column
