from __future__ import annotations

from django.db import models
from django.db.models import Q

from affiliates.models import Affiliate, Program
from commissions.models import Commission
from refapp.ids import new_public_id


class Payout(models.Model):
    """One payment to one affiliate for one period (YYYY-MM of the run): never two."""

    class Status(models.TextChoices):
        PROCESSING = "processing", "Sending"
        PENDING = "pending", "Waiting to be paid by hand"
        PAID = "paid", "Paid"
        FAILED = "failed", "Failed"

    class Method(models.TextChoices):
        STRIPE = "stripe", "Stripe Connect"
        PAYPAL = "paypal", "PayPal"
        BANK = "bank", "Bank transfer"
        WISE = "wise", "Wise"

    public_id = models.CharField(max_length=32, unique=True, editable=False)
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    affiliate = models.ForeignKey(Affiliate, on_delete=models.PROTECT, related_name="payouts")
    period = models.CharField(max_length=7)  # "2026-11"
    method = models.CharField(max_length=10, choices=Method.choices)
    destination = models.CharField(
        max_length=255,
        help_text="Stripe account id, PayPal or Wise email, or the masked bank account at the time of the run.",
    )
    # Bank payouts: the full account at the time of the run (holder, iban, bic, or account_number,
    # routing_number, account_type), read only by the SEPA and Wise exports; pages show `destination`.
    bank_details = models.JSONField(default=dict, blank=True)
    amount_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=12, choices=Status.choices)
    # Each retry of a failed Stripe payout uses a fresh idempotency key; a crash replays the same one.
    attempt = models.PositiveIntegerField(default=1)
    transfer_id = models.CharField(max_length=64, blank=True)
    reference = models.CharField(
        max_length=255, blank=True, help_text="Manual payments: the PayPal or bank reference."
    )
    failure_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()
    paid_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["affiliate", "period"], name="payout_one_per_affiliate_period"),
            models.CheckConstraint(condition=Q(amount_cents__gt=0), name="payout_amount_positive"),
        ]
        indexes = [
            models.Index(fields=["program", "status"]),
            models.Index(fields=["program", "-created_at"]),
        ]

    def __str__(self) -> str:
        return self.public_id

    def save(self, *args, **kwargs):
        if not self.public_id:
            self.public_id = new_public_id("po")
        super().save(*args, **kwargs)

    @property
    def idempotency_key(self) -> str:
        return f"payout-{self.pk}" if self.attempt == 1 else f"payout-{self.pk}-attempt-{self.attempt}"


class PayoutItem(models.Model):
    """A commission inside a payout. Released items (of a failed payout) may be paid again later."""

    payout = models.ForeignKey(Payout, on_delete=models.CASCADE, related_name="items")
    commission = models.ForeignKey(Commission, on_delete=models.PROTECT, related_name="payout_items")
    amount_cents = models.BigIntegerField()
    released = models.BooleanField(default=False)

    class Meta:
        constraints = [
            # A commission is in at most one live payout: the guard against paying it twice.
            models.UniqueConstraint(
                fields=["commission"], condition=Q(released=False), name="payout_item_commission_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.commission_id} in {self.payout_id}"


class StripeEvent(models.Model):
    """Stripe event ids already handled: a redelivered webhook is acknowledged and ignored."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    livemode = models.BooleanField(default=False)
    received_at = models.DateTimeField()
    result = models.CharField(max_length=500, blank=True)

    def __str__(self) -> str:
        return self.event_id


class CustomerCredit(models.Model):
    """One movement of a customer referrer's Stripe customer balance: the account credit of one
    approved friend reward, or the debit of one reversal of it (a refund of the friend's order).

    The ledger of "exactly once" (docs/decisions.md, issue 16 item 4): at most one row per
    commission row (the unique index), written before Stripe is called, and Stripe is called with
    the idempotency key `customer-credit-<public_id>`, so duplicate jobs and redeliveries can only
    ever make the same single balance transaction.
    """

    class Kind(models.TextChoices):
        CREDIT = "credit", "Credit"
        DEBIT = "debit", "Debit (refund)"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENDING = "sending", "Sending to Stripe"
        DONE = "done", "In the customer's balance"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Nothing to move"

    public_id = models.CharField(max_length=32, unique=True, editable=False)
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    affiliate = models.ForeignKey(Affiliate, on_delete=models.PROTECT, related_name="customer_credits")
    # The reward commission (a credit) or its reversal row (a debit): one ledger row each.
    commission = models.OneToOneField(Commission, on_delete=models.PROTECT, related_name="customer_credit")
    kind = models.CharField(max_length=6, choices=Kind.choices)
    # A credit nets the reward's reversals made before it (a partial refund during the hold): their
    # ids, so that they, and not later clawbacks, become paid with it.
    netted = models.JSONField(default=list, blank=True)
    amount_cents = models.BigIntegerField(help_text="Always positive; the kind gives the direction.")
    currency = models.CharField(max_length=3)
    stripe_customer_id = models.CharField(max_length=255)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(max_length=500, blank=True)
    stripe_transaction_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount_cents__gte=0), name="customer_credit_amount_positive"),
        ]
        indexes = [
            models.Index(fields=["affiliate", "created_at"]),
            models.Index(
                fields=["status"], condition=Q(status__in=["pending", "sending"]), name="cc_open_idx"
            ),
        ]

    def __str__(self) -> str:
        return self.public_id

    def save(self, *args, **kwargs):
        if not self.public_id:
            self.public_id = new_public_id("ccr")
        super().save(*args, **kwargs)

    @property
    def idempotency_key(self) -> str:
        return f"customer-credit-{self.public_id}"

    @property
    def stripe_amount(self) -> int:
        """Stripe's sign: a negative customer balance is credit the customer can spend."""
        return -self.amount_cents if self.kind == self.Kind.CREDIT else self.amount_cents


# The reconciliation's rows live in their own module; importing them here registers them with Django.
from .reconcile_models import BalanceAdjustment, ReconciliationFinding, ReconciliationRun  # noqa: E402

__all__ = [
    "BalanceAdjustment",
    "CustomerCredit",
    "Payout",
    "PayoutItem",
    "ReconciliationFinding",
    "ReconciliationRun",
    "StripeEvent",
]
