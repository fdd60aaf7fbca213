"""Paying exactly once when runs race, and when a worker dies with a transfer in flight."""

import threading
import time

import pytest
from django.core.management import call_command
from django.db import close_old_connections, connection
from django.utils import timezone

from commissions.models import Commission
from payouts.models import Payout, PayoutItem
from payouts.services import payouts_create
from tests.factories import AffiliateFactory
from tests.refapp.worker import start_worker, stop_worker


@pytest.mark.postgres
def test_two_payout_runs_in_parallel_pay_each_affiliate_once(
    transactional_db, program, fake_stripe, approved
):
    if connection.vendor != "postgresql":
        pytest.skip("row locks are proven on PostgreSQL; set DATABASE_URL to run it")
    affiliates = []
    for i in range(8):
        account = f"acct_{i}"
        fake_stripe.set_account(account, payouts_enabled=True)
        affiliate = AffiliateFactory(
            program=program,
            code=f"P{i}",
            payout_method="stripe",
            stripe_account_id=account,
            stripe_payouts_enabled=True,
        )
        for _ in range(3):
            approved(affiliate, 2500)
        affiliates.append(affiliate)
    now = timezone.now()
    barrier = threading.Barrier(2)
    errors = []

    def run():
        try:
            barrier.wait()
            payouts_create(program=program, now=now)  # on_commit runs the send inline here
        except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert Payout.objects.count() == 8 and set(Payout.objects.values_list("status", flat=True)) == {"paid"}
    assert PayoutItem.objects.filter(released=False).count() == 24
    assert len(fake_stripe.transfers) == 8
    assert sorted(t["destination"] for t in fake_stripe.transfers) == sorted(
        a.stripe_account_id for a in affiliates
    )
    assert set(Commission.objects.values_list("status", flat=True)) == {"paid"}


@pytest.mark.worker
def test_worker_killed_mid_transfer_is_healed_without_paying_twice(
    transactional_db, program, connected, approved, fake_stripe, settings
):
    from refapp.celery import app

    approved(connected, 6000)
    app.control.purge()
    held = fake_stripe.hold_after_commit_next("/v1/transfers")
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    worker = start_worker(STRIPE_SECRET_KEY=settings.STRIPE_SECRET_KEY, STRIPE_API_BASE=fake_stripe.url)
    try:
        [payout] = payouts_create(program=program, now=timezone.now())  # queues the send on the broker
        deadline = time.monotonic() + 60
        while not fake_stripe.transfers and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.1)
        assert fake_stripe.transfers, "the worker never reached Stripe"
        worker.kill()  # Stripe made the transfer; the worker dies before it hears so
        worker.wait(10)
    finally:
        held.set()
        app.conf.task_always_eager = eager
        output = stop_worker(worker)
    payout.refresh_from_db()
    assert payout.status == "processing", output[-2000:]
    assert set(Commission.objects.values_list("status", flat=True)) == {"processing"}

    call_command("run_payouts", "--program", program.slug)  # the healing run

    payout.refresh_from_db()
    assert payout.status == "paid" and payout.transfer_id == fake_stripe.transfers[0]["id"]
    assert len(fake_stripe.transfers) == 1
    keys = [r.idempotency_key for r in fake_stripe.requests if r.path == "/v1/transfers"]
    assert keys == [f"payout-{payout.pk}"] * 2
    assert set(Commission.objects.values_list("status", flat=True)) == {"paid"}


@pytest.mark.postgres
def test_two_approval_runs_in_parallel_approve_each_commission_once(transactional_db, program, approved):
    from commissions.services import approve_due_commissions
    from refapp.models import AuditLog

    if connection.vendor != "postgresql":
        pytest.skip("SKIP LOCKED is proven on PostgreSQL; set DATABASE_URL to run it")
    affiliate = AffiliateFactory(program=program)
    rows = [approved(affiliate, 100, status="pending") for _ in range(300)]
    now = timezone.now()
    counts, barrier = [], threading.Barrier(2)

    def run():
        try:
            barrier.wait()
            counts.append(approve_due_commissions(now=now, batch_size=25))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sum(counts) == len(rows)
    assert set(Commission.objects.values_list("status", flat=True)) == {"approved"}
    assert AuditLog.objects.filter(action="commission.approved").count() == len(rows)
