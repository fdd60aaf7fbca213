"""Rows of the reconciliation against Stripe (payouts/reconcile.py) and the balance it carries.

Kept apart from payouts/models.py, which imports this module at its end so that Django registers
the models; this module names the payout models by string and imports nothing of the app.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from refapp.ids import new_public_id


class ReconciliationRun(models.Model):
    """One comparison of a month's payouts with that month's Stripe transfers."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    period = models.CharField(max_length=7)  # "2026-11": transfers created in that UTC month
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    actor_label = models.CharField(max_length=100)  # "system" for the nightly job, "user:3" for a click
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    transfers_seen = models.PositiveIntegerField(default=0)
    payouts_seen = models.PositiveIntegerField(default=0)
    findings_new = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        indexes = [models.Index(fields=["-started_at"])]

    def __str__(self) -> str:
        return f"reconciliation {self.period} {self.status}"


class ReconciliationFinding(models.Model):
    """A difference between refapp and Stripe, found once: a later check that sees it again only
    updates `last_seen_at`, never adds a second row (unique kind and key)."""

    class Kind(models.TextChoices):
        MISSING_TRANSFER = "missing_transfer", "Paid payout with no transfer"
        UNKNOWN_TRANSFER = "unknown_transfer", "Transfer with no paid payout"
        AMOUNT_MISMATCH = "amount_mismatch", "Amount or currency differs"
        REVERSED = "reversed", "Transfer reversed after the payout was paid"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"
        # The two decisions on a reversal (after refapp marked the payout paid): an admin pays the
        # reversed amount again in the affiliate's next payout, or keeps it recovered (no carry).
        CARRIED = "carried", "Paid again in the next payout"
        RECOVERED = "recovered", "Kept recovered"

    public_id = models.CharField(max_length=32, unique=True, editable=False)
    # None: a transfer that names no payout and goes to no known affiliate (superusers see it).
    program = models.ForeignKey(
        "affiliates.Program", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    period = models.CharField(max_length=7)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # What the finding is about, stable across checks: "po_…" for a payout, "tr_…" for a transfer.
    key = models.CharField(max_length=64)
    payout = models.ForeignKey(
        "payouts.Payout", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    affiliate = models.ForeignKey(
        "affiliates.Affiliate", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    transfer_id = models.CharField(max_length=64, blank=True)
    # refapp's figures and Stripe's, in minor units: what an admin compares.
    expected_cents = models.BigIntegerField(null=True, blank=True)
    expected_currency = models.CharField(max_length=3, blank=True)
    actual_cents = models.BigIntegerField(null=True, blank=True)
    actual_currency = models.CharField(max_length=3, blank=True)
    detail = models.CharField(max_length=500)
    # A reversal finding's Stripe reversals as the latest check saw them while it waited for an
    # admin: [{"id": "trr_…", "amount": cents, "currency": "usd", "created": ts}]. "Pay it again"
    # carries these, one adjustment each, without asking Stripe again.
    reversals = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=14, choices=Status.choices, default=Status.OPEN)
    note = models.CharField(max_length=1000, blank=True)
    decided_by = models.CharField(max_length=100, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "key"], name="reconciliation_finding_once"),
        ]
        indexes = [models.Index(fields=["program", "status", "-first_seen_at"])]

    def __str__(self) -> str:
        return f"{self.public_id} {self.kind} {self.key}"

    def save(self, *args, **kwargs):
        if not self.public_id:
            self.public_id = new_public_id("rec")
        super().save(*args, **kwargs)

    @property
    def waits_for_admin(self) -> bool:
        return self.status in (self.Status.OPEN, self.Status.ACKNOWLEDGED)


class BalanceAdjustment(models.Model):
    """An amount carried into an affiliate's next payout, outside any commission: a reversed
    transfer that an admin decided to pay again (positive). The next payout run adds it to the
    affiliate's net and records itself in `payout`, under a row lock, so it is paid once; a payout
    that fails gives it back for the run after."""

    class Kind(models.TextChoices):
        TRANSFER_REVERSAL = "transfer_reversal", "Transfer reversed in Stripe"

    public_id = models.CharField(max_length=32, unique=True, editable=False)
    program = models.ForeignKey("affiliates.Program", on_delete=models.CASCADE, related_name="+")
    affiliate = models.ForeignKey(
        "affiliates.Affiliate", on_delete=models.PROTECT, related_name="balance_adjustments"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # The Stripe object it comes from ("trr_…"): the same reversal is never carried twice.
    source_id = models.CharField(max_length=64)
    amount_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=500)
    finding = models.ForeignKey(
        ReconciliationFinding, null=True, blank=True, on_delete=models.SET_NULL, related_name="adjustments"
    )
    # The payout that nets it; empty while it waits for the next run.
    payout = models.ForeignKey(
        "payouts.Payout", null=True, blank=True, on_delete=models.SET_NULL, related_name="adjustments"
    )
    created_at = models.DateTimeField()
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "source_id"], name="balance_adjustment_once"),
            models.CheckConstraint(condition=~Q(amount_cents=0), name="balance_adjustment_not_zero"),
        ]
        indexes = [
            # The payout run reads what is still waiting, per affiliate.
            models.Index(
                fields=["affiliate"], condition=Q(payout__isnull=True), name="balance_adjustment_waiting"
            ),
        ]

    def __str__(self) -> str:
        return self.public_id

    def save(self, *args, **kwargs):
        if not self.public_id:
            self.public_id = new_public_id("adj")
        super().save(*args, **kwargs)
