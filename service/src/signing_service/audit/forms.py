"""Filters of the Audit page and the export's date range."""

from __future__ import annotations

import datetime

from django import forms
from django.db.models import QuerySet

from signing_service.access.models import ApiKey, Client
from signing_service.audit.export import FORMATS, in_days
from signing_service.audit.models import AuditEvent, RequestType, Status
from signing_service.identities.models import Identity

DATE_INPUT = forms.DateInput(attrs={"type": "date"})


class AuditFilterForm(forms.Form):
    request_type = forms.ChoiceField(
        label="Type", required=False, choices=[("", "any"), *RequestType.choices]
    )
    status = forms.ChoiceField(required=False, choices=[("", "any"), *Status.choices])
    api_key = forms.ModelChoiceField(
        label="API key", required=False, queryset=ApiKey.objects.all(), empty_label="any"
    )
    client = forms.ModelChoiceField(
        required=False, queryset=Client.objects.all(), empty_label="any"
    )
    identity = forms.ModelChoiceField(
        required=False, queryset=Identity.objects.all(), empty_label="any"
    )
    date_from = forms.DateField(label="From", required=False, widget=DATE_INPUT)
    date_to = forms.DateField(label="To", required=False, widget=DATE_INPUT)

    def filter(self, events: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        """Narrow by every filter that is valid (invalid ones are reported by the form)."""
        data = self.cleaned_data
        for field in ("request_type", "status", "api_key", "client", "identity"):
            if data.get(field):
                events = events.filter(**{field: data[field]})
        return in_days(events, data.get("date_from"), data.get("date_to"))


class ExportForm(forms.Form):
    date_from = forms.DateField(label="From", widget=DATE_INPUT)
    date_to = forms.DateField(label="To", widget=DATE_INPUT)
    format = forms.ChoiceField(choices=[(name, name.upper()) for name in FORMATS])

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            raise forms.ValidationError("The start date is after the end date.")
        return cleaned

    @staticmethod
    def initial_range() -> dict[str, datetime.date]:
        today = datetime.datetime.now(datetime.UTC).date()
        return {"date_from": today - datetime.timedelta(days=30), "date_to": today, "format": "csv"}
