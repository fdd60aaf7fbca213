from datetime import timedelta

import pytest
import stripe
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from affiliates.models import Affiliate
from commissions.models import Commission
from payouts.models import Payout, PayoutItem
from payouts.services import payout_plan, payout_retry, payout_send, payouts_create
from refapp.models import Actor, AuditLog
from tests.factories import AffiliateFactory, PayoutFactory

pytestmark = pytest.mark.django_db


def statuses(affiliate):
    return sorted(Commission.objects.filter(affiliate=affiliate).values_list("status", flat=True))


def test_run_pays_eligible_affiliate_through_stripe(
    program, connected, approved, fake_stripe, django_capture_on_commit_callbacks
):
    approved(connected, 3000)
    approved(connected, 2500)
    with django_capture_on_commit_callbacks(execute=True):
        [payout] = payouts_create(program=program, now=timezone.now(), actor=Actor.system())
    payout.refresh_from_db()
    assert payout.status == "paid" and payout.amount_cents == 5500 and payout.transfer_id.startswith("tr_")
    [transfer] = fake_stripe.transfers
    assert (transfer["amount"], transfer["currency"], transfer["destination"]) == (5500, "usd", "acct_john")
    assert transfer["metadata"]["payout_id"] == payout.public_id
    assert fake_stripe.requests[-1].idempotency_key == f"payout-{payout.pk}"
    assert statuses(connected) == ["paid", "paid"]
    assert [m.to for m in mail.outbox] == [["john@partner.example"]] and "55.00 USD" in mail.outbox[0].subject
    assert AuditLog.objects.filter(action="payout.paid", object_id=payout.public_id).exists()


def test_below_minimum_is_carried_to_next_month(
    program, connected, approved, fake_stripe, django_capture_on_commit_callbacks
):
    approved(connected, 3000)  # minimum is 50.00
    november = timezone.now().replace(month=11, day=1, hour=6)
    with django_capture_on_commit_callbacks(execute=True):
        assert payouts_create(program=program, now=november) == []
    [line] = payout_plan(program=program, now=november).lines
    assert "below the minimum" in line.reason
    approved(connected, 2500)
    with django_capture_on_commit_callbacks(execute=True):
        [payout] = payouts_create(program=program, now=november.replace(month=12))
    payout.refresh_from_db()
    assert payout.period.endswith("-12") and payout.amount_cents == 5500 and payout.status == "paid"


def test_refund_after_payment_is_netted_from_next_payout(
    program, connected, approved, fake_stripe, api_client, django_capture_on_commit_callbacks
):
    paid = approved(connected, 6000, order="ORD-PAID")
    with django_capture_on_commit_callbacks(execute=True):
        payouts_create(program=program, now=timezone.now().replace(month=11))
    paid.refresh_from_db()
    assert paid.status == "paid"
    response = api_client.post("/api/v1/refunds", {"order_id": "ORD-PAID"})
    assert response.status_code == 201
    clawback = Commission.objects.get(kind="reversal")
    assert clawback.amount_cents == -6000 and clawback.status == "approved"
    approved(connected, 8000)
    with django_capture_on_commit_callbacks(execute=True):  # 80.00 - 60.00 = 20.00: below the minimum
        assert payouts_create(program=program, now=timezone.now().replace(month=12)) == []
    approved(connected, 4000)
    with django_capture_on_commit_callbacks(execute=True):
        [payout] = payouts_create(program=program, now=timezone.now().replace(month=12))
    assert payout.amount_cents == 6000  # 80.00 + 40.00 earned minus the 60.00 clawback
    clawback.refresh_from_db()
    assert clawback.status == "paid"
    assert [t["amount"] for t in fake_stripe.transfers] == [6000, 6000]


def test_affiliates_without_method_or_not_active_are_skipped(program, approved, fake_stripe):
    nomethod = AffiliateFactory(program=program, code="NOMETHOD")
    suspended = AffiliateFactory(
        program=program, code="SUSP", status="suspended", payout_method="paypal", paypal_email="s@example.com"
    )
    unready = AffiliateFactory(
        program=program, code="UNREADY", payout_method="stripe", stripe_account_id="acct_x"
    )
    for affiliate in (nomethod, suspended, unready):
        approved(affiliate, 9000)
    plan = payout_plan(program=program, now=timezone.now())
    assert {line.affiliate.code: line.reason for line in plan.lines} == {
        "NOMETHOD": "no payout method",
        "SUSP": "affiliate is suspended",
        "UNREADY": "Stripe account cannot receive payouts yet",
    }
    assert payouts_create(program=program, now=timezone.now()) == []


def test_manual_paypal_payout_waits_for_admin(program, approved, fake_stripe):
    paypal = AffiliateFactory(
        program=program, code="PP", payout_method="paypal", paypal_email="pp@example.com"
    )
    approved(paypal, 7000)
    [payout] = payouts_create(program=program, now=timezone.now())
    assert payout.status == "pending" and payout.destination == "pp@example.com"
    assert statuses(paypal) == ["processing"] and fake_stripe.transfers == []


