"""A real Celery worker process, on the configured broker, runs a real task against the test database."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from affiliates.models import Affiliate, Program
from commissions.models import Commission, CommissionRule
from tests.factories import (
    AffiliateFactory,
    CommissionFactory,
    CommissionRuleFactory,
    EventFactory,
    ProgramFactory,
)
from tests.refapp.worker import start_worker, stop_worker


def due_commission(slug: str) -> Commission:
    """A pending commission whose hold ended ten days ago (a new program, affiliate and rule the first
    time a slug is seen), for approve_due_commissions to approve."""
    program = Program.objects.filter(slug=slug).first() or ProgramFactory(slug=slug)
    affiliate = Affiliate.objects.filter(program=program).first() or AffiliateFactory(program=program)
    rule = CommissionRule.objects.filter(program=program).first() or CommissionRuleFactory(program=program)
    past = timezone.now() - timedelta(days=40)
    event = EventFactory(program=program, amount_cents=1000, occurred_at=past)  # unattributed, as before
    return CommissionFactory(
        affiliate=affiliate,
        event=event,
        rule=rule,
        amount_cents=200,
        hold_until=past + timedelta(days=30),
        created_at=past,
    )


@pytest.mark.worker
def test_worker_approves_due_commissions(transactional_db):
    from commissions.tasks import approve_due_commissions
    from refapp.celery import app

    commission = due_commission("worker")
    app.control.purge()  # messages a killed worker of an earlier run may have left behind
    worker = start_worker()
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        approve_due_commissions.delay()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            commission.refresh_from_db()
            if commission.status == "approved" or worker.poll() is not None:
                break
            time.sleep(0.25)
    finally:
        app.conf.task_always_eager = eager
        output = stop_worker(worker)
    assert commission.status == "approved", output[-3000:]
    assert "commissions.tasks.approve_due_commissions" in output


@pytest.mark.worker
def test_worker_keeps_its_database_connection_between_tasks(transactional_db):
    """A connection per task was a quarter of a payout's time: the worker reuses its connection."""
    from django.db import connection

    from commissions.tasks import approve_due_commissions
    from refapp.celery import app

    if connection.vendor != "postgresql":
        pytest.skip("reads pg_stat_activity")

    def other_backends() -> set[int]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return {row[0] for row in cursor.fetchall()}

    app.control.purge()
    worker = start_worker()
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    seen = []
    try:
        for _ in range(2):
            commission = due_commission("reuse")
            approve_due_commissions.delay()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and worker.poll() is None:
                commission.refresh_from_db()
                if commission.status == "approved":
                    break
                time.sleep(0.25)
            assert commission.status == "approved"
            time.sleep(0.5)  # the task has returned; its connection would be closed by now
            seen.append(other_backends())
    finally:
        app.conf.task_always_eager = eager
        output = stop_worker(worker)
    assert seen[0] and seen[0] & seen[1], (seen, output[-2000:])
