"""Reconciliation of payouts against the fake Stripe's transfers (payouts/reconcile.py)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.utils import timezone

from payouts.models import BalanceAdjustment, Payout, ReconciliationFinding, ReconciliationRun
from payouts.reconcile import (
    ReconciliationError,
    finding_decide,
    nightly_periods,
    period_of,
    period_window,
    reconcile_period,
)
from payouts.services import payout_plan, payouts_create
from payouts.stripe_client import stripe_client
from refapp.models import Actor, AuditLog
from tests.factories import AffiliateFactory, PayoutFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_pages(settings):
    """Two transfers per listing request, so that a handful of transfers takes several pages."""
    settings.REFAPP_RECONCILE_PAGE_SIZE = 2


@pytest.fixture
def pay(program, approved, django_capture_on_commit_callbacks):
    """pay(affiliate, cents, now=...) runs a payout for an affiliate with that much approved and
    returns the payout, sent through the fake Stripe."""

    def run(affiliate, cents, *, now=None):
        approved(affiliate, cents)
        with django_capture_on_commit_callbacks(execute=True):
            created = payouts_create(program=program, now=now or timezone.now(), actor=Actor.system())
        [payout] = [p for p in created if p.affiliate_id == affiliate.pk]
        payout.refresh_from_db()
        return payout

    return run


def connected_affiliate(program, fake_stripe, code: str):
    account = f"acct_{code.lower()}"
    fake_stripe.set_account(account, payouts_enabled=True)
    return AffiliateFactory(
        program=program,
        code=code,
        email=f"{code.lower()}@partner.example",
        payout_method="stripe",
        stripe_account_id=account,
        stripe_payouts_enabled=True,
    )


def check(django_capture_on_commit_callbacks, period=None):
    with django_capture_on_commit_callbacks(execute=True):
        return reconcile_period(
            period=period or period_of(timezone.now()), actor=Actor.system(), now=timezone.now()
        )


def kinds():
    return sorted(ReconciliationFinding.objects.values_list("kind", "key"))


def listing_requests(fake_stripe):
    return [r.params for r in fake_stripe.requests if r.method == "GET" and r.path == "/v1/transfers"]


def test_period_window_is_the_utc_month():
    assert period_window("2026-12") == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    for bad in ("2026-13", "2026-1", "26-01", "", "2026-00x"):
        with pytest.raises(ValueError):
            period_window(bad)
    assert nightly_periods(datetime(2026, 1, 3, 4, 40, tzinfo=UTC)) == ["2025-12", "2026-01"]


def test_a_clean_month_finds_nothing_across_several_pages(
    program, fake_stripe, pay, small_pages, staff_user, django_capture_on_commit_callbacks
):
    for code in ("ANN", "BOB", "CAT", "DAN", "EVE"):
        pay(connected_affiliate(program, fake_stripe, code), 6000)
    assert len(fake_stripe.transfers) == 5
    mail.outbox.clear()

    run = check(django_capture_on_commit_callbacks)

    assert (run.status, run.transfers_seen, run.payouts_seen, run.findings_new) == ("done", 5, 5, 0)
    assert ReconciliationFinding.objects.count() == 0 and BalanceAdjustment.objects.count() == 0
    pages = listing_requests(fake_stripe)
    assert [p.get("starting_after") is not None for p in pages] == [False, True, True]
    assert {p["limit"] for p in pages} == {"2"}
    start, end = period_window(run.period)
    assert pages[0]["created"] == {"gte": str(int(start.timestamp())), "lt": str(int(end.timestamp()))}
    assert mail.outbox == []


def test_each_kind_of_mismatch_is_found_once_however_often_the_month_is_checked(
    program, connected, fake_stripe, pay, small_pages, staff_user, django_capture_on_commit_callbacks
):
    client = stripe_client()
    now = timezone.now()
    # Clean: paid and transferred as recorded.
    clean = pay(connected_affiliate(program, fake_stripe, "CLEAN"), 5000)
    # Reversed in Stripe after refapp marked it paid.
    reversed_payout = pay(connected, 7000)
    reversal = client.v1.transfers.reversals.create(reversed_payout.transfer_id, params={"amount": 2500})
    # Paid in refapp, but Stripe has no such transfer; and one with no transfer recorded at all.
    ghost = PayoutFactory(
        program=program,
        affiliate=connected_affiliate(program, fake_stripe, "GHOST"),
        method="stripe",
        destination="acct_ghost",
        status="paid",
        paid_at=now,
        transfer_id="tr_1NoSuchTransferInStripe00",
        amount_cents=6100,
    )
    blank = PayoutFactory(
        program=program,
        affiliate=connected_affiliate(program, fake_stripe, "BLANK"),
        method="stripe",
        destination="acct_blank",
        status="paid",
        paid_at=now,
        amount_cents=6200,
    )
    # A transfer made outside refapp to one of its affiliates, naming no payout.
    stray = fake_stripe.plant_transfer(amount=999, destination="acct_john", metadata={"note": "bonus"})
    # Transfers whose amount, or currency, is not their payout's.
    short = PayoutFactory(
        program=program,
        affiliate=connected_affiliate(program, fake_stripe, "SHORT"),
        method="stripe",
        destination="acct_short",
        status="paid",
        paid_at=now,
        amount_cents=8000,
    )
    short_transfer = fake_stripe.plant_transfer(
        amount=7000, destination="acct_short", metadata={"payout_id": short.public_id}
    )
    Payout.objects.filter(pk=short.pk).update(transfer_id=short_transfer["id"])
    euro = PayoutFactory(
        program=program,
        affiliate=connected_affiliate(program, fake_stripe, "EURO"),
        method="stripe",
        destination="acct_euro",
        status="paid",
        paid_at=now,
        amount_cents=5500,
    )
    euro_transfer = fake_stripe.plant_transfer(
        amount=5500, currency="eur", destination="acct_euro", metadata={"payout_id": euro.public_id}
    )
    Payout.objects.filter(pk=euro.pk).update(transfer_id=euro_transfer["id"])
    mail.outbox.clear()

    run = check(django_capture_on_commit_callbacks)

    assert run.status == "done" and run.transfers_seen == 5 and run.findings_new == 6
    assert kinds() == sorted(
        [
            ("amount_mismatch", short_transfer["id"]),
            ("amount_mismatch", euro_transfer["id"]),
            ("missing_transfer", ghost.public_id),
            ("missing_transfer", blank.public_id),
            ("reversed", reversed_payout.transfer_id),
            ("unknown_transfer", stray["id"]),
        ]
    )
    assert not ReconciliationFinding.objects.filter(payout=clean).exists()
    found = {f.key: f for f in ReconciliationFinding.objects.all()}
    assert (found[short_transfer["id"]].expected_cents, found[short_transfer["id"]].actual_cents) == (
        8000,
        7000,
    )
    assert (found[euro_transfer["id"]].expected_currency, found[euro_transfer["id"]].actual_currency) == (
        "USD",
        "EUR",
    )
    assert "Stripe has no transfer" in found[ghost.public_id].detail
    assert "no transfer for it" in found[blank.public_id].detail
    assert found[stray["id"]].program == program and "names no refapp payout" in found[stray["id"]].detail
    rev = found[reversed_payout.transfer_id]
    assert rev.status == "open" and rev.actual_cents == 2500
    assert [(r["id"], r["amount"]) for r in rev.reversals] == [(reversal.id, 2500)]
    # A reversal is not carried by itself: like everything else it waits for an admin, who got one
    # email listing them all.
    assert BalanceAdjustment.objects.count() == 0
    assert ReconciliationFinding.objects.filter(status="open").count() == 6
    [email] = mail.outbox
    assert email.to == ["admin@acme.example"] and "6 differences with Stripe" in email.subject
    assert short_transfer["id"] in email.body and ghost.public_id in email.body
    assert len(listing_requests(fake_stripe)) == 3  # five transfers, two a page

    again = check(django_capture_on_commit_callbacks)

    assert again.status == "done" and again.findings_new == 0
    assert ReconciliationFinding.objects.count() == 6 and BalanceAdjustment.objects.count() == 0
    assert len(mail.outbox) == 1  # nothing new, nothing sent
    assert AuditLog.objects.filter(action="reconciliation.finding_opened").count() == 6
    assert not AuditLog.objects.filter(action="payout.balance_carried").exists()


def test_a_transfer_for_a_failed_payout_or_a_second_transfer_has_no_paid_payout(
    program, connected, fake_stripe, pay, django_capture_on_commit_callbacks
):
    paid = pay(connected, 6000)
    failed = PayoutFactory(
        program=program,
        affiliate=connected_affiliate(program, fake_stripe, "FAILED"),
        method="stripe",
        destination="acct_failed",
        status="failed",
    )
    twice = fake_stripe.plant_transfer(
        amount=6000, destination="acct_john", metadata={"payout_id": paid.public_id}
    )
    sent_anyway = fake_stripe.plant_transfer(
        amount=5000, destination="acct_failed", metadata={"payout_id": failed.public_id}
    )
    check(django_capture_on_commit_callbacks)
    found = {f.key: f for f in ReconciliationFinding.objects.all()}
    assert set(found) == {twice["id"], sent_anyway["id"]}
    assert {f.kind for f in found.values()} == {"unknown_transfer"}
    assert "second transfer for one payout" in found[twice["id"]].detail
    assert "failed" in found[sent_anyway["id"]].detail and found[sent_anyway["id"]].payout == failed


def test_a_payout_paid_this_month_matches_its_transfer_made_last_month(
    program, connected, fake_stripe, django_capture_on_commit_callbacks
):
    """The check of a month looks up the transfer of each payout paid in it that the month's listing
    did not bring (a send that crossed midnight at the month's end)."""
    now = timezone.now()
    payout = PayoutFactory(
        program=program,
        affiliate=connected,
        method="stripe",
        destination="acct_john",
        status="paid",
        paid_at=now,
        amount_cents=5000,
    )
    start, _ = period_window(period_of(now))
    earlier = fake_stripe.plant_transfer(
        amount=5000,
        destination="acct_john",
        metadata={"payout_id": payout.public_id},
        created=int(start.timestamp()) - 5,
    )
    Payout.objects.filter(pk=payout.pk).update(transfer_id=earlier["id"])

    run = check(django_capture_on_commit_callbacks)

    assert (run.transfers_seen, run.payouts_seen, run.findings_new) == (0, 1, 0)
    assert ReconciliationFinding.objects.count() == 0


def decide(finding, action, note="Checked with the merchant", actor=None):
    return finding_decide(
        finding=finding, status=action, note=note, actor=actor or Actor("user:1"), now=timezone.now()
    )


def reversed_finding():
    return ReconciliationFinding.objects.get(kind="reversed")


def test_a_reversal_is_not_carried_by_itself(
    program, connected, fake_stripe, pay, django_capture_on_commit_callbacks
):
    """The reversal already took the money back from the affiliate's Stripe account: subtracting it
    from the next payout as well would take it twice. The next run pays its commissions only."""
    first = pay(connected, 7000)
    stripe_client().v1.transfers.reversals.create(first.transfer_id, params={"amount": 3000})
    check(django_capture_on_commit_callbacks)
    check(django_capture_on_commit_callbacks)

    assert reversed_finding().status == "open" and BalanceAdjustment.objects.count() == 0
    second = pay(connected, 9000, now=timezone.now() + timedelta(days=32))
    assert second.status == "paid" and second.amount_cents == 9000
    assert fake_stripe.transfers[-1]["amount"] == 9000


def test_paying_a_reversal_again_adds_it_to_the_next_payout_once(
    program, connected, fake_stripe, pay, django_capture_on_commit_callbacks
):
    first = pay(connected, 7000)
    client = stripe_client()
    reversal = client.v1.transfers.reversals.create(first.transfer_id, params={"amount": 3000})
    check(django_capture_on_commit_callbacks)

    finding = decide(reversed_finding(), "pay_again", "The merchant reversed it by mistake")

    assert (finding.status, finding.note, finding.decided_by) == (
        "carried",
        "The merchant reversed it by mistake",
        "user:1",
    )
    [carry] = BalanceAdjustment.objects.all()
    assert (carry.amount_cents, carry.source_id, carry.payout, carry.finding) == (
        3000,
        reversal.id,
        None,
        finding,
    )
    [audit] = AuditLog.objects.filter(action="payout.balance_carried")
    assert audit.object_id == carry.public_id and audit.actor_label == "user:1"
    assert audit.program_id == program.pk and audit.data["reversal"] == reversal.id
    assert audit.data["note"] == "The merchant reversed it by mistake" and audit.data["amount_cents"] == 3000
    decided = AuditLog.objects.get(action="reconciliation.finding_carried", object_id=finding.public_id)
    assert decided.data["carried"] == 1 and decided.data["note"] == "The merchant reversed it by mistake"

    # Posted twice, checked again: still one adjustment, and the finding stays decided.
    with pytest.raises(ReconciliationError, match="already paid again"):
        decide(reversed_finding(), "pay_again")
    check(django_capture_on_commit_callbacks)
    assert reversed_finding().status == "carried" and BalanceAdjustment.objects.count() == 1

    next_month = timezone.now() + timedelta(days=32)
    second = pay(connected, 9000, now=next_month)

    assert second.amount_cents == 9000 + 3000
    assert fake_stripe.transfers[-1]["amount"] == 12000
    carry.refresh_from_db()
    assert carry.payout == second and carry.applied_at is not None
    assert AuditLog.objects.get(action="payout.created", object_id=second.public_id).data["adjustments"] == 1

    # Checked again, paid again: the reversal is never added a second time.
    check(django_capture_on_commit_callbacks)
    third = pay(connected, 6000, now=next_month + timedelta(days=32))
    assert third.amount_cents == 6000
    assert BalanceAdjustment.objects.count() == 1


def test_keeping_a_reversal_recovered_carries_nothing(
    program, connected, fake_stripe, pay, django_capture_on_commit_callbacks
):
    first = pay(connected, 7000)
    stripe_client().v1.transfers.reversals.create(first.transfer_id, params={"amount": 3000})
    check(django_capture_on_commit_callbacks)
    decide(reversed_finding(), "acknowledged", "Asking the merchant")

    finding = decide(reversed_finding(), "keep_recovered", "The merchant recovered an overpayment")

    assert (finding.status, finding.note) == ("recovered", "The merchant recovered an overpayment")
    audit = AuditLog.objects.get(action="reconciliation.finding_recovered", object_id=finding.public_id)
    assert audit.data == {"from": "acknowledged", "note": "The merchant recovered an overpayment"}
    with pytest.raises(ReconciliationError, match="already kept recovered"):
        decide(reversed_finding(), "pay_again")
    check(django_capture_on_commit_callbacks)
    assert reversed_finding().status == "recovered" and BalanceAdjustment.objects.count() == 0
    second = pay(connected, 9000, now=timezone.now() + timedelta(days=32))
    assert second.amount_cents == 9000


def test_a_reversal_needs_a_note_and_one_of_its_own_decisions(
    program, connected, fake_stripe, pay, django_capture_on_commit_callbacks
):
    first = pay(connected, 7000)
    stripe_client().v1.transfers.reversals.create(first.transfer_id, params={"amount": 3000})
    stray = fake_stripe.plant_transfer(amount=999, destination="acct_john", metadata={})
    check(django_capture_on_commit_callbacks)

    with pytest.raises(ReconciliationError, match="note"):
        decide(reversed_finding(), "pay_again", note="  ")
    with pytest.raises(ReconciliationError, match="paying it again or keeping it recovered"):
        decide(reversed_finding(), "resolved")
    with pytest.raises(ReconciliationError, match="Only a reversed transfer"):
        decide(ReconciliationFinding.objects.get(key=stray["id"]), "pay_again")
    assert reversed_finding().status == "open" and BalanceAdjustment.objects.count() == 0


def test_a_reversal_in_another_currency_can_only_be_kept_recovered(
    program, connected, fake_stripe, django_capture_on_commit_callbacks
):
    euro = PayoutFactory(
        program=program,
        affiliate=connected,
        method="stripe",
        destination="acct_john",
        status="paid",
        paid_at=timezone.now(),
        amount_cents=5500,
    )
    transfer = fake_stripe.plant_transfer(
        amount=5500, currency="eur", destination="acct_john", metadata={"payout_id": euro.public_id}
    )
    Payout.objects.filter(pk=euro.pk).update(transfer_id=transfer["id"])
    stripe_client().v1.transfers.reversals.create(transfer["id"], params={"amount": 1000})
    check(django_capture_on_commit_callbacks)

    with pytest.raises(ReconciliationError, match="not in the payout's currency"):
        decide(reversed_finding(), "pay_again")
    assert reversed_finding().status == "open" and BalanceAdjustment.objects.count() == 0
    assert decide(reversed_finding(), "keep_recovered").status == "recovered"


def test_a_reversal_paid_again_is_paid_alone_when_it_reaches_the_minimum(
    program, connected, fake_stripe, pay, django_capture_on_commit_callbacks
):
    """An affiliate with nothing approved but a reversal paid again gets a payout of it alone if it
    reaches the program's minimum; below the minimum it waits, as commissions do."""
    first = pay(connected, 6000)
    stripe_client().v1.transfers.reversals.create(first.transfer_id)  # all of it
    check(django_capture_on_commit_callbacks)
    decide(reversed_finding(), "pay_again")
    next_month = timezone.now() + timedelta(days=32)
    [line] = payout_plan(program=program, now=next_month).lines
    assert (line.net_cents, line.carried_cents, line.commissions, line.eligible) == (6000, 6000, 0, True)

    with django_capture_on_commit_callbacks(execute=True):
        [second] = payouts_create(program=program, now=next_month)
    second.refresh_from_db()
    assert (second.status, second.amount_cents, second.items.count()) == ("paid", 6000, 0)
    assert BalanceAdjustment.objects.get().payout == second


def test_a_reversal_paid_again_below_the_minimum_waits(
    program, connected, fake_stripe, pay, django_capture_on_commit_callbacks
):
    first = pay(connected, 6000)
    stripe_client().v1.transfers.reversals.create(first.transfer_id, params={"amount": 1000})
    check(django_capture_on_commit_callbacks)
    decide(reversed_finding(), "pay_again")
    next_month = timezone.now() + timedelta(days=32)
    [line] = payout_plan(program=program, now=next_month).lines
    assert (line.net_cents, line.carried_cents, line.eligible) == (1000, 1000, False)
    assert "below the minimum" in line.reason
    assert payouts_create(program=program, now=next_month) == []
    assert BalanceAdjustment.objects.get().payout is None


def test_a_failed_payout_gives_the_carry_back_to_the_next_run(
    program, connected, fake_stripe, pay, approved, django_capture_on_commit_callbacks
):
    first = pay(connected, 7000)
    stripe_client().v1.transfers.reversals.create(first.transfer_id, params={"amount": 1000})
    check(django_capture_on_commit_callbacks)
    decide(reversed_finding(), "pay_again")
    next_month = timezone.now() + timedelta(days=32)
    approved(connected, 9000)
    fake_stripe.set_account("acct_john", payouts_enabled=False)  # Stripe refuses this transfer
    with django_capture_on_commit_callbacks(execute=True):
        [failed] = payouts_create(program=program, now=next_month)
    failed.refresh_from_db()
    assert failed.status == "failed" and failed.amount_cents == 10000
    [carry] = BalanceAdjustment.objects.all()
    assert carry.payout is None and carry.applied_at is None
    assert (
        AuditLog.objects.get(action="payout.failed", object_id=failed.public_id).data["adjustments_returned"]
        == 1
    )

    fake_stripe.set_account("acct_john", payouts_enabled=True)
    approved(connected, 1000)
    with django_capture_on_commit_callbacks(execute=True):
        [later] = payouts_create(program=program, now=next_month + timedelta(days=32))
    later.refresh_from_db()
    assert later.status == "paid" and later.amount_cents == 9000 + 1000 + 1000
    carry.refresh_from_db()
    assert carry.payout == later


def test_a_check_that_cannot_reach_stripe_is_recorded_as_failed_and_writes_nothing(
    program, connected, fake_stripe, pay, django_capture_on_commit_callbacks
):
    import stripe

    pay(connected, 6000)
    fake_stripe.fail_next("/v1/transfers", 500, "api_error", method="GET")
    with pytest.raises(stripe.APIError):
        check(django_capture_on_commit_callbacks)
    run = ReconciliationRun.objects.get()
    assert run.status == "failed" and run.error and run.finished_at
    assert ReconciliationFinding.objects.count() == 0


def test_the_command_checks_a_month_and_lists_what_waits(program, connected, fake_stripe):
    from io import StringIO

    from django.core.management import CommandError, call_command

    stray = fake_stripe.plant_transfer(amount=700, destination="acct_john")
    out = StringIO()
    call_command("reconcile_stripe", stdout=out)
    text = out.getvalue()
    assert "1 transfer(s), 0 paid payout(s), 1 new finding(s)" in text and stray["id"] in text
    assert ReconciliationRun.objects.get().actor_label == "command:reconcile_stripe"
    with pytest.raises(CommandError, match="YYYY-MM"):
        call_command("reconcile_stripe", "--period", "2026-13")
