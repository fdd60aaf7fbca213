from __future__ import annotations

from django.db import models
from django.db.models import Q

from affiliates.models import Affiliate, PartnerGroup, Program
from refapp.ids import new_public_id
from tracking.models import Event


class CommissionRule(models.Model):
    class Type(models.TextChoices):
        PERCENT = "percent", "Percent of amount"
        FIXED = "fixed", "Fixed amount"

    public_id = models.CharField(max_length=32, unique=True, editable=False)
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="commission_rules")
    # A test rule (made by a sk_test_ key) pays test events only; a live rule, live events only.
    livemode = models.BooleanField(default=True, db_default=True)
    event_name = models.CharField(max_length=64, default="sale")
    type = models.CharField(max_length=10, choices=Type.choices)
    rate_bp = models.PositiveIntegerField(null=True, blank=True, help_text="Basis points: 2000 = 20.00 %.")
    amount_cents = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Fixed amount in minor units."
    )
    # Scope: neither = program-wide, group = partner group, affiliate = one affiliate.
    group = models.ForeignKey(
        PartnerGroup, null=True, blank=True, on_delete=models.CASCADE, related_name="rules"
    )
    affiliate = models.ForeignKey(
        Affiliate, null=True, blank=True, on_delete=models.CASCADE, related_name="rules"
    )
    first_event_only = models.BooleanField(default=False)
    duration_months = models.PositiveIntegerField(null=True, blank=True)
    max_events = models.PositiveIntegerField(null=True, blank=True)
    # [{"min_cents": 100000, "rate_bp": 2500}, …] by the affiliate's referred revenue in the month.
    tiers = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(type="percent", rate_bp__isnull=False, rate_bp__lte=10_000)
                    | Q(type="fixed", amount_cents__isnull=False)
                ),
                name="rule_type_has_value",
            ),
            models.CheckConstraint(
                condition=~Q(group__isnull=False, affiliate__isnull=False), name="rule_one_scope"
            ),
        ]
        indexes = [models.Index(fields=["program", "event_name", "is_active"])]

    def __str__(self) -> str:
        return f"{self.public_id} {self.describe()}"

    def save(self, *args, **kwargs):
        if not self.public_id:
            self.public_id = new_public_id("rule")
        super().save(*args, **kwargs)

    @property
    def scope(self) -> str:
        if self.affiliate_id:
            return "affiliate"
        if self.group_id:
            return "group"
        return "program"

    def describe(self) -> str:
        from django.utils.translation import ngettext

        from refapp.money import format_amount

        if self.type == self.Type.PERCENT:
            value = f"{self.rate_bp / 100:g} % of {self.event_name}"
        else:
            value = f"{format_amount(self.amount_cents or 0, self.program.currency)} per {self.event_name}"
        extras = []
        if self.tiers:
            extras.append("tiered")
        if self.first_event_only:
            extras.append("first event only")
        if self.duration_months:
            n = self.duration_months
            extras.append(ngettext("for %(n)d month", "for %(n)d months", n) % {"n": n})
        if self.max_events:
            n = self.max_events
            extras.append(ngettext("at most %(n)d event", "at most %(n)d events", n) % {"n": n})
        return value + (f" ({', '.join(extras)})" if extras else "")


