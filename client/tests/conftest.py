"""Fixtures for the client's end-to-end tests: the real ``signing-manager`` command against a
real Signing Service.

The service fixtures of the project's top-level ``conftest.py`` start one service per test; the
CLI tests share one service per module (``module_service``), since every test brings its own
API key, and so its own registered client, and leaves the others' state alone. A test that
restarts or breaks a service starts its own with ``new_service``.

- ``Cli``: ``signing-manager`` run as a subprocess in an isolated home (``HOME``,
  ``XDG_CONFIG_HOME``, ``XDG_STATE_HOME``), with no keyring backend, so the API key comes from
  ``SIGNING_MANAGER_API_KEY`` and the client token from the 0600 file in the config directory.
- ``Ops``: ``signing-service identity|apikey`` on a service's data, as an operator runs them.
- ``WebAdmin``: the first admin, signed in over HTTPS as a browser would (CSRF cookie and
  token, Origin and Referer), pressing the switches of the web interface.

Test files cannot import from each other (``--import-mode=importlib``), so they reach these
helpers through fixtures.
"""

from __future__ import annotations

import html
import os
import re
import secrets
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from signing_service.test import RunningService, fresh_postgres_database

SIGNING_MANAGER = str(Path(sys.executable).with_name("signing-manager"))
CLI_TIMEOUT = 120
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


# --- The CLI in an isolated home ----------------------------------------------------------------


class Cli:
    """``signing-manager`` on one machine: its own home, config, log and (no) keyring."""

    def __init__(self, home: Path, api_key: str | None = None):
        self.home = home
        self.api_key = api_key
        for folder in (self.home, self.config_home, self.state_home):
            folder.mkdir(parents=True, exist_ok=True)

    @property
    def config_home(self) -> Path:
        return self.home / "xdg-config"

    @property
    def state_home(self) -> Path:
        return self.home / "xdg-state"

    @property
    def config_dir(self) -> Path:
        """Where platformdirs puts the client's settings on Linux."""
        return self.config_home / "signing-manager"

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.json"

    @property
    def token_file(self) -> Path:
        return self.config_dir / "client-token"

    @property
    def log_file(self) -> Path:
        """Where platformdirs puts the client's log on Linux."""
        return self.state_home / "signing-manager" / "log" / "SigningManager.log"

    def environment(self, api_key: str | None) -> dict[str, str]:
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("SIGNING_", "XDG_", "PYTHON_KEYRING", "DBUS_"))
            and name not in {"DATABASE_URL", "HOME", "COLUMNS", "LINES"}
        }
        env.update(
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.config_home),
            XDG_STATE_HOME=str(self.state_home),
            XDG_DATA_HOME=str(self.home / "xdg-data"),
            XDG_CACHE_HOME=str(self.home / "xdg-cache"),
            # No keyring backend, whatever the machine running the tests has.
            PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
            LC_ALL="C.UTF-8",
        )
        if api_key:
            env["SIGNING_MANAGER_API_KEY"] = api_key
        return env

    def run(
        self,
        *args: str,
        api_key: str | None = "default",
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess:
        """Run the command; ``api_key=None`` runs it without SIGNING_MANAGER_API_KEY, ``env``
        adds variables."""
        key = self.api_key if api_key == "default" else api_key
        return subprocess.run(
            [SIGNING_MANAGER, *args],
            env={**self.environment(key), **(env or {})},
            cwd=cwd or self.home,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
        )

    def ok(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        """Run the command, which must succeed with nothing on stderr but, on first use with
        -u, the line that says which certificate it now trusts."""
        result = self.run(*args, **kwargs)
        assert result.returncode == 0, (args, result.returncode, result.stdout, result.stderr)
        others = [
            line
            for line in result.stderr.splitlines()
            if not line.startswith("Trusting the service's certificate, SHA-256 ")
        ]
        assert others == [], (args, result.stderr)
        return result

    def configure(self, url: str, *, trust: bool = True, debug: bool = False):
        """``signing-manager -s -i URL -a KEY [-u] [-d]``, as the guide shows."""
        flags = ["-u"] if trust else []
        flags += ["-d"] if debug else []
        return self.ok("-s", "-i", url, "-a", self.api_key or "unset", *flags)

    def files_text(self) -> str:
        """Everything the client wrote under its home (settings, token, pin, log), as text."""
        return "\n".join(
            path.read_text(errors="replace") for path in self.home.rglob("*") if path.is_file()
        )


@pytest.fixture(scope="session")
def cli_class() -> type[Cli]:
    """The ``Cli`` class, for fixtures of a wider scope than ``new_cli``'s."""
    return Cli


@pytest.fixture
def new_cli(tmp_path):
    """A function making CLI machines, each in its own home under the test's tmp_path."""
    counter = iter(range(1_000_000))

    def make(api_key: str | None = None) -> Cli:
        return Cli(tmp_path / f"machine-{next(counter)}", api_key)

    return make


# --- Operators' commands --------------------------------------------------------------------


class Ops:
    """``signing-service identity|apikey`` on a service's data and database."""

    def __init__(self, service: RunningService, folder: Path):
        self.service = service
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)

    def _write(self, name: str, content: bytes) -> str:
        path = self.folder / name
        path.write_bytes(content)
        path.chmod(0o600)
        return str(path)

    def import_identity(self, made) -> str:
        """Import a ``make_identity`` .p12; its SHA-1 as the command prints it (upper-case)."""
        number = secrets.token_hex(4)
        p12 = self._write(f"identity-{number}.p12", made.p12)
        password = self._write(f"identity-{number}.txt", (made.password + "\n").encode())
        result = self.service.manage("identity", "import", p12, "--password-file", password)
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"{made.common_name}\t{made.sha1.upper()}\n", result.stdout
        return made.sha1.upper()

    def import_identities(self, *made) -> list[str]:
        """Import several side by side (each command starts Django, a few seconds)."""
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(self.import_identity, made))

    def create_api_key(self, name: str) -> str:
        """Create an API key; its secret, printed once."""
        result = self.service.manage("apikey", "create", name)
        assert result.returncode == 0, result.stderr
        secret = result.stdout.strip()
        assert secret.startswith("smk_"), result.stdout
        return secret


