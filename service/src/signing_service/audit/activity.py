"""Activity at a glance (issue 15), for those who may read the audit: the last 30 days'
signatures per day (by identity, failures apart), the top clients, the last refusals, and the
identities whose certificates run out soon.

Each figure is one aggregate query that reads a partial index of ``AuditEvent`` (see its
``Meta``) and never the table, so its cost follows the signatures in the window, not the
table's size; a page makes the same few queries however many records there are. Names come from
one small query each on identities and clients. ``bench/activity_queries.py`` measures it.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections import defaultdict

from django.db.models import Count, DateField, Func, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from signing_service.access.models import Client
from signing_service.audit import charts
from signing_service.audit.models import AuditEvent, RequestType, Status
from signing_service.identities.models import Identity

WINDOW_DAYS = 30
EXPIRY_NOTICE_DAYS = 60
TOP_CLIENTS = 5
LAST_REFUSALS = 10
FAILURES_LABEL = "failures"
DELETED_IDENTITY = "deleted identity"
OTHER_IDENTITIES = "other identities"


class UtcDate(Func):
    """The day of a timestamp: SQL's DATE(), in the connection's time zone, which Django sets
    to UTC. Not ``TruncDate``: on SQLite that calls a Python function for every row."""

    function = "DATE"
    output_field = DateField()


@dataclasses.dataclass(frozen=True)
class ClientCount:
    hostname: str
    signatures: int


@dataclasses.dataclass(frozen=True)
class Expiry:
    identity: Identity
    days_left: int  # negative once it has run out


@dataclasses.dataclass(frozen=True)
class Activity:
    since: datetime.datetime
    days: list[tuple[datetime.date, list[charts.Segment]]]
    legend: list[tuple[str, str]]  # (label, colour)
    top_clients: list[ClientCount]
    refusals: list[AuditEvent]
    expiring: list[Expiry]

    @property
    def day_chart(self) -> charts.DayChart:
        return charts.day_chart(self.days)

    @property
    def client_chart(self) -> charts.BarChart:
        return charts.bar_chart([(c.hostname, c.signatures) for c in self.top_clients])

    @property
    def signatures(self) -> int:
        return sum(
            s.count for _, segments in self.days for s in segments if s.label != FAILURES_LABEL
        )


def window_start(now: datetime.datetime) -> datetime.datetime:
    """Midnight UTC of the first of the window's days (today is the last)."""
    today = now.astimezone(datetime.UTC).date()
    first = today - datetime.timedelta(days=WINDOW_DAYS - 1)
    return datetime.datetime.combine(first, datetime.time(), tzinfo=datetime.UTC)


def signatures_since(since: datetime.datetime) -> QuerySet:
    # order_by(): the model's ordering would join the GROUP BY otherwise.
    return AuditEvent.objects.filter(request_type=RequestType.SIGN, created__gte=since).order_by()


def service_activity(now: datetime.datetime | None = None) -> Activity:
    """The whole service's activity: columns stacked by identity."""
    now = now or timezone.now()
    since = window_start(now)
    identities = list(Identity.objects.only("id", "common_name", "not_after", "is_active"))
    names = {identity.pk: identity.common_name for identity in identities}
    counts = list(daily_counts(signatures_since(since)))
    series = identity_series(counts, names)
    return Activity(
        since=since,
        days=stacked_days(since, counts, series),
        legend=legend(series),
        top_clients=top_clients(signatures_since(since)),
        # Client requests only: failed sign-ins are on the Audit page (type admin action), and
        # a burst of them must not push the clients' refusals off this list.
        refusals=list(
            last_refusals(
                AuditEvent.objects.filter(created__gte=since).exclude(
                    request_type=RequestType.ADMIN
                )
            )
        ),
        expiring=expiring(identities, now),
    )


def identity_activity(identity: Identity, now: datetime.datetime | None = None) -> Activity:
    """One identity's activity; ``expiring`` holds the identity if it runs out soon."""
    now = now or timezone.now()
    since = window_start(now)
    signatures = signatures_since(since).filter(identity=identity)
    counts = list(daily_counts(signatures))
    series = {identity.pk: (identity.common_name, charts.PALETTE[0])}
    return Activity(
        since=since,
        days=stacked_days(since, counts, series),
        legend=legend(series),
        top_clients=top_clients(signatures),
        refusals=list(last_refusals(signatures)),
        expiring=expiring([identity], now),
    )


