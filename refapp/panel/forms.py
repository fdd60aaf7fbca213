"""Panel forms: programs and setup, affiliates and groups, rules, commissions, fraud, logs, payouts.

Forms validate and hand plain values to a service; none of them writes a model.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User

from affiliates.models import (
    PARAM_RE,
    Affiliate,
    ApiKey,
    CustomerRewardKind,
    CustomerRewardType,
    FriendReward,
    PartnerGroup,
    Program,
    ProgramStaff,
    validate_code,
    validate_promotion_code,
)
from commissions.imports import ImportFileError, check_file
from commissions.models import Commission, CommissionRule
from commissions.rules import validate_rule
from refapp.money import CURRENCY_CHOICES, MoneyError, format_amount, is_currency, parse_amount
from tracking.csv_export import decimal_amount
from webhooks.models import EVENT_TYPES

from .history import ACTION_FAMILIES, ACTION_LABELS
from .log_selectors import ACTOR_KINDS
from .selectors import affiliate_by_reference

# --- programs and setup -----------------------------------------------------------------------


class SetupForm(UserCreationForm):
    email = forms.EmailField(required=True)

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")


class ProgramForm(forms.ModelForm):
    """Every program setting, with lists entered one per line and money as decimals."""

    allowed_origins_text = forms.CharField(
        label="Allowed origins",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One origin per line, e.g. https://acme.example. Empty allows every origin to report clicks.",
    )
    ref_params_text = forms.CharField(
        label="Extra referral parameters",
        required=False,
        help_text="Comma-separated URL parameters read like ?ref=, e.g. via, aff.",
    )
    minimum_payout = forms.CharField(
        label="Minimum payout", initial="50.00", help_text="In the program currency."
    )
    currency = forms.ChoiceField(choices=CURRENCY_CHOICES, initial="USD")
    website = forms.URLField(
        assume_scheme="https", help_text="Where affiliate links land, e.g. https://acme.example"
    )
    terms_url = forms.URLField(
        assume_scheme="https",
        required=False,
        label="Terms URL",
        help_text="Applicants must accept these to join.",
    )

    class Meta:
        model = Program
        fields = [
            "name",
            "slug",
            "website",
            "currency",
            "cookie_days",
            "attribution_model",
            "hold_days",
            "payout_day",
            "click_retention_days",
            "user_agent_retention_days",
            "auto_approve",
            "terms_url",
            "require_tax_details",
            "sepa_debtor_name",
            "sepa_debtor_iban",
            "sepa_debtor_bic",
        ]
        help_texts = {
            "sepa_debtor_name": "Your account holder name, for SEPA transfer files (EUR programs).",
            "sepa_debtor_iban": "The account SEPA transfer files pay from.",
            "sepa_debtor_bic": "Optional when your bank derives it from the IBAN.",
            "slug": "Used in the tracker tag and links; cannot change later.",
            "cookie_days": "How long after a click a conversion still counts (1 to 730).",
            "hold_days": "Refund window: commissions stay pending this many days before approval.",
            "payout_day": "Day of the month payouts run (1 to 28), at 06:00 UTC.",
            "click_retention_days": "Clicks older than this are deleted (31 to 3650); the daily totals stay.",
            "user_agent_retention_days": "Browser user agents of clicks are blanked after this many days.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Left empty, a retention setting keeps its current value (the default for a new program).
        for name in ("click_retention_days", "user_agent_retention_days"):
            self.fields[name].required = False
        program = self.instance
        if program.pk:
            self.fields["slug"].disabled = True
            self.fields["currency"].disabled = True
            self.fields["currency"].help_text = "Fixed once the program exists: amounts are stored in it."
            self.fields["allowed_origins_text"].initial = "\n".join(program.allowed_origins)
            self.fields["ref_params_text"].initial = ", ".join(program.ref_params)
            self.fields["minimum_payout"].initial = (
                format_amount(program.minimum_payout_cents, program.currency).split(" ")[0].replace(",", "")
            )

    def clean_allowed_origins_text(self) -> list[str]:
        origins = []
        for line in self.cleaned_data["allowed_origins_text"].splitlines():
            line = line.strip().rstrip("/")
            if not line:
                continue
            if (
                not (line.startswith("https://") or line.startswith("http://"))
                or "/" in line.split("://", 1)[1]
            ):
                raise forms.ValidationError(
                    f"{line!r} is not an origin; write scheme and host only, e.g. https://acme.example."
                )
            origins.append(line.lower())
        return origins

    def clean_click_retention_days(self) -> int:
        value = self.cleaned_data["click_retention_days"]
        return self.instance.click_retention_days if value is None else value

    def clean_user_agent_retention_days(self) -> int:
        value = self.cleaned_data["user_agent_retention_days"]
        return self.instance.user_agent_retention_days if value is None else value

    def clean_ref_params_text(self) -> list[str]:
        params = [p.strip() for p in self.cleaned_data["ref_params_text"].split(",") if p.strip()]
        for p in params:
            if not PARAM_RE.match(p):
                raise forms.ValidationError(
                    f"{p!r} is not a valid URL parameter name (letters, digits, - and _)."
                )
        return params

    def clean(self):
        cleaned = super().clean()
        currency = cleaned.get("currency") or self.instance.currency or "USD"
        raw = (cleaned.get("minimum_payout") or "").strip()
        if raw:
            try:
                cents = parse_amount(raw, currency)
            except MoneyError as exc:
                self.add_error("minimum_payout", str(exc))
            else:
                if cents < 0:
                    self.add_error("minimum_payout", "Must not be negative.")
                cleaned["minimum_payout_cents"] = cents
        return cleaned

    def program_fields(self) -> dict[str, Any]:
        """The cleaned settings as keyword arguments of program_create/program_update."""
        fields = {
            name: self.cleaned_data[name] for name in self.Meta.fields if name not in self.disabled_fields()
        }
        fields["allowed_origins"] = self.cleaned_data["allowed_origins_text"]
        fields["ref_params"] = self.cleaned_data["ref_params_text"]
        if "minimum_payout_cents" in self.cleaned_data:
            fields["minimum_payout_cents"] = self.cleaned_data["minimum_payout_cents"]
        return fields

    def disabled_fields(self) -> set[str]:
        return {name for name, field in self.fields.items() if field.disabled}


class ApiKeyForm(forms.Form):
    mode = forms.ChoiceField(choices=ApiKey.Mode.choices, initial=ApiKey.Mode.LIVE)
    name = forms.CharField(
        max_length=100, required=False, help_text="What uses this key, e.g. 'billing backend'."
    )


# --- affiliates and groups -------------------------------------------------------------------

AFFILIATE_SORT_CHOICES = [
    ("-created", "Newest first"),
    ("created", "Oldest first"),
    ("name", "Name A–Z"),
    ("-name", "Name Z–A"),
    ("-clicks", "Most clicks"),
    ("clicks", "Fewest clicks"),
    ("-conversions", "Most conversions"),
    ("conversions", "Fewest conversions"),
    ("-earnings", "Highest earnings"),
    ("earnings", "Lowest earnings"),
]


class AffiliateFilterForm(forms.Form):
    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Name, email or code"}),
    )
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *Affiliate.Status.choices])
    kind = forms.ChoiceField(
        required=False, choices=[("", "Affiliates and customers"), *Affiliate.Kind.choices], label="Kind"
    )
    # Sorting by a column heading swaps only the table; the response carries this select again,
    # out of band, so the form keeps sending the order the table shows.
    sort = forms.ChoiceField(
        required=False, choices=AFFILIATE_SORT_CHOICES, widget=forms.Select(attrs={"hx-swap-oob": "true"})
    )

    def filters(self) -> dict[str, str]:
        """Selector keyword arguments; an invalid value (a hand-edited URL) falls back to no filter."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return {name: data.get(name) or "" for name in ("q", "status", "kind", "sort")}