# --- The first admin on the web ---------------------------------------------------------------


class WebAdmin:
    """The service's first admin (admin / change_password), signed in and set up over HTTPS."""

    USERNAME = "admin"
    FIRST_PASSWORD = "change_password"

    def __init__(self, service: RunningService):
        self.service = service
        self.client = httpx.Client(
            base_url=service.url, verify=service.ssl_context(), follow_redirects=False, timeout=60
        )

    def close(self) -> None:
        self.client.close()

    def csrf_token(self, path: str) -> str:
        page = self.client.get(path)
        assert page.status_code == 200, f"GET {path} gave {page.status_code}"
        match = CSRF_FIELD.search(page.text)
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def post(self, path: str, data: dict, token_from: str | None = None) -> httpx.Response:
        """Submit a form as a browser does: the page's CSRF token, Origin and Referer."""
        page = token_from or path
        return self.client.post(
            path,
            data={"csrfmiddlewaretoken": self.csrf_token(page), **data},
            headers={"Origin": self.service.url, "Referer": self.service.url + page},
        )

    def sign_in(self) -> WebAdmin:
        """First sign-in: log in, replace the password, accept the agreement."""
        new_password = f"cli-e2e-{secrets.token_urlsafe(16)}"
        steps = [
            ("/accounts/login/", {"username": self.USERNAME, "password": self.FIRST_PASSWORD}),
            (
                "/accounts/password/",
                {
                    "old_password": self.FIRST_PASSWORD,
                    "new_password1": new_password,
                    "new_password2": new_password,
                },
            ),
            ("/accounts/agreement/", {"accept": "1"}),
        ]
        for path, data in steps:
            response = self.post(path, data)
            assert response.status_code == 302, (path, html.unescape(response.text))
        assert self.client.get("/").status_code == 200
        return self

    def create_api_key(self, name: str) -> str:
        """Create an API key on the web; its secret, shown once."""
        response = self.post("/api-keys/new/", {"name": name})
        assert response.status_code == 200, response.status_code
        match = re.search(r'id="api-key-secret" type="text" value="([^"]+)"', response.text)
        assert match, "no secret on the page"
        return html.unescape(match.group(1))

    def api_key_pk(self, name: str) -> int:
        page = self.client.get("/api-keys/")
        assert page.status_code == 200
        rows = re.findall(
            r"<td>([^<]*)</td>\s*<td><code>[^<]*</code></td>\s*"
            r'<td><a href="/api-keys/(\d+)/clients/">',
            page.text,
        )
        keys = {html.unescape(key_name): int(pk) for key_name, pk in rows}
        assert name in keys, f"{name!r} not among {sorted(keys)}"
        return keys[name]

    def client_pks(self, key_name: str) -> list[int]:
        """The clients registered with the API key, as its Clients page lists them."""
        page = self.client.get(f"/api-keys/{self.api_key_pk(key_name)}/clients/")
        assert page.status_code == 200
        return [int(pk) for pk in re.findall(r'href="/api-keys/clients/(\d+)/delete/"', page.text)]

    def toggle(self, action: str, page: str) -> None:
        """Press an Active/Inactive switch (a POST form to ``action``) on ``page``."""
        response = self.post(action, {"next": page}, token_from=page)
        assert response.status_code == 302, f"POST {action} gave {response.status_code}"

    def toggle_api_key(self, name: str) -> None:
        self.toggle(f"/api-keys/{self.api_key_pk(name)}/toggle/", "/api-keys/")

    def toggle_client(self, pk: int) -> None:
        self.toggle(f"/api-keys/clients/{pk}/toggle/", "/api-keys/clients/")

    def delete_client(self, pk: int) -> None:
        """Confirm "Delete" on the client's page."""
        path = f"/api-keys/clients/{pk}/delete/"
        response = self.post(path, {})
        assert response.status_code == 302, f"POST {path} gave {response.status_code}"


