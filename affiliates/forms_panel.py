"""Panel forms about affiliates and partner groups: filters, invitations, status changes, groups."""

from __future__ import annotations

from typing import Any

from django import forms

from .models import Affiliate, PartnerGroup, Program, validate_code

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
    # Sorting by a column heading swaps only the table; the response carries this select again,
    # out of band, so the form keeps sending the order the table shows.
    sort = forms.ChoiceField(
        required=False, choices=AFFILIATE_SORT_CHOICES, widget=forms.Select(attrs={"hx-swap-oob": "true"})
    )

    def filters(self) -> dict[str, str]:
        """Selector keyword arguments; an invalid value (a hand-edited URL) falls back to no filter."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return {name: data.get(name) or "" for name in ("q", "status", "sort")}


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