def daily_counts(signatures: QuerySet) -> QuerySet:
    """Rows of day, identity, status and how many: one GROUP BY over the index."""
    days = signatures.annotate(day=UtcDate("created")).values("day", "identity", "status")
    return days.annotate(signatures=Count("*"))


def last_refusals(events: QuerySet) -> QuerySet:
    return events.filter(status=Status.FAILURE).order_by("-created", "-id")[:LAST_REFUSALS]


def identity_series(counts: list[dict], names: dict[int, str]) -> dict:
    """Identity id → (label, colour), busiest first; identities beyond the palette share one
    colour, as do the records of deleted identities."""
    totals: dict = defaultdict(int)
    for row in counts:
        if row["status"] == Status.SUCCESS:
            totals[row["identity"]] += row["signatures"]
    ranked = sorted(totals, key=lambda pk: (-totals[pk], names.get(pk, "")))
    series = {}
    for pk in ranked:
        if pk in names and len(series) < len(charts.PALETTE):
            series[pk] = (names[pk], charts.PALETTE[len(series)])
        else:
            series[pk] = (
                DELETED_IDENTITY if pk not in names else OTHER_IDENTITIES,
                charts.OTHER_COLOUR,
            )
    return series


def legend(series: dict) -> list[tuple[str, str]]:
    """What each colour of the day chart stands for, bottom to top."""
    return [*dict.fromkeys(series.values()), (FAILURES_LABEL, charts.FAILURE_COLOUR)]


def stacked_days(since: datetime.datetime, counts: list[dict], series: dict) -> list:
    """Every day of the window, oldest first, with its segments: successes by series (merged
    by label), then the day's failures."""
    by_day: dict = defaultdict(lambda: defaultdict(int))
    for row in counts:
        if row["status"] == Status.SUCCESS:
            label, colour = series[row["identity"]]
        else:
            label, colour = FAILURES_LABEL, charts.FAILURE_COLOUR
        by_day[row["day"]][(label, colour)] += row["signatures"]
    order = legend(series)
    days = []
    for offset in range(WINDOW_DAYS):
        day = since.date() + datetime.timedelta(days=offset)
        totals = by_day[day]
        segments = [
            charts.Segment(label, totals[(label, colour)], colour)
            for label, colour in order
            if totals[(label, colour)]
        ]
        days.append((day, segments))
    return days


def client_ranking(signatures: QuerySet) -> QuerySet:
    """Clients by successful signatures, most first, as one GROUP BY over the index."""
    # Grouped by an expression, not the column: SQLite's planner would otherwise walk the whole
    # client index to get the groups in order, instead of the window's rows. Deleted clients'
    # records (client NULL) fall into group 0.
    return (
        signatures.filter(status=Status.SUCCESS)
        .values(client_pk=Coalesce("client", 0))
        .annotate(signatures=Count("*"))
        .order_by("-signatures", "client_pk")
    )


def top_clients(signatures: QuerySet) -> list[ClientCount]:
    """The clients with the most successful signatures, most first."""
    ranked = client_ranking(signatures)
    rows = [row for row in ranked[: TOP_CLIENTS + 1] if row["client_pk"]][:TOP_CLIENTS]
    if not rows:
        return []
    hostnames = dict(
        Client.objects.filter(pk__in=[row["client_pk"] for row in rows]).values_list(
            "pk", "hostname"
        )
    )
    return [
        ClientCount(hostnames.get(row["client_pk"], "deleted client"), row["signatures"])
        for row in rows
    ]


def expiring(identities: list[Identity], now: datetime.datetime) -> list[Expiry]:
    """Active identities whose certificate runs out within the notice period (or has), soonest
    first: an inactive one signs nothing, so its expiry needs no action."""
    limit = now + datetime.timedelta(days=EXPIRY_NOTICE_DAYS)
    soon = sorted(
        (i for i in identities if i.is_active and i.not_after < limit), key=lambda i: i.not_after
    )
    return [Expiry(identity, (identity.not_after - now).days) for identity in soon]
