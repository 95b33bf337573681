"""Probes and metrics on the real service: gunicorn with two workers over TLS, as deployed.

A scrape after signing shows every signature, whichever worker signed it (prometheus_client's
multiprocess mode); the probes and scrapes stay out of the access log; a replica started with
another master key is alive but not ready, and says which check fails and nothing more.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import secrets
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from signing_service.test import RunningService, TcpForwarder, make_identity

TOKEN = "scraper-token"
THREADS = 4  # SIGNING_SERVICE_THREADS of the test services (service_environment)
SIGNATURES = 12


@pytest.fixture
def service_with_metrics(service_environment, tmp_path):
    environment = {
        **service_environment,
        "SIGNING_SERVICE_METRICS_TOKEN": TOKEN,
        "SIGNING_SERVICE_WORKERS": "2",
        "TMPDIR": str(tmp_path / "tmp"),  # where the counts of the workers go
    }
    (tmp_path / "tmp").mkdir()
    service = RunningService(tmp_path / "data", environment)
    yield service.start()
    service.stop()


def get(service: RunningService, path: str, **headers) -> httpx.Response:
    # A new connection each time, so that requests reach either worker.
    with httpx.Client(base_url=service.url, verify=service.ssl_context(), timeout=30) as client:
        return client.get(path, headers=headers)


def scrape(service: RunningService) -> dict[tuple[str, frozenset], float]:
    response = get(service, "/metrics", Authorization=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_a_scrape_counts_every_signature_whichever_worker_made_it(
    service_with_metrics, new_ops, new_client_api, tmp_path
):
    service = service_with_metrics
    ops, api = new_ops(service), new_client_api(service)
    made = make_identity()
    sha1 = ops.import_identity(made)
    token = api.register_client(ops.create_api_key("metrics"), "machine-1", "build-1")

    for number in range(SIGNATURES):
        digest = base64.b64encode(hashlib.sha256(b"%d" % number).digest()).decode()
        body = {"certificate": sha1, "algorithm": "rsa-pkcs1v15-sha256", "digest": digest}
        with httpx.Client(base_url=service.url, verify=service.ssl_context()) as client:
            response = client.post(
                "/api/v1/sign", json=body, headers={"Authorization": f"Bearer {token}"}
            )
        assert response.status_code == 200, response.text

    scraped = scrape(service)
    signed = {"identity_sha1": sha1, "algorithm": "rsa-pkcs1v15-sha256", "outcome": "success"}
    assert scraped[("signing_service_signatures_total", frozenset(signed.items()))] == SIGNATURES
    assert scraped[("signing_service_clients", frozenset({("state", "active")}))] == 1
    assert len(worker_lines(service)) == 2
    log = service.log()
    assert "/api/v1/sign" in log
    for quiet in ("/healthz", "/readyz", "/metrics"):
        assert quiet not in log, quiet

    assert service.stop() == 0
    assert list((tmp_path / "tmp").iterdir()) == []  # the counts' directory is gone


def worker_lines(service: RunningService) -> list[str]:
    return [line for line in service.log().splitlines() if "Booting worker" in line]


def test_probes_answer_ok_without_sign_in(service_with_metrics):
    for path in ("/healthz", "/readyz"):
        response = get(service_with_metrics, path)
        assert (response.status_code, response.text) == (200, "ok\n"), path
    assert get(service_with_metrics, "/metrics").status_code == 401


def test_a_replica_whose_master_key_opens_no_identity_is_alive_but_not_ready(
    running_service, new_ops, tmp_path
):
    # Two replicas of one database, given different master keys (a deployment mistake): the
    # second starts while there is no identity, then one is imported through the first.
    other_key = base64.b64encode(secrets.token_bytes(32)).decode()
    environment = {**running_service.env, "SIGNING_SERVICE_MASTER_KEY": other_key}
    other = RunningService(running_service.data_dir, environment).start()
    try:
        assert get(other, "/readyz").status_code == 200
        new_ops(running_service).import_identity(make_identity())

        assert get(other, "/healthz").status_code == 200
        response = get(other, "/readyz")
        assert (response.status_code, response.text) == (503, "master-key\n")
        assert get(running_service, "/readyz").status_code == 200
        assert "Not ready: the master-key check failed" in other.log()
        assert other_key not in other.log()
    finally:
        other.stop()


@contextlib.contextmanager
def database_down(service: RunningService, forwarder: TcpForwarder | None):
    """The service's database gone for a while: PostgreSQL's connections cut (through
    ``forwarder``), or SQLite's file replaced by a folder, which no connection can open."""
    if forwarder is not None:
        forwarder.cut()
        try:
            yield
        finally:
            forwarder.restore()
        return
    database = service.data_dir / "signing-service.sqlite3"
    aside = database.with_name("aside.sqlite3")
    database.rename(aside)
    database.mkdir()
    try:
        yield
    finally:
        database.rmdir()
        aside.rename(database)


def test_without_its_database_a_replica_is_alive_but_not_ready(service_environment, tmp_path):
    environment, forwarder = dict(service_environment), None
    if "DATABASE_URL" in environment:  # PostgreSQL: reach it through a port that can be cut
        parts = urlsplit(environment["DATABASE_URL"])
        forwarder = TcpForwarder(parts.port or 5432, parts.hostname)
        environment["DATABASE_URL"] = parts._replace(
            netloc=f"{parts.username}@127.0.0.1:{forwarder.port}"
        ).geturl()
    service = RunningService(tmp_path / "data", environment).start()
    try:
        # Every worker thread holds a database connection when the database goes away...
        with ThreadPoolExecutor(THREADS) as pool:
            assert set(pool.map(lambda _: get(service, "/readyz").text, range(4 * THREADS))) == {
                "ok\n"
            }
        with database_down(service, forwarder):
            assert get(service, "/healthz").status_code == 200
            response = get(service, "/readyz")
            assert (response.status_code, response.text) == (503, "database\n")
        # ... and none of those stale connections fails a request once it is back.
        assert [get(service, "/readyz").text for _ in range(2 * THREADS)] == ["ok\n"] * (
            2 * THREADS
        )
        assert "Not ready: the database check failed" in service.log()
        assert "Ready again." in service.log()
    finally:
        service.stop()
