"""Filters of the Audit page and the export's date range."""

from __future__ import annotations

import datetime

from django import forms
from django.db.models import Model, QuerySet
from django.utils.text import capfirst

from signing_service.access.models import ApiKey, Client
from signing_service.audit.admin_actions import Action
from signing_service.audit.export import FORMATS, in_days
from signing_service.audit.models import AuditEvent, RequestType, Status
from signing_service.identities.models import Identity

DATE_INPUT = forms.DateInput(attrs={"type": "date"})


class DateRangeForm(forms.Form):
    """From and To, both days included; a start after the end keeps neither date."""

    date_from = forms.DateField(label="From", widget=DATE_INPUT)
    date_to = forms.DateField(label="To", widget=DATE_INPUT)

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            del cleaned["date_from"], cleaned["date_to"]
            raise forms.ValidationError("The start date is after the end date.")
        return cleaned


def record_filter(model: type[Model], thing: str) -> forms.ModelChoiceField:
    """An optional choice of one ``model`` row; an id that names none says so."""
    return forms.ModelChoiceField(
        label=capfirst(thing),
        required=False,
        queryset=model.objects.all(),
        empty_label="any",
        error_messages={"invalid_choice": f"There is no such {thing}; it may have been deleted."},
    )


class AuditFilterForm(DateRangeForm):
    request_type = forms.ChoiceField(
        label="Type", required=False, choices=[("", "any"), *RequestType.choices]
    )
    action = forms.ChoiceField(
        label="Admin action",
        required=False,
        choices=[("", "any"), *((action.value, action.value) for action in Action)],
    )
    status = forms.ChoiceField(required=False, choices=[("", "any"), *Status.choices])
    api_key = record_filter(ApiKey, "API key")
    client = record_filter(Client, "client")
    identity = record_filter(Identity, "identity")
    field_order = ["request_type", "action", "status", "api_key", "client", "identity"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("date_from", "date_to"):
            self.fields[name].required = False

    def filter(self, events: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        """Narrow by every filter that is valid (invalid ones are reported by the form)."""
        data = self.cleaned_data
        for field in ("request_type", "action", "status", "api_key", "client", "identity"):
            if data.get(field):
                events = events.filter(**{field: data[field]})
        return in_days(events, data.get("date_from"), data.get("date_to"))

    def summary(self) -> list[str]:
        """The filters ``filter`` applies, each in a few words, in the form's order."""
        if not self.is_bound:
            return []
        data = self.cleaned_data
        parts = []
        for field in ("request_type", "action", "status"):
            if data.get(field):
                parts.append(dict(self.fields[field].choices)[data[field]])
        if key := data.get("api_key"):
            parts.append(f"API key “{key.name}” ({key.display_id})")
        if client := data.get("client"):
            parts.append(f"client “{client.hostname}”")
        if identity := data.get("identity"):
            parts.append(f"identity “{identity.common_name}”")
        start, end = data.get("date_from"), data.get("date_to")
        if start and end:
            parts.append(f"{start:%Y-%m-%d} to {end:%Y-%m-%d}")
        elif start:
            parts.append(f"from {start:%Y-%m-%d}")
        elif end:
            parts.append(f"to {end:%Y-%m-%d}")
        return parts


class ExportForm(DateRangeForm):
    format = forms.ChoiceField(choices=[(name, name.upper()) for name in FORMATS])

    @staticmethod
    def initial_range() -> dict[str, datetime.date]:
        today = datetime.datetime.now(datetime.UTC).date()
        return {"date_from": today - datetime.timedelta(days=30), "date_to": today, "format": "csv"}
