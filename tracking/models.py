from __future__ import annotations

from django.db import models
from django.db.models import Q

from affiliates.models import Affiliate, Program
from refapp.ids import new_public_id


class Click(models.Model):
    """One visit through an affiliate link. Written on the hot path: keep it a single INSERT."""

    # No single-column indexes: click_visitor_idx leads with the program and click_affiliate_idx with
    # the affiliate, and every index is one more write per click.
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+", db_index=False)
    affiliate = models.ForeignKey(Affiliate, on_delete=models.CASCADE, related_name="clicks", db_index=False)
    visitor_id = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    landing_url = models.CharField(max_length=2000, blank=True)
    referrer = models.CharField(max_length=2000, blank=True)
    utm_source = models.CharField(max_length=200, blank=True)
    utm_medium = models.CharField(max_length=200, blank=True)
    utm_campaign = models.CharField(max_length=200, blank=True)
    utm_term = models.CharField(max_length=200, blank=True)
    utm_content = models.CharField(max_length=200, blank=True)
    sub_id = models.CharField(max_length=200, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    country = models.CharField(max_length=2, blank=True)
    # Never the raw IP: a /24 (/48) prefix to show, and a salted hash for same-IP fraud checks.
    ip_prefix = models.CharField(max_length=50, blank=True)
    ip_hash = models.CharField(max_length=64, blank=True)
    source = models.CharField(max_length=10, default="script")  # "script" (t.js) or "link" (/go/)

    class Meta:
        indexes = [
            # The attribution lookup: a visitor's clicks in a program, newest first.
            models.Index(fields=["program", "visitor_id", "-created_at"], name="click_visitor_idx"),
            models.Index(fields=["affiliate", "-created_at"], name="click_affiliate_idx"),
            # A BRIN index on created_at is added by migration on PostgreSQL only (time-ordered inserts).
        ]

    def __str__(self) -> str:
        return f"click {self.pk} {self.visitor_id}"


class Referral(models.Model):
    """A customer tied to the affiliate who brought them; later events of the customer pay that affiliate."""

    public_id = models.CharField(max_length=32, editable=False)  # unique: see Meta
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    livemode = models.BooleanField(default=True)
    # Indexed by the (affiliate, -created_at) and (affiliate, visitor_id) indexes below.
    affiliate = models.ForeignKey(
        Affiliate, on_delete=models.CASCADE, related_name="referrals", db_index=False
    )
    customer_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001 - NULL (absent) stays out of the unique index
    visitor_id = models.CharField(max_length=64, blank=True)
    # No database constraint: on PostgreSQL clicks are partitioned by month, and a foreign key to a
    # partitioned table needs its whole primary key (id, created_at). Retention sets this to NULL
    # before it drops a month of clicks (tracking/retention.py).
    click = models.ForeignKey(
        Click, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    method = models.CharField(max_length=20)  # how it was attributed: click, code, coupon
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            # public_id is unique by a constraint, not unique=True, which would add a second index
            # (varchar_pattern_ops, for LIKE) to every conversion's writes; ids are only matched whole.
            models.UniqueConstraint(fields=["public_id"], name="referral_public_id_unique"),
            models.UniqueConstraint(
                fields=["program", "livemode", "customer_id"],
                condition=Q(customer_id__isnull=False),
                name="referral_unique_customer",
            ),
        ]
        indexes = [
            models.Index(fields=["affiliate", "-created_at"]),
            # A visitor's open referral (no customer id yet) is looked up by every conversion that
            # a click attributes; without it the lookup read all of the affiliate's referrals.
            models.Index(
                fields=["affiliate", "visitor_id"],
                condition=Q(customer_id__isnull=True),
                name="referral_open_visitor_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.public_id

    def save(self, *args, **kwargs):
        if not self.public_id:
            self.public_id = new_public_id("ref")
        super().save(*args, **kwargs)


class Event(models.Model):
    """A conversion reported by the merchant (sale, signup, renewal, …), attributed or not."""

    class Attribution(models.TextChoices):
        CUSTOMER = "customer", "Existing referred customer"
        CODE = "code", "Referral code"
        COUPON = "coupon", "Promotion code"
        CLICK = "click", "Visitor click"
        NONE = "none", "Not attributed"

    public_id = models.CharField(max_length=32, editable=False)  # unique: see Meta
    # No index of its own: event_program_time_idx and event_unique_order both lead with program, and
    # a lone program index lured the planner away from the time range (measured on 300,000 events).
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+", db_index=False)
    livemode = models.BooleanField(default=True)
    name = models.CharField(max_length=64)
    order_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001 - NULL (absent) stays out of the unique index
    customer_id = models.CharField(max_length=255, blank=True)
    visitor_id = models.CharField(max_length=64, blank=True)
    referral_code = models.CharField(max_length=64, blank=True)
    # The promotion code used at checkout (POST /api/v1/events coupon_code, a Stripe discount).
    coupon_code = models.CharField(max_length=64, blank=True, default="", db_default="")
    amount_cents = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3)
    refunded_cents = models.BigIntegerField(default=0)
    # An open payment dispute holds the order's commissions: not approved, not paid, until it closes.
    disputed = models.BooleanField(default=False)
    customer_email_hash = models.CharField(max_length=64, blank=True)
    ip_hash = models.CharField(max_length=64, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()
    source = models.CharField(max_length=10, default="api")  # api, stripe
    # No single-column indexes on these two: event_affiliate_time_idx and event_referral_name_idx lead
    # with them, and every index is one more write per conversion.
    affiliate = models.ForeignKey(
        Affiliate, null=True, blank=True, on_delete=models.SET_NULL, related_name="events", db_index=False
    )
    referral = models.ForeignKey(
        Referral, null=True, blank=True, on_delete=models.SET_NULL, related_name="events", db_index=False
    )
    # No database constraint: on PostgreSQL clicks are partitioned by month, and a foreign key to a
    # partitioned table needs its whole primary key (id, created_at). Retention sets this to NULL
    # before it drops a month of clicks (tracking/retention.py).
    click = models.ForeignKey(
        Click, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    attribution = models.CharField(max_length=10, choices=Attribution.choices, default=Attribution.NONE)
    # The exact body answered on first receipt; a replay of the order answers it again byte for byte.
    response = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            # public_id is unique by a constraint, not unique=True, which would add a second index
            # (varchar_pattern_ops, for LIKE) to every conversion's writes; ids are only matched whole.
            models.UniqueConstraint(fields=["public_id"], name="event_public_id_unique"),
            # Idempotency: concurrent deliveries of one order race on this index and exactly one wins.
            models.UniqueConstraint(
                fields=["program", "livemode", "order_id"],
                condition=Q(order_id__isnull=False),
                name="event_unique_order",
            ),
            models.CheckConstraint(condition=Q(amount_cents__gte=0), name="event_amount_not_negative"),
            models.CheckConstraint(
                condition=Q(refunded_cents__gte=0, refunded_cents__lte=models.F("amount_cents")),
                name="event_refund_within_amount",
            ),
        ]
        indexes = [
            # Covering (PostgreSQL): the dashboards' sums over a range are index-only scans.
            models.Index(
                fields=["program", "-occurred_at"],
                include=["livemode", "affiliate", "amount_cents", "refunded_cents"],
                name="event_program_time_idx",
            ),
            models.Index(
                fields=["affiliate", "-occurred_at"],
                include=["livemode", "amount_cents", "refunded_cents"],
                name="event_affiliate_time_idx",
            ),
            models.Index(fields=["referral", "name"], name="event_referral_name_idx"),
        ]

    def __str__(self) -> str:
        return self.public_id

    def save(self, *args, **kwargs):
        if not self.public_id:
            self.public_id = new_public_id("evt")
        super().save(*args, **kwargs)


class ClickDaily(models.Model):
    """Clicks per affiliate and UTC day, rebuilt from the clicks table: dashboards never scan clicks."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    affiliate = models.ForeignKey(Affiliate, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    clicks = models.PositiveIntegerField()
    visitors = models.PositiveIntegerField(help_text="Distinct visitor ids of that day.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["affiliate", "day"], name="click_daily_unique")]
        indexes = [models.Index(fields=["program", "day"], name="click_daily_program_day")]

    def __str__(self) -> str:
        return f"{self.affiliate_id} {self.day}: {self.clicks}"


class ProgramClickDaily(models.Model):
    """Clicks per program and UTC day; visitors are distinct over the whole program that day."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    clicks = models.PositiveIntegerField()
    visitors = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["program", "day"], name="program_click_daily_unique")]

    def __str__(self) -> str:
        return f"{self.program_id} {self.day}: {self.clicks}"


class RollupState(models.Model):
    """How far the click rollups have read: every click with a larger id is still only in the tail."""

    name = models.CharField(max_length=50, unique=True)
    last_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} up to {self.last_id}"


class DroppedClickDaily(models.Model):
    """Clicks the click endpoint refused, per program, UTC day and reason, so that a site owner
    learns their tag is blocked by an origin list, rate limited or mostly sees bots. A counter,
    not rows per click: counting costs one upsert (or a Redis HINCRBY) on the refused path only."""

    class Reason(models.TextChoices):
        BOT = "bot", "bots"
        RATE_LIMIT = "rate_limit", "rate limit"
        ORIGIN = "origin", "origin"

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    reason = models.CharField(max_length=20, choices=Reason.choices)
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["program", "day", "reason"], name="dropped_click_daily_unique")
        ]

    def __str__(self) -> str:
        return f"{self.program_id} {self.day} {self.reason}: {self.count}"