class Commission(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        # In a payout that is being sent; becomes paid, or approved again if the payout fails.
        PROCESSING = "processing", "In payout"
        PAID = "paid", "Paid"
        REJECTED = "rejected", "Rejected"

    class Kind(models.TextChoices):
        COMMISSION = "commission", "Commission"
        # A negative row that reverses part or all of a commission (refund, clawback after payment).
        REVERSAL = "reversal", "Reversal"

    public_id = models.CharField(max_length=32, editable=False)  # unique: see Meta
    # Program and affiliate lead the composite indexes below; single-column copies only cost writes.
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+", db_index=False)
    livemode = models.BooleanField(default=True)
    affiliate = models.ForeignKey(
        Affiliate, on_delete=models.CASCADE, related_name="commissions", db_index=False
    )
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="commissions")
    rule = models.ForeignKey(
        CommissionRule, null=True, blank=True, on_delete=models.PROTECT, related_name="commissions"
    )
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.COMMISSION)
    reverses = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="reversals"
    )
    amount_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    hold_until = models.DateTimeField()
    # What the calculation used: amount, rate, tier, revenue, rounding; enough to explain it to anyone.
    inputs = models.JSONField(default=dict)
    status_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()
    approved_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # public_id is unique by a constraint, not unique=True, which would add a second index
            # (varchar_pattern_ops, for LIKE) to every conversion's writes; ids are only matched whole.
            models.UniqueConstraint(fields=["public_id"], name="commission_public_id_unique"),
            models.CheckConstraint(
                condition=Q(kind="commission", amount_cents__gte=0) | Q(kind="reversal", amount_cents__lte=0),
                name="commission_sign_matches_kind",
            ),
        ]
        indexes = [
            # The hourly approval job scans only what is still pending.
            models.Index(fields=["hold_until"], condition=Q(status="pending"), name="com_pending_hold_idx"),
            # Covering (PostgreSQL): balances, earnings and dashboards read only the index.
            models.Index(
                fields=["affiliate", "status"],
                include=["livemode", "amount_cents", "hold_until"],
                name="com_affiliate_status_idx",
            ),
            models.Index(
                fields=["affiliate", "created_at"],
                include=["livemode", "status", "amount_cents"],
                name="com_affiliate_time_idx",
            ),
            models.Index(
                fields=["program", "created_at"],
                include=["livemode", "status", "amount_cents", "affiliate"],
                name="com_program_time_idx",
            ),
            models.Index(fields=["program", "status", "-created_at"], name="com_program_status_idx"),
        ]

    def __str__(self) -> str:
        return self.public_id

    def save(self, *args, **kwargs):
        if not self.public_id:
            self.public_id = new_public_id("com")
        super().save(*args, **kwargs)

    @property
    def payable(self) -> bool:
        return self.livemode and self.status == self.Status.APPROVED


class Refund(models.Model):
    """One refund of an order as reported by the merchant or Stripe, kept for idempotent replays."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    livemode = models.BooleanField(default=True)
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="refunds")
    refund_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001 - NULL (absent) stays out of the unique index
    amount_cents = models.BigIntegerField()
    response = models.JSONField(default=dict)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            # Merchants number refunds per order ("1", "2", "R1" on every order), so an id names a
            # refund of one order only: the same id on another order is another refund.
            models.UniqueConstraint(
                fields=["program", "livemode", "event", "refund_id"],
                condition=Q(refund_id__isnull=False),
                name="refund_unique_id_per_order",
            ),
            models.CheckConstraint(condition=Q(amount_cents__gte=0), name="refund_amount_not_negative"),
        ]

    def __str__(self) -> str:
        return f"refund {self.refund_id or self.pk} of {self.event_id}"


class FraudFlag(models.Model):
    class Reason(models.TextChoices):
        SELF_REFERRAL_EMAIL = "self_referral_email", "Customer email is the affiliate's own"
        SELF_REFERRAL_IP = "self_referral_ip", "Conversion from the affiliate's own IP"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        DISMISSED = "dismissed", "Dismissed (commission released)"
        CONFIRMED = "confirmed", "Confirmed (commission stays rejected)"

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    affiliate = models.ForeignKey(Affiliate, on_delete=models.CASCADE, related_name="fraud_flags")
    event = models.ForeignKey(
        Event, null=True, blank=True, on_delete=models.CASCADE, related_name="fraud_flags"
    )
    reason = models.CharField(max_length=40, choices=Reason.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=100, blank=True)

    class Meta:
        indexes = [models.Index(fields=["program", "status"])]

    def __str__(self) -> str:
        return f"{self.get_reason_display()} ({self.status})"


class SentDigest(models.Model):
    """The approval digest sent to one affiliate on one UTC day: the ledger that sends it once.

    The row is inserted before the email is queued (on commit); the unique (affiliate, day) index
    decides between two runs, so two workers never send the same digest.
    """

    # No index of its own: the unique (affiliate, day) index leads with the affiliate.
    affiliate = models.ForeignKey(Affiliate, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    commissions = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["affiliate", "day"], name="sent_digest_once_per_day")]

    def __str__(self) -> str:
        return f"digest of {self.affiliate_id} on {self.day}"


# --- conversion rollups (docs/architecture.md, "Performance") -----------------------------------------------
#
# Database triggers on tracking_event and commissions_commission append every change that moves a
# dashboard figure to ConversionDelta (an append-only log: no row is updated on the hot path, so
# concurrent conversions never wait on each other). `commissions.rollups.fold` moves the log into
# the three rollups below; readers add the log's rows not yet folded in, in the same statement, so
# every figure is exact to the last committed row. See docs/decisions.md.


class ConversionFigures(models.Model):
    """The figures one rollup row holds. Commission amounts are by status, reversals netted."""

    conversions = models.IntegerField(default=0, help_text="Attributed events, of any name.")
    revenue_cents = models.BigIntegerField(default=0, help_text="Their amounts, net of refunds.")
    pending_cents = models.BigIntegerField(default=0)
    approved_cents = models.BigIntegerField(default=0)
    processing_cents = models.BigIntegerField(default=0)
    paid_cents = models.BigIntegerField(default=0)

    FIELDS = (
        "conversions",
        "revenue_cents",
        "pending_cents",
        "approved_cents",
        "processing_cents",
        "paid_cents",
    )

    class Meta:
        abstract = True


class ConversionDelta(ConversionFigures):
    """One change not yet folded into the rollups, written only by the database triggers.

    Plain id columns, no foreign keys: each conversion appends two rows here, and a foreign key
    would add a deferred check to each. The day is the event's occurred_at or the commission's
    created_at, as a UTC date.
    """

    program_id = models.BigIntegerField()
    affiliate_id = models.BigIntegerField()
    livemode = models.BooleanField()
    day = models.DateField()

    def __str__(self) -> str:
        return f"{self.affiliate_id} {self.day}"


class AffiliateConversionDaily(ConversionFigures):
    """Conversions and commissions per affiliate and UTC day: the portal and top affiliates."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+", db_index=False)
    affiliate = models.ForeignKey(Affiliate, on_delete=models.CASCADE, related_name="+", db_index=False)
    livemode = models.BooleanField()
    day = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["affiliate", "livemode", "day"], name="affiliate_conv_daily_unique"
            )
        ]
        indexes = [
            models.Index(
                fields=["program", "livemode", "day"],
                # Covering: ranking a program's affiliates over a range reads only the index.
                include=["affiliate", *ConversionFigures.FIELDS],
                name="affiliate_conv_daily_range",
            )
        ]

    def __str__(self) -> str:
        return f"{self.affiliate_id} {self.day}: {self.conversions}"


