"""The database settings bound every wait; ``run`` waits for its database with growing pauses
and one line per attempt, then gives up with the last error."""

import logging
from pathlib import Path

import pytest
from django.db import OperationalError, connection

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


@pytest.fixture
def unreachable(monkeypatch):
    """The connection fails ``failures`` times (all when None), then connects."""
    state = {"failures": None, "attempts": 0}

    def ensure_connection():
        state["attempts"] += 1
        if state["failures"] is None or state["attempts"] <= state["failures"]:
            raise OperationalError('connection to server at "db" failed: Connection refused')

    monkeypatch.setattr(connection, "ensure_connection", ensure_connection)
    return state


def test_run_waits_with_growing_pauses_then_raises_the_last_error(unreachable, caplog):
    fake = FakeTime()
    with caplog.at_level(logging.WARNING), pytest.raises(OperationalError, match="refused"):
        database.wait_for_database(30, sleep=fake.sleep, clock=fake.clock)
    assert fake.pauses == [1, 2, 4, 8, 10, 5]
    assert len(caplog.records) == 6
    assert caplog.records[0].getMessage().startswith("Cannot reach the SQLite database")
    assert '(attempt 1: connection to server at "db" failed: Connection refused)' in (
        caplog.records[0].getMessage()
    )


def test_run_goes_on_once_the_database_answers(unreachable, caplog):
    unreachable["failures"] = 2
    fake = FakeTime()
    database.wait_for_database(60, sleep=fake.sleep, clock=fake.clock)
    assert fake.pauses == [1, 2]
    assert unreachable["attempts"] == 3


def test_messages_name_the_database_and_the_setting_without_the_password(monkeypatch):
    monkeypatch.setattr(
        connection,
        "settings_dict",
        {"NAME": "signing", "HOST": "db.example", "PORT": 6543, "PASSWORD": "hunter2"},
    )
    monkeypatch.setattr(connection, "vendor", "postgresql")
    monkeypatch.setenv("DATABASE_URL", "postgres://signer:hunter2@db.example:6543/signing")
    described = database.describe_database()
    assert described == "the PostgreSQL database 'signing' at db.example:6543 (DATABASE_URL)"
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("SIGNING_SERVICE_DATABASE_URL", "postgres://db.example/signing")
    assert database.describe_database().endswith("(SIGNING_SERVICE_DATABASE_URL)")
