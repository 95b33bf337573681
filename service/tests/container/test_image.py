"""The container image: built from the Dockerfile by scripts/build-image, then run with Docker.

Every container uses the host's network and binds a loopback port: our machines allow no bridge
and no traffic beyond loopback. Each runs with --rm, attached to a log file here (so its output
survives it), and is removed at the end of its fixture or test, failed or not.

Two replicas share the suite's PostgreSQL server (a fresh database, dropped afterwards), one
master key and one TLS certificate, given as bind-mounted secret files as an orchestrator would:
the client pins the certificate, so replicas behind one name must present the same one.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import io
import json
import os
import secrets
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from signing_manager.config import key_id
from signing_service.test import free_port, fresh_postgres_database, make_identity
from signing_service.tls import make_self_signed_certificate

pytestmark = pytest.mark.container

ROOT = Path(__file__).resolve().parents[3]
DOCKER = "/usr/bin/docker"
IMAGE = "signing-service:test"
SIGNING_MANAGER = str(Path(sys.executable).with_name("signing-manager"))
POSTGRES_SERVER = os.environ.get("SIGNING_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
SERVICE_UID = 10001
START_TIMEOUT = 90
# Every container of this session carries it, so the session's end removes any left over.
SESSION_LABEL = f"signing-test-session={uuid.uuid4().hex}"
DEV_PACKAGES = {"pytest", "playwright", "ruff", "hypothesis", "schemathesis", "pytest-django"}
CLIENT_VERSION = "import importlib.metadata as m; print(m.version('signing-manager'))"


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [DOCKER, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        pytest.fail(f"docker {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return done


@pytest.fixture(scope="session")
def image() -> Iterator[str]:
    """The image, built (or found in BuildKit's cache) once per session."""
    for script in (["scripts/install-docker"], ["scripts/build-image", IMAGE]):
        started = time.monotonic()
        done = subprocess.run(script, cwd=ROOT, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.fail(f"{script[0]} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        print(f"{script[0]}: {time.monotonic() - started:.0f} s")
    yield IMAGE
    left = docker("ps", "--all", "--quiet", "--filter", f"label={SESSION_LABEL}").stdout.split()
    if left:
        docker("rm", "--force", "--volumes", *left, check=False)


class Container:
    """``docker run --rm`` of the image, attached: its output goes to a log file."""

    def __init__(self, image: str, log_dir: Path, options: list[str], args: list[str]):
        self.name = f"signing-test-{uuid.uuid4().hex[:10]}"
        self.log_path = log_dir / f"{self.name}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [DOCKER, "run", "--rm", "--name", self.name, "--label", SESSION_LABEL,
                 "--network", "host", *options, image, *args],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, url: str) -> None:
        """Until ``url`` answers, or fail with the container's output."""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # only whether it answers: TLS is checked elsewhere
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"{self.name} exited {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(url, context=context, timeout=5) as response:
                    response.read()
                return
            except OSError:
                time.sleep(0.3)
        pytest.fail(f"{self.name} did not answer {url} in {START_TIMEOUT} s:\n{self.log()}")

    def exec(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return docker("exec", self.name, *args, check=check)

    def remove(self) -> None:
        docker("rm", "--force", self.name, check=False)  # gone already is fine
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


@contextlib.contextmanager
def container_pool(image: str, log_dir: Path) -> Iterator:
    """start(options, args) runs a container of the image; all are removed at the end."""
    started: list[Container] = []

    def start(options: list[str], args: list[str]) -> Container:
        started.append(Container(image, log_dir, options, args))
        return started[-1]

    try:
        yield start
    finally:
        for container in started:
            container.remove()


@pytest.fixture
def containers(image, tmp_path) -> Iterator:
    with container_pool(image, tmp_path) as start:
        yield start


def run_once(image: str, options: list[str], args: list[str]) -> subprocess.CompletedProcess:
    """A container that does one thing and stops: its status and output (stderr merged)."""
    name = f"signing-test-{uuid.uuid4().hex[:10]}"
    try:
        return subprocess.run(
            [DOCKER, "run", "--rm", "--name", name, "--label", SESSION_LABEL,
             "--network", "host", *options, image, *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=180, check=False,
        )  # fmt: skip
    finally:  # a timeout ends the docker command, not the container
        subprocess.run([DOCKER, "rm", "--force", name], capture_output=True, check=False)


def private_file(path: Path, content: bytes) -> Path:
    """A secret as an orchestrator mounts it: readable by the service's user alone."""
    path.write_bytes(content)
    path.chmod(0o400)
    if os.geteuid() == 0:
        os.chown(path, SERVICE_UID, SERVICE_UID)
    else:  # cannot give it away: let the container's user read it
        path.chmod(0o444)
    return path


def data_tmpfs() -> list[str]:
    return ["--tmpfs", f"/data:uid={SERVICE_UID},gid={SERVICE_UID},mode=0700"]


def small() -> list[str]:
    return ["-e", "SIGNING_SERVICE_WORKERS=1", "-e", "SIGNING_SERVICE_THREADS=4"]


# --- The image on its own -------------------------------------------------------------------


def test_it_runs_as_10001_with_the_runtime_packages_alone_and_compiled(image):
    program = (
        "import importlib.metadata as m, importlib.util as u, json, os, django, signing_service\n"
        "names = sorted(d.metadata['Name'].lower() for d in m.distributions())\n"
        "pycs = [u.cache_from_source(x.__file__) for x in (django, signing_service)]\n"
        "print(json.dumps([os.getuid(), os.getgid(), names, [os.path.exists(p) for p in pycs]]))"
    )
    done = run_once(image, ["--entrypoint", "python"], ["-c", program])
    assert done.returncode == 0, done.stdout
    uid, gid, names, compiled = json.loads(done.stdout)
    assert (uid, gid) == (SERVICE_UID, SERVICE_UID)
    assert {"signing-service", "signing-manager", "django", "gunicorn", "psycopg"} <= set(names)
    assert DEV_PACKAGES.isdisjoint(names), names
    assert compiled == [True, True]


def test_help_works(image):
    done = run_once(image, [], ["--help"])
    assert done.returncode == 0, done.stdout
    assert "run" in done.stdout


def test_it_starts_on_a_read_only_root_and_offers_the_client(image, containers):
    port = free_port()
    service = containers(
        ["--read-only", "--tmpfs", "/tmp", *data_tmpfs(), *small(),
         "-e", f"SIGNING_SERVICE_HEALTHCHECK_PORT={port}",
         "--health-interval", "1s", "--health-start-period", "0s"],  # the image's own command
        ["run", "--bind", f"127.0.0.1:{port}"],
    )  # fmt: skip
    service.wait_for(f"https://127.0.0.1:{port}/healthz")

    health = service.exec("python", "-m", "signing_service.healthcheck", check=False)
    assert (health.returncode, health.stdout) == (0, f"healthy: {healthz(port)} answered ok\n")
    deadline = time.monotonic() + 30
    while (status := health_status(service)) != "healthy" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert status == "healthy", docker("inspect", service.name).stdout

    # The wheel built with the image is the one offered: run found it, and wrote nothing.
    wheel_name = service.exec("ls", "/app/client").stdout.split()
    version = service.exec("python", "-c", CLIENT_VERSION).stdout.strip()
    assert wheel_name == [f"signing_manager-{version}-py3-none-any.whl"]
    assert f"Signing Manager download /app/client/{wheel_name[0]}" in service.log()
    assert "No Signing Manager download" not in service.log()
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    url = f"https://127.0.0.1:{port}/client/{wheel_name[0]}"
    with urllib.request.urlopen(url, context=context, timeout=10) as response:
        wheel = response.read()
    with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
        assert "signing_manager/cli.py" in archive.namelist()
    in_image = service.exec("sha256sum", f"/app/client/{wheel_name[0]}").stdout.split()[0]
    assert hashlib.sha256(wheel).hexdigest() == in_image
    latest = f"https://127.0.0.1:{port}/client/signing-manager.whl"
    with urllib.request.urlopen(latest, context=context, timeout=10) as response:
        assert response.url == url  # followed the 302 to the versioned name


def healthz(port: int) -> str:
    return f"https://127.0.0.1:{port}/healthz"


def health_status(container: Container) -> str:
    return docker("inspect", "--format", "{{.State.Health.Status}}", container.name).stdout.strip()


def test_the_compose_file_is_valid_and_keeps_secrets_out_of_the_environment(image):
    done = subprocess.run(
        ["docker-compose", "--file", "deploy/compose.yaml", "config"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    service, database = config["services"]["signing-service"], config["services"]["db"]
    assert service["depends_on"]["db"]["condition"] == "service_healthy"
    assert "pg_isready" in database["healthcheck"]["test"]
    assert set(config["secrets"]) == {"master-key", "db-password", "database-url"}
    for environment in (service["environment"], database["environment"]):
        assert not [name for name in environment if "PASSWORD" in name and "_FILE" not in name]
    assert "DATABASE_URL" not in service["environment"]
    assert not [name for name in service["environment"] if name.endswith("MASTER_KEY")]


# --- Two replicas on one PostgreSQL database ------------------------------------------------


class Client:
    """The real ``signing-manager`` of this checkout, in a home of its own, without a keyring."""

    def __init__(self, home: Path, api_key: str):
        self.home = home
        self.api_key = api_key

    def run(self, *args: str, url: str | None = None) -> subprocess.CompletedProcess:
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("SIGNING_", "XDG_", "PYTHON_KEYRING", "DBUS_"))
            and name not in {"DATABASE_URL", "HOME"}
        }
        env.update(
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.home / "config"),
            XDG_STATE_HOME=str(self.home / "state"),
            XDG_DATA_HOME=str(self.home / "data"),
            XDG_CACHE_HOME=str(self.home / "cache"),
            PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
            LC_ALL="C.UTF-8",
            SIGNING_MANAGER_API_KEY=self.api_key,
        )
        if url:
            env["SIGNING_MANAGER_URL"] = url
        return subprocess.run(
            [SIGNING_MANAGER, *args], env=env, cwd=self.home,
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    def sign(self, sha1: str, path: Path, url: str) -> subprocess.CompletedProcess:
        return self.run(
            "sign", "--identity", sha1, "--digest-only", "--algorithm", "rsa-pkcs1v15-sha256",
            str(path), url=url,
        )  # fmt: skip


class Replicas:
    """Two running containers of the image on one database, and what the tests need of them."""

    def __init__(self, image: str, start, folder: Path, database_url: str):
        self.image = image
        secrets_dir, inbox = folder / "secrets", folder / "inbox"
        for directory in (secrets_dir, inbox):
            directory.mkdir()
            directory.chmod(0o755)
        master_key = base64.b64encode(secrets.token_bytes(32)) + b"\n"
        private_file(secrets_dir / "master-key", master_key)
        private_file(secrets_dir / "database-url", database_url.encode() + b"\n")
        certificate, key = make_self_signed_certificate(["localhost", "127.0.0.1"])
        private_file(secrets_dir / "tls.crt", certificate.public_bytes(serialization.Encoding.PEM))
        private_file(
            secrets_dir / "tls.key",
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        self.certificate_path = secrets_dir / "tls.crt"
        self.identity = make_identity()
        private_file(inbox / "identity.p12", self.identity.p12)
        private_file(inbox / "password", self.identity.password.encode() + b"\n")

        # Everything but the master key, which the tests of a wrong one replace.
        self.options_without_key = [
            "--read-only", "--tmpfs", "/tmp", *data_tmpfs(), *small(),
            "-v", f"{secrets_dir}:/run/secrets:ro", "-v", f"{inbox}:/inbox:ro",
            "-e", "SIGNING_SERVICE_DATABASE_URL_FILE=/run/secrets/database-url",
            "-e", "SIGNING_SERVICE_TLS_CERT_PATH=/run/secrets/tls.crt",
            "-e", "SIGNING_SERVICE_TLS_KEY_PATH=/run/secrets/tls.key",
        ]  # fmt: skip
        options = [
            *self.options_without_key,
            *("-e", "SIGNING_SERVICE_MASTER_KEY_FILE=/run/secrets/master-key"),
        ]
        prepared = run_once(image, options, ["prepare"])
        assert prepared.returncode == 0, prepared.stdout
        self.ports = [free_port(), free_port()]
        self.a, self.b = (
            start(
                [*options, "-e", f"SIGNING_SERVICE_HEALTHCHECK_PORT={port}"],
                ["run", "--bind", f"127.0.0.1:{port}"],
            )
            for port in self.ports
        )
        for container, url in zip((self.a, self.b), self.urls, strict=True):
            container.wait_for(f"{url}/api/v1/version")

        imported = self.a.exec(
            "signing-service", "identity", "import", "/inbox/identity.p12",
            "--password-file", "/inbox/password",
        )  # fmt: skip
        assert self.identity.sha1.upper() in imported.stdout
        created = self.a.exec("signing-service", "apikey", "create", "container-test")
        self.api_key = created.stdout.strip()

    def api_sign(self, url: str, token: str, digest: bytes) -> tuple[int, str]:
        """POST /api/v1/sign straight to a replica; the HTTP status and the body."""
        body = {
            "certificate": self.identity.sha1,
            "algorithm": "rsa-pkcs1v15-sha256",
            "digest": base64.b64encode(digest).decode(),
        }
        request = urllib.request.Request(
            f"{url}/api/v1/sign",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        context = ssl.create_default_context(cafile=self.certificate_path)
        try:
            with urllib.request.urlopen(request, context=context, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    @property
    def urls(self) -> list[str]:
        return [f"https://127.0.0.1:{port}" for port in self.ports]

    def set_identity_active(self, container: Container, active: bool) -> None:
        """There is no ops command for it yet: Django's shell, inside the container."""
        done = container.exec(
            "signing-service", "shell", "--no-imports", "-c",
            "from signing_service.identities.models import Identity; "
            f"print(Identity.objects.filter(sha1__iexact='{self.identity.sha1}')"
            f".update(is_active={active}))",
        )  # fmt: skip
        assert done.stdout.strip() == "1", done


@pytest.fixture(scope="module")
def replicas(image, tmp_path_factory) -> Iterator[Replicas]:
    """Shared by the module's tests: only the one that ends with a kill uses the containers."""
    folder = tmp_path_factory.mktemp("replicas")
    # The containers stop before the database is dropped: the pool closes first.
    with (
        fresh_postgres_database(POSTGRES_SERVER) as database_url,
        container_pool(image, folder) as start,
    ):
        yield Replicas(image, start, folder, database_url)


def test_two_replicas_share_one_database_and_the_audit_holds_every_signature(replicas, tmp_path):
    client = Client(tmp_path / "client-home", replicas.api_key)
    (tmp_path / "client-home").mkdir()
    url_a, url_b = replicas.urls
    sha1 = replicas.identity.sha1

    saved = client.run("-s", "-i", url_a, "-a", replicas.api_key, "-u")
    assert saved.returncode == 0, saved.stderr
    listed = client.run("-r", "--json", url=url_a)  # registers this machine through A
    assert listed.returncode == 0, listed.stderr
    assert sha1 in listed.stdout.lower()

    signed: list[Path] = []

    def sign_through(url: str, number: int) -> subprocess.CompletedProcess:
        path = tmp_path / f"file-{number}.bin"
        path.write_bytes(f"build artefact {number}\n".encode())
        done = client.sign(sha1, path, url)
        if done.returncode == 0:
            signed.append(path)
        return done

    for number, url in enumerate([url_b, url_a, url_b]):
        done = sign_through(url, number)
        assert done.returncode == 0, done.stderr

    # Switched off through B, refused by A at once: no replica holds the state apart.
    replicas.set_identity_active(replicas.b, False)
    refused = sign_through(url_a, 10)  # the client no longer sees it in the list
    assert refused.returncode != 0
    assert "Traceback" not in refused.stderr
    # And the service itself refuses a request for it, as for one that does not exist (the
    # README's 404 unknown_identity; the audit records inactive_identity).
    digest = hashlib.sha256((tmp_path / "file-10.bin").read_bytes()).digest()
    tokens = client.home / "config" / "signing-manager" / "client-tokens"
    token = (tokens / key_id(replicas.api_key)).read_text().strip()  # filed under its key
    status, body = replicas.api_sign(url_a, token, digest)
    assert (status, json.loads(body)["error"]["code"]) == (404, "unknown_identity"), body
    replicas.set_identity_active(replicas.a, True)
    assert sign_through(url_b, 11).returncode == 0

    # A replica killed in the middle: the other goes on signing; the dead one is refused.
    assert sign_through(url_a, 20).returncode == 0
    docker("kill", replicas.a.name)
    replicas.a.process.wait(timeout=30)
    for number in (21, 22, 23):
        done = sign_through(url_b, number)
        assert done.returncode == 0, done.stderr
    gone = sign_through(url_a, 24)
    assert gone.returncode != 0
    assert "Traceback" not in gone.stderr

    public_key = replicas.identity.certificate.public_key()
    for path in signed:
        signature = Path(f"{path}.sig").read_bytes()
        public_key.verify(signature, path.read_bytes(), padding.PKCS1v15(), hashes.SHA256())

    today = datetime.datetime.now(datetime.UTC).date()
    exported = replicas.b.exec(
        "signing-service", "audit", "export", "--format", "json",
        "--from", str(today - datetime.timedelta(days=1)),
        "--to", str(today + datetime.timedelta(days=1)),
    )  # fmt: skip
    records = json.loads(exported.stdout)["records"]
    audited = {
        record["digest"]
        for record in records
        if record["request_type"] == "sign"
        and record["status"] == "success"
        and record["identity_sha1"].lower() == sha1
    }
    assert audited == {hashlib.sha256(path.read_bytes()).hexdigest() for path in signed}
    assert len(signed) == 8
    refusals = [r for r in records if r["request_type"] == "sign" and r["status"] == "failure"]
    assert [r["digest"] for r in refusals] == [
        hashlib.sha256((tmp_path / "file-10.bin").read_bytes()).hexdigest()
    ]


# --- Bad configuration: one sentence, a non-zero status, no traceback -------------------------


def assert_refused_in_one_sentence(done: subprocess.CompletedProcess, *words: str) -> str:
    lines = done.stdout.strip().splitlines()
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stdout, done.stdout
    last = lines[-1] if lines else ""
    assert last.startswith("signing-service: "), done.stdout
    for word in words:
        assert word in last, done.stdout
    return last


def test_a_missing_secret_file_stops_it(image):
    port = free_port()
    done = run_once(
        image,
        [*data_tmpfs(), *small(), "-e", "SIGNING_SERVICE_MASTER_KEY_FILE=/nope"],
        ["run", "--bind", f"127.0.0.1:{port}"],
    )
    assert_refused_in_one_sentence(done, "SIGNING_SERVICE_MASTER_KEY_FILE", "/nope")


def test_an_unreachable_database_stops_it(image):
    port, nobody = free_port(), free_port()
    done = run_once(
        image,
        [*data_tmpfs(), *small(), "-e", f"DATABASE_URL=postgres://postgres@127.0.0.1:{nobody}/x"],
        ["run", "--bind", f"127.0.0.1:{port}"],
    )
    assert_refused_in_one_sentence(done, "database")


@pytest.mark.parametrize("master_key", ["another", "none"])
def test_a_database_sealed_under_another_master_key_stops_it(replicas, master_key):
    options = list(replicas.options_without_key)
    if master_key == "another":
        options += ["-e", f"SIGNING_SERVICE_MASTER_KEY={base64.b64encode(os.urandom(32)).decode()}"]
    # "none": the service makes a key of its own in the empty /data, which opens nothing.
    port = free_port()
    done = run_once(replicas.image, options, ["run", "--bind", f"127.0.0.1:{port}"])
    assert_refused_in_one_sentence(done, "sealed under another master key")
