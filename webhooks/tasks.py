"""Thin tasks: deliver one message; sweep the messages due for (re)delivery."""

from __future__ import annotations

from celery import shared_task
from django.db.models import Q
from django.utils import timezone

from .delivery import message_deliver
from .models import WebhookMessage

SWEEP_BATCH = 500


@shared_task(acks_late=True, ignore_result=True)
def deliver_message(message_id: int, force: bool = False) -> None:
    following = message_deliver(message_id=message_id, now=timezone.now(), force=force)
    if following is not None:
        deliver_message.delay(following)


@shared_task(acks_late=True, ignore_result=True)
def deliver_messages(message_ids: list[int]) -> None:
    """Several messages queued together (webhooks/dispatch.py), one after the other."""
    for message_id in message_ids:
        following = message_deliver(message_id=message_id, now=timezone.now(), force=False)
        if following is not None:
            deliver_message.delay(following)


@shared_task(ignore_result=True)
def sweep_due_messages() -> int:
    """Queue every pending message whose retry is due and that no live delivery holds: retries,
    queue messages lost before a worker took them, and deliveries of a worker killed mid-way."""
    now = timezone.now()
    due = list(
        WebhookMessage.objects.filter(
            status=WebhookMessage.Status.PENDING, next_attempt_at__lte=now, endpoint__is_active=True
        )
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    for message_id in due:
        deliver_message.delay(message_id)
    return len(due)
