"""What activity at a glance (issue 15) costs on a big audit table, with its daily roll-up:
the main page's and an identity page's queries cold (the first render, which rolls up the
window's 29 complete days), after a new day (one day to roll up) and warm; the same figures
read live from the records over the whole window (what the pages cost before the roll-up); and
what the covering indexes of migration audit/0004 cost each insert. Each next to a full
COUNT(*) of the table in the same run, with the query plans.

It migrates a fresh database (SQLite in a temporary folder, or a new database on the given
PostgreSQL server), adds 20 identities and 50 clients, and fills the audit table in SQL alone
(a recursive CTE on SQLite, generate_series on PostgreSQL, with the table's indexes dropped
during the load and built again after it) with ``--rows`` records spread evenly over
``--days`` days up to now: 85 % signatures, 3 % refused signatures, 12 % other requests. Then it
analyzes (and on PostgreSQL vacuums, which index-only scans need) and times each piece, best of
``--rounds``. Last, what 0004's indexes cost an insert: bare rows into two copies of the
table's newest million rows, one with every index and one without those three, taking turns,
and the signing path's own rate (records built and written in batches of 100) for scale.

    .venv/bin/python bench/activity_queries.py [--rows 10000000] [--days 90] [--rounds 5] \\
        [--database-url postgres://postgres@127.0.0.1:5432]

Not a test: nothing here passes or fails on timing.
"""

# ruff: noqa: S608, E501 - the SQL is built from this script's own numbers; long lines read better
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator

BARE_ROWS = 10_000  # a transaction, to measure the database's own insert cost
COPY_ROWS = 1_000_000  # the copies of the audit table that BARE_ROWS go into
SIGNING_PATH_ROWS = 5_000
# The covering indexes of migration audit/0004 (activity at a glance).
ACTIVITY_INDEXES = ("audit_signatures_idx", "audit_identity_signatures_idx", "audit_refusals_idx")

SHARES = "CASE WHEN n % 100 < 88 THEN 'sign' ELSE 'index' END"
STATUS = "CASE WHEN n % 100 BETWEEN 85 AND 87 THEN 'failure' ELSE 'success' END"
REASON = "CASE WHEN n % 100 BETWEEN 85 AND 87 THEN 'identity_not_authorized' ELSE '' END"
COLUMNS = (
    "created, request_type, status, reason, message, source, api_key_name, client_id, "
    "client_hostname, identity_id, identity_common_name, identity_sha1, username, algorithm, "
    "digest, count, action, changes"
)


def fill_sql(vendor: str, rows: int, days: int, identities: list[int], clients: list[int]) -> str:
    """One INSERT … SELECT making ``rows`` records, the newest now, the oldest ``days`` ago."""
    step = days * 86400 / rows
    identity = f"{identities[0]} + n % {len(identities)}"  # the ids are consecutive
    client = f"{clients[0]} + n % {len(clients)}"
    values = (
        f"{{created}}, {SHARES}, {STATUS}, {REASON}, '', 'api', 'builds', {client}, 'mac', "
        f"{identity}, 'Developer ID', '', '', 'rsa-pkcs1v15-sha256', '', 1, '', '{{{{}}}}'"
    )
    if vendor == "sqlite":
        created = f"strftime('%Y-%m-%d %H:%M:%S', unixepoch('now') - n * {step}, 'unixepoch')"
        numbers = f"(WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {rows}) SELECT n FROM g)"
    else:
        created = f"now() - n * interval '{step} seconds'"
        numbers = f"generate_series(1, {rows}) AS n"
    return f"INSERT INTO audit_auditevent ({COLUMNS}) SELECT {values.format(created=created)} FROM {numbers}"


@contextlib.contextmanager
def database(server_url: str) -> Iterator[None]:
    """Django set up on a fresh, migrated database: SQLite unless a PostgreSQL server is given."""
    from signing_service.test import fresh_postgres_database

    with tempfile.TemporaryDirectory() as folder, contextlib.ExitStack() as stack:
        os.environ["SIGNING_SERVICE_DATA_DIR"] = folder
        os.environ.pop("DATABASE_URL", None)
        if server_url:
            os.environ["DATABASE_URL"] = stack.enter_context(fresh_postgres_database(server_url))
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "signing_service.settings")
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        yield
        from django.db import connection

        connection.close()


def secondary_indexes(cursor, vendor: str) -> dict[str, str]:
    """The audit table's indexes but its primary key: name → the SQL that makes it."""
    if vendor == "postgresql":
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'audit_auditevent' "
            "AND indexname NOT LIKE '%_pkey'"
        )
    else:
        cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
            "AND tbl_name = 'audit_auditevent' AND sql IS NOT NULL"
        )
    return dict(cursor.fetchall())