# --- Services ---------------------------------------------------------------------------------


def service_environment_for_suite():
    """Like the top-level ``service_environment``: this suite's engine, quiet, small."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SIGNING_")}
    env.update(SIGNING_SERVICE_WORKERS="1", SIGNING_SERVICE_THREADS="4")
    return env


@pytest.fixture(scope="module")
def module_service(tmp_path_factory):
    """One service for a whole test module, on a fresh database of the suite's engine."""
    env = service_environment_for_suite()
    database_url = os.environ.get("DATABASE_URL", "")
    folder = tmp_path_factory.mktemp("module-service")
    if database_url.startswith("postgres"):
        with fresh_postgres_database(database_url) as url:
            env["DATABASE_URL"] = url
            service = RunningService(folder / "data", env).start()
            try:
                yield service
            finally:
                service.stop()
    else:
        env.pop("DATABASE_URL", None)
        service = RunningService(folder / "data", env).start()
        try:
            yield service
        finally:
            service.stop()


@pytest.fixture(scope="module")
def module_ops(module_service, tmp_path_factory) -> Ops:
    return Ops(module_service, tmp_path_factory.mktemp("ops"))


@pytest.fixture(scope="module")
def module_admin(module_service):
    admin = WebAdmin(module_service).sign_in()
    yield admin
    admin.close()


@pytest.fixture
def new_service(tmp_path, service_environment):
    """A function starting a service of the test's own (by default in a new data directory,
    on a free port; or on a given data directory and port, as a restart does); all stopped
    after the test."""
    started: list[RunningService] = []
    counter = iter(range(1_000_000))

    def start(data_dir: Path | None = None, port: int | None = None) -> RunningService:
        data_dir = data_dir or tmp_path / f"service-{next(counter)}"
        extra = {"port": port} if port else {}
        service = RunningService(data_dir, dict(service_environment), **extra)
        started.append(service)
        return service.start()

    yield start
    for service in started:
        service.stop()
