"""Thin tasks: deliver what is due, in batches; deliver one message (replays); sweep."""

from __future__ import annotations

import math
import time

from celery import shared_task
from django.db.models import Q
from django.utils import timezone

from . import queued
from .delivery import CLAIM_BATCH, deliver_batch, message_deliver
from .models import WebhookMessage

# One deliver_due task works at most this long, then queues itself again: tasks of other kinds
# queued behind it get their turn.
LOOP_SECONDS = 30.0
# The sweep queues at most this many deliver_due tasks, so that a backlog is shared by the
# worker's processes (each task takes disjoint batches).
SWEEP_TASKS = 4
SWEEP_COUNT_LIMIT = SWEEP_TASKS * CLAIM_BATCH
SWEEP_EXPIRES = 60  # seconds: two sweeps


@shared_task(acks_late=True, ignore_result=True)
def deliver_due() -> int:
    """Deliver due messages batch after batch until none is left. Safe to run any number of times
    at once: each batch claims its messages (delivery.claim). Returns how many it claimed."""
    started = time.monotonic()
    # Before the first claim: a message committed after it publishes the next task (queued.py).
    queued.unmark()
    total = 0
    while True:
        batch = deliver_batch(now=timezone.now())
        total += batch.claimed
        # A partial batch took everything due: what is written from now on publishes its own task
        # (dispatch.py), so this one stops instead of claiming again for nothing, and the tasks
        # queued meanwhile find work rather than an empty claim each.
        if not batch.again:
            return total
        if time.monotonic() - started > LOOP_SECONDS:
            deliver_due.delay()
            return total


@shared_task(acks_late=True, ignore_result=True)
def deliver_message(message_id: int, force: bool = False) -> None:
    """One message now (`force`: due or not): replays from the panel and the API."""
    following = message_deliver(message_id=message_id, now=timezone.now(), force=force)
    if following is not None:
        deliver_due.delay()


@shared_task(acks_late=True, ignore_result=True)
def deliver_messages(message_ids: list[int]) -> None:
    """The batch task of the previous release: tasks still queued at an upgrade deliver what is due."""
    deliver_due()


@shared_task(ignore_result=True)
def sweep_due_messages() -> int:
    """Queue deliveries if any pending message is due and no live delivery holds it: retries,
    messages whose queued task was lost, and those of a worker killed mid-way (once its lease
    ends). Returns how many are due (counted up to SWEEP_COUNT_LIMIT)."""
    now = timezone.now()
    due = (
        WebhookMessage.objects.filter(
            status=WebhookMessage.Status.PENDING, next_attempt_at__lte=now, endpoint__is_active=True
        )
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
        .values("pk")[:SWEEP_COUNT_LIMIT]
        .count()
    )
    for _ in range(min(SWEEP_TASKS, math.ceil(due / CLAIM_BATCH))):
        # Dropped if a stopped worker reaches it late: the sweeps after it have queued their own.
        deliver_due.apply_async(expires=SWEEP_EXPIRES)
    return due
