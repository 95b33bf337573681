"""Activity at a glance (issue 15), for those who may read the audit: the last 30 days'
signatures per day (by identity, failures apart), the top clients, the last refusals, and the
identities whose certificates run out soon.

The window's complete days come from the daily roll-up (``rollup.py``), today's from the
records, each figure as one query that unites both (the records' part reads a covering index
of ``AuditEvent``, see its ``Meta``, never the table). So a page makes the same few queries
whatever the number of records, and their cost follows one day's signatures, not the window's
or the table's. Names come from one small query each on identities and clients.
``bench/activity_queries.py`` measures it.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections import defaultdict

from django.db.models import Count, DateField, Func, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from signing_service.access.models import Client
from signing_service.audit import charts, rollup
from signing_service.audit.models import AuditEvent, DailyActivity, RequestType, Status
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
    return rollup.midnight(today - datetime.timedelta(days=WINDOW_DAYS - 1))


def signatures_since(since: datetime.datetime) -> QuerySet:
    # order_by(): the model's ordering would join the GROUP BY otherwise.
    return AuditEvent.objects.filter(request_type=RequestType.SIGN, created__gte=since).order_by()


@dataclasses.dataclass(frozen=True)
class Window:
    """The window's signatures, optionally of one identity: the rolled-up days before
    ``live_since``, the records from it on."""

    since: datetime.datetime
    live_since: datetime.datetime
    identity: Identity | None = None

    @classmethod
    def rolled_up(cls, now: datetime.datetime, identity: Identity | None = None) -> Window:
        """The window ending ``now``, its complete days rolled up first where they are not."""
        since = window_start(now)
        return cls(since, rollup.roll_up(since, now), identity)

    def rolled_up_days(self) -> QuerySet:
        days = DailyActivity.objects.filter(
            day__gte=self.since.date(), day__lt=self.live_since.date()
        )
        return self.of_identity(days.order_by())

    def live_records(self) -> QuerySet:
        # Both statuses named: an equality on the column between identity and created in
        # audit_identity_signatures_idx lets SQLite read one identity's day as a range of it,
        # not the identity's whole history.
        records = signatures_since(self.live_since).filter(status__in=Status.values)
        return self.of_identity(records)

    def of_identity(self, rows: QuerySet) -> QuerySet:
        return rows if self.identity is None else rows.filter(identity=self.identity)


def service_activity(now: datetime.datetime | None = None) -> Activity:
    """The whole service's activity: columns stacked by identity."""
    now = now or timezone.now()
    window = Window.rolled_up(now)
    identities = list(Identity.objects.only("id", "common_name", "not_after", "is_active"))
    names = {identity.pk: identity.common_name for identity in identities}
    counts = list(daily_counts(window))
    series = identity_series(counts, names)
    return Activity(
        since=window.since,
        days=stacked_days(window.since, counts, series),
        legend=legend(series),
        top_clients=top_clients(window),
        # Client requests only: failed sign-ins are on the Audit page (type admin action), and
        # a burst of them must not push the clients' refusals off this list.
        refusals=list(
            last_refusals(
                AuditEvent.objects.filter(created__gte=window.since).exclude(
                    request_type=RequestType.ADMIN
                )
            )
        ),
        expiring=expiring(identities, now),
    )


def identity_activity(identity: Identity, now: datetime.datetime | None = None) -> Activity:
    """One identity's activity; ``expiring`` holds the identity if it runs out soon."""
    now = now or timezone.now()
    window = Window.rolled_up(now, identity)
    counts = list(daily_counts(window))
    series = {identity.pk: (identity.common_name, charts.PALETTE[0])}
    return Activity(
        since=window.since,
        days=stacked_days(window.since, counts, series),
        legend=legend(series),
        top_clients=top_clients(window),
        refusals=list(last_refusals(signatures_since(window.since).filter(identity=identity))),
        expiring=expiring([identity], now),
    )


def live_daily_counts(signatures: QuerySet) -> QuerySet:
    """Rows of day, identity, status and how many: one GROUP BY over the index."""
    days = signatures.annotate(day=UtcDate("created")).values("day", "identity", "status")
    return days.annotate(signatures=Count("*"))


def daily_counts(window: Window) -> QuerySet:
    """Rows of day, identity, status and how many over the window, in one query: the roll-up's
    days and the live ones never overlap. (The columns of both parts are in ``values()``'s
    order, which Django keeps since 5.2, annotations included.)"""
    rolled_up = window.rolled_up_days().values("day", "identity", "status")
    rolled_up = rolled_up.annotate(signatures=Sum("signatures"))
    return rolled_up.union(live_daily_counts(window.live_records()), all=True)


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


def client_ranking(rows: QuerySet, signatures: Count | Sum) -> QuerySet:
    """Successful signatures by client, as one GROUP BY over an index."""
    # Grouped by an expression, not the column: SQLite's planner would otherwise walk the whole
    # client index to get the groups, instead of the window's rows. Deleted clients' records
    # (client NULL) fall into group 0.
    return (
        rows.filter(status=Status.SUCCESS)
        .values(client_pk=Coalesce("client", 0))
        .annotate(signatures=signatures)
    )


def client_totals(window: Window) -> QuerySet:
    """Successful signatures by client over the window: the roll-up's and the records' totals
    in one query (a client appears in each part it signed in)."""
    rolled_up = client_ranking(window.rolled_up_days(), Sum("signatures"))
    return rolled_up.union(client_ranking(window.live_records(), Count("*")), all=True)


def top_clients(window: Window) -> list[ClientCount]:
    """The clients with the most successful signatures, most first."""
    totals: dict[int, int] = defaultdict(int)
    for row in client_totals(window):
        if row["client_pk"]:
            totals[row["client_pk"]] += row["signatures"]
    ranked = sorted(totals, key=lambda pk: (-totals[pk], pk))[:TOP_CLIENTS]
    if not ranked:
        return []
    hostnames = dict(Client.objects.filter(pk__in=ranked).values_list("pk", "hostname"))
    return [ClientCount(hostnames.get(pk, "deleted client"), totals[pk]) for pk in ranked]


def expiring(identities: list[Identity], now: datetime.datetime) -> list[Expiry]:
    """Active identities whose certificate runs out within the notice period (or has), soonest
    first: an inactive one signs nothing, so its expiry needs no action."""
    limit = now + datetime.timedelta(days=EXPIRY_NOTICE_DAYS)
    soon = sorted(
        (i for i in identities if i.is_active and i.not_after < limit), key=lambda i: i.not_after
    )
    return [Expiry(identity, (identity.not_after - now).days) for identity in soon]