def test_permanent_error_fails_payout_and_returns_commissions(
    program, connected, approved, fake_stripe, staff_user, django_capture_on_commit_callbacks
):
    approved(connected, 6000)
    fake_stripe.set_account("acct_john", payouts_enabled=False)  # Stripe refuses the destination
    with django_capture_on_commit_callbacks(execute=True):
        [payout] = payouts_create(program=program, now=timezone.now())
    payout.refresh_from_db()
    assert payout.status == "failed" and payout.failure_reason
    assert statuses(connected) == ["approved"]
    assert PayoutItem.objects.get().released
    assert any(m.to == ["admin@acme.example"] and "failed" in m.subject for m in mail.outbox)
    # fixed at Stripe: the retry uses a fresh idempotency key and pays once
    fake_stripe.set_account("acct_john", payouts_enabled=True)
    with django_capture_on_commit_callbacks(execute=True):
        payout_retry(payout=payout, actor=Actor("user:1"), now=timezone.now())
    payout.refresh_from_db()
    assert payout.status == "paid" and payout.attempt == 2
    assert fake_stripe.requests[-1].idempotency_key == f"payout-{payout.pk}-attempt-2"
    assert len(fake_stripe.transfers) == 1 and statuses(connected) == ["paid"]


def test_crash_between_transfer_and_database_is_healed_by_running_again(
    program, connected, approved, fake_stripe, capsys
):
    approved(connected, 6000)
    [payout] = payouts_create(
        program=program, now=timezone.now()
    )  # the send task is not run: on_commit not captured
    fake_stripe.drop_after_commit_next("/v1/transfers")
    with pytest.raises(stripe.APIConnectionError):
        payout_send(payout_id=payout.pk, now=timezone.now())
    payout.refresh_from_db()
    assert payout.status == "processing" and len(fake_stripe.transfers) == 1  # Stripe paid, we did not hear
    call_command("run_payouts", "--program", "acme")
    payout.refresh_from_db()
    assert payout.status == "paid" and payout.transfer_id == fake_stripe.transfers[0]["id"]
    assert len(fake_stripe.transfers) == 1
    assert [r.idempotency_key for r in fake_stripe.requests if r.path == "/v1/transfers"] == [
        f"payout-{payout.pk}"
    ] * 2
    assert "Created 0 payout(s)" in capsys.readouterr().out


def test_transient_error_is_retried_by_the_task(program, connected, approved, fake_stripe):
    from payouts.tasks import payout_send as payout_send_task

    approved(connected, 6000)
    [payout] = payouts_create(program=program, now=timezone.now())
    fake_stripe.fail_next("/v1/transfers", 500, "api_error", message="Stripe hiccup")
    # Eager Celery runs the retry at once (a worker would wait 5 s): the second attempt succeeds.
    result = payout_send_task.apply(args=[payout.pk], throw=False)
    assert result.state == "SUCCESS" and result.result == "paid"
    keys = [r.idempotency_key for r in fake_stripe.requests if r.path == "/v1/transfers"]
    assert keys == [f"payout-{payout.pk}"] * 2 and len(fake_stripe.transfers) == 1


def test_a_second_run_in_the_same_period_pays_nothing_more(
    program, connected, approved, fake_stripe, django_capture_on_commit_callbacks
):
    approved(connected, 6000)
    now = timezone.now().replace(day=15, hour=12)  # an hour later is the same month
    with django_capture_on_commit_callbacks(execute=True):
        payouts_create(program=program, now=now)
    approved(connected, 9000)  # approved later the same month: waits for next month's run
    with django_capture_on_commit_callbacks(execute=True):
        assert payouts_create(program=program, now=now + timedelta(hours=1)) == []
    assert Payout.objects.count() == 1 and len(fake_stripe.transfers) == 1


def test_test_mode_commissions_are_never_paid(program, connected, approved, fake_stripe):
    commission = approved(connected, 9000)
    Commission.objects.filter(pk=commission.pk).update(livemode=False)
    assert payouts_create(program=program, now=timezone.now()) == []


def test_a_test_mode_affiliate_is_never_paid(program, connected, approved, fake_stripe):
    approved(connected, 9000)
    Affiliate.objects.filter(pk=connected.pk).update(livemode=False)
    assert payout_plan(program=program, now=timezone.now()).lines == []
    assert payouts_create(program=program, now=timezone.now()) == []
    assert fake_stripe.transfers == []


def test_disputed_order_is_held_from_payout(program, connected, approved, fake_stripe):
    commission = approved(connected, 9000)
    commission.event.disputed = True
    commission.event.save()
    assert payouts_create(program=program, now=timezone.now()) == []