class AffiliateInviteForm(forms.Form):
    name = forms.CharField(max_length=200)
    email = forms.EmailField()
    code = forms.CharField(
        required=False,
        max_length=64,
        validators=[validate_code],
        help_text="Leave empty to make one from the name.",
    )
    group = forms.ModelChoiceField(
        queryset=PartnerGroup.objects.none(), required=False, empty_label="No group"
    )

    def __init__(self, *args: Any, program: Program, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.program = program
        self.fields["group"].queryset = PartnerGroup.objects.filter(program=program, is_active=True)

    # These checks give the answer next to the field; the service's Conflict still covers a race.
    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if Affiliate.objects.filter(program=self.program, email=email).exists():
            raise forms.ValidationError("An affiliate with this email is already in this program.")
        return email

    def clean_code(self) -> str:
        code = self.cleaned_data["code"].strip()
        if code and Affiliate.objects.filter(program=self.program, code_key=code.lower()).exists():
            raise forms.ValidationError(f"The code {code} is already taken in this program.")
        return code


class AffiliateStatusForm(forms.Form):
    NEEDS_REASON = {Affiliate.Status.REJECTED, Affiliate.Status.SUSPENDED}

    status = forms.ChoiceField(choices=Affiliate.Status.choices, widget=forms.HiddenInput)
    reason = forms.CharField(required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2}))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("status") in self.NEEDS_REASON and not (data.get("reason") or "").strip():
            self.add_error("reason", "Give a reason; it is kept in the audit log.")
        return data


