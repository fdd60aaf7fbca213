"""From a change of the domain to the messages of the endpoints that want it.

The domain writes an audit row for every change of state inside the change's transaction and
announces it (`refapp.models.audit_recorded`); this receiver turns it into one message row per
interested endpoint in that same transaction, so a rolled-back change sends nothing, and queues the
delivery once the transaction commits (through dispatch.py, off the request's path). The sweep
(`tasks.sweep_due_messages`) picks up whatever a lost queue message or a killed worker left behind.

A program with no active endpoint never reaches this module: `refapp.models.audit_announce` asks
the cached check of `watch.py` first.

The conversion's PostgreSQL writer (commissions.ingest_pg) lands a conversion in one statement
without a transaction around it; it asks `messages_for` for the message rows instead and writes
them in that same statement (refapp.models.audit_rows), then hands them back to
`messages_written`. A transaction, an endpoint read and an INSERT per message cost about as much
again as the conversion itself (`make bench`'s webhooks section).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from refapp.ids import new_public_id
from refapp.instances import unsaved
from refapp.models import AuditLog

from . import payloads, watch
from .dispatch import queue_delivery
from .models import TEST_EVENT, WebhookEndpoint, WebhookMessage

_STATUS_ACTIONS = {"affiliate.active", "affiliate.suspended", "affiliate.rejected", "affiliate.pending"}
_SIMPLE = {
    "affiliate.created": ("affiliate.created", "affiliate"),
    "commission.approved": ("commission.approved", "commission"),
    "commission.reversed": ("commission.reversed", "commission"),
    # A refund or a reviewer rejecting an unpaid commission takes it back as surely as a clawback.
    "commission.rejected": ("commission.reversed", "commission"),
    "payout.created": ("payout.created", "payout"),
    "payout.paid": ("payout.paid", "payout"),
    "payout.failed": ("payout.failed", "payout"),
    "referral.created": ("referral.created", "referral"),
}


def changes_of(entry: AuditLog) -> list[tuple[str, str, str]]:
    """(event type, kind of object, public id) of each webhook event an audit row stands for."""
    action, object_id = entry.action, entry.object_id
    if action in _SIMPLE:
        event_type, kind = _SIMPLE[action]
        return [(event_type, kind, object_id)]
    if action in _STATUS_ACTIONS:
        changes = [("affiliate.status_changed", "affiliate", object_id)]
        if action == "affiliate.active" and (entry.data or {}).get("from") == "pending":
            changes.insert(0, ("affiliate.approved", "affiliate", object_id))
        return changes
    if action == "commission.created":  # one audit row per conversion, naming its commissions
        commissions = (entry.data or {}).get("commissions", [])
        return [("conversion.created", "conversion", object_id)] + [
            ("commission.created", "commission", public_id) for public_id in commissions
        ]
    return []


def on_audit_recorded(sender: Any, entries: Iterable[AuditLog], **kwargs: Any) -> None:
    now = timezone.now()
    endpoints: dict[int, list[WebhookEndpoint]] = {}
    for entry in entries:
        changes = changes_of(entry)
        if not changes:
            continue
        if entry.program_id not in endpoints:
            # Read in the change's transaction, not from watch.py's cache: a message for an
            # endpoint deleted meanwhile would fail the change's commit on its foreign key.
            endpoints[entry.program_id] = list(
                WebhookEndpoint.objects.filter(program_id=entry.program_id, is_active=True).order_by("pk")
            )
        known = getattr(entry, "subjects", None) or {}
        for event_type, kind, public_id in changes:
            wanting = [e for e in endpoints[entry.program_id] if event_type in e.events]
            if not wanting:
                continue
            loaded = _data(event_type, kind, public_id, known.get(public_id))
            if loaded is None:
                continue
            livemode, data = loaded
            for endpoint in wanting:
                if endpoint.livemode == livemode:
                    message_create(
                        endpoint=endpoint, event_type=event_type, object_id=public_id, data=data, now=now
                    )


def messages_for(entries: list[AuditLog]) -> list[WebhookMessage] | None:
    """The messages of these audit rows as unsaved rows, for a writer that lands its whole change in
    one statement (commissions.ingest_pg) and writes these with it: from this process's answer of
    the program's endpoints (watch.py), each row written only if its endpoint is still active when
    the statement runs (WebhookMessage.WRITE_WHEN), so a message never names an endpoint the
    change's transaction would not have seen. None when an object is not in the announcement
    (`subjects`): then the writer opens a transaction and announces instead."""
    now = timezone.now()
    messages: list[WebhookMessage] = []
    for entry in entries:
        changes = changes_of(entry)
        if not changes:
            continue
        endpoints = watch.program_endpoints(entry.program_id)
        known = getattr(entry, "subjects", None) or {}
        for event_type, kind, public_id in changes:
            wanting = [e for e in endpoints if event_type in e.events]
            if not wanting:
                continue
            if public_id not in known:
                return None
            loaded = _data(event_type, kind, public_id, known[public_id])
            if loaded is None:
                return None
            livemode, data = loaded
            messages.extend(
                _message(
                    endpoint_id=endpoint.id, event_type=event_type, object_id=public_id, data=data, now=now
                )
                for endpoint in wanting
                if endpoint.livemode == livemode
            )
    return messages


def messages_written(messages: list[WebhookMessage], committed: bool) -> None:
    """After the writer's statement: deliver each message it wrote, once its transaction commits
    (at once when the statement was its own transaction: `committed`)."""
    written = [message.pk for message in messages if message.pk is not None]
    if not written:
        return
    if committed:
        for pk in written:
            queue_delivery(pk)
        return
    for pk in written:
        transaction.on_commit(functools.partial(queue_delivery, pk))


def _data(
    event_type: str, kind: str, public_id: str, known: Any
) -> tuple[bool, dict[str, Any] | None] | None:
    """(livemode, data) of a message about this object; data None when the delivery reads it at the
    first attempt (payloads.AT_FIRST_ATTEMPT, for an object the change handed over); None when the
    object is gone."""
    if event_type in payloads.AT_FIRST_ATTEMPT:
        livemode = payloads.livemode_of(kind, known)
        if livemode is not None:
            return livemode, None
    return payloads.load(kind, public_id, known)


def _message(
    *, endpoint_id: int, event_type: str, object_id: str, data: dict[str, Any] | None, now: datetime
) -> WebhookMessage:
    public_id = new_public_id("msg")
    return unsaved(
        WebhookMessage,
        public_id=public_id,
        endpoint_id=endpoint_id,
        event_type=event_type,
        object_id=object_id,
        payload=None
        if data is None
        else payloads.envelope(public_id=public_id, event_type=event_type, created=now, data=data),
        next_attempt_at=now,
        created_at=now,
    )


def message_create(
    *, endpoint: WebhookEndpoint, event_type: str, object_id: str, data: dict[str, Any] | None, now: datetime
) -> WebhookMessage:
    """Write one message in the caller's transaction and deliver it after commit."""
    message = _message(
        endpoint_id=endpoint.pk, event_type=event_type, object_id=object_id, data=data, now=now
    )
    message.endpoint = endpoint
    message.save(force_insert=True)
    message_pk = message.pk
    transaction.on_commit(lambda: queue_delivery(message_pk))
    return message


def test_message_create(*, endpoint: WebhookEndpoint, now: datetime) -> WebhookMessage:
    return message_create(
        endpoint=endpoint,
        event_type=TEST_EVENT,
        object_id=endpoint.public_id,
        data={"endpoint": endpoint.public_id, "message": "A test event sent from refapp."},
        now=now,
    )
