"""The database settings bound every wait; ``run`` waits for its database with growing pauses
and one line per attempt, then gives up with the last error."""

import logging
from pathlib import Path

import pytest
from django.db import OperationalError

from signing_service import database

BOUNDS = {"connect": 4, "statement": 6, "lock": 2}


def test_postgresql_gets_a_connect_timeout_and_statement_and_lock_timeouts():
    settings = database.database_settings(
        "postgres://signer:hunter2@db.example:6543/signing", Path("/data"), **BOUNDS
    )
    assert settings["ENGINE"] == "django.db.backends.postgresql"
    assert settings["OPTIONS"]["connect_timeout"] == 4
    assert settings["OPTIONS"]["options"] == "-c statement_timeout=6000 -c lock_timeout=2000"
    assert settings["CONN_HEALTH_CHECKS"] is True


def test_options_given_in_the_url_are_kept():
    settings = database.database_settings(
        "postgres://db/signing?options=-c%20search_path%3Dsigning&connect_timeout=9",
        Path("/data"),
        **BOUNDS,
    )
    assert settings["OPTIONS"]["connect_timeout"] == 9
    assert settings["OPTIONS"]["options"] == (
        "-c search_path=signing -c statement_timeout=6000 -c lock_timeout=2000"
    )


def test_zero_means_no_bound():
    settings = database.database_settings(
        "postgres://db/signing", Path("/data"), connect=0, statement=0, lock=0
    )
    assert "connect_timeout" not in settings["OPTIONS"]
    assert settings["OPTIONS"]["options"] == "-c statement_timeout=0 -c lock_timeout=0"
    sqlite = database.database_settings("", Path("/data"), connect=0, statement=0, lock=0)
    assert sqlite["OPTIONS"]["timeout"] == database.NO_BOUND_SECONDS


def test_sqlite_waits_for_a_lock_as_long_as_the_lock_timeout():
    settings = database.database_settings("", Path("/data"), **BOUNDS)
    assert settings["NAME"] == Path("/data/signing-service.sqlite3")
    assert settings["OPTIONS"]["timeout"] == 2


class FakeTime:
    def __init__(self):
        self.now = 0.0
        self.pauses: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


class UnreachableDatabase:
    """A stand-in for Django's connection that fails ``failures`` times (all when None)."""

    vendor = "postgresql"
    settings_dict = {"NAME": "signing", "HOST": "db.example", "PORT": 6543, "PASSWORD": "x"}

    def __init__(self, failures: int | None = None):
        self.failures, self.attempts = failures, 0

    def ensure_connection(self) -> None:
        self.attempts += 1
        if self.failures is None or self.attempts <= self.failures:
            raise OperationalError('connection to server at "db" failed: Connection refused')


def test_run_waits_with_growing_pauses_then_raises_the_last_error(caplog, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://signer:x@db.example:6543/signing")
    fake = FakeTime()
    with caplog.at_level(logging.WARNING), pytest.raises(OperationalError, match="refused"):
        database.wait_for_database(30, UnreachableDatabase(), sleep=fake.sleep, clock=fake.clock)
    assert fake.pauses == [1, 2, 4, 8, 10, 5]
    assert [record.getMessage() for record in caplog.records][:2] == [
        "Cannot reach the PostgreSQL database 'signing' at db.example:6543 (DATABASE_URL) "
        f'(attempt {n}: connection to server at "db" failed: Connection refused); '
        f"trying again in {pause} s."
        for n, pause in [(1, 1), (2, 2)]
    ]
    assert len(caplog.records) == 6


def test_run_goes_on_once_the_database_answers():
    fake, unreachable = FakeTime(), UnreachableDatabase(failures=2)
    database.wait_for_database(60, unreachable, sleep=fake.sleep, clock=fake.clock)
    assert fake.pauses == [1, 2]
    assert unreachable.attempts == 3


def test_messages_name_the_database_and_the_setting_without_the_password(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://signer:hunter2@db.example:6543/signing")
    described = database.describe_database(UnreachableDatabase())
    assert described == "the PostgreSQL database 'signing' at db.example:6543 (DATABASE_URL)"
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("SIGNING_SERVICE_DATABASE_URL", "postgres://db.example/signing")
    assert database.describe_database(UnreachableDatabase()).endswith(
        "(SIGNING_SERVICE_DATABASE_URL)"
    )


def test_sqlite_is_named_by_its_file():
    sqlite = type("Sqlite", (), {"vendor": "sqlite", "settings_dict": {"NAME": "/d/s.sqlite3"}})
    assert database.describe_database(sqlite()) == "the SQLite database /d/s.sqlite3"
