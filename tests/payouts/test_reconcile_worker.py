"""The nightly reconciliation is on the beat schedule, and a real worker runs it against the fake Stripe."""

import time

import pytest
from celery.schedules import crontab
from django.utils import timezone

from payouts.models import BalanceAdjustment, ReconciliationFinding, ReconciliationRun
from payouts.reconcile import period_of, reconciliation_start
from payouts.services import payouts_create
from payouts.stripe_client import stripe_client
from refapp.celery import app
from refapp.models import Actor
from tests.refapp.worker import start_worker, stop_worker


def test_the_nightly_reconciliation_is_scheduled_under_a_registered_task():
    app.loader.import_default_modules()
    [entry] = [
        e for e in app.conf.beat_schedule.values() if e["task"] == "payouts.reconcile.reconcile_nightly"
    ]
    assert entry["task"] in app.tasks
    assert isinstance(entry["schedule"], crontab)
    assert entry["schedule"].hour == {4} and entry["schedule"].minute == {40}
    assert "payouts.reconcile.reconcile_run" in app.tasks  # what the panel's "check now" queues


def wait_for(predicate, worker, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and worker.poll() is None:
        if predicate():
            return True
        time.sleep(0.25)
    return predicate()


@pytest.mark.worker
def test_a_worker_runs_the_nightly_check_and_a_check_now_end_to_end(
    transactional_db, program, connected, approved, fake_stripe, settings, django_capture_on_commit_callbacks
):
    from payouts.reconcile import reconcile_nightly

    approved(connected, 7000)
    with django_capture_on_commit_callbacks(execute=True):  # paid in this process (eager), as usual
        [payout] = payouts_create(program=program, now=timezone.now(), actor=Actor.system())
    payout.refresh_from_db()
    stripe_client().v1.transfers.reversals.create(payout.transfer_id, params={"amount": 2000})
    stray = fake_stripe.plant_transfer(amount=321, destination="acct_john")

    app.control.purge()
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    worker = start_worker(STRIPE_SECRET_KEY=settings.STRIPE_SECRET_KEY, STRIPE_API_BASE=fake_stripe.url)
    try:
        reconcile_nightly.delay()
        nightly_done = wait_for(lambda: ReconciliationRun.objects.filter(status="done").count() == 2, worker)
        # The panel's button: the run is recorded here and carried out by the worker.
        run = reconciliation_start(
            period=period_of(timezone.now()), actor=Actor("user:1"), now=timezone.now()
        )
        check_done = wait_for(
            lambda: ReconciliationRun.objects.filter(pk=run.pk, status="done").exists(), worker
        )
    finally:
        app.conf.task_always_eager = eager
        output = stop_worker(worker)

    assert nightly_done and check_done, output[-3000:]
    assert "payouts.reconcile.reconcile_nightly" in output and "payouts.reconcile.reconcile_run" in output
    periods = sorted(ReconciliationRun.objects.filter(actor_label="system").values_list("period", flat=True))
    assert periods[-1] == period_of(timezone.now()) and len(periods) == 2
    assert sorted(ReconciliationFinding.objects.values_list("kind", "key")) == [
        ("reversed", payout.transfer_id),
        ("unknown_transfer", stray["id"]),
    ]
    # Three checks of the month: the reversal waits for an admin once, and nothing is carried.
    assert ReconciliationFinding.objects.get(kind="reversed").status == "open"
    assert BalanceAdjustment.objects.count() == 0
