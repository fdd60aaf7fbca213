"""Outgoing webhooks: a program's endpoints, the messages written for them, and every attempt."""

from __future__ import annotations

import base64
import secrets

from django.db import models

from affiliates.models import Program
from refapp.ids import new_public_id

EVENT_TYPES = [
    "affiliate.created",
    "affiliate.approved",
    "affiliate.status_changed",
    "referral.created",
    "conversion.created",
    "commission.created",
    "commission.approved",
    "commission.reversed",
    "payout.created",
    "payout.paid",
    "payout.failed",
]
TEST_EVENT = "webhook.test"


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class WebhookEndpoint(models.Model):
    public_id = models.CharField(max_length=32, unique=True, editable=False)
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    livemode = models.BooleanField(default=True)
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=500, blank=True)
    events = models.JSONField(default=list)
    is_active = models.BooleanField(default=True)
    # Stored as is: the secret signs every message, so it must be readable. After a rotation the
    # previous secret keeps signing beside the new one until previous_secret_expires_at.
    secret = models.CharField(max_length=100)
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    # The first failed attempt since the last success; a message given up while the endpoint has not
    # succeeded since the message was written disables the endpoint.
    failing_since = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["program", "is_active"])]

    def __str__(self) -> str:
        return f"{self.public_id} {self.url}"

    def save(self, *args, **kwargs):
        if not self.public_id:
            self.public_id = new_public_id("we")
        super().save(*args, **kwargs)


class WebhookMessage(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"  # given up after the last retry

    # The webhook-id header. Unique by a constraint rather than unique=True, which on PostgreSQL
    # adds a second, varchar_pattern_ops index for LIKE that nothing asks for: every conversion of a
    # watched program writes a message, and each index is one more insertion in its statement.
    public_id = models.CharField(max_length=32, editable=False)
    # No index of its own: the (endpoint, object_id, id) index below leads with it.
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    event_type = models.CharField(max_length=64)
    # The object the message is about: its messages go out in order, per endpoint.
    object_id = models.CharField(max_length=64)
    # The POST's body. NULL for a message written without its data (webhooks.payloads.AT_FIRST_ATTEMPT)
    # until its first attempt freezes it (webhooks.delivery).
    payload = models.JSONField(null=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A delivery in flight holds the message until then; a worker killed mid-delivery lets go of it
    # when the lease ends, and the sweep sends it again (at least once: receivers dedupe by id).
    claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    # A writer that lands a change in one statement (commissions.ingest_pg) writes a message only
    # if this foreign key's row has this boolean column true when the statement runs: an endpoint
    # switched off or deleted since the writer's cached answer (watch.py) gets nothing.
    WRITE_WHEN = ("endpoint_id", "is_active")

    class Meta:
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["endpoint", "object_id", "id"]),
        ]
        constraints = [models.UniqueConstraint(fields=["public_id"], name="webhook_message_public_id_unique")]

    def __str__(self) -> str:
        return f"{self.public_id} {self.event_type}"

    def save(self, *args, **kwargs):
        if not self.public_id:
            self.public_id = new_public_id("msg")
        super().save(*args, **kwargs)


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    public_id = models.CharField(max_length=32, unique=True, editable=False)
    message = models.ForeignKey(WebhookMessage, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    attempt = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    response_body = models.TextField(blank=True)  # the first kilobyte
    error = models.CharField(max_length=500, blank=True)
    attempted_at = models.DateTimeField()
    next_retry_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["endpoint", "status", "id"])]

    def __str__(self) -> str:
        return f"{self.public_id} {self.status}"

    def save(self, *args, **kwargs):
        if not self.public_id:
            self.public_id = new_public_id("whd")
        super().save(*args, **kwargs)
