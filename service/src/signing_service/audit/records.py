"""Writing audit records, and purging the ones older than the retention period.

Callers that release something only once it is audited (a signature) call ``record`` inside
their transaction and release after the commit; if the write fails, nothing is released.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time

from django.db import DatabaseError, transaction
from django.utils import timezone

from signing_service.audit import rollup
from signing_service.audit.models import AuditEvent, RequestType, Source, Status
from signing_service.configuration.models import ServiceSettings
from signing_service.monitoring import metrics

log = logging.getLogger(__name__)

# Purging on every write would put a DELETE on the signing hot path; once a minute per process
# keeps the table within a minute of the retention period.
PURGE_INTERVAL_SECONDS = 60
PURGE_BATCH = 2000
_purge_lock = threading.Lock()
_last_purge = -float("inf")


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
    """An unsaved audit record, with snapshots of the names involved."""
    return AuditEvent(
        request_type=request_type,
        status=status,
        reason=reason,
        message=message[:500],
        source=source,
        api_key=api_key,
        api_key_name=api_key.name if api_key else "",
        client=client,
        client_hostname=client.hostname if client else "",
        identity=identity,
        identity_common_name=identity.common_name if identity else "",
        identity_sha1=identity.sha1 if identity else "",
        user=user,
        username=user.username if user else "",
        algorithm=str(algorithm),
        digest=digest.hex()[:128],
        address=address,
        action=action,
        changes=changes or {},
    )


def save_all(events: list[AuditEvent]) -> None:
    """Write records in one transaction (all or none), then purge old ones if it is time."""
    try:
        with transaction.atomic():
            AuditEvent.objects.bulk_create(events)
    except DatabaseError:
        metrics.AUDIT_WRITE_FAILURES.inc()
        raise
    metrics.count_audited(events)
    try:
        purge_if_due()
    except DatabaseError:
        # The records are written; a purge that fails is tried again at the next interval.
        log.exception("Purging old audit records failed.")


def record(request_type: RequestType, status: Status, **fields) -> AuditEvent:
    """Write one audit record (see ``build`` for the fields) and purge old ones."""
    event = build(request_type, status, **fields)
    save_all([event])
    return event


def purge_if_due() -> None:
    global _last_purge
    now = time.monotonic()
    with _purge_lock:
        if now - _last_purge < PURGE_INTERVAL_SECONDS:
            return
        _last_purge = now
    purge_expired()


def purge_expired(now: datetime.datetime | None = None) -> int:
    """Delete records older than the retention period; how many were deleted. A batch at a
    time: each statement stays short, within the statement timeout, however many expired
    (after the retention period is shortened, say), and never holds the table long. The daily
    roll-ups of the days purged from go with them (``rollup.forget_through``)."""
    days = ServiceSettings.load().audit_retention_days
    cutoff = (now or timezone.now()) - datetime.timedelta(days=days)
    expired = AuditEvent.objects.filter(created__lt=cutoff)
    total = 0
    while batch := list(expired.values_list("pk", flat=True)[:PURGE_BATCH]):
        deleted, _ = AuditEvent.objects.filter(pk__in=batch).delete()
        total += deleted
    rollup.forget_through(cutoff.astimezone(datetime.UTC).date())
    return total


def allow_purge_now() -> None:
    """Forget when the last purge ran, so the next record purges (for tests and the CLI)."""
    global _last_purge
    with _purge_lock:
        _last_purge = -float("inf")
