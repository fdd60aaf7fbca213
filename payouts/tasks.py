"""Thin tasks: load ids, call one service, own the retry policy. All safe to run twice."""

from __future__ import annotations

from datetime import timedelta

import stripe
from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

TRANSIENT = (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError, OperationalError)


@shared_task(bind=True, acks_late=True, max_retries=8)
def payout_send(self, payout_id: int) -> str:
    from payouts.models import Payout
    from payouts.services import payout_send as send

    try:
        return send(payout_id=payout_id, now=timezone.now()).status
    except Payout.DoesNotExist:
        return "missing"  # a message older than the row (a restored database): nothing to pay
    except TRANSIENT as exc:
        # Same idempotency key on every retry: Stripe answers with the transfer it already made.
        raise self.retry(exc=exc, countdown=min(3600, 5 * 2**self.request.retries)) from exc


@shared_task(acks_late=True)
def run_due_payouts() -> int:
    """Daily at 06:00 UTC: run every program whose payout day is today; resend stuck payouts."""
    from affiliates.models import Program
    from payouts.services import payouts_create
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
    from payouts.services import processing_payouts

    stale = processing_payouts().filter(created_at__lte=timezone.now() - timedelta(minutes=10))
    ids = list(stale.values_list("pk", flat=True))
    for payout_id in ids:
        payout_send.delay(payout_id)
    return len(ids)
