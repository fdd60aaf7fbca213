"""Forms of the partner portal and the public join page."""

from __future__ import annotations

from urllib.parse import quote, urlencode, urlsplit

import pycountry
from django import forms
from django.core.exceptions import ValidationError

from affiliates.bank import clean_account_number, clean_bic, clean_iban, clean_routing_number
from affiliates.models import Affiliate, Program, TaxProfile, validate_paypal_email
from affiliates.portal_services import (
    TAX_FORM_MAX_BYTES,
    TaxDetails,
    UploadedForm,
    tax_details_clean,
    tax_form_type,
)

PROMOTION_MAX = 1000  # the join data travels signed in the verification URL: keep it short


class LoginForm(forms.Form):
    email = forms.EmailField(
        max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True})
    )
    next = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()


class JoinForm(forms.Form):
    name = forms.CharField(max_length=200, widget=forms.TextInput(attrs={"autocomplete": "name"}))
    email = forms.EmailField(max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    website = forms.URLField(
        max_length=500,
        required=False,
        assume_scheme="https",
        help_text="Your site, blog, channel or social profile.",
    )
    promotion = forms.CharField(
        label="How will you promote us?",
        max_length=PROMOTION_MAX,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    accept_terms = forms.BooleanField(required=True)

    def __init__(self, *args, program: Program, **kwargs):
        super().__init__(*args, **kwargs)
        self.program = program
        if program.terms_url:
            self.fields["accept_terms"].label = "I accept the program terms"
        else:
            del self.fields["accept_terms"]

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()

    def clean(self):
        data = super().clean()
        if not self.errors and not (data.get("website") or data.get("promotion", "").strip()):
            raise forms.ValidationError("Tell us your website or how you will promote us.")
        return data


class PayoutSettingsForm(forms.Form):
    paypal_email = forms.EmailField(label="PayPal email", max_length=254, validators=[validate_paypal_email])

    def clean_paypal_email(self) -> str:
        return self.cleaned_data["paypal_email"].strip().lower()


class WiseForm(forms.Form):
    method = forms.CharField(widget=forms.HiddenInput, initial="wise")
    wise_email = forms.EmailField(
        label="Wise email",
        max_length=254,
        validators=[validate_paypal_email],
        help_text="Wise emails you a link to receive the money into your own bank account.",
    )

    def clean_wise_email(self) -> str:
        return self.cleaned_data["wise_email"].strip().lower()


class SepaForm(forms.Form):
    """An account in the SEPA zone. The fields start empty: a saved IBAN is never sent back."""

    method = forms.CharField(widget=forms.HiddenInput, initial="sepa")
    holder = forms.CharField(label="Account holder", max_length=70)
    iban = forms.CharField(label="IBAN", max_length=42, widget=forms.TextInput(attrs={"autocomplete": "off"}))
    bic = forms.CharField(
        label="BIC", max_length=11, required=False, help_text="Leave empty if you do not know it."
    )

    def clean_iban(self) -> str:
        return str(clean_iban(self.cleaned_data["iban"]).compact)

    def clean(self):
        data = super().clean()
        if "iban" in data:
            try:
                data["bic"] = clean_bic(data.get("bic", ""), clean_iban(data["iban"]))
            except ValidationError as exc:
                self.add_error("bic", exc)
        return data


class AchForm(forms.Form):
    """A US bank account paid by ACH: the ABA routing number is checked by its checksum."""

    method = forms.CharField(widget=forms.HiddenInput, initial="ach")
    holder = forms.CharField(label="Account holder", max_length=70)
    routing_number = forms.CharField(label="Routing number (ABA)", max_length=11)
    account_number = forms.CharField(
        label="Account number", max_length=24, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )
    account_type = forms.ChoiceField(
        label="Account type", choices=Affiliate.BankAccountType.choices, widget=forms.RadioSelect
    )

    def clean_routing_number(self) -> str:
        return clean_routing_number(self.cleaned_data["routing_number"])

    def clean_account_number(self) -> str:
        return clean_account_number(self.cleaned_data["account_number"])


def country_choices() -> list[tuple[str, str]]:
    return [("", "Choose…")] + sorted(
        ((c.alpha_2, c.name) for c in pycountry.countries), key=lambda choice: choice[1]
    )


class TaxDetailsForm(forms.Form):
    legal_name = forms.CharField(
        max_length=200, help_text="Your full legal name, or your business's registered name."
    )
    country = forms.ChoiceField(choices=country_choices, help_text="Where you are resident for tax.")
    is_business = forms.BooleanField(label="I am a business", required=False)
    tax_id = forms.CharField(
        label="VAT id or tax number",
        max_length=40,
        help_text="A business's VAT id (e.g. DE123456789), else your national tax number (SSN/EIN for the US).",
    )
    form_type = forms.ChoiceField(
        label="Tax form",
        choices=TaxProfile.FormType.choices,
        required=False,
        help_text="US persons: a W-9. Others paid by a US program: a W-8BEN, or W-8BEN-E for a business.",
    )
    form_file = forms.FileField(
        label="Signed form",
        required=False,
        help_text=f"PDF, PNG or JPEG, at most {TAX_FORM_MAX_BYTES // (1024 * 1024)} MB.",
        widget=forms.ClearableFileInput(attrs={"accept": "application/pdf,image/png,image/jpeg"}),
    )

    def __init__(self, *args, has_form: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.has_form = has_form

    def clean_form_file(self) -> UploadedForm | None:
        upload = self.cleaned_data.get("form_file")
        if not upload:
            return None
        if upload.size > TAX_FORM_MAX_BYTES:  # before reading it into memory
            raise ValidationError(f"The file is too large: at most {TAX_FORM_MAX_BYTES // (1024 * 1024)} MB.")
        content = upload.read()
        tax_form_type(content)
        return UploadedForm(filename=upload.name or "form", content=content)

    def details(self) -> TaxDetails:
        data = self.cleaned_data
        return TaxDetails(
            legal_name=data["legal_name"],
            country=data["country"],
            is_business=data["is_business"],
            tax_id=data["tax_id"],
            form_type=data.get("form_type", ""),
        )

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            tax_details_clean(self.details(), has_form=self.has_form or data.get("form_file") is not None)
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, messages)
        return data


class ProfileForm(forms.ModelForm):
    class Meta:
        model = Affiliate
        fields = ["name", "website", "promotion"]
        labels = {"promotion": "How you promote"}
        widgets = {"promotion": forms.Textarea(attrs={"rows": 4})}

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Enter your name.")
        return name


class LinkBuilderForm(forms.Form):
    """A /go/ link to any page of the program's site, tagged with a campaign and a sub id."""

    path = forms.CharField(
        label="Page",
        max_length=500,
        required=False,
        help_text="A path such as /pricing, or a full address on the program's site.",
    )
    campaign = forms.CharField(max_length=200, required=False, help_text="Sent as utm_campaign.")
    sub_id = forms.CharField(
        label="Sub ID", max_length=200, required=False, help_text="Your own tracking id, sent as sub_id."
    )

    def __init__(self, *args, program: Program, **kwargs):
        super().__init__(*args, **kwargs)
        self.program = program

    def clean_path(self) -> tuple[str, str]:
        """(path without its leading slash, query) on the program's own site."""
        raw = self.cleaned_data["path"].strip()
        if any(ch.isspace() or ord(ch) < 32 for ch in raw):
            raise forms.ValidationError("Remove the spaces from the address.")
        if "://" in raw or raw.startswith("//"):
            parts = urlsplit(raw if "://" in raw else "https:" + raw)
            if parts.hostname != urlsplit(self.program.website).hostname:
                raise forms.ValidationError(f"Links can only point to {self.program.website}.")
            return parts.path.lstrip("/"), parts.query
        path, _, query = raw.partition("?")
        return path.split("#")[0].lstrip("/"), query.split("#")[0]

    def build(self, go_base: str) -> str:
        """The /go/ link for the cleaned data; go_base is BASE_URL/go/<slug>/<code>."""
        path, query = self.cleaned_data["path"]
        url = go_base + ("/" + quote(path, safe="/-._~%") if path else "")
        params = [part for part in query.split("&") if part] if query else []
        extra = {
            "utm_campaign": self.cleaned_data["campaign"].strip(),
            "sub_id": self.cleaned_data["sub_id"].strip(),
        }
        encoded = urlencode({k: v for k, v in extra.items() if v})
        if encoded:
            params.append(encoded)
        return url + ("?" + "&".join(params) if params else "")
