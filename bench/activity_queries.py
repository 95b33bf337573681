"""What activity at a glance (issue 15) costs on a big audit table: the dashboard's queries and
the main page's and an identity page's render time, next to a full COUNT(*) of the table in the
same run, with the query plans that show which index each query reads.

It migrates a fresh database (SQLite in a temporary folder, or a new database on the given
PostgreSQL server), adds 20 identities and 50 clients, and fills the audit table in SQL alone
(a recursive CTE on SQLite, generate_series on PostgreSQL) with ``--rows`` records spread evenly
over ``--days`` days: 85 % signatures, 3 % refused signatures, 12 % other requests. Then it
analyzes (and on PostgreSQL vacuums, which index-only scans need) and times each piece, best of
``--rounds``.

    .venv/bin/python bench/activity_queries.py [--rows 1000000] [--days 90] [--rounds 5] \\
        [--database-url postgres://postgres@127.0.0.1:5432]

Ten million rows (``--rows 10000000``) take a few minutes to load. Not a test: nothing here
passes or fails on timing.
"""

# ruff: noqa: S608, E501 - the SQL is built from this script's own numbers; long lines read better
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator

SHARES = "CASE WHEN n % 100 < 88 THEN 'sign' ELSE 'index' END"
STATUS = "CASE WHEN n % 100 BETWEEN 85 AND 87 THEN 'failure' ELSE 'success' END"
REASON = "CASE WHEN n % 100 BETWEEN 85 AND 87 THEN 'identity_not_authorized' ELSE '' END"
COLUMNS = (
    "created, request_type, status, reason, message, source, api_key_name, client_id, "
    "client_hostname, identity_id, identity_common_name, identity_sha1, username, algorithm, "
    "digest, count"
)


def fill_sql(vendor: str, rows: int, days: int, identities: list[int], clients: list[int]) -> str:
    """One INSERT … SELECT making ``rows`` records, the newest now, the oldest ``days`` ago."""
    step = days * 86400 / rows
    identity = f"{identities[0]} + n % {len(identities)}"  # the ids are consecutive
    client = f"{clients[0]} + n % {len(clients)}"
    values = (
        f"{{created}}, {SHARES}, {STATUS}, {REASON}, '', 'api', 'builds', {client}, 'mac', "
        f"{identity}, 'Developer ID', '', '', 'rsa-pkcs1v15-sha256', '', 1"
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


def best_time(action: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


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
    from signing_service.audit.models import AuditEvent
    from signing_service.test import BaseTestCase, make_client

    identities = [BaseTestCase.store_identity()[0] for _ in range(20)]
    api_key = ApiKey.objects.create(name="builds", token_id="bench", secret_hash="x")  # noqa: S106
    clients = [make_client(api_key, f"mac-{n}")[0] for n in range(50)]
    admin = BaseTestCase.make_user(
        "admin", is_admin=True, accepted_agreement=UserAgreement.current()
    )

    vendor = connection.vendor
    started = time.perf_counter()
    with connection.cursor() as cursor:
        sql = fill_sql(
            vendor,
            arguments.rows,
            arguments.days,
            [i.pk for i in identities],
            [c.pk for c in clients],
        )
        if vendor == "postgresql":  # loading takes longer than the service lets a statement run
            cursor.execute("SET statement_timeout = 0")
        cursor.execute(sql)
        load = time.perf_counter() - started
        cursor.execute("VACUUM ANALYZE audit_auditevent" if vendor == "postgresql" else "ANALYZE")
        if vendor == "postgresql":  # the dashboard is timed under the service's own limit
            cursor.execute("RESET statement_timeout")
    rows, days = arguments.rows, arguments.days
    print(f"{vendor}: {rows:,} audit rows over {days} days, loaded in {load:.0f} s")

    setup_test_environment()
    web = WebClient()
    web.force_login(admin)
    identity = identities[0]
    since = activity.window_start(activity.timezone.now())
    signatures = activity.signatures_since(since)
    in_window = signatures.count()

    figures = {
        "COUNT(*) of the whole table (the scale)": lambda: AuditEvent.objects.count(),
        "signatures per day, by identity": lambda: list(activity.daily_counts(signatures)),
        "top clients": lambda: activity.top_clients(signatures),
        "service_activity() (all its queries)": activity.service_activity,
        "identity_activity() (all its queries)": lambda: activity.identity_activity(identity),
        "main page, rendered": lambda: web.get("/"),
        "identity page, rendered": lambda: web.get(f"/identities/{identity.pk}/"),
    }
    times = {name: best_time(action, arguments.rounds) for name, action in figures.items()}
    scale = times["COUNT(*) of the whole table (the scale)"]
    print(f"{in_window:,} signature records in the 30-day window; best of {arguments.rounds}")
    print(f"{'':<42} {'ms':>9} {'÷ COUNT(*)':>11}")
    for name, seconds in times.items():
        print(f"{name:<42} {seconds * 1000:>9.1f} {seconds / scale:>11.2f}")

    identity_signatures = signatures.filter(identity=identity)
    plans = {
        "signatures per day": activity.daily_counts(signatures),
        "top clients": activity.client_ranking(signatures),
        "one identity's days": activity.daily_counts(identity_signatures),
        "one identity's refusals": activity.last_refusals(identity_signatures),
        "last refusals": activity.last_refusals(AuditEvent.objects.filter(created__gte=since)),
    }
    for name, queryset in plans.items():
        print(f"\nEXPLAIN {name}:\n{queryset.explain()}")


if __name__ == "__main__":
    sys.exit(main())
