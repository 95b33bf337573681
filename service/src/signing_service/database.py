"""The database connection: which database, how long any wait on it may last, and saying in one
sentence which database failed.

Every wait is bounded (the README's "When the database fails"): connecting
(``SIGNING_SERVICE_DB_CONNECT_TIMEOUT``), a statement (``..._DB_STATEMENT_TIMEOUT``) and a lock
(``..._DB_LOCK_TIMEOUT``; on SQLite, the busy timeout). A request that runs past one gets an
error from the database, which the API answers with a JSON 503 and the pages with a 503 page;
nothing is signed whose audit record was not written in time. Work that may rightly take
longer (migrations, waiting for another replica's migrations) lifts the bounds for its own
connection with ``unbounded_waits``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import dj_database_url
from django.core.signals import request_started
from django.db import connection, connections
from django.db.backends.signals import connection_created
from django.dispatch import receiver

log = logging.getLogger(__name__)

URL_SETTINGS = ("DATABASE_URL", "SIGNING_SERVICE_DATABASE_URL")
NO_BOUND_SECONDS = 86400  # SQLite has no "wait forever": a day stands for it


def database_url() -> str:
    """The configured database URL; empty for SQLite in the data directory."""
    from signing_service.environment import env

    return os.environ.get("DATABASE_URL") or env("DATABASE_URL")


def url_setting_name() -> str:
    """The variable the database URL came from, for messages that tell what to change."""
    return next((name for name in URL_SETTINGS if os.environ.get(name)), URL_SETTINGS[0])


def database_settings(url: str, data_dir: Path, *, connect: int, statement: int, lock: int):
    """Django's ``DATABASES["default"]``: PostgreSQL from ``url``, else SQLite in ``data_dir``.
    The timeouts are in seconds; 0 means no bound (connect: libpq's own, none)."""
    if url:
        # Connections are kept a minute, and checked before a request reuses one: after the
        # database restarts, a worker thread's stale connection is replaced, not failed on.
        settings = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
        options = settings.setdefault("OPTIONS", {})
        if connect:
            options.setdefault("connect_timeout", connect)
        bounds = f"-c statement_timeout={statement * 1000} -c lock_timeout={lock * 1000}"
        options["options"] = f"{options.get('options', '')} {bounds}".strip()
        return settings
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": data_dir / "signing-service.sqlite3",
        # Kept a minute too: opening one (the PRAGMAs, the functions Django registers) cost
        # more than a sign request's queries when every request opened its own. Only while
        # the file is still the database file (``drop_connections_to_replaced_files``).
        "CONN_MAX_AGE": 60,
        "OPTIONS": {
            # WAL lets readers go on while one worker writes; IMMEDIATE takes the write lock
            # at BEGIN so two workers never deadlock upgrading a read lock. FULL syncs the WAL
            # at every commit: NORMAL could lose a committed audit record (whose signature
            # was already given out) to a power cut or an OS crash (bench/sqlite_durability.py
            # measures what this costs).
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
            "transaction_mode": "IMMEDIATE",
            # SQLite's only wait is for another writer's lock: the lock timeout bounds it.
            "timeout": lock or NO_BOUND_SECONDS,
        },
    }


def describe_database(database=connection) -> str:
    """The database in a few words, without a password: for messages to an operator."""
    settings = database.settings_dict
    if database.vendor != "postgresql":
        return f"the SQLite database {settings['NAME']}"
    host, port = settings.get("HOST") or "localhost", settings.get("PORT") or 5432
    return f"the PostgreSQL database {settings['NAME']!r} at {host}:{port} ({url_setting_name()})"


@contextlib.contextmanager
def unbounded_waits() -> Iterator[None]:
    """Lift the statement and lock timeouts on this thread's connection for the block (a
    migration may lock a table for long, and a replica waits as long as another migrates)."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0; SET lock_timeout = 0")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET statement_timeout; RESET lock_timeout")


def log_database_failure(request, error: BaseException) -> None:
    """One line for a request the database failed; the traceback too, once a minute per
    distinct error (log_filters.py)."""
    log.error(
        "The database failed during %s %s: %s", request.method, request.path, first_line(error),
        exc_info=error,
    )  # fmt: skip


def first_line(error: BaseException) -> str:
    """An error's first line, without its final full stop: to end a sentence of ours."""
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__).rstrip(".")


def wait_for_database(
    patience: float, database=connection, sleep=time.sleep, clock=time.monotonic
) -> None:
    """Connect, trying again with growing pauses (1, 2, 4 … 10 s) and one log line per failed
    attempt, for at most ``patience`` seconds; then the last error is raised."""
    from django.db import OperationalError

    deadline = clock() + patience
    pause, attempt = 1.0, 1
    while True:
        try:
            database.ensure_connection()
            return
        except OperationalError as error:
            left = deadline - clock()
            if left <= 0:
                raise
            wait = min(pause, left)
            log.warning(
                "Cannot reach %s (attempt %d: %s); trying again in %.0f s.",
                describe_database(database), attempt, first_line(error), wait,
            )  # fmt: skip
        sleep(wait)
        pause, attempt = min(pause * 2, 10.0), attempt + 1


# --- SQLite connections kept between requests --------------------------------------------------


def file_identity(path) -> tuple[int, int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino


@receiver(connection_created)
def remember_the_file(sender, connection, **_) -> None:
    if connection.vendor == "sqlite":
        connection.opened_file = file_identity(connection.settings_dict["NAME"])


@receiver(request_started)
def drop_connections_to_replaced_files(**_) -> None:
    """A kept SQLite connection goes on with the file it opened, even once that file is
    deleted, moved away or replaced (a restore): records written to it would be lost. Before
    each request, a connection whose path no longer names its file is closed, so the request
    opens the database that is there now, or fails if there is none."""
    for database in connections.all(initialized_only=True):
        if database.vendor != "sqlite" or database.connection is None:
            continue
        if getattr(database, "opened_file", None) != file_identity(database.settings_dict["NAME"]):
            database.close()