class ProgramConversionDaily(ConversionFigures):
    """Conversions and commissions per program and UTC day: the panel dashboard's charts and totals."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+", db_index=False)
    livemode = models.BooleanField()
    day = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["program", "livemode", "day"], name="program_conv_daily_unique")
        ]

    def __str__(self) -> str:
        return f"{self.program_id} {self.day}: {self.conversions}"


class AffiliateConversionTotal(ConversionFigures):
    """All-time figures per affiliate: what the affiliates list sorts by."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+", db_index=False)
    affiliate = models.ForeignKey(Affiliate, on_delete=models.CASCADE, related_name="conversion_totals")
    livemode = models.BooleanField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["affiliate", "livemode"], name="affiliate_conv_total_unique")
        ]
        # The best affiliates of all time first: the candidates of commissions.rollups.top_affiliates.
        indexes = [
            models.Index(
                "program",
                "livemode",
                models.F("revenue_cents").desc(),
                "affiliate",
                name="affiliate_conv_total_rank",
            )
        ]

    def __str__(self) -> str:
        return f"{self.affiliate_id}: {self.conversions}"


class LiveAffiliateConversionTotal(models.Model):
    """A view: AffiliateConversionTotal plus the log rows not yet folded in, per affiliate.

    Read-only (managed=False; the migration creates the view). The affiliates list joins it to sort
    by conversions or earnings, so the ranking is exact without a write on the read path. The id is
    made from (affiliate, livemode), one row per pair.
    """

    id = models.BigIntegerField(primary_key=True)

    affiliate = models.ForeignKey(
        Affiliate,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="live_conversion_totals",
    )
    program_id = models.BigIntegerField()
    livemode = models.BooleanField()
    conversions = models.BigIntegerField()
    revenue_cents = models.BigIntegerField()
    earnings_cents = models.BigIntegerField()

    class Meta:
        managed = False
        db_table = "commissions_liveaffiliateconversiontotal"

    def __str__(self) -> str:
        return f"{self.affiliate_id}: {self.conversions}"


class ImportUpload(models.Model):
    """A file uploaded on the panel's import page, kept between its preview and its confirmation.

    Kept in the database, not on a web process's disk: the confirmation may reach another process.
    The link carries a random token; only its hash is stored. Deleted when the import lands, and
    after a day in any case (commissions.imports.upload_store sweeps old ones).
    """

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    format = models.CharField(max_length=20)
    filename = models.CharField(max_length=200, blank=True)
    content = models.BinaryField()
    sha256 = models.CharField(max_length=64)
    ref_param = models.CharField(max_length=32, blank=True)
    skip_invalid = models.BooleanField(default=False)
    uploaded_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["created_at"], name="import_upload_created_idx")]

    def __str__(self) -> str:
        return f"{self.format} upload {self.filename or self.pk} for {self.program_id}"
