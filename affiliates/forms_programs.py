from __future__ import annotations

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User

from refapp.money import CURRENCY_CHOICES, MoneyError, format_amount, parse_amount

from .models import PARAM_RE, ApiKey, Program


class SetupForm(UserCreationForm):
    email = forms.EmailField(required=True)

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")


class ProgramForm(forms.ModelForm):
    """Every program setting of DESIGN.md, with lists entered one per line and money as decimals."""

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
            "auto_approve",
            "terms_url",
        ]
        help_texts = {
            "slug": "Used in the tracker tag and links; cannot change later.",
            "cookie_days": "How long after a click a conversion still counts (1 to 730).",
            "hold_days": "Refund window: commissions stay pending this many days before approval.",
            "payout_day": "Day of the month payouts run (1 to 28), at 06:00 UTC.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
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

    def save(self, commit: bool = True) -> Program:
        program = super().save(commit=False)
        program.allowed_origins = self.cleaned_data["allowed_origins_text"]
        program.ref_params = self.cleaned_data["ref_params_text"]
        if "minimum_payout_cents" in self.cleaned_data:
            program.minimum_payout_cents = self.cleaned_data["minimum_payout_cents"]
        if commit:
            program.save()
        return program


class ApiKeyForm(forms.Form):
    mode = forms.ChoiceField(choices=ApiKey.Mode.choices, initial=ApiKey.Mode.LIVE)
    name = forms.CharField(
        max_length=100, required=False, help_text="What uses this key, e.g. 'billing backend'."
    )
