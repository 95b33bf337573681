"""Failed authentication on the client API, per source address: counted, not logged call by
call, and limited.

A call without a valid token (none, malformed, unknown) proves nothing about its caller, so
writing one audit record for each lets anyone fill the disk and slow signing. Instead, each
address has one audit record per interval (``API_AUTH_FAILURE_INTERVAL`` seconds) whose
``count`` grows with every failure; past ``API_AUTH_FAILURE_LIMIT`` failures in the interval
the address gets 429 with ``Retry-After`` until the interval ends. The counter lives in the
database every worker and replica shares. Calls with a valid token are never limited here, and
their refusals (an inactive key, a client's wrong identity) stay one record each.
"""

from __future__ import annotations

import datetime
import math

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import F
from django.utils import timezone

from signing_service.api import errors
from signing_service.audit import records
from signing_service.audit.models import AuditEvent, RequestType, Status


def interval_start(now: datetime.datetime) -> datetime.datetime:
    seconds = max(settings.API_AUTH_FAILURE_INTERVAL, 1)
    stamp = math.floor(now.timestamp() / seconds) * seconds
    return datetime.datetime.fromtimestamp(stamp, tz=datetime.UTC)


def failed_authentication(request_type: RequestType, address: str | None) -> errors.ApiError:
    """Count one failed authentication from ``address`` in its interval's audit record; the
    error to answer with: 401, or 429 once the address is past the limit (503 if the audit
    cannot be written, as for any audited call)."""
    now = timezone.now()
    start = interval_start(now)
    try:
        with transaction.atomic():
            count = count_failure(request_type, address, start, now)
    except DatabaseError:
        raise errors.audit_unavailable() from None
    if count > settings.API_AUTH_FAILURE_LIMIT > 0:
        end = start + datetime.timedelta(seconds=settings.API_AUTH_FAILURE_INTERVAL)
        return errors.too_many_failures(max(1, math.ceil((end - now).total_seconds())))
    return errors.bad_credentials()


def count_failure(request_type, address, start, now) -> int:
    current = (
        AuditEvent.objects.select_for_update()
        .filter(reason="bad_credentials", address=address, created__gte=start)
        .order_by("id")
        .first()
    )
    if current is None:
        event = records.build(
            request_type,
            Status.FAILURE,
            reason="bad_credentials",
            message=summary(1, address),
            address=address,
        )
        records.save_all([event])
        return 1
    count = current.count + 1
    AuditEvent.objects.filter(pk=current.pk).update(
        count=F("count") + 1, message=summary(count, address)
    )
    return count


def summary(count: int, address: str | None) -> str:
    calls = "call" if count == 1 else "calls"
    return f"{count} {calls} without a valid token from {address or 'an unknown address'}."
