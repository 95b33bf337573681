"""The test suite's own pytest plugin (``-p signing_service.pytest_plugin`` in pyproject.toml).

``scripts/test`` runs every test on SQLite, then on PostgreSQL only the tests whose outcome
depends on the database engine. For that split to test nothing less, which tests those are must
not rest on anyone remembering a marker:

- A test is marked ``database`` when it reaches a database: a Django test case, pytest-django's
  database fixtures, or a fixture that starts a real service (whose database is the suite's).
  Tests that start a service are marked ``e2e`` as well. A test may also be marked by hand.
- A test without the ``database`` marker cannot reach a database unnoticed: pytest-django
  refuses its queries in this process, and ``DATABASE_URL`` holds a URL that no engine accepts,
  so a ``signing-service`` it starts with the inherited environment fails to start.
  ``suite_database_url()`` gives the marked fixtures the real one.

Under pytest-xdist every worker gets its own data directory for the in-process service
settings, so workers share no files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

DATABASE_MARKER = "database"
E2E_MARKER = "e2e"
# What no database engine accepts: a service started with it stops at once, naming the cause.
UNMARKED_DATABASE_URL = "no-database-for-tests-without-the-database-marker://"
# Fixtures through which a test reaches a database: pytest-django's, and those that start a
# real service on the suite's database (defined in the conftest files).
SERVICE_FIXTURES = frozenset({"service_environment", "module_service"})
DJANGO_DATABASE_FIXTURES = frozenset({"db", "transactional_db", "django_db_setup"})

_suite_database_url: str | None = None


def suite_database_url() -> str:
    """The database server of this run (``DATABASE_URL`` as the run began); empty for SQLite."""
    return _suite_database_url or ""


def worker_name() -> str:
    """``gw0``, ``gw1``, … under pytest-xdist; ``main`` otherwise."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args) -> Iterator[None]:
    """Before pytest-django loads the settings: remember the database, and give this worker a
    data directory of its own (settings create the master key there)."""
    global _suite_database_url
    _suite_database_url = os.environ.get("DATABASE_URL", "")
    data_dir = os.environ.get("SIGNING_SERVICE_DATA_DIR")
    if data_dir and "PYTEST_XDIST_WORKER" in os.environ:
        os.environ["SIGNING_SERVICE_DATA_DIR"] = str(Path(data_dir) / worker_name())
    return (yield)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{DATABASE_MARKER}: reaches a database, so it runs on SQLite and on PostgreSQL "
        "(set by the suite's plugin for Django test cases and service fixtures)",
    )


def reaches_database(item: pytest.Item) -> bool:
    from django.test import TransactionTestCase

    fixtures = set(getattr(item, "fixturenames", ()))
    test_class = getattr(item, "cls", None)
    return bool(
        item.get_closest_marker(DATABASE_MARKER)
        or item.get_closest_marker("django_db")
        or (test_class is not None and issubclass(test_class, TransactionTestCase))
        or fixtures & (SERVICE_FIXTURES | DJANGO_DATABASE_FIXTURES)
    )


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> Iterator[None]:
    """Mark the tests before ``-m`` selects among them; then put the end-to-end ones first.

    pytest-xdist hands out modules in the final order: the few long end-to-end modules first,
    then the many short ones fill in, so that no worker is left alone with a long module at the
    end. The sort is stable, so pytest-django's order among the rest is kept.
    """
    for item in items:
        if reaches_database(item) and not item.get_closest_marker(DATABASE_MARKER):
            item.add_marker(DATABASE_MARKER)
        starts_service = set(getattr(item, "fixturenames", ())) & SERVICE_FIXTURES
        if starts_service and not item.get_closest_marker(E2E_MARKER):
            item.add_marker(E2E_MARKER)
    result = yield
    items.sort(key=lambda item: item.get_closest_marker(E2E_MARKER) is None)
    return result


@pytest.fixture(autouse=True)
def _no_database_without_the_marker(request, monkeypatch) -> None:
    """Tests without the marker inherit a ``DATABASE_URL`` that nothing can open."""
    if request.node.get_closest_marker(DATABASE_MARKER) is None:
        monkeypatch.setenv("DATABASE_URL", UNMARKED_DATABASE_URL)
