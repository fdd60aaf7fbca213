"""Thin tasks: load ids, call one service, own the retry policy. All safe to run twice.

`payout_send` is defined in `payouts.services`, next to the services that queue it, and keeps its
registered name `payouts.tasks.payout_send`; it is re-exported here for callers of this module.
"""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from .services import TRANSIENT, payout_send_task, payouts_create, processing_payouts

payout_send = payout_send_task
__all__ = ["TRANSIENT", "payout_send", "resume_processing_payouts", "run_due_payouts"]


@shared_task(acks_late=True)
def run_due_payouts() -> int:
    """Daily at 06:00 UTC: run every program whose payout day is today; resend stuck payouts."""
    from affiliates.models import Program
    from refapp.models import Actor

    now = timezone.now()
    created = 0
    for program in Program.objects.filter(payout_day=now.day).order_by("pk"):
        created += len(payouts_create(program=program, now=now, actor=Actor.system()))
    resume_processing_payouts.delay()
    return created


@shared_task(acks_late=True)
def resume_processing_payouts() -> int:
    """Payouts still `processing` a while after creation lost their send (a killed worker): resend."""
    stale = processing_payouts().filter(created_at__lte=timezone.now() - timedelta(minutes=10))
    ids = list(stale.values_list("pk", flat=True))
    for payout_id in ids:
        payout_send_task.delay(payout_id)
    return len(ids)