class AffiliateGroupForm(forms.Form):
    group = forms.ModelChoiceField(
        queryset=PartnerGroup.objects.none(), required=False, empty_label="No group"
    )

    def __init__(self, *args: Any, program: Program, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["group"].queryset = PartnerGroup.objects.filter(program=program)


class GroupForm(forms.Form):
    name = forms.CharField(max_length=100)
    is_active = forms.BooleanField(
        required=False,
        initial=True,
        label="Active",
        help_text="An inactive group keeps its members, but its commission rules stop applying to them.",
    )

    def __init__(self, *args: Any, program: Program, group: PartnerGroup | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.program = program
        self.group = group

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        taken = PartnerGroup.objects.filter(program=self.program, name__iexact=name)
        if self.group is not None:
            taken = taken.exclude(pk=self.group.pk)
        if taken.exists():
            raise forms.ValidationError("Another group of this program already has this name.")
        return name


# --- date ranges and logs --------------------------------------------------------------------


class DateRangeFilterForm(forms.Form):
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_to"] < data["date_from"]:
            self.add_error("date_to", "The end date is before the start date.")
        return data

    def filters(self) -> dict[str, Any]:
        """The valid filters as keyword arguments for a selector; an invalid form filters nothing."""
        if not self.is_valid():
            return {}
        return {k: v for k, v in self.cleaned_data.items() if v not in (None, "")}


class EventFilterForm(DateRangeFilterForm):
    name = forms.CharField(
        required=False,
        max_length=64,
        label="Event",
        widget=forms.TextInput(attrs={"placeholder": "Any event"}),
    )
    attributed = forms.ChoiceField(
        required=False, choices=[("", "Attributed or not"), ("yes", "Attributed"), ("no", "Not attributed")]
    )
    order_id = forms.CharField(required=False, max_length=255, label="Order id")
    mode = forms.ChoiceField(required=False, choices=[("live", "Live"), ("test", "Test")], label="Mode")

    field_order = ["name", "attributed", "order_id", "date_from", "date_to", "mode"]

    def filters(self) -> dict[str, Any]:
        filters = super().filters()
        filters["livemode"] = filters.pop("mode", "live") != "test"
        return filters


class ClickFilterForm(DateRangeFilterForm):
    code = forms.CharField(required=False, max_length=64, label="Affiliate code or id")
    source = forms.ChoiceField(
        required=False, choices=[("", "Any source"), ("script", "Tracker script"), ("link", "Redirect link")]
    )
    utm_source = forms.CharField(required=False, max_length=200, label="utm_source")

    field_order = ["code", "source", "utm_source", "date_from", "date_to"]


class ActivityFilterForm(DateRangeFilterForm):
    """The activity log's filters: who, what (an action family or one action), which object, when."""

    actor = forms.ChoiceField(required=False, label="Who")
    what = forms.ChoiceField(required=False, label="What")
    object_id = forms.CharField(
        required=False,
        max_length=64,
        label="Object id",
        widget=forms.TextInput(attrs={"placeholder": "aff_…, com_…, po_…"}),
    )

    field_order = ["actor", "what", "object_id", "date_from", "date_to"]

    def __init__(self, *args: Any, program: Program, **kwargs: Any):
        super().__init__(*args, **kwargs)
        team = (
            User.objects.filter(program_roles__program=program)
            .order_by("email", "username")
            .only("pk", "email", "username")
        )
        self.fields["actor"].choices = [
            ("", "Anyone"),
            *((key, label) for key, (label, _q) in ACTOR_KINDS.items()),
            ("Team", [(f"user:{u.pk}", u.email or u.get_username()) for u in team]),
        ]
        self.fields["what"].choices = [
            ("", "Anything"),
            ("Kinds", list(ACTION_FAMILIES.items())),
            ("Actions", sorted(ACTION_LABELS.items(), key=lambda item: item[1])),
        ]


# --- commissions -------------------------------------------------------------------------------


class CommissionFilterForm(DateRangeFilterForm):
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *Commission.Status.choices])
    affiliate = forms.CharField(required=False, max_length=64, label="Affiliate code or id")
    order = forms.CharField(required=False, max_length=255, label="Order or event id")
    kind = forms.ChoiceField(required=False, choices=[("", "Any kind"), *Commission.Kind.choices])
    mode = forms.ChoiceField(required=False, choices=[("live", "Live"), ("test", "Test")])

    field_order = ["status", "affiliate", "order", "kind", "date_from", "date_to", "mode"]

    def filters(self) -> dict[str, Any]:
        filters = super().filters()
        filters["livemode"] = filters.pop("mode", "live") != "test"
        return filters


