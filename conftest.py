"""Fixtures shared by the service's and the client's tests: a real Signing Service to talk to.

A service is ``signing-service run`` as a subprocess on a free loopback port with its own data
directory, over real TLS, on the suite's database engine: SQLite in the data directory, or, when
the suite runs on PostgreSQL, a fresh PostgreSQL database of its own.

- ``module_service``: one service for a whole test module. Each test brings its own API keys
  and identities and leaves the others' alone, so most end-to-end tests share it.
- ``start_service`` / ``running_service``: a service of the test's own, for tests that need a
  fresh one (first start, restart, faults, what a new installation shows).
- ``softhsm``: a SoftHSM2 token initialised once per test run (per xdist worker) in a
  temporary directory; ``token_settings`` points this process's settings at it.

Using either marks a test ``database`` and ``e2e`` (``signing_service.pytest_plugin``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from signing_manager.gui.launch import qt_installed
from signing_service import test as support
from signing_service.pytest_plugin import suite_database_url
from signing_service.test import RunningService, SoftHsm

# pytest-qt for the window's tests (client/tests/gui), where PySide6 is installed; without it
# pytest-qt would stop the whole run, and the window's tests skip, saying why, instead.
pytest_plugins = ["pytestqt.plugin"] if qt_installed() else []


@pytest.fixture
def service_environment() -> Iterator[dict[str, str]]:
    """The environment for the test's own services: this suite's database engine."""
    with support.service_environment(suite_database_url()) as env:
        yield env


@pytest.fixture
def start_service(tmp_path, service_environment):
    """A function that starts a service and stops it after the test: by default in a new data
    directory on a free port; or on a given data directory and port, as a restart does."""
    started: list[RunningService] = []

    def start(data_dir: Path | None = None, port: int | None = None) -> RunningService:
        data_dir = data_dir or tmp_path / f"service-{len(started)}"
        extra = {"port": port, "keep_port": True} if port else {}
        service = RunningService(data_dir, dict(service_environment), **extra)
        started.append(service)
        return service.start()

    yield start
    for service in started:
        service.stop()


@pytest.fixture
def running_service(start_service) -> RunningService:
    return start_service()


@pytest.fixture(scope="module")
def module_service(tmp_path_factory) -> Iterator[RunningService]:
    """One service for a whole test module, on a fresh database of the suite's engine."""
    with support.service_environment(suite_database_url()) as env:
        service = RunningService(tmp_path_factory.mktemp("module-service") / "data", env)
        service.start()
        try:
            yield service
        finally:
            service.stop()


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory) -> SoftHsm:
    """A SoftHSM2 token of this test run; services given its ``environment()`` keep keys in it."""
    return SoftHsm(tmp_path_factory.mktemp("softhsm")).initialise()


@pytest.fixture
def token_settings(softhsm, settings, monkeypatch) -> Iterator[SoftHsm]:
    """This process's settings (and SoftHSM2's configuration) pointed at the run's token, with
    sessions of its own that are let go afterwards."""
    from signing_service.identities import hsm

    monkeypatch.setenv("SOFTHSM2_CONF", str(softhsm.config_path))
    settings.PKCS11_MODULE = support.SOFTHSM_MODULE
    settings.PKCS11_TOKENS = [softhsm.label]
    settings.PKCS11_PIN = softhsm.pin
    yield softhsm
    hsm.sessions().reset()