def load(vendor: str, rows: int, days: int, identities: list[int], clients: list[int]) -> tuple:
    """Fill the table with its indexes dropped, then build them: (load seconds, index seconds)."""
    from django.db import connection

    from signing_service.database import unbounded_waits

    with unbounded_waits(), connection.cursor() as cursor:
        indexes = secondary_indexes(cursor, vendor)
        for name in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        started = time.perf_counter()
        cursor.execute(fill_sql(vendor, rows, days, identities, clients))
        loaded = time.perf_counter()
        if vendor == "postgresql":
            cursor.execute("SET maintenance_work_mem = '1GB'")
        for sql in indexes.values():
            cursor.execute(sql)
        indexed = time.perf_counter()
        cursor.execute("VACUUM ANALYZE audit_auditevent" if vendor == "postgresql" else "ANALYZE")
    return loaded - started, indexed - loaded


def best_time(action: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def once(action: Callable[[], object]) -> float:
    return best_time(action, 1)


def bare_rows(identities: list[int], clients: list[int]) -> list[tuple]:
    """``BARE_ROWS`` new signature records as values for ``COLUMNS``."""
    from django.utils import timezone

    now = timezone.now()
    return [
        (now, "sign", "failure" if n % 100 >= 97 else "success", "", "", "api", "builds",
         clients[n % len(clients)], "mac", identities[n % len(identities)], "Developer ID", "",
         "", "rsa-pkcs1v15-sha256", os.urandom(32).hex(), 1, "", "{}")
        for n in range(BARE_ROWS)
    ]  # fmt: skip


def copy_table(cursor, vendor: str, table: str, indexes: dict[str, str]) -> None:
    """A copy of the audit table's schema holding its newest ``COPY_ROWS`` rows, with the
    given indexes (built after the copy)."""
    if vendor == "postgresql":
        cursor.execute(
            f"CREATE TABLE {table} (LIKE audit_auditevent INCLUDING DEFAULTS INCLUDING IDENTITY "
            f"INCLUDING CONSTRAINTS, PRIMARY KEY (id))"
        )
    else:
        cursor.execute("SELECT sql FROM sqlite_master WHERE name = 'audit_auditevent'")
        cursor.execute(cursor.fetchone()[0].replace('"audit_auditevent"', f'"{table}"', 1))
    cursor.execute(
        f"INSERT INTO {table} ({COLUMNS}) SELECT {COLUMNS} FROM audit_auditevent "
        f"ORDER BY created DESC LIMIT {COPY_ROWS}"
    )
    for n, (name, sql) in enumerate(indexes.items()):
        cursor.execute(sql.replace(name, f"{table}_{n}", 1).replace("audit_auditevent", table))
    cursor.execute(f"ANALYZE {table}")


def index_cost(vendor: str, identities: list[int], clients: list[int], rounds: int) -> tuple:
    """Rows a second inserted (``BARE_ROWS`` in one transaction) into two copies of the audit
    table, one with every index and one without 0004's, taking turns so that both see the
    same load of the machine: (with, without), best of ``rounds`` each."""
    from django.db import connection, transaction

    from signing_service.database import unbounded_waits

    with unbounded_waits(), connection.cursor() as cursor:
        indexes = secondary_indexes(cursor, vendor)
        copy_table(cursor, vendor, "bench_with", indexes)
        lean = {name: sql for name, sql in indexes.items() if name not in ACTIVITY_INDEXES}
        copy_table(cursor, vendor, "bench_without", lean)
    placeholders = ", ".join(["%s"] * len(COLUMNS.split(",")))
    times: dict[str, list[float]] = {"bench_with": [], "bench_without": []}
    for _ in range(rounds):
        for table, taken in times.items():
            rows = bare_rows(identities, clients)
            started = time.perf_counter()
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.executemany(f"INSERT INTO {table} ({COLUMNS}) VALUES ({placeholders})", rows)
            taken.append(time.perf_counter() - started)
    return tuple(BARE_ROWS / min(taken) for taken in times.values())


def signing_path_rate(identities: list, clients: list, rounds: int) -> float:
    """Audit records a second as the signing path writes a batch of 100 signatures (building
    the records, one transaction), into the big table; best of ``rounds``."""
    from django.db import transaction

    from signing_service.audit.models import AuditEvent, RequestType, Status
    from signing_service.audit.records import build

    def insert() -> None:
        for n in range(SIGNING_PATH_ROWS // 100):
            events = [
                build(
                    RequestType.SIGN,
                    Status.SUCCESS,
                    identity=identities[(n + i) % len(identities)],
                    client=clients[(n + i) % len(clients)],
                    digest=os.urandom(32),
                )
                for i in range(100)
            ]
            with transaction.atomic():
                AuditEvent.objects.bulk_create(events)

    return SIGNING_PATH_ROWS / best_time(insert, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90, help="history the rows span")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url", default="", help="a PostgreSQL server (default SQLite)")
    arguments = parser.parse_args()
    with database(arguments.database_url):
        run(arguments)


def run(arguments) -> None:
    from django.db import connection
    from django.test import Client as WebClient
    from django.test.utils import setup_test_environment

    from signing_service.access.models import ApiKey
    from signing_service.accounts.models import UserAgreement
    from signing_service.audit import activity
    from signing_service.audit.models import AuditEvent, DailyActivity, RolledUpDay
    from signing_service.test import BaseTestCase, make_client

    identities = [BaseTestCase.store_identity()[0] for _ in range(20)]
    api_key = ApiKey.objects.create(name="builds", token_id="bench", secret_hash="x")  # noqa: S106
    clients = [make_client(api_key, f"mac-{n}")[0] for n in range(50)]
    admin = BaseTestCase.make_user(
        "admin", is_admin=True, accepted_agreement=UserAgreement.current()
    )

    vendor = connection.vendor
    rows, days = arguments.rows, arguments.days
    loaded, indexed = load(vendor, rows, days, [i.pk for i in identities], [c.pk for c in clients])
    print(
        f"{vendor}: {rows:,} audit rows over {days} days, loaded in {loaded:.0f} s "
        f"({rows / loaded:,.0f} rows/s), indexes built in {indexed:.0f} s"
    )

    setup_test_environment()
    web = WebClient()
    web.force_login(admin)
    identity = identities[0]
    now = activity.timezone.now()
    live = activity.Window(activity.window_start(now), activity.window_start(now))
    live_identity = dataclasses.replace(live, identity=identity)
    in_window = live.live_records().count()

    def new_day() -> None:
        """Forget the newest rolled-up day, as if it had just ended."""
        newest = RolledUpDay.objects.order_by("-day").first()
        DailyActivity.objects.filter(day=newest.day).delete()
        newest.delete()

    times = {
        "COUNT(*) of the whole table (the scale)": best_time(
            AuditEvent.objects.count, arguments.rounds
        )
    }
    times["main page, cold: rolls up 29 days"] = once(lambda: web.get("/"))
    new_day()
    times["main page after a new day: rolls up 1"] = once(lambda: web.get("/"))
    warm = {
        "service_activity(), warm": activity.service_activity,
        "identity_activity(), warm": lambda: activity.identity_activity(identity),
        "main page rendered, warm": lambda: web.get("/"),
        "identity page rendered, warm": lambda: web.get(f"/identities/{identity.pk}/"),
        "before the roll-up: days, live": lambda: list(activity.daily_counts(live)),
        "before the roll-up: top clients, live": lambda: activity.top_clients(live),
        "before: an identity's days, live": lambda: list(activity.daily_counts(live_identity)),
    }
    times |= {name: best_time(action, arguments.rounds) for name, action in warm.items()}
    window = activity.Window.rolled_up(activity.timezone.now())
    print(
        f"{in_window:,} signature records in the 30-day window, "
        f"{window.live_records().count():,} of them today (read live); "
        f"{DailyActivity.objects.count():,} roll-up rows; best of {arguments.rounds}"
    )
    scale = times["COUNT(*) of the whole table (the scale)"]
    print(f"{'':<42} {'ms':>9} {'÷ COUNT(*)':>11}")
    for name, seconds in times.items():
        print(f"{name:<42} {seconds * 1000:>9.1f} {seconds / scale:>11.2f}")

    plans = {
        "the days (roll-up and today)": activity.daily_counts(window),
        "today's days": activity.live_daily_counts(window.live_records()),
        "one identity's days": activity.daily_counts(
            dataclasses.replace(window, identity=identity)
        ),
        "one identity's top clients": activity.client_totals(
            dataclasses.replace(window, identity=identity)
        ),
        "one identity's refusals": activity.last_refusals(
            activity.signatures_since(window.since).filter(identity=identity)
        ),
        "last refusals": activity.last_refusals(
            AuditEvent.objects.filter(created__gte=window.since)
        ),
    }
    for name, queryset in plans.items():
        print(f"\nEXPLAIN {name}:\n{queryset.explain()}")

    print("\nWhat 0004's three indexes cost an insert:")
    signing = signing_path_rate(identities, clients, arguments.rounds)
    ids, client_ids = [i.pk for i in identities], [c.pk for c in clients]
    with_0004, without = index_cost(vendor, ids, client_ids, arguments.rounds)
    extra = 1 / with_0004 - 1 / without
    print(
        f"bare rows into a copy of the newest {COPY_ROWS:,} ({BARE_ROWS:,} a transaction): "
        f"{with_0004:,.0f} rows/s with them, {without:,.0f} without: ratio "
        f"{with_0004 / without:.2f}, {extra * 1e6:.1f} µs a row\n"
        f"the signing path (batches of 100, records built): {signing:,.0f} records/s, so "
        f"{1e6 / signing:.0f} µs a record, of which the three indexes are "
        f"{extra * signing:.0%}"
    )


if __name__ == "__main__":
    sys.exit(main())
