"""Panel forms: commission filters and bulk review, commission rules, fraud flag resolution."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms

from affiliates.models import Affiliate, PartnerGroup, Program
from refapp.money import MoneyError, format_amount, is_currency, parse_amount
from tracking.csv_export import decimal_amount
from tracking.forms import DateRangeFilterForm

from .models import Commission, CommissionRule
from .rules import validate_rule
from .selectors import affiliate_by_reference

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
        """Keyword arguments for rules.rule_create (and panel_services.rule_replace)."""
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
