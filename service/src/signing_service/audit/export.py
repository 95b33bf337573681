"""Audit export as CSV or JSON, produced row by row so memory stays flat for any date range.

Records come in chain order (by sequence) with their sequence and hash. The JSON export carries
the proof: each record as the hash chain encodes it (chain.py), the hash of the record before
the first, the checkpoints within the range and a new one of its last record ("export"), and
the public key that checks them. ``signing-manager audit-verify FILE`` checks such a file
without the service (README, "Audit you can prove").
"""

from __future__ import annotations

import csv
import datetime
import json
from collections.abc import Iterator

from django.db.models import Max, Min, QuerySet

from signing_service.audit import chain, checkpoints
from signing_service.audit.admin_actions import Action, Actor, record_admin_action
from signing_service.audit.models import AuditEvent, Checkpoint, CheckpointKind

FIELDS = [
    "sequence",
    "hash",
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
JSON_FORMAT = "signing-service audit export 1"
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
    """Records of the days from ``start`` to ``end`` (UTC, both included), in chain order: from
    the first to the last record of those days, so the export is one unbroken piece of the
    chain even where writers that raced at midnight committed in another order than they
    read the clock."""
    bounds = in_days(AuditEvent.objects.all(), start, end).aggregate(
        first=Min("sequence"), last=Max("sequence")
    )
    if bounds["first"] is None:
        return AuditEvent.objects.none()
    chained = AuditEvent.objects.filter(sequence__range=(bounds["first"], bounds["last"]))
    return chained.order_by("sequence")


def as_row(event: AuditEvent) -> dict[str, str | dict]:
    """The record's fields as text, but ``changes`` as the JSON object it is (the JSON
    export writes records as the chain encodes them instead: ``chain.document``)."""
    row = {field: getattr(event, field) for field in FIELDS}
    row["created"] = event.created.isoformat()
    row["address"] = event.address or ""
    row["count"] = str(event.count)
    row["sequence"] = str(event.sequence)
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
    """``{"format", "public_key", "records": [...], "previous_hash", "checkpoints": [...]}``."""
    yield f'{{"format": {json.dumps(JSON_FORMAT)},\n'
    yield f'"public_key": {json.dumps(checkpoints.public_key_text())},\n"records": ['
    separator, first, last = "\n", None, None
    for event in events.iterator(chunk_size=CHUNK_SIZE):
        yield separator + json.dumps(chain.document(event))
        separator = ",\n"
        first, last = first or event, event
    yield "\n],\n"
    yield f'"previous_hash": {json.dumps(hash_before(first))},\n"checkpoints": ['
    separator = "\n"
    for checkpoint in proof(first, last):
        yield separator + json.dumps(checkpoint_row(checkpoint))
        separator = ",\n"
    yield "\n]}\n"


def hash_before(first: AuditEvent | None) -> str | None:
    """The hash the first record chains from, as stored (None if that record is gone and no
    checkpoint has it)."""
    if first is None:
        return None
    if first.sequence == 1:
        return chain.GENESIS_HASH
    before = first.sequence - 1
    stored = AuditEvent.objects.filter(sequence=before).values_list("hash", flat=True).first()
    pinned = Checkpoint.objects.filter(sequence=before).values_list("hash", flat=True).first()
    return stored or pinned


def proof(first: AuditEvent | None, last: AuditEvent | None) -> Iterator[Checkpoint]:
    """The checkpoints of the range (and of the record before it), then one of its last
    record, signed now: every record of the file is pinned by a checkpoint at or after it."""
    if first is None:
        return
    within = Checkpoint.objects.filter(sequence__range=(first.sequence - 1, last.sequence))
    yield from within.order_by("sequence", "id").iterator(chunk_size=CHUNK_SIZE)
    yield checkpoints.sign(last.sequence, last.hash, CheckpointKind.EXPORT)


def checkpoint_row(checkpoint: Checkpoint) -> dict:
    fields = ("sequence", "hash", "kind", "signature")
    return {
        **{name: getattr(checkpoint, name) for name in fields},
        "created": chain.timestamp(checkpoint.created),
    }


FORMATS = {"csv": (csv_lines, "text/csv"), "json": (json_lines, "application/json")}
