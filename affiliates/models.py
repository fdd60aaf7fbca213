from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from refapp.ids import new_public_id
from refapp.money import CURRENCY_CHOICES

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,48}[a-z0-9]$|^[a-z0-9]$")
CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
PARAM_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def validate_code(value: str) -> None:
    if not CODE_RE.match(value or ""):
        raise ValidationError("Use 1 to 64 letters, digits, '-' or '_', starting with a letter or digit.")


# Stripe's promotion codes take letters, digits and dashes; an affiliate's default promotion code is
# their referral code with any '_' made a '-'.
PROMOTION_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")


def validate_promotion_code(value: str) -> None:
    if not PROMOTION_CODE_RE.match(value or ""):
        raise ValidationError("Use 1 to 64 letters, digits or '-', starting with a letter or digit.")


# A spreadsheet runs a cell starting with one of these as a formula (tracking/csv_export.py says
# why tab and CR are there). "=1+1@csv.example" is a valid address by the RFC, and PayPal payout
# files are opened in spreadsheets: such an address is refused where it is entered.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def validate_paypal_email(value: str) -> None:
    EmailValidator()(value)
    if value.startswith(_FORMULA_PREFIXES):
        raise ValidationError("An email address may not start with =, +, -, @, a tab or a line break.")


class CustomerRewardKind(models.TextChoices):
    CREDIT = "credit", "Account credit (Stripe customer balance)"
    CASH = "cash", "Cash commission (paid like affiliates)"


class CustomerRewardType(models.TextChoices):
    FIXED = "fixed", "Fixed amount per referred friend"
    PERCENT = "percent", "Percent of the friend's first sale"


class Program(models.Model):
    class Attribution(models.TextChoices):
        LAST_CLICK = "last_click", "Last click"
        FIRST_CLICK = "first_click", "First click"

    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200)
    website = models.URLField(help_text="Where affiliate links land, e.g. https://acme.example")
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES, default="USD")
    allowed_origins = models.JSONField(
        default=list, blank=True, help_text="Origins allowed to report clicks; empty allows all."
    )
    ref_params = models.JSONField(default=list, blank=True, help_text="Extra URL parameters read as ?ref=.")
    cookie_days = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1), MaxValueValidator(730)]
    )
    attribution_model = models.CharField(
        max_length=20, choices=Attribution.choices, default=Attribution.LAST_CLICK
    )
    hold_days = models.PositiveIntegerField(default=30, validators=[MaxValueValidator(365)])
    # Data retention (tracking/retention.py, daily): clicks older than this are deleted once the
    # daily rollups hold their totals; user agents are blanked sooner.
    click_retention_days = models.PositiveIntegerField(
        default=400, validators=[MinValueValidator(31), MaxValueValidator(3650)]
    )
    user_agent_retention_days = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1), MaxValueValidator(3650)]
    )
    minimum_payout_cents = models.PositiveBigIntegerField(default=5000)
    payout_day = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(28)]
    )
    auto_approve = models.BooleanField(default=False, help_text="Join applications become active at once.")
    terms_url = models.URLField(blank=True)
    # --- refer-a-friend for customers (issue 16, item 4; docs/decisions.md) ---
    customer_referrals = models.BooleanField(
        default=False, db_default=False, help_text="Customers can enrol as referrers, by API or by email."
    )
    customer_reward_kind = models.CharField(
        max_length=10, choices=CustomerRewardKind.choices, default=CustomerRewardKind.CREDIT
    )
    customer_reward_type = models.CharField(
        max_length=10, choices=CustomerRewardType.choices, default=CustomerRewardType.FIXED
    )
    customer_reward_amount_cents = models.PositiveBigIntegerField(default=0)
    customer_reward_rate_bp = models.PositiveIntegerField(default=0, validators=[MaxValueValidator(10_000)])
    customer_reward_max_per_year = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Rewarded referrals per referrer and calendar year (UTC); empty: no limit.",
    )
    customer_reward_lifetime_cap_cents = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="What one referrer can earn in all; empty: no cap."
    )
    # Payouts wait for an affiliate's tax details (legal name, country, tax id; a W-9 for US persons):
    # the money stays approved and is paid by the first run after they are entered.
    require_tax_details = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Hold payouts of affiliates who have not entered their tax details.",
    )
    # The merchant's own account, the debtor of the SEPA credit transfer files (EUR programs).
    sepa_debtor_name = models.CharField(
        "SEPA debtor account holder", max_length=70, blank=True, default="", db_default=""
    )
    sepa_debtor_iban = models.CharField(
        "SEPA debtor IBAN", max_length=34, blank=True, default="", db_default=""
    )
    sepa_debtor_bic = models.CharField(
        "SEPA debtor BIC", max_length=11, blank=True, default="", db_default=""
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(payout_day__gte=1, payout_day__lte=28), name="program_payout_day_range"
            ),
            models.CheckConstraint(condition=Q(cookie_days__gte=1), name="program_cookie_days_positive"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from .bank import clean_bic, clean_iban

        errors = {}
        iban = None
        if self.sepa_debtor_iban:
            try:
                iban = clean_iban(self.sepa_debtor_iban)
                self.sepa_debtor_iban = str(iban.compact)
            except ValidationError as exc:
                errors["sepa_debtor_iban"] = exc.messages
        if self.sepa_debtor_bic:
            try:
                self.sepa_debtor_bic = clean_bic(self.sepa_debtor_bic, iban)
            except ValidationError as exc:
                errors["sepa_debtor_bic"] = exc.messages
        if errors:
            raise ValidationError(errors)

    def ref_param_names(self) -> list[str]:
        return ["ref", *[p for p in self.ref_params if p != "ref"]]

    def origin_allowed(self, origin: str) -> bool:
        if not self.allowed_origins:
            return True
        return origin.rstrip("/").lower() in {o.rstrip("/").lower() for o in self.allowed_origins}


class PartnerGroup(models.Model):
    public_id = models.CharField(max_length=32, unique=True, editable=False)
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="groups")
    name = models.CharField(max_length=100)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["program", "name"], name="group_unique_name_per_program")
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        if not self.public_id:
            self.public_id = new_public_id("grp")
        super().save(*args, **kwargs)


