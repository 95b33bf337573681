"""Fixtures shared by the service's and the client's tests: a real Signing Service to talk to.

``start_service`` runs ``signing-service run`` as a subprocess on a free loopback port with its
own data directory, over real TLS, on the suite's database engine: SQLite in the data directory,
or, when the suite runs on PostgreSQL (``DATABASE_URL`` set), a fresh PostgreSQL database.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

SERVICE_COMMAND = str(Path(sys.executable).with_name("signing-service"))
START_TIMEOUT = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningService:
    """A ``signing-service run`` subprocess and what a test needs to reach it."""

    data_dir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def cert_path(self) -> Path:
        return self.data_dir / "tls" / "cert.pem"

    def ssl_context(self) -> ssl.SSLContext:
        """Trust exactly the certificate this service generated, and check the host name."""
        return ssl.create_default_context(cafile=str(self.cert_path))

    def start(self, *extra_args: str) -> RunningService:
        self.log_path = self.data_dir.with_name(self.data_dir.name + f"-{self.port}.log")
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                SERVICE_COMMAND,
                "run",
                "--data-dir",
                str(self.data_dir),
                "--bind",
                f"127.0.0.1:{self.port}",
                *extra_args,
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.wait_until_ready()
        return self

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"signing-service exited with {self.process.returncode}:\n{self.log()}")
            if self.cert_path.exists():
                with contextlib.suppress(OSError):
                    urllib.request.urlopen(  # noqa: S310 - https to our own loopback service
                        self.url + "/api/v1/version", context=self.ssl_context(), timeout=5
                    ).read()
                    return
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"signing-service did not answer within {START_TIMEOUT}s:\n{self.log()}")

    def stop(self) -> int:
        """Send SIGTERM and wait; the exit status, as a clean shutdown must give 0."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"signing-service ignored SIGTERM:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def manage(self, *args: str, input_text: str | None = None) -> subprocess.CompletedProcess:
        """Run another ``signing-service`` command on this service's data and database."""
        return subprocess.run(
            [SERVICE_COMMAND, *args, "--data-dir", str(self.data_dir)],
            env=self.env,
            input=input_text,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@contextlib.contextmanager
def fresh_postgres_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the suite's PostgreSQL server, dropped afterwards."""
    import psycopg

    name = f"signing_e2e_{uuid.uuid4().hex[:12]}"
    parts = urlsplit(server_url)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path="/" + name))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
