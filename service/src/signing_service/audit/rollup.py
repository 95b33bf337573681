"""The daily roll-up of signature records that activity at a glance (``activity.py``) reads, so
that a page costs the same whatever the number of signatures in its 30-day window.

Each complete UTC day is aggregated once from the records, at the first render that needs it,
into ``DailyActivity`` rows (per day, identity, client and status: how many), and marked done by a
``RolledUpDay``. Today is read live from the records' covering index; so is yesterday for
``SETTLE`` after midnight, while records stamped before midnight may still be committing. The
signing path pays nothing: it writes records as before.

Several workers or replicas may render the first page at once: each may aggregate a day, but
the day's marker and its counts are written in one transaction, and the marker's primary key
lets only the first of them commit; the others keep what it wrote.

Retention: the purge (``records.purge_expired``) forgets the roll-ups of every day it has
purged records from (``forget_through``), so the dashboard never counts signatures that the
audit no longer holds; a day still in the window is rolled up again from the records left.
"""

from __future__ import annotations

import datetime

from django.db import IntegrityError, transaction
from django.db.models import Count

from signing_service.audit.models import (
    AuditEvent,
    DailyActivity,
    RequestType,
    RolledUpDay,
)

SETTLE = datetime.timedelta(minutes=5)
ONE_DAY = datetime.timedelta(days=1)
# A claim fails when another process rolled the day up first, and (rarely) when an identity or
# client counted in it was deleted meanwhile: then the day is aggregated once more.
CLAIM_ATTEMPTS = 2


def midnight(day: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(), tzinfo=datetime.UTC)


def live_since(now: datetime.datetime) -> datetime.datetime:
    """Midnight UTC of the first day read live from the records, not from the roll-up."""
    return midnight((now - SETTLE).astimezone(datetime.UTC).date())


def roll_up(since: datetime.datetime, now: datetime.datetime) -> datetime.datetime:
    """Roll up every complete day from ``since`` (a midnight UTC) that is not yet; return where
    the live part begins: the days before it are all in ``DailyActivity``."""
    first, until = since.date(), live_since(now)
    done = set(
        RolledUpDay.objects.filter(day__gte=first, day__lt=until.date()).values_list(
            "day", flat=True
        )
    )
    for offset in range((until.date() - first).days):
        day = first + datetime.timedelta(days=offset)
        if day not in done:
            roll_up_day(day)
    return until


def day_counts(day: datetime.date) -> list[dict]:
    """One day's signature records by identity, client and status, through the covering
    ``audit_signatures_idx``."""
    start = midnight(day)
    records = AuditEvent.objects.filter(
        request_type=RequestType.SIGN, created__gte=start, created__lt=start + ONE_DAY
    )
    # order_by(): the model's ordering would join the GROUP BY otherwise.
    return list(
        records.order_by().values("identity", "client", "status").annotate(signatures=Count("*"))
    )


def roll_up_day(day: datetime.date) -> None:
    """Aggregate one day and store it with its marker, unless another process did first. The
    aggregation runs before the transaction, so that SQLite's write lock, which signing needs
    too, is held only for the few inserts."""
    for _ in range(CLAIM_ATTEMPTS):
        counts = day_counts(day)
        try:
            with transaction.atomic():
                RolledUpDay.objects.create(day=day)
                DailyActivity.objects.bulk_create(
                    DailyActivity(
                        day=day,
                        identity_id=row["identity"],
                        client_id=row["client"],
                        status=row["status"],
                        signatures=row["signatures"],
                    )
                    for row in counts
                )
            return
        except IntegrityError:
            if RolledUpDay.objects.filter(day=day).exists():
                return
    raise IntegrityError(f"Could not roll up the audit's signatures of {day}.")


def forget_through(day: datetime.date) -> None:
    """Drop the roll-ups of ``day`` and the days before it, whose records are (partly) purged.
    Only the days listed first are dropped, marker and counts together, so that a roll-up
    committing meanwhile keeps both; when there are none, no write lock is taken."""
    days = list(RolledUpDay.objects.filter(day__lte=day).values_list("day", flat=True))
    if days:
        with transaction.atomic():
            DailyActivity.objects.filter(day__in=days).delete()
            RolledUpDay.objects.filter(day__in=days).delete()