class Affiliate(models.Model):
    class Kind(models.TextChoices):
        AFFILIATE = "affiliate", "Affiliate"
        # A customer of the merchant enrolled as a referrer without an application (refer-a-friend):
        # active at once, bound to the merchant's customer id, rewarded by the program's settings.
        CUSTOMER = "customer", "Customer referrer"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        REJECTED = "rejected", "Rejected"

    class PayoutMethod(models.TextChoices):
        NONE = "", "None"
        STRIPE = "stripe", "Stripe Connect"
        PAYPAL = "paypal", "PayPal"
        BANK = "bank", "Bank transfer"
        WISE = "wise", "Wise"

    class BankAccountType(models.TextChoices):
        CHECKING = "checking", "Checking"
        SAVINGS = "savings", "Savings"

    public_id = models.CharField(max_length=32, unique=True, editable=False)
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="affiliates")
    group = models.ForeignKey(
        PartnerGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="affiliates"
    )
    email = models.EmailField()
    # Hash of the lowercased email, compared against conversions' customer_email for self-referral.
    email_hash = models.CharField(max_length=64, editable=False)
    name = models.CharField(max_length=200)
    code = models.CharField(max_length=64, validators=[validate_code])
    # Codes match case-insensitively; the lowercased copy carries the unique index that lookups use.
    code_key = models.CharField(max_length=64, editable=False)
    # A test-mode affiliate is made by a sk_test_ key: only test keys see it, only test events are
    # attributed to it, and it is never paid. Code and email stay unique across both modes, so a
    # /go/ link or ?ref= code always names one affiliate (docs/decisions.md, "Test mode").
    livemode = models.BooleanField(default=True, db_default=True)
    kind = models.CharField(
        max_length=10, choices=Kind.choices, default=Kind.AFFILIATE, db_default="affiliate"
    )
    # The merchant's customer id of a customer referrer (a Stripe customer id for credit rewards).
    customer_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001 - NULL (absent) stays out of the unique index
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    status_reason = models.CharField(max_length=500, blank=True)
    website = models.CharField(max_length=500, blank=True)
    promotion = models.TextField(blank=True, help_text="How they promote, from the join form.")
    payout_method = models.CharField(
        max_length=10, choices=PayoutMethod.choices, default=PayoutMethod.NONE, blank=True
    )
    paypal_email = models.EmailField(blank=True, validators=[validate_paypal_email])
    stripe_account_id = models.CharField(max_length=64, blank=True)
    stripe_payouts_enabled = models.BooleanField(default=False)
    # Bank transfer: an IBAN (and BIC) for SEPA, or a US account and ABA routing number for ACH;
    # validated where entered (affiliates/bank.py), shown only masked after entry.
    # With database defaults: bulk writers that insert affiliates in SQL (bench seeds, importers)
    # need not name these columns.
    bank_account_holder = models.CharField(max_length=70, blank=True, default="", db_default="")
    bank_iban = models.CharField(max_length=34, blank=True, default="", db_default="")
    bank_bic = models.CharField(max_length=11, blank=True, default="", db_default="")
    bank_account_number = models.CharField(max_length=17, blank=True, default="", db_default="")
    bank_routing_number = models.CharField(max_length=9, blank=True, default="", db_default="")
    bank_account_type = models.CharField(
        max_length=10, choices=BankAccountType.choices, blank=True, default="", db_default=""
    )
    wise_email = models.EmailField(blank=True, validators=[validate_paypal_email], default="", db_default="")
    created_at = models.DateTimeField(auto_now_add=True)
    approved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["program", "code_key"], name="affiliate_unique_code_per_program"),
            models.UniqueConstraint(fields=["program", "email"], name="affiliate_unique_email_per_program"),
            # Enrolling a customer is idempotent by this index: one referrer per customer and mode.
            models.UniqueConstraint(
                fields=["program", "livemode", "customer_id"],
                condition=Q(customer_id__isnull=False),
                name="affiliate_unique_customer_per_program",
            ),
        ]
        indexes = [models.Index(fields=["program", "status"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    def save(self, *args, **kwargs):
        from refapp.hashing import email_hash

        if not self.public_id:
            self.public_id = new_public_id("aff")
        self.email = self.email.strip().lower()
        self.email_hash = email_hash(self.email)
        self.code_key = self.code.lower()
        super().save(*args, **kwargs)

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    @property
    def is_customer(self) -> bool:
        return self.kind == self.Kind.CUSTOMER

    @property
    def bank_display(self) -> str:
        """The bank account, masked: what every page shows after entry."""
        from .bank import mask_iban, mask_tail

        if self.bank_iban:
            return f"IBAN {mask_iban(self.bank_iban)}"
        if self.bank_account_number:
            return f"ACH account {mask_tail(self.bank_account_number)}, routing {self.bank_routing_number}"
        return ""

    @property
    def tax_profile_or_none(self) -> TaxProfile | None:
        try:
            return self.tax_profile
        except TaxProfile.DoesNotExist:
            return None

    @property
    def has_tax_form(self) -> bool:
        return TaxForm.objects.filter(affiliate_id=self.pk).exists()

    def links(self) -> dict[str, str]:
        """The two ways to share: the site with ?ref=CODE, and the /go/ redirect that works without the tracker."""
        from django.conf import settings

        website = self.program.website
        joiner = "&" if "?" in website else "?"
        return {
            "referral": f"{website}{joiner}ref={self.code}",
            "go": f"{settings.BASE_URL}/go/{self.program.slug}/{self.code}",
        }


class TaxProfile(models.Model):
    """An affiliate's tax details: what a 1099 or a VAT report needs, entered in the portal."""

    class FormType(models.TextChoices):
        NONE = "", "None"
        W9 = "w9", "W-9 (US person)"
        W8BEN = "w8ben", "W-8BEN (foreign individual)"
        W8BENE = "w8bene", "W-8BEN-E (foreign business)"

    affiliate = models.OneToOneField(Affiliate, on_delete=models.CASCADE, related_name="tax_profile")
    legal_name = models.CharField(max_length=200)
    country = models.CharField(max_length=2, help_text="ISO 3166 alpha-2, upper case.")
    is_business = models.BooleanField(default=False)
    tax_id = models.CharField(max_length=40)
    # The python-stdnum module that accepted the id ("eu.vat", "us.tin", …); "" if none exists.
    tax_id_kind = models.CharField(max_length=40, blank=True)
    form_type = models.CharField(max_length=10, choices=FormType.choices, blank=True)
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"tax details of {self.affiliate_id}"

    @property
    def tax_id_display(self) -> str:
        from .bank import mask_tail

        return mask_tail(self.tax_id)


class TaxForm(models.Model):
    """The uploaded W-9/W-8 form, kept in the database: private (never under a public URL), on
    every web process without shared disks, and backed up with the rows it belongs to."""

    affiliate = models.OneToOneField(Affiliate, on_delete=models.CASCADE, related_name="tax_form")
    filename = models.CharField(max_length=200)
    content_type = models.CharField(max_length=50)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    content = models.BinaryField()
    uploaded_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.filename


class ApiKey(models.Model):
    class Mode(models.TextChoices):
        LIVE = "live", "Live"
        TEST = "test", "Test"

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="api_keys")
    mode = models.CharField(max_length=4, choices=Mode.choices, default=Mode.LIVE)
    name = models.CharField(max_length=100, blank=True)
    # sha256 of the whole secret: keys are 190 bits of randomness, so a fast hash is safe and keeps
    # the per-request lookup a single indexed equality.
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(
        max_length=20, editable=False, help_text="First characters, for recognising a key."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.program.slug}, {self.mode})"

    @property
    def livemode(self) -> bool:
        return self.mode == self.Mode.LIVE


class ProgramStaff(models.Model):
    """Which staff users run which program. Superusers see every program."""

    class Role(models.TextChoices):
        ADMIN = "admin", "Admin (everything)"
        MANAGER = "manager", "Manager (affiliates and commissions, no settings or keys)"
        VIEWER = "viewer", "Viewer (read only)"

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="staff")
    user = models.ForeignKey("auth.User", on_delete=models.CASCADE, related_name="program_roles")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.ADMIN)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["program", "user"], name="staff_unique_user_per_program")
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.role} of {self.program}"


