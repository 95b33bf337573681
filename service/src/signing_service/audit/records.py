"""Writing audit records (each joins the hash chain, chain.py), signing a checkpoint of the
chain now and then, and purging the records older than the retention period.

Callers that release something only once it is audited (a signature) call ``record`` inside
their transaction and release after the commit; if the write fails, nothing is released.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import logging
import threading
import time

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from signing_service.audit import chain, checkpoints, rollup, rows
from signing_service.audit.group_commit import GroupCommit
from signing_service.audit.models import AuditEvent, CheckpointKind, RequestType, Source, Status
from signing_service.configuration.models import ServiceSettings
from signing_service.monitoring import metrics

log = logging.getLogger(__name__)

PURGE_BATCH = 2000


class Throttle:
    """Says when work done after a write is due again: at most once per interval, per process."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.lock = threading.Lock()
        self.last = -float("inf")

    def due(self) -> bool:
        now = time.monotonic()
        with self.lock:
            if now - self.last < self.seconds:
                return False
            self.last = now
            return True

    def allow_now(self) -> None:
        with self.lock:
            self.last = -float("inf")


# Purging on every write would put a DELETE on the signing hot path; once a minute per process
# keeps the table within a minute of the retention period.
purge_throttle = Throttle(60)
# A checkpoint (an Ed25519 signature and one row) after a write, at most this often: records
# after the last checkpoint are proven by the chain alone (README, "Audit you can prove").
checkpoint_throttle = Throttle(settings.AUDIT_CHECKPOINT_SECONDS)


# ``Model(*values)`` in the fields' order is Django's own quick way in (``Model.from_db``);
# keywords, and linked objects through their descriptors, made a record in 16 µs against 9, the
# largest part of a batch item's audit cost after its signature (bench/README.md, issue 20).
FIELDS = [(field.attname, field) for field in AuditEvent._meta.concrete_fields]


def build(
    request_type: RequestType,
    status: Status,
    *,
    reason: str = "",
    message: str = "",
    source: Source = Source.API,
    api_key=None,
    client=None,
    identity=None,
    user=None,
    algorithm: str = "",
    digest: bytes = b"",
    address: str | None = None,
    action: str = "",
    changes: dict | None = None,
) -> AuditEvent:
    """An unsaved audit record, with snapshots of the names involved (linked by their keys:
    reading ``event.client`` and the like queries the database)."""
    values = {
        "request_type": request_type,
        "status": status,
        "reason": reason,
        "message": message[:500],
        "source": source,
        "api_key_id": api_key.pk if api_key else None,
        "api_key_name": api_key.name if api_key else "",
        "client_id": client.pk if client else None,
        "client_hostname": client.hostname if client else "",
        "identity_id": identity.pk if identity else None,
        "identity_common_name": identity.common_name if identity else "",
        "identity_sha1": identity.sha1 if identity else "",
        "user_id": user.pk if user else None,
        "username": user.username if user else "",
        "algorithm": str(algorithm),
        "digest": digest.hex()[:128],
        "address": address,
        "action": action,
        "changes": changes or {},
    }
    return AuditEvent(
        *[values[name] if name in values else field.get_default() for name, field in FIELDS]
    )


def write(events: list[AuditEvent]) -> None:
    """Inside a caller's transaction: a savepoint, so that a failed write leaves it usable."""
    with transaction.atomic():
        AuditEvent.objects.bulk_create(events)


def write_group(events: list[AuditEvent]) -> None:
    """A transaction of its own: on PostgreSQL, the one statement's, committed in the same
    round trip (rows.py)."""
    with writers_take_turns():
        AuditEvent.objects.bulk_create(events)


@contextlib.contextmanager
def writers_take_turns():
    """On SQLite, the processes' group commits take turns through a lock file: a process
    waiting for SQLite's own lock polls for it with sleeps of up to 100 ms, which would be
    most of a request's time under load; the kernel wakes a process waiting for the file
    the moment the other lets go."""
    if connection.vendor != "sqlite":
        yield
        return
    with open(settings.DATA_DIR / "audit-writer.lock", "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


# The records of this process's concurrent requests share commits (group_commit.py).
group_commit = GroupCommit(write_group)


def save_all(events: list[AuditEvent]) -> None:
    """Write records in one transaction (all or none; the caller's if it has one open, else
    perhaps shared with other requests'), then, when it is time, sign a checkpoint of the chain
    and purge old records."""
    try:
        # The records' encoding and column values, before any lock is taken.
        chain.prepare(events)
        rows.prepare(events)
        if connection.in_atomic_block:
            write(events)
        else:
            group_commit.write(events)
    except DatabaseError:
        metrics.AUDIT_WRITE_FAILURES.inc()
        raise
    metrics.count_audited(events)
    try:
        if checkpoint_throttle.due():
            checkpoints.sign_head(CheckpointKind.PERIODIC)
        if purge_throttle.due():
            purge_expired()
    except DatabaseError:
        # The records are written; what failed is tried again at the next interval.
        log.exception("Checkpointing or purging the audit failed.")


def record(request_type: RequestType, status: Status, **fields) -> AuditEvent:
    """Write one audit record (see ``build`` for the fields) and purge old ones."""
    event = build(request_type, status, **fields)
    save_all([event])
    return event


def purge_expired(now: datetime.datetime | None = None) -> int:
    """Delete records older than the retention period; how many were deleted.

    The chain loses its beginning, never a record in its middle: what goes is every record
    before the oldest one still within the period (a record written in the same moment may
    outlive the period by that moment). First a checkpoint of the last record to go anchors
    the first one kept, so the rest still verifies, also if the purge stops halfway. Then a
    batch at a time: each statement stays short, within the statement timeout, however many
    expired (after the retention period is shortened, say), and never holds the table long.
    The daily roll-ups of the days purged from go with them (``rollup.forget_through``)."""
    days = ServiceSettings.load().audit_retention_days
    cutoff = (now or timezone.now()) - datetime.timedelta(days=days)
    kept = AuditEvent.objects.filter(created__gte=cutoff).order_by("sequence")
    first_kept = kept.values_list("sequence", flat=True).first()
    expired = AuditEvent.objects.order_by("sequence")
    if first_kept is not None:
        expired = expired.filter(sequence__lt=first_kept)
    last_expired = expired.reverse().first()
    if last_expired is None:
        return 0
    checkpoints.sign(last_expired.sequence, last_expired.hash, CheckpointKind.PURGE)
    total = 0
    while batch := list(expired.values_list("pk", flat=True)[:PURGE_BATCH]):
        deleted, _ = AuditEvent.objects.filter(pk__in=batch).delete()
        total += deleted
    rollup.forget_through(cutoff.astimezone(datetime.UTC).date())
    return total


def allow_purge_now() -> None:
    """Forget when the last purge ran, so the next record purges (for tests and the CLI)."""
    purge_throttle.allow_now()
