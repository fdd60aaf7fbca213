"""The Celery app. Schedules live here, in code, as crontabs."""

import os
from datetime import timedelta

from celery import Celery
from celery.schedules import crontab
from celery.signals import task_postrun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "refapp.settings")

app = Celery("refapp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Tasks that live beside the service that queues them (so the two never import each other), which
# autodiscovery (it looks for tasks.py) misses.
app.conf.imports = (
    "refapp.emails",
    "affiliates.magic",
    "affiliates.portal_services",
    "affiliates.referrers",
    "payouts.credits",
    "payouts.reconcile",
)

app.conf.beat_schedule = {
    # Dashboards read daily click rollups; readers add the few clicks since the last refresh live.
    "refresh-click-rollups": {
        "task": "tracking.tasks.refresh_click_rollups",
        "schedule": crontab(),  # every minute
    },
    # Conversion rollups: readers add the changes not yet folded in, so this only keeps that log short.
    "fold-conversion-rollups": {
        "task": "commissions.tasks.fold_conversion_rollups",
        "schedule": 15.0,  # seconds
    },
    # Pending commissions whose refund window has passed become approved; hourly so that a
    # commission never waits more than an hour past its hold_until.
    "approve-due-commissions": {
        "task": "commissions.tasks.approve_due_commissions",
        "schedule": crontab(minute=5),
    },
    # Programs whose payout day is today are paid at 06:00 UTC (one payout per affiliate and month).
    "run-due-payouts": {
        "task": "payouts.tasks.run_due_payouts",
        "schedule": crontab(hour=6, minute=0),
    },
    # A payout left `processing` by a killed worker is sent again with the same idempotency key.
    "resume-processing-payouts": {
        "task": "payouts.tasks.resume_processing_payouts",
        "schedule": crontab(minute="*/15"),
    },
    # Refer-a-friend account credit (payouts/credits.py): approved rewards into Stripe customer
    # balances, refunds taken back; resumes what a killed worker left.
    "sync-customer-credits": {
        "task": "payouts.credits.sync_customer_credits",
        "schedule": crontab(minute="*/5"),
    },
    # Webhook messages due for a retry, or left behind by a lost queue message or a killed worker.
    "sweep-webhook-messages": {
        "task": "webhooks.tasks.sweep_due_messages",
        "schedule": 30.0,  # seconds
    },
    # Payouts against Stripe's transfers (last month and this one), before the 06:00 payout run
    # nets what reversals carried.
    "reconcile-stripe-transfers": {
        "task": "payouts.reconcile.reconcile_nightly",
        "schedule": crontab(hour=4, minute=40),
    },
    "approval-digests": {
        "task": "commissions.tasks.send_approval_digests",
        "schedule": crontab(hour=7, minute=0),
    },
    # PostgreSQL: this month's and the next three months' click partitions exist before any click
    # needs them (daily, so a missed run or two still leaves months of slack).
    "ensure-click-partitions": {
        "task": "tracking.tasks.ensure_click_partitions",
        "schedule": crontab(hour=2, minute=10),
    },
    # Click retention, user-agent blanking and forgetting unconverted visitors, once a day.
    "apply-click-retention": {
        "task": "tracking.tasks.apply_click_retention",
        "schedule": crontab(hour=3, minute=20),
    },
    "sweep-promotion-codes": {
        # Friend rewards in Stripe: codes whose jobs were lost or refused are tried again.
        "task": "affiliates.tasks.sweep_promotion_codes",
        "schedule": crontab(hour=4, minute=40),
    },
}


@app.on_after_configure.connect
def _schedule_click_drain(sender, **kwargs):
    """With REFAPP_CLICK_BUFFER on, buffered clicks reach PostgreSQL within about a second. Decided
    when Celery configures (settings are ready then), so the job does not run for nothing."""
    from django.conf import settings

    if settings.REFAPP_CLICK_BUFFER and settings.REDIS_URL:
        sender.add_periodic_task(
            timedelta(seconds=1),
            sender.signature("tracking.tasks.drain_click_buffer", options={"expires": 5}),
            name="drain-click-buffer",
        )


@task_postrun.connect
def _close_unusable_connections(task=None, **kwargs):
    """With CELERY_DB_REUSE_MAX the next task reuses the database connection: close it first when a
    task left it broken or it is older than CONN_MAX_AGE, as Django does after each request. Eager
    tasks run inside the caller's transaction and are left alone, as Celery's fixup leaves them."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