class MagicLink(models.Model):
    """A single-use emailed link: portal login or join-application email verification."""

    class Purpose(models.TextChoices):
        LOGIN = "login", "Portal login"
        VERIFY = "verify", "Verify join application"
        REFERRER = "referrer", "Customer referrer's link page"

    purpose = models.CharField(max_length=10, choices=Purpose.choices)
    email = models.EmailField()
    program = models.ForeignKey(Program, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    affiliate = models.ForeignKey(
        Affiliate, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # Only the hash is stored: a database leak does not hand out working links.
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["email", "purpose"])]

    def __str__(self) -> str:
        return f"{self.purpose} link for {self.email}"


class PortalSession(models.Model):
    """A portal sign-in, kept as a hashed IP so conversions from the affiliate's own network are flagged."""

    affiliate = models.ForeignKey(Affiliate, on_delete=models.CASCADE, related_name="portal_sessions")
    ip_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["affiliate", "ip_hash"])]

    def __str__(self) -> str:
        return f"portal session of {self.affiliate_id}"


class FriendReward(models.Model):
    """The discount a referred visitor gets: one per program, and optionally one per partner group
    that overrides it for that group's affiliates (docs/decisions.md, "Friend rewards").

    Shaped like a Stripe coupon: a percent (in basis points, like every rate here) or a fixed amount
    in the program's currency, once, for `duration_months` months ("repeating"), or forever. With
    Stripe configured, `stripe_coupon_id` names the coupon the affiliates' promotion codes point to:
    one refapp created (`coupon_managed`), or one the admin already had.
    """

    class Kind(models.TextChoices):
        PERCENT = "percent", "Percent off"
        AMOUNT = "amount", "Amount off"

    class Duration(models.TextChoices):
        ONCE = "once", "Once"
        REPEATING = "repeating", "For a number of months"
        FOREVER = "forever", "Forever"

    public_id = models.CharField(max_length=32, unique=True, editable=False)
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="friend_rewards")
    group = models.ForeignKey(
        PartnerGroup, null=True, blank=True, on_delete=models.CASCADE, related_name="friend_rewards"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PERCENT)
    percent_bp = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(10_000)]
    )
    amount_cents = models.PositiveBigIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    currency = models.CharField(max_length=3, blank=True)
    duration = models.CharField(max_length=10, choices=Duration.choices, default=Duration.ONCE)
    duration_months = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(120)]
    )
    stripe_coupon_id = models.CharField(max_length=255, blank=True)
    coupon_managed = models.BooleanField(default=False)
    # Why the last attempt to create the coupon in Stripe failed, for the panel ("" when it did not).
    stripe_error = models.CharField(max_length=500, blank=True)
    is_active = models.BooleanField(default=True)
    # Bumped by every change of the discount: names the coupon refapp creates for this version
    # (its idempotency key), so a retried job never creates a second one.
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["program"], condition=Q(group__isnull=True), name="friend_reward_one_per_program"
            ),
            models.UniqueConstraint(
                fields=["program", "group"],
                condition=Q(group__isnull=False),
                name="friend_reward_one_per_group",
            ),
            models.CheckConstraint(
                condition=Q(percent_bp__isnull=True) | Q(percent_bp__gte=1, percent_bp__lte=10_000),
                name="friend_reward_percent_range",
            ),
        ]

    def __str__(self) -> str:
        return self.describe()

    def save(self, *args, **kwargs):
        if not self.public_id:
            self.public_id = new_public_id("frw")
        super().save(*args, **kwargs)

    def describe(self) -> str:
        """What the discount is, in words: "20 % off your first 3 months"."""
        from refapp.money import format_amount

        if self.kind == self.Kind.PERCENT:
            whole, part = divmod(self.percent_bp or 0, 100)
            off = f"{whole}" + (f".{part:02d}".rstrip("0") if part else "") + " %"
        else:
            off = format_amount(self.amount_cents or 0, self.currency)
        if self.duration == self.Duration.FOREVER:
            return f"{off} off every payment"
        if self.duration == self.Duration.REPEATING and (self.duration_months or 0) > 1:
            return f"{off} off your first {self.duration_months} months"
        if self.duration == self.Duration.REPEATING:
            return f"{off} off your first month"
        return f"{off} off your first payment"

    def label_for(self, affiliate_name: str) -> str:
        """The line a referred visitor reads: "Referred by Jo: 20 % off your first 3 months"."""
        first = (affiliate_name or "").strip().split(" ")[0][:40]
        return f"Referred by {first}: {self.describe()}" if first else self.describe().capitalize()


