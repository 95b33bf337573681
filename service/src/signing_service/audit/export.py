"""Audit export as CSV or JSON, produced row by row so memory stays flat for any date range."""

from __future__ import annotations

import csv
import datetime
import json
from collections.abc import Iterator

from django.db.models import QuerySet

from signing_service.audit.admin_actions import Action, Actor, record_admin_action
from signing_service.audit.models import AuditEvent

FIELDS = [
    "created",
    "request_type",
    "status",
    "reason",
    "message",
    "source",
    "api_key_name",
    "client_hostname",
    "identity_common_name",
    "identity_sha1",
    "username",
    "algorithm",
    "digest",
    "address",
    "action",
    "changes",
    "count",
]
CHUNK_SIZE = 2000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


class _Line:
    """A file-like object whose write() hands back what csv.writer wrote."""

    def write(self, value: str) -> str:
        return value


def day_start(day: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time.min, tzinfo=datetime.UTC)


def in_days(events: QuerySet[AuditEvent], start, end) -> QuerySet[AuditEvent]:
    """Records from the start of ``start`` to the end of ``end`` (UTC days; either may be None).

    Compared as a time range, not by date, so the database can use the index on ``created``.
    """
    if start:
        events = events.filter(created__gte=day_start(start))
    if end and end < datetime.date.max:
        events = events.filter(created__lt=day_start(end + datetime.timedelta(days=1)))
    return events


def events_between(start: datetime.date, end: datetime.date) -> QuerySet[AuditEvent]:
    """Records of the days from ``start`` to ``end`` (UTC, both included), oldest first."""
    return in_days(AuditEvent.objects.all(), start, end).order_by("created", "id")


def as_row(event: AuditEvent) -> dict[str, str | dict]:
    """The record's fields as text, but ``changes`` as the JSON object it is."""
    row = {field: getattr(event, field) for field in FIELDS}
    row["created"] = event.created.isoformat()
    row["address"] = event.address or ""
    row["count"] = str(event.count)
    return row


def as_csv_row(event: AuditEvent) -> dict[str, str]:
    """``as_row`` with ``changes`` as JSON text (blank when there are none), every cell safe."""
    row = as_row(event)
    row["changes"] = json.dumps(event.changes, sort_keys=True) if event.changes else ""
    return {field: spreadsheet_safe(value) for field, value in row.items()}


def record_export(actor: Actor, start: datetime.date, end: datetime.date, name: str) -> None:
    """Who exported which range: an ``audit.export`` record, written before the first row."""
    changes = {"from": start.isoformat(), "to": end.isoformat(), "format": name}
    record_admin_action(actor, Action.AUDIT_EXPORT, changes=changes)


def spreadsheet_safe(value: str) -> str:
    """Client host names are chosen by clients: keep a spreadsheet from running one as a formula,
    also when blanks or line breaks come first (spreadsheets skip them)."""
    formula = value[:1] in FORMULA_STARTS or value.lstrip(" \t\r\n")[:1] in FORMULA_STARTS
    return "'" + value if formula else value


def csv_lines(events: QuerySet[AuditEvent]) -> Iterator[str]:
    writer = csv.DictWriter(_Line(), fieldnames=FIELDS)
    yield writer.writeheader()
    for event in events.iterator(chunk_size=CHUNK_SIZE):
        yield writer.writerow(as_csv_row(event))


def json_lines(events: QuerySet[AuditEvent]) -> Iterator[str]:
    yield "["
    separator = "\n"
    for event in events.iterator(chunk_size=CHUNK_SIZE):
        yield separator + json.dumps(as_row(event))
        separator = ",\n"
    yield "\n]\n"


FORMATS = {"csv": (csv_lines, "text/csv"), "json": (json_lines, "application/json")}
