"""Delivering one webhook message: at least once, in order per object, with growing retries.

The protocol, per attempt:
1. In a transaction, lock the message and re-check it: still pending, due, not held by another
   delivery's lease, and no earlier message of the same object to the same endpoint still pending
   (messages of one object go out in order). Take a lease (`claimed_until`) and count the attempt.
2. Outside any transaction: sign (Standard Webhooks; during a rotation, with both secrets) and POST.
3. In a transaction, record the attempt and the outcome: delivered, or the next retry, or given up
   after the last one (RETRY_DELAYS spans about three days). A message given up by an endpoint
   that has not succeeded since the message was written disables the endpoint and tells the
   program's admins.

A worker killed between 1 and 3 leaves the lease behind; once it ends the sweep finds the message
due and sends it again, with the same `webhook-id`: receivers dedupe by it.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from standardwebhooks.webhooks import Webhook

from affiliates.models import ProgramStaff
from refapp.emails import send_templated

from . import net
from .models import WebhookDelivery, WebhookEndpoint, WebhookMessage
from .watch import forget_program

# The wait before each retry: attempt n+1 waits RETRY_DELAYS[n-1] after attempt n failed. The sum,
# about 71 hours, is the "about three days" an endpoint has to come back.
RETRY_DELAYS = [
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
    timedelta(hours=10),
    timedelta(hours=10),
    timedelta(hours=10),
    timedelta(hours=14),
]
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
LEASE = timedelta(seconds=net.TIMEOUT * 3)
STORED_BODY = 1024


def body_of(message: WebhookMessage) -> str:
    return json.dumps(message.payload, separators=(",", ":"), ensure_ascii=False)


def signed_headers(*, endpoint: WebhookEndpoint, message_id: str, body: str, now: datetime) -> dict[str, str]:
    secrets = [endpoint.secret]
    if (
        endpoint.previous_secret
        and endpoint.previous_secret_expires_at
        and endpoint.previous_secret_expires_at > now
    ):
        secrets.append(endpoint.previous_secret)
    moment = now.replace(microsecond=0)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": " ".join(Webhook(secret).sign(message_id, moment, body) for secret in secrets),
        "content-type": "application/json",
        "user-agent": "refapp-webhooks/1",
    }


def _without_flush_wait() -> None:
    """Commit this transaction without waiting for its WAL to reach the disk (PostgreSQL).

    Safe for the delivery's bookkeeping, whose protocol is at least once: a claim lost in a crash
    is taken again, a lost record sends the message again with the same webhook-id. The fsync wait
    was most of a delivery's time on a busy disk, and it took turns with the conversions' commits
    (the bench's events rate fell with an endpoint on)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")


def _claim(message_id: int, now: datetime, force: bool) -> WebhookMessage | None:
    with transaction.atomic():
        _without_flush_wait()
        # Only the message row: a lock taken through the join would hold the endpoint too (see
        # _record for why that row is never locked FOR UPDATE).
        message = (
            WebhookMessage.objects.select_for_update(of=("self",), no_key=True)
            .select_related("endpoint")
            .filter(pk=message_id)
            .first()
        )
        if message is None or message.status != WebhookMessage.Status.PENDING:
            return None
        if message.claimed_until and message.claimed_until > now:
            return None  # another delivery holds it
        if not force and message.next_attempt_at and message.next_attempt_at > now:
            return None
        if not message.endpoint.is_active:
            return None
        earlier = (
            WebhookMessage.objects.filter(
                endpoint_id=message.endpoint_id,
                object_id=message.object_id,
                status=WebhookMessage.Status.PENDING,
                pk__lt=message.pk,
            )
            .order_by("pk")
            .values("next_attempt_at")
            .first()
        )
        if earlier is not None:
            # Sent when the earlier one is done (deliver_message queues it); until then the sweep
            # need not look at it before the earlier one's next attempt.
            wait = max(earlier["next_attempt_at"] or now, now)
            if message.next_attempt_at is None or message.next_attempt_at < wait:
                message.next_attempt_at = wait
                message.save(update_fields=["next_attempt_at"])
            return None
        message.attempts += 1
        message.claimed_until = now + LEASE
        message.save(update_fields=["attempts", "claimed_until"])
    return message


def message_deliver(*, message_id: int, now: datetime, force: bool = False) -> int | None:
    """One attempt at a due message. Returns the pk of the object's next message to send, if this
    one is done (delivered or given up) and another waits behind it."""
    message = _claim(message_id, now, force)
    if message is None:
        return None
    endpoint = message.endpoint
    body = body_of(message)
    headers = signed_headers(endpoint=endpoint, message_id=message.public_id, body=body, now=now)
    answer = net.post(endpoint.url, body.encode(), headers)
    return _record(message, answer, now)


def _record(message: WebhookMessage, answer: net.Answer, now: datetime) -> int | None:
    succeeded = answer.status is not None and 200 <= answer.status < 300
    with transaction.atomic():
        _without_flush_wait()
        locked = WebhookMessage.objects.select_for_update(of=("self",), no_key=True).get(pk=message.pk)
        # FOR NO KEY UPDATE of the endpoint row alone: a conversion writing a message for this
        # endpoint takes FOR KEY SHARE on it (the foreign-key check at its commit), after its own
        # key-share lock on the program. FOR UPDATE of the endpoint and, through the join, of the
        # program deadlocked against it, and the conversion answered 500 (found by `make bench`'s
        # webhooks section); FOR NO KEY UPDATE does not conflict with FOR KEY SHARE.
        endpoint = (
            WebhookEndpoint.objects.select_for_update(of=("self",), no_key=True)
            .select_related("program")
            .get(pk=message.endpoint_id)
        )
        next_retry = None
        if succeeded:
            locked.status = WebhookMessage.Status.DELIVERED
            locked.delivered_at = now
            locked.next_attempt_at = None
            if endpoint.failing_since is not None:
                endpoint.failing_since = None
                endpoint.save(update_fields=["failing_since"])
        else:
            if endpoint.failing_since is None:
                endpoint.failing_since = now
                endpoint.save(update_fields=["failing_since"])
            if locked.attempts >= MAX_ATTEMPTS:
                locked.status = WebhookMessage.Status.FAILED
                locked.next_attempt_at = None
                if endpoint.is_active and endpoint.failing_since <= locked.created_at:
                    _disable(endpoint, now)
            else:
                next_retry = now + RETRY_DELAYS[min(locked.attempts, len(RETRY_DELAYS)) - 1]
                locked.next_attempt_at = next_retry
        locked.claimed_until = None
        locked.save(update_fields=["status", "delivered_at", "next_attempt_at", "claimed_until"])
        WebhookDelivery.objects.create(
            message=locked,
            endpoint=endpoint,
            attempt=locked.attempts,
            status=WebhookDelivery.Status.SUCCEEDED if succeeded else WebhookDelivery.Status.FAILED,
            response_code=answer.status,
            duration_ms=answer.duration_ms,
            response_body=answer.body[:STORED_BODY].decode("utf-8", "replace"),
            error=answer.error[:500],
            attempted_at=now,
            next_retry_at=next_retry,
        )
        if locked.status == WebhookMessage.Status.PENDING:
            return None
        following = (
            WebhookMessage.objects.filter(
                endpoint_id=locked.endpoint_id,
                object_id=locked.object_id,
                status=WebhookMessage.Status.PENDING,
                pk__gt=locked.pk,
            )
            .order_by("pk")
            .values_list("pk", flat=True)
            .first()
        )
    return following


def _disable(endpoint: WebhookEndpoint, now: datetime) -> None:
    endpoint.is_active = False
    endpoint.disabled_reason = f"Disabled on {now:%Y-%m-%d %H:%M} UTC after failing for about three days."
    endpoint.save(update_fields=["is_active", "disabled_reason"])
    forget_program(endpoint.program_id)
    program = endpoint.program
    admins = list(
        ProgramStaff.objects.filter(program=program, role=ProgramStaff.Role.ADMIN, user__is_active=True)
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )
    if admins:
        send_templated(
            "webhook_endpoint_disabled",
            to=admins,
            context={
                "program": program.name,
                "url": endpoint.url,
                "endpoint": endpoint.public_id,
                "panel_url": f"{settings.BASE_URL}/panel/p/{program.slug}/webhooks/{endpoint.public_id}/",
            },
        )
