"""Started with a configuration that cannot work, the service stops at once with one sentence
saying what is wrong (exit status 1, no traceback), before serving anything."""

from __future__ import annotations

import base64
import secrets

import pytest

from signing_service.test import RunningService, ServiceError, make_identity


def assert_stopped_with(service: RunningService, sentence: str) -> None:
    with pytest.raises(ServiceError):
        service.start()
    assert service.process.returncode == 1
    log = service.log()
    assert "Traceback" not in log, log
    assert log.strip().splitlines()[-1].startswith(sentence), log


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
    environment = {**service_environment, "DATABASE_URL": "postgres://signing@127.0.0.1:1/none"}

    assert_stopped_with(
        RunningService(tmp_path / "data", environment),
        "signing-service: the database cannot be used: connection failed:",
    )


def test_a_missing_secret_file_is_named(service_environment, tmp_path):
    environment = {**service_environment, "SIGNING_SERVICE_MASTER_KEY_FILE": "/run/secrets/nope"}

    assert_stopped_with(
        RunningService(tmp_path / "data", environment),
        "signing-service: configuration error: Cannot read SIGNING_SERVICE_MASTER_KEY_FILE "
        "(/run/secrets/nope): No such file or directory.",
    )