def test_dry_run_prints_and_changes_nothing(program, connected, approved, fake_stripe, capsys):
    approved(connected, 6000)
    AffiliateFactory(program=program, code="POOR")
    call_command("run_payouts", "--program", "acme", "--dry-run")
    out = capsys.readouterr().out
    assert "PAY   JOHN" in out and "60.00 USD" in out and "Would pay 1 affiliate(s)" in out
    assert Payout.objects.count() == 0 and fake_stripe.transfers == []


def test_run_payouts_command_errors(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No program"):
        call_command("run_payouts", "--program", "nope")


def test_explicit_period_is_one_payout_per_affiliate(program, connected, approved, fake_stripe, capsys):
    approved(connected, 6000)
    call_command("run_payouts", "--program", "acme", "--period", "2026-10")
    call_command("run_payouts", "--program", "acme", "--period", "2026-10")
    assert list(Payout.objects.values_list("period", "status")) == [("2026-10", "paid")]
    approved(connected, 6000)
    call_command("run_payouts", "--program", "acme", "--period", "2026-10", "--dry-run")
    assert "already has a payout for 2026-10" in capsys.readouterr().out
    with pytest.raises(Exception, match="2026-11"):
        call_command("run_payouts", "--program", "acme", "--period", "2026-13")


def test_a_batch_meeting_a_twin_runs_payout_still_pays_the_others(
    program, connected, approved, fake_stripe, monkeypatch
):
    """A batch that hits the unique (affiliate, period) index is redone one affiliate at a time."""
    from payouts import services

    other = AffiliateFactory(
        program=program, code="MARY", payout_method="paypal", paypal_email="m@pp.example"
    )
    approved(connected, 6000)
    approved(other, 7000)
    now = timezone.now()
    plan = payout_plan(program=program, now=now)  # read before the twin run wrote John's payout
    assert len(plan.payable) == 2
    PayoutFactory(
        affiliate=connected,
        period=plan.period,
        method="stripe",
        destination="acct_john",
        amount_cents=1,
        created_at=now,
        status="paid",
    )
    monkeypatch.setattr(services, "payout_plan", lambda **kwargs: plan)
    monkeypatch.setattr(services, "CREATE_BATCH", 2)
    created = payouts_create(program=program, now=now)
    assert [(p.affiliate, p.amount_cents, p.status) for p in created] == [(other, 7000, "pending")]
    assert statuses(connected) == ["approved"]  # untouched, for the next run
    assert statuses(other) == ["processing"]
    assert PayoutItem.objects.filter(payout__affiliate=connected).count() == 0


def test_marking_paid_is_one_conditional_update_and_happens_once(
    program, approved, fake_stripe, django_assert_max_num_queries
):
    from payouts.services import PayoutStateError, payout_mark_paid

    paypal = AffiliateFactory(
        program=program, code="PQ", payout_method="paypal", paypal_email="pq@example.com"
    )
    approved(paypal, 7000)
    [payout] = payouts_create(program=program, now=timezone.now())
    # As payout_send has it: read once, with its program and affiliate.
    payout = Payout.objects.select_related("program", "affiliate").get(pk=payout.pk)
    # PostgreSQL: one statement (the conditional update, its commissions, the audit row). SQLite:
    # savepoint, the payout's conditional update, its commissions, the audit row, release. Then
    # the email is queued after the commit (send_templated's on_commit).
    with django_assert_max_num_queries(1 if connection.vendor == "postgresql" else 5):
        paid = payout_mark_paid(payout=payout, now=timezone.now(), actor=Actor.system(), reference="PP-1")
    assert paid.status == "paid" and statuses(paypal) == ["paid"]
    stored = Payout.objects.get(pk=payout.pk)
    assert (stored.status, stored.reference, stored.paid_at, stored.transfer_id) == (
        "paid",
        "PP-1",
        paid.paid_at,
        "",
    )
    assert set(Commission.objects.filter(affiliate=paypal).values_list("paid_at", flat=True)) == {
        paid.paid_at
    }
    entry = AuditLog.objects.get(action="payout.paid", object_id=payout.public_id)
    assert (entry.actor_label, entry.program_id, entry.object_type, entry.actor_id) == (
        "system",
        program.pk,
        "payouts.payout",
        None,
    )
    assert entry.data == {"transfer_id": "", "reference": "PP-1", "amount_cents": 7000} and entry.created_at
    # Again, from a stale copy (a redelivered task, a second click): paid already, nothing more.
    stale = Payout.objects.get(pk=payout.pk)
    stale.status = "processing"
    again = payout_mark_paid(payout=stale, now=timezone.now(), actor=Actor.system(), reference="PP-2")
    assert again.status == "paid" and again.reference == "PP-1"
    assert AuditLog.objects.filter(action="payout.paid", object_id=payout.public_id).count() == 1
    # A failed payout is refused, and nothing changes.
    Payout.objects.filter(pk=payout.pk).update(status="failed")
    with pytest.raises(PayoutStateError, match="failed"):
        payout_mark_paid(payout=stale, now=timezone.now(), actor=Actor.system(), reference="PP-3")
    assert Payout.objects.get(pk=payout.pk).reference == "PP-1"