class PromotionCode(models.Model):
    """An affiliate's promotion code, when it differs from their referral code or lives in Stripe.

    Every affiliate has a promotion code: this row's `code` when there is one, else their referral
    code. The row appears when the code is edited or provisioned in Stripe; `stripe_*` record what
    Stripe holds (docs/decisions.md, "Friend rewards"). Codes are unique per program, among these rows
    by the index and against the other affiliates' referral codes by the services that set them.
    """

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    affiliate = models.OneToOneField(Affiliate, on_delete=models.CASCADE, related_name="promotion_code")
    livemode = models.BooleanField(default=True)
    code = models.CharField(max_length=64, validators=[validate_code])
    code_key = models.CharField(max_length=64, editable=False)
    # What Stripe holds: the promotion code object, the coupon and the code it was made with (both
    # fixed in Stripe: a new coupon or code needs a new object), and whether it is active there.
    stripe_id = models.CharField(max_length=255, blank=True)
    stripe_coupon_id = models.CharField(max_length=255, blank=True)
    stripe_code = models.CharField(max_length=64, blank=True)
    stripe_active = models.BooleanField(default=False)
    stripe_error = models.CharField(max_length=500, blank=True)
    # Set by the one provisioning run that works on this code; others leave it alone meanwhile.
    claimed_at = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["program", "code_key"], name="promotion_code_unique_per_program")
        ]

    def __str__(self) -> str:
        return self.code

    def save(self, *args, **kwargs):
        self.code_key = self.code.lower()
        super().save(*args, **kwargs)
