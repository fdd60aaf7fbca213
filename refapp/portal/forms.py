"""Forms of the partner portal and the public join page."""

from __future__ import annotations

from urllib.parse import quote, urlencode, urlsplit

from django import forms

from affiliates.models import Affiliate, Program, validate_paypal_email

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
