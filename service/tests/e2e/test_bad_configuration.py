"""Started with a configuration that cannot work, the service stops at once with one sentence
saying what is wrong (exit status 1, no traceback), before serving anything."""

from __future__ import annotations

import base64
import secrets

import pytest

from signing_service.test import RunningService, assert_stopped_with, make_identity


def test_another_master_key_for_a_database_with_identities_is_refused(running_service, new_ops):
    new_ops(running_service).import_identity(make_identity())
    running_service.stop()
    other_key = base64.b64encode(secrets.token_bytes(32)).decode()
    running_service.env["SIGNING_SERVICE_MASTER_KEY"] = other_key

    assert_stopped_with(
        running_service,
        "signing-service: configuration error: The database holds identities sealed under "
        "another master key: give this service the master key it was installed with",
    )
    assert other_key not in running_service.log()


def test_a_database_that_cannot_be_reached_is_named(service_environment, tmp_path):
    """After waiting for it (here 2 s) with a line per attempt; the URL's password unsaid."""
    environment = {
        **{name: value for name, value in service_environment.items() if name != "DATABASE_URL"},
        "SIGNING_SERVICE_DATABASE_URL": "postgres://signing:hunter2@127.0.0.1:1/none",
        "SIGNING_SERVICE_DB_WAIT_SECONDS": "2",
    }
    service = RunningService(tmp_path / "data", environment)

    assert_stopped_with(
        service,
        "signing-service: the PostgreSQL database 'none' at 127.0.0.1:1 "
        "(SIGNING_SERVICE_DATABASE_URL) cannot be used: connection failed:",
    )
    assert "Cannot reach the PostgreSQL database 'none'" in service.log()
    assert "hunter2" not in service.log()


@pytest.mark.parametrize(
    "name", ["SIGNING_SERVICE_DB_LOCK_TIMEOUT", "SIGNING_SERVICE_KEY_CACHE_SECONDS"]
)
@pytest.mark.parametrize(
    ("value", "sentence"),
    [("-1", "must be at least 0, not -1."), ("3s", "must be a whole number, not '3s'.")],
)
def test_a_bad_number_of_seconds_is_named(service_environment, tmp_path, name, value, sentence):
    environment = {**service_environment, name: value}

    assert_stopped_with(
        RunningService(tmp_path / "data", environment),
        f"signing-service: configuration error: {name} {sentence}",
    )


def test_a_missing_secret_file_is_named(service_environment, tmp_path):
    environment = {**service_environment, "SIGNING_SERVICE_MASTER_KEY_FILE": "/run/secrets/nope"}

    assert_stopped_with(
        RunningService(tmp_path / "data", environment),
        "signing-service: configuration error: Cannot read SIGNING_SERVICE_MASTER_KEY_FILE "
        "(/run/secrets/nope): No such file or directory.",
    )


def test_an_audit_stream_file_that_cannot_be_written_is_named(service_environment, tmp_path):
    missing = tmp_path / "no-such-folder" / "audit.jsonl"
    environment = {**service_environment, "SIGNING_SERVICE_AUDIT_LOG": str(missing)}

    assert_stopped_with(
        RunningService(tmp_path / "data", environment),
        f"signing-service: configuration error: SIGNING_SERVICE_AUDIT_LOG: cannot write to "
        f"{missing}: No such file or directory.",
    )
