"""The suite's plugin: which tests count as reaching a database, and that the others cannot.

The PostgreSQL pass runs only the tests marked ``database``; these tests make sure a test that
reaches a database is marked, and that one that is not marked fails instead of passing on
SQLite alone.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from signing_service.pytest_plugin import (
    DATABASE_MARKER,
    E2E_MARKER,
    UNMARKED_DATABASE_URL,
    suite_database_url,
    worker_name,
)
from signing_service.test import SERVICE_COMMAND

SAMPLE_TESTS = """
import pytest
from django.test import SimpleTestCase, TestCase


class TestWithDatabase(TestCase):
    def test_django_test_case(self):
        pass


class TestWithoutDatabase(SimpleTestCase):
    def test_simple_test_case(self):
        pass


def test_db_fixture(db):
    pass


@pytest.mark.django_db
def test_django_db_marker():
    pass


@pytest.fixture
def service_environment():
    return {}


@pytest.fixture
def running_service(service_environment):
    return None


def test_through_a_service_fixture(running_service):
    pass


def test_plain():
    pass
"""


# Prints each test that ``-m`` kept, with the suite's markers on it, and each it left out.
SAMPLE_CONFTEST = """
def pytest_collection_finish(session):
    for item in session.items:
        marks = sorted({m.name for m in item.iter_markers()} & {"database", "e2e"})
        print("KEPT", item.name, *marks)


def pytest_deselected(items):
    for item in items:
        print("LEFT", item.name)
"""


@pytest.fixture(scope="module")
def database_selection(tmp_path_factory) -> dict[str, list[str]]:
    """What ``-m database`` selects from the sample tests in a new pytest with the plugin: each
    test's name, and the suite's markers of the kept ones (``LEFT`` for the others)."""
    folder = tmp_path_factory.mktemp("samples")
    (folder / "test_sample.py").write_text(SAMPLE_TESTS)
    (folder / "conftest.py").write_text(SAMPLE_CONFTEST)
    environment = {**os.environ, "SIGNING_SERVICE_DATA_DIR": str(folder / "data")}
    environment.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-s", "-p", "no:cacheprovider",
         "-p", "signing_service.pytest_plugin", "--ds", "signing_service.settings",
         "-m", DATABASE_MARKER],
        cwd=folder, env=environment, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    selection = {}
    for line in result.stdout.splitlines():
        if line.startswith(("KEPT ", "LEFT ")):
            verdict, name, *marks = line.split()
            selection[name] = marks if verdict == "KEPT" else ["LEFT"]
    return selection


def test_the_tests_that_reach_a_database_are_marked_and_selected(database_selection):
    assert database_selection == {
        "test_django_test_case": [DATABASE_MARKER],
        "test_simple_test_case": ["LEFT"],
        "test_db_fixture": [DATABASE_MARKER],
        "test_django_db_marker": [DATABASE_MARKER],
        "test_through_a_service_fixture": [DATABASE_MARKER, E2E_MARKER],
        "test_plain": ["LEFT"],
    }


def test_an_unmarked_test_cannot_query_the_database(request):
    from signing_service.accounts.models import User

    assert request.node.get_closest_marker(DATABASE_MARKER) is None
    with pytest.raises(RuntimeError, match="Database access not allowed"):
        User.objects.count()


def test_a_service_an_unmarked_test_starts_refuses_to_run(tmp_path):
    assert os.environ["DATABASE_URL"] == UNMARKED_DATABASE_URL
    result = subprocess.run(
        [SERVICE_COMMAND, "identity", "list", "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert "no-database-for-tests-without-the-database-marker" in result.stderr


def test_a_marked_test_keeps_the_suite_database(request, service_environment):
    assert request.node.get_closest_marker(DATABASE_MARKER) is not None
    assert os.environ.get("DATABASE_URL", "") == suite_database_url()
    on_postgres = suite_database_url().startswith("postgres")
    assert ("DATABASE_URL" in service_environment) == on_postgres


def test_each_worker_has_a_data_directory_of_its_own(settings):
    if worker_name() == "main":
        pytest.skip("not run by pytest-xdist")
    assert settings.DATA_DIR.name == worker_name()
