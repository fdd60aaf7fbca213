"""Endpoint management and replays: each one transaction, audited. Deliveries live in delivery.py."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction

from affiliates.models import Program
from refapp.models import Actor, audit_log

from . import net
from .models import EVENT_TYPES, WebhookDelivery, WebhookEndpoint, WebhookMessage, new_secret
from .outbox import test_message_create
from .tasks import deliver_message
from .watch import forget_program

ROTATION_OVERLAP = timedelta(hours=24)


class EndpointError(Exception):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


def validate_url(url: str) -> None:
    try:
        net.check_url(url)
    except net.UnsafeUrl as exc:
        raise EndpointError("url", str(exc)) from None


def validate_events(events: list[str]) -> None:
    unknown = [e for e in events if e not in EVENT_TYPES]
    if unknown or not events:
        raise EndpointError("events", f"Choose one or more of: {', '.join(EVENT_TYPES)}.")


def endpoint_create(
    *,
    program: Program,
    livemode: bool,
    url: str,
    events: list[str],
    description: str,
    actor: Actor,
    now: datetime,
) -> WebhookEndpoint:
    """A new endpoint with a fresh secret (the caller shows it once). The URL is checked here."""
    validate_url(url)
    validate_events(events)
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            program=program,
            livemode=livemode,
            url=url,
            description=description,
            events=list(dict.fromkeys(events)),
            secret=new_secret(),
            created_at=now,
            updated_at=now,
        )
        audit_log(
            actor=actor, action="webhook_endpoint.created", obj=endpoint, data={"url": url, "events": events}
        )
        forget_program(program.pk)
    return endpoint


def endpoint_update(
    *,
    endpoint: WebhookEndpoint,
    actor: Actor,
    now: datetime,
    url: str | None = None,
    events: list[str] | None = None,
    description: str | None = None,
    is_active: bool | None = None,
) -> WebhookEndpoint:
    if url is not None:
        validate_url(url)
    if events is not None:
        validate_events(events)
    with transaction.atomic():
        # NO KEY: conversions writing messages for this endpoint (FOR KEY SHARE) go on meanwhile.
        locked = WebhookEndpoint.objects.select_for_update(no_key=True).get(pk=endpoint.pk)
        changed = {}
        for name, value in (
            ("url", url),
            ("events", events),
            ("description", description),
            ("is_active", is_active),
        ):
            if value is not None and getattr(locked, name) != value:
                setattr(locked, name, value)
                changed[name] = value
        if is_active:
            locked.disabled_reason = ""
            locked.failing_since = None
        locked.updated_at = now
        locked.save()
        if changed:
            audit_log(actor=actor, action="webhook_endpoint.updated", obj=locked, data=changed)
        forget_program(locked.program_id)
    return locked


def endpoint_delete(*, endpoint: WebhookEndpoint, actor: Actor) -> None:
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        audit_log(actor=actor, action="webhook_endpoint.deleted", obj=locked, data={"url": locked.url})
        locked.delete()
        forget_program(endpoint.program_id)


def endpoint_rotate_secret(*, endpoint: WebhookEndpoint, actor: Actor, now: datetime) -> WebhookEndpoint:
    """A new secret; the previous one keeps signing beside it for 24 hours."""
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update(no_key=True).get(pk=endpoint.pk)
        locked.previous_secret = locked.secret
        locked.previous_secret_expires_at = now + ROTATION_OVERLAP
        locked.secret = new_secret()
        locked.updated_at = now
        locked.save()
        audit_log(actor=actor, action="webhook_endpoint.secret_rotated", obj=locked)
    return locked


def endpoint_send_test(*, endpoint: WebhookEndpoint, actor: Actor, now: datetime) -> WebhookMessage:
    with transaction.atomic():
        message = test_message_create(endpoint=endpoint, now=now)
        audit_log(
            actor=actor,
            action="webhook_endpoint.test_sent",
            obj=endpoint,
            data={"message": message.public_id},
        )
    return message


def message_replay(*, message: WebhookMessage, actor: Actor, now: datetime) -> WebhookMessage:
    """Send a message again, same webhook-id, with a fresh retry schedule."""
    with transaction.atomic():
        locked = (
            WebhookMessage.objects.select_for_update(of=("self",), no_key=True)
            .select_related("endpoint")
            .get(pk=message.pk)
        )
        locked.status = WebhookMessage.Status.PENDING
        locked.attempts = 0
        locked.next_attempt_at = now
        locked.claimed_until = None
        locked.save(update_fields=["status", "attempts", "next_attempt_at", "claimed_until"])
        audit_log(
            actor=actor,
            action="webhook_message.replayed",
            obj=locked.endpoint,
            data={"message": locked.public_id},
        )
        message_pk = locked.pk
        transaction.on_commit(lambda: deliver_message.delay(message_pk, force=True))
    return locked


def delivery_retry(*, delivery: WebhookDelivery, actor: Actor, now: datetime) -> WebhookMessage:
    return message_replay(message=delivery.message, actor=actor, now=now)


def replay_failed_since(*, endpoint: WebhookEndpoint, since: datetime, actor: Actor, now: datetime) -> int:
    """Replay every message of the endpoint given up since a time. Returns how many."""
    ids = list(
        WebhookMessage.objects.filter(
            endpoint=endpoint, status=WebhookMessage.Status.FAILED, created_at__gte=since
        ).values_list("pk", flat=True)
    )
    for message in WebhookMessage.objects.filter(pk__in=ids).order_by("pk"):
        message_replay(message=message, actor=actor, now=now)
    return len(ids)
