"""Fixtures shared by the service's and the client's tests: a real Signing Service to talk to.

``start_service`` runs ``signing-service run`` as a subprocess on a free loopback port with its
own data directory, over real TLS, on the suite's database engine: SQLite in the data directory,
or, when the suite runs on PostgreSQL (``DATABASE_URL`` set), a fresh PostgreSQL database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from signing_service.test import RunningService, free_port, fresh_postgres_database

__all__ = ["RunningService", "free_port", "fresh_postgres_database"]


@pytest.fixture
def service_environment(tmp_path) -> Iterator[dict[str, str]]:
    """The environment for a service subprocess: this suite's database engine, quiet, small."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SIGNING_")}
    env.update(SIGNING_SERVICE_WORKERS="1", SIGNING_SERVICE_THREADS="4")
    database_url = os.environ.get("DATABASE_URL", "")
    if database_url.startswith("postgres"):
        with fresh_postgres_database(database_url) as url:
            env["DATABASE_URL"] = url
            yield env
    else:
        env.pop("DATABASE_URL", None)
        yield env


@pytest.fixture
def start_service(tmp_path, service_environment):
    """A function that starts a service (by default in a new data directory) and stops it after."""
    started: list[RunningService] = []

    def start(data_dir: Path | None = None, *extra_args: str) -> RunningService:
        service = RunningService(data_dir or tmp_path / "data", dict(service_environment))
        started.append(service)
        return service.start(*extra_args)

    yield start
    for service in started:
        service.stop()


@pytest.fixture
def running_service(start_service) -> RunningService:
    return start_service()
