"""Filter forms of the panel's events and clicks logs. Invalid filters show errors and filter nothing."""

from __future__ import annotations

from typing import Any

from django import forms


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