class MultipleValueField(forms.Field):
    """Every value of a repeated parameter (?ids=a&ids=b), as a list of strings."""

    widget = forms.MultipleHiddenInput

    def __init__(self, *, max_items: int, pattern: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.max_items = max_items
        self.pattern = re.compile(pattern)

    def to_python(self, value: Any) -> list[str]:
        if not value:
            return []
        values = [value] if isinstance(value, str) else list(value)
        return list(dict.fromkeys(str(v).strip() for v in values if str(v).strip()))

    def validate(self, value: list[str]) -> None:
        super().validate(value)
        if len(value) > self.max_items:
            raise forms.ValidationError(f"Select at most {self.max_items} rows at a time.")
        if any(not self.pattern.match(v) for v in value):
            raise forms.ValidationError("Some selected rows are not commissions.")


class CommissionBulkForm(forms.Form):
    ACTIONS = {"approve": Commission.Status.APPROVED, "reject": Commission.Status.REJECTED}

    action = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    ids = MultipleValueField(
        max_items=500,
        pattern=r"^com_[A-Za-z0-9]{1,28}$",
        error_messages={"required": "Select at least one commission."},
    )
    reason = forms.CharField(required=False, max_length=500)
    next = forms.CharField(required=False, max_length=2000, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("action") == "reject" and not (data.get("reason") or "").strip():
            self.add_error("reason", "Give a reason for rejecting; the affiliate sees it.")
        return data

    @property
    def status(self) -> str:
        return self.ACTIONS[self.cleaned_data["action"]]


class FraudResolveForm(forms.Form):
    action = forms.ChoiceField(choices=[("dismiss", "Dismiss (release commission)"), ("confirm", "Confirm")])

    @property
    def release(self) -> bool:
        return self.cleaned_data["action"] == "dismiss"


# --- commission rules --------------------------------------------------------------------------


def parse_percent(text: str) -> int:
    """ "20", "12.5" or "12.5 %" → basis points (2000, 1250)."""
    value = text.strip().rstrip("%").strip()
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise forms.ValidationError("Enter a percent such as 20 or 12.5.") from None
    if not number.is_finite():
        raise forms.ValidationError("Enter a percent such as 20 or 12.5.")
    if number < 0:
        raise forms.ValidationError("A percent cannot be negative.")
    if number > 100:
        raise forms.ValidationError(f"{value} % is over 100 %: the commission would be more than the sale.")
    basis_points = number * 100
    if basis_points != basis_points.to_integral_value():
        raise forms.ValidationError("Use at most two decimals, such as 12.25.")
    return int(basis_points)


def format_percent(basis_points: int) -> str:
    return f"{Decimal(basis_points) / 100:f}"


_MONEY_RE = re.compile(
    r"^(?:(?P<before>[A-Za-z]{3})\s*)?(?P<number>[-+]?[0-9][0-9,]*(?:\.[0-9]*)?)\s*(?P<after>[A-Za-z]{3})?$"
)


def parse_money(text: str, program_currency: str) -> tuple[int, str]:
    """ "5.00", "1,000.00" or "5.00 EUR" → (minor units, currency). The currency defaults to the program's."""
    match = _MONEY_RE.match(text.strip())
    if not match or (match["before"] and match["after"]):
        raise forms.ValidationError(f"Enter an amount such as 5.00 (in {program_currency}).")
    currency = (match["before"] or match["after"] or program_currency).upper()
    if not is_currency(currency):
        raise forms.ValidationError(f"{currency} is not a currency code; amounts are in {program_currency}.")
    try:
        cents = parse_amount(match["number"].replace(",", ""), currency)
    except MoneyError as exc:
        raise forms.ValidationError(str(exc)) from None
    if cents < 0:
        raise forms.ValidationError("An amount cannot be negative.")
    return cents, currency


_TIER_RE = re.compile(r"^(?P<min>[^=]+?)\s*=\s*(?P<rate>[^=]+)$")


def parse_tiers(text: str, currency: str) -> list[dict[str, int]]:
    """Lines "1000.00 = 25" (monthly referred revenue = percent) → [{"min_cents", "rate_bp"}]."""
    tiers: list[dict[str, int]] = []
    errors: list[str] = []
    first_line: dict[int, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _TIER_RE.match(line.strip())
        if not match:
            errors.append(f"Line {number}: write “revenue = percent”, such as 1000.00 = 25.")
            continue
        try:
            min_cents, tier_currency = parse_money(match["min"], currency)
            if tier_currency != currency:
                raise forms.ValidationError(f"thresholds are in the program currency, {currency}.")
            rate_bp = parse_percent(match["rate"])
        except forms.ValidationError as exc:
            errors.append(f"Line {number}: {' '.join(exc.messages)}")
            continue
        if min_cents in first_line:
            errors.append(
                f"Lines {first_line[min_cents]} and {number} both start at {format_amount(min_cents, currency)}: "
                "tiers would overlap. Each threshold may appear once."
            )
            continue
        first_line[min_cents] = number
        tiers.append({"min_cents": min_cents, "rate_bp": rate_bp})
    if errors:
        raise forms.ValidationError(errors)
    return sorted(tiers, key=lambda t: t["min_cents"])


def format_tiers(tiers: list[dict[str, int]], currency: str) -> str:
    return "\n".join(
        f"{decimal_amount(t['min_cents'], currency)} = {format_percent(t['rate_bp'])}" for t in tiers
    )


class RuleForm(forms.Form):
    SCOPES = [("program", "Every affiliate"), ("group", "A partner group"), ("affiliate", "One affiliate")]
    # validate_rule() speaks the API's field names; these are the form fields they belong next to.
    ERROR_FIELDS = {
        "event": "event_name",
        "type": "type",
        "rate_bp": "rate",
        "amount_cents": "amount",
        "currency": "amount",
        "tiers": "tiers",
        "group": "scope",
    }

    event_name = forms.CharField(
        max_length=64,
        initial="sale",
        label="Event",
        help_text="The event name your backend sends: sale, signup, …",
    )
    type = forms.ChoiceField(choices=CommissionRule.Type.choices, initial=CommissionRule.Type.PERCENT)
    rate = forms.CharField(
        required=False,
        max_length=20,
        label="Rate (%)",
        help_text="Percent rules: 20 or 12.5 (of the amount).",
    )
    amount = forms.CharField(required=False, max_length=30, label="Fixed amount")
    scope = forms.ChoiceField(choices=SCOPES, initial="program", widget=forms.RadioSelect)
    group = forms.ModelChoiceField(
        queryset=PartnerGroup.objects.none(), required=False, help_text="When the scope is a partner group."
    )
    affiliate = forms.CharField(
        required=False,
        max_length=64,
        label="Affiliate code or id",
        help_text="When the scope is one affiliate.",
    )
    first_event_only = forms.BooleanField(
        required=False,
        label="First event only",
        help_text="Pay only for the customer's first event of this name.",
    )
    duration_months = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=1200,
        label="Duration (months)",
        help_text="Pay only during this many months after the referral began. Empty: forever.",
    )
    max_events = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=1_000_000,
        label="Maximum events per referral",
        help_text="Empty: no limit.",
    )
    tiers = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "1000.00 = 25\n5000.00 = 30"}),
        help_text="Percent rules only. One per line: referred revenue in the calendar month = percent.",
    )

    def __init__(self, *args: Any, program: Program, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.program = program
        self.fields["group"].queryset = PartnerGroup.objects.filter(program=program)
        self.fields["amount"].help_text = f"Fixed rules: an amount in {program.currency}, such as 5.00."
        self.fields["tiers"].help_text += f" Revenue in {program.currency}, such as 1000.00 = 25."
        self.rule_affiliate: Affiliate | None = None
        self.amount_currency: str | None = None

    @classmethod
    def initial_for(cls, rule: CommissionRule) -> dict[str, Any]:
        currency = rule.program.currency
        return {
            "event_name": rule.event_name,
            "type": rule.type,
            "rate": format_percent(rule.rate_bp) if rule.rate_bp is not None else "",
            "amount": str(decimal_amount(rule.amount_cents, currency))
            if rule.amount_cents is not None
            else "",
            "scope": rule.scope,
            "group": rule.group,
            "affiliate": rule.affiliate.code if rule.affiliate_id else "",
            "first_event_only": rule.first_event_only,
            "duration_months": rule.duration_months,
            "max_events": rule.max_events,
            "tiers": format_tiers(rule.tiers or [], currency),
        }

    def clean_event_name(self) -> str:
        return self.cleaned_data["event_name"].strip()

    def clean_rate(self) -> int | None:
        text = self.cleaned_data["rate"].strip()
        return parse_percent(text) if text else None

    def clean_amount(self) -> int | None:
        text = self.cleaned_data["amount"].strip()
        if not text:
            return None
        cents, self.amount_currency = parse_money(text, self.program.currency)
        return cents

    def clean_tiers(self) -> list[dict[str, int]]:
        return parse_tiers(self.cleaned_data["tiers"], self.program.currency)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        rule_type = data.get("type")
        if rule_type == CommissionRule.Type.PERCENT and "rate" in data and data["rate"] is None:
            self.add_error("rate", "Enter the percent this rule pays, such as 20.")
        if rule_type == CommissionRule.Type.FIXED and "amount" in data and data["amount"] is None:
            self.add_error(
                "amount", f"Enter the amount this rule pays, such as 5.00 ({self.program.currency})."
            )
        scope = data.get("scope")
        if scope == "group" and not data.get("group"):
            self.add_error("group", "Choose the group this rule is for.")
        if scope == "affiliate":
            reference = (data.get("affiliate") or "").strip()
            self.rule_affiliate = affiliate_by_reference(self.program, reference) if reference else None
            if self.rule_affiliate is None:
                self.add_error(
                    "affiliate",
                    "No affiliate with this code or id in this program."
                    if reference
                    else "Enter the affiliate's code.",
                )
        if rule_type:
            self._add_rule_errors(data)
        return data

    def _add_rule_errors(self, data: dict[str, Any]) -> None:
        """The domain's own validation, each message placed next to the field it is about."""
        problems = validate_rule(
            event_name=data.get("event_name", ""),
            type=data["type"],
            rate_bp=data.get("rate"),
            amount_cents=data.get("amount"),
            tiers=data.get("tiers") or None,
            currency=self.amount_currency,
            program_currency=self.program.currency,
        )
        for key, messages in problems.items():
            field = self.ERROR_FIELDS.get(key)
            if field is None or field not in self.fields:
                for message in messages:
                    self.add_error(None, message)
            elif field not in self.errors:  # the form's own, friendlier message is already there
                for message in messages:
                    self.add_error(field, message)

    def rule_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for rules.rule_create (and rules.rule_replace)."""
        data = self.cleaned_data
        scope = data["scope"]
        return {
            "event_name": data["event_name"],
            "type": data["type"],
            "rate_bp": data["rate"],
            "amount_cents": data["amount"],
            "group": data["group"] if scope == "group" else None,
            "affiliate": self.rule_affiliate if scope == "affiliate" else None,
            "first_event_only": data["first_event_only"],
            "duration_months": data["duration_months"],
            "max_events": data["max_events"],
            "tiers": data["tiers"],
            "currency": self.amount_currency,
        }


# --- payouts -----------------------------------------------------------------------------------


class PayoutRunForm(forms.Form):
    """What the admin saw when confirming a payout run; the run goes ahead only if it still holds."""

    expected_count = forms.IntegerField(min_value=0, widget=forms.HiddenInput)
    expected_total_cents = forms.IntegerField(widget=forms.HiddenInput)


class MarkPaidForm(forms.Form):
    reference = forms.CharField(
        max_length=255, help_text="The PayPal transaction or bank transfer reference."
    )


# --- reconciliation with Stripe ---------------------------------------------------------------


class ReconcileForm(forms.Form):
    period = forms.CharField(
        max_length=7, label="Month", help_text="YYYY-MM: the transfers Stripe created in that UTC month."
    )

    def clean_period(self) -> str:
        from payouts.reconcile import period_window

        period = self.cleaned_data["period"].strip()
        try:
            period_window(period)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return period


class FindingDecisionForm(forms.Form):
    action = forms.ChoiceField(
        choices=[
            ("acknowledged", "Acknowledge"),
            ("resolved", "Mark resolved"),
            ("pay_again", "Pay it again"),
            ("keep_recovered", "Keep it recovered"),
        ]
    )
    note = forms.CharField(
        max_length=1000, widget=forms.Textarea(attrs={"rows": 2}), help_text="What you found or did."
    )


# --- webhooks ---------------------------------------------------------------------------------


class WebhookEndpointForm(forms.Form):
    url = forms.URLField(max_length=2000, label="URL", assume_scheme="https")
    description = forms.CharField(max_length=500, required=False)
    events = forms.MultipleChoiceField(
        choices=[(name, name) for name in EVENT_TYPES], widget=forms.CheckboxSelectMultiple
    )
    livemode = forms.TypedChoiceField(
        choices=[("live", "Live events"), ("test", "Test-mode events (made with a test key)")],
        coerce=lambda value: value == "live",
        initial="live",
        label="Mode",
    )
    is_active = forms.BooleanField(required=False, initial=True, label="Active")

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if editing:
            del self.fields["livemode"]  # an endpoint stays in the mode it was made for
        else:
            del self.fields["is_active"]


class ReplaySinceForm(forms.Form):
    since = forms.DateTimeField(
        label="Replay every failed message since",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="UTC.",
    )


# --- team -------------------------------------------------------------------------------------


class TeamInviteForm(forms.Form):
    email = forms.EmailField(max_length=254)
    role = forms.ChoiceField(choices=ProgramStaff.Role.choices, initial=ProgramStaff.Role.VIEWER)


class TeamRoleForm(forms.Form):
    role = forms.ChoiceField(choices=ProgramStaff.Role.choices)


# --- privacy ----------------------------------------------------------------------------------


class PrivacyLookupForm(forms.Form):
    """A referred customer, by the email or the customer id the merchant sent with their events."""

    email = forms.EmailField(required=False, max_length=254)
    customer_id = forms.CharField(required=False, max_length=255, label="Customer id")

    def clean(self):
        cleaned = super().clean()
        given = [name for name in ("email", "customer_id") if cleaned.get(name)]
        if len(given) != 1 and not self.errors:
            raise forms.ValidationError("Give either an email or a customer id.")
        return cleaned


class PrivacyEraseForm(forms.Form):
    """Erasure cannot be undone: the admin types ERASE."""

    confirm = forms.CharField(max_length=10, help_text="Type ERASE to confirm. This cannot be undone.")

    def clean_confirm(self) -> str:
        if self.cleaned_data["confirm"].strip() != "ERASE":
            raise forms.ValidationError("Type ERASE to confirm.")
        return "ERASE"


# --- refer-a-friend for customers (issue 16, item 4) ---------------------------------------------


class CustomerReferralForm(forms.Form):
    """The program's customer-referrer settings: on or off, how the reward is paid, what it is, and
    the limits per referrer. Money as decimals in the program currency, the rate as a percent."""

    customer_referrals = forms.BooleanField(
        required=False,
        label="Customers can refer friends",
        help_text="Customers are enrolled by POST /api/v1/referrers and find their link at /refer/<program>/.",
    )
    customer_reward_kind = forms.ChoiceField(
        choices=CustomerRewardKind.choices, label="Reward paid as", initial=CustomerRewardKind.CREDIT
    )
    customer_reward_type = forms.ChoiceField(
        choices=CustomerRewardType.choices, label="Reward", initial=CustomerRewardType.FIXED
    )
    amount = forms.CharField(required=False, label="Reward amount", help_text="Fixed rewards, e.g. 20.00.")
    rate = forms.CharField(required=False, label="Reward percent", help_text="Percent rewards, e.g. 10.")
    customer_reward_max_per_year = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=100_000,
        label="Rewarded referrals per year",
        help_text="Per referrer and calendar year (UTC). Empty: no limit.",
    )
    lifetime_cap = forms.CharField(
        required=False, label="Lifetime cap", help_text="What one referrer can earn in all. Empty: no cap."
    )

    def __init__(self, *args: Any, program: Program, **kwargs: Any):
        self.program = program
        if not args and "initial" not in kwargs:
            kwargs["initial"] = self.initial_for(program)
        super().__init__(*args, **kwargs)
        self.fields["amount"].help_text = f"Fixed rewards: an amount in {program.currency}, such as 20.00."
        self.fields["lifetime_cap"].help_text = f"In {program.currency}; empty: no cap."

    @staticmethod
    def initial_for(program: Program) -> dict[str, Any]:
        def money(cents: int | None) -> str:
            if cents is None:
                return ""
            return f"{decimal_amount(cents, program.currency)}"

        return {
            "customer_referrals": program.customer_referrals,
            "customer_reward_kind": program.customer_reward_kind,
            "customer_reward_type": program.customer_reward_type,
            "amount": money(program.customer_reward_amount_cents)
            if program.customer_reward_amount_cents
            else "",
            "rate": format_percent(program.customer_reward_rate_bp)
            if program.customer_reward_rate_bp
            else "",
            "customer_reward_max_per_year": program.customer_reward_max_per_year,
            "lifetime_cap": money(program.customer_reward_lifetime_cap_cents),
        }

    def _money(self, name: str) -> int | None:
        text = (self.cleaned_data.get(name) or "").strip()
        if not text:
            return None
        cents, currency = parse_money(text, self.program.currency)
        if currency != self.program.currency:
            raise forms.ValidationError(f"Amounts are in the program currency, {self.program.currency}.")
        return cents

    def clean_amount(self) -> int | None:
        return self._money("amount")

    def clean_lifetime_cap(self) -> int | None:
        return self._money("lifetime_cap")

    def clean_rate(self) -> int | None:
        text = (self.cleaned_data.get("rate") or "").strip()
        return parse_percent(text) if text else None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("customer_referrals"):
            kind = cleaned.get("customer_reward_type")
            if kind == CustomerRewardType.FIXED and not cleaned.get("amount") and "amount" not in self.errors:
                self.add_error("amount", "A fixed reward needs an amount above zero.")
            if kind == CustomerRewardType.PERCENT and not cleaned.get("rate") and "rate" not in self.errors:
                self.add_error("rate", "A percent reward needs a percent above zero.")
        return cleaned

    def program_fields(self) -> dict[str, Any]:
        """The cleaned settings as keyword arguments of program_update."""
        data = self.cleaned_data
        return {
            "customer_referrals": data["customer_referrals"],
            "customer_reward_kind": data["customer_reward_kind"],
            "customer_reward_type": data["customer_reward_type"],
            "customer_reward_amount_cents": data.get("amount") or 0,
            "customer_reward_rate_bp": data.get("rate") or 0,
            "customer_reward_max_per_year": data.get("customer_reward_max_per_year"),
            "customer_reward_lifetime_cap_cents": data.get("lifetime_cap"),
        }


# --- friend rewards and promotion codes (issue 16) ------------------------------------------------


class FriendRewardForm(forms.Form):
    """What a referred visitor gets. The service checks the terms (affiliates.promotions
    friend_reward_check); its messages come back here as field errors."""

    kind = forms.ChoiceField(choices=FriendReward.Kind.choices, label="Discount", initial="percent")
    percent = forms.CharField(
        required=False,
        max_length=8,
        label="Percent off",
        help_text="For a percent discount, e.g. 20 or 12.5.",
    )
    amount = forms.CharField(
        required=False, max_length=20, label="Amount off", help_text="For an amount discount, e.g. 10.00."
    )
    currency = forms.ChoiceField(choices=CURRENCY_CHOICES, label="Currency of the amount")
    duration = forms.ChoiceField(choices=FriendReward.Duration.choices, initial="once")
    duration_months = forms.IntegerField(
        required=False, label="Months", help_text="For a discount that lasts a number of months."
    )
    stripe_coupon_id = forms.CharField(
        required=False,
        max_length=200,
        label="Existing Stripe coupon (optional)",
        help_text="Leave empty and refapp creates the coupon in Stripe itself.",
    )

    def __init__(self, *args: Any, program: Program, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.program = program
        self.fields["currency"].initial = program.currency

    def clean_percent(self) -> int | None:
        raw = (self.cleaned_data.get("percent") or "").strip().rstrip("%").strip()
        if not raw:
            return None
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise forms.ValidationError("Enter a number, e.g. 20 or 12.5.") from None
        basis_points = value * 100
        if basis_points != basis_points.to_integral_value():
            raise forms.ValidationError("At most two decimals.")
        return int(basis_points)

    def reward_fields(self) -> dict[str, Any]:
        data = self.cleaned_data
        amount_cents = None
        if data["kind"] == FriendReward.Kind.AMOUNT and (data.get("amount") or "").strip():
            try:
                amount_cents = parse_amount(data["amount"].strip(), data["currency"])
            except MoneyError as exc:
                self.add_error("amount", str(exc))
        return {
            "kind": data["kind"],
            "percent_bp": data.get("percent"),
            "amount_cents": amount_cents,
            "currency": data["currency"] if data["kind"] == FriendReward.Kind.AMOUNT else "",
            "duration": data["duration"],
            "duration_months": data.get("duration_months"),
            "stripe_coupon_id": data.get("stripe_coupon_id") or "",
        }

    def add_service_errors(self, errors: dict[str, list[str]]) -> None:
        names = {"percent_bp": "percent", "amount_cents": "amount"}
        for name, messages in errors.items():
            field = names.get(name, name)
            for message in messages:
                self.add_error(field if field in self.fields else None, message)

    @staticmethod
    def initial_for(reward: FriendReward | None) -> dict[str, Any]:
        if reward is None:
            return {}
        return {
            "kind": reward.kind,
            "percent": f"{Decimal(reward.percent_bp) / 100:g}" if reward.percent_bp else "",
            "amount": f"{decimal_amount(reward.amount_cents, reward.currency)}"
            if reward.amount_cents
            else "",
            "currency": reward.currency or None,
            "duration": reward.duration,
            "duration_months": reward.duration_months,
            "stripe_coupon_id": "" if reward.coupon_managed else reward.stripe_coupon_id,
        }


class PromotionCodeForm(forms.Form):
    promotion_code = forms.CharField(
        max_length=64,
        label="Promotion code",
        help_text="What their audience enters at checkout. Letters, digits and '-'; unique in the program.",
        validators=[validate_promotion_code],
    )


# --- imports ----------------------------------------------------------------------------------------


class ImportForm(forms.Form):
    """Upload a CSV to import: the file is read here (size, encoding, header); its rows are judged
    by the preview."""

    format = forms.ChoiceField(
        choices=[
            ("rewardful", "Rewardful (one row per referred customer)"),
            ("firstpromoter", "FirstPromoter (promoter export)"),
            ("refapp", "refapp (affiliates, customers and commission history)"),
        ]
    )
    file = forms.FileField(label="CSV file")
    ref_param = forms.CharField(
        label="Old links' parameter",
        required=False,
        max_length=32,
        help_text="Keep old links working: via for Rewardful (?via=CODE), fpr for FirstPromoter. Empty: none.",
    )
    skip_invalid = forms.BooleanField(label="Import the valid rows even if some are refused", required=False)

    def __init__(self, *args: Any, max_bytes: int, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.max_bytes = max_bytes
        self.max_mb = max(1, max_bytes // (1024 * 1024))
        self.fields["file"].help_text = f"UTF-8 CSV with a header row, at most {self.max_mb} MB."
        self.data_bytes = b""

    def clean_ref_param(self) -> str:
        value = self.cleaned_data["ref_param"].strip()
        if value and not PARAM_RE.match(value):
            raise forms.ValidationError("Use 1 to 32 letters, digits, '-' or '_'.")
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        upload = cleaned.get("file")
        fmt = cleaned.get("format")
        if upload is None or fmt is None:
            return cleaned
        if upload.size > self.max_bytes:
            self.add_error("file", f"The file is larger than {self.max_mb} MB.")
            return cleaned
        data = upload.read(self.max_bytes + 1)
        if len(data) > self.max_bytes:
            self.add_error("file", f"The file is larger than {self.max_mb} MB.")
            return cleaned
        try:
            check_file(fmt, data)
        except ImportFileError as exc:
            self.add_error("file", str(exc))
            return cleaned
        self.data_bytes = data
        return cleaned
