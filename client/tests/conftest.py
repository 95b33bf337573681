"""Fixtures for the client's end-to-end tests: the real ``signing-manager`` command against a
real Signing Service.

The services come from the project's top-level ``conftest.py``: the CLI tests share one per
module (``module_service``), since every test brings its own API key, and so its own registered
client, and leaves the others' state alone. A test that restarts or breaks a service starts its
own with ``start_service``.

- ``Cli``: ``signing-manager`` run as a subprocess in an isolated home (``HOME``,
  ``XDG_CONFIG_HOME``, ``XDG_STATE_HOME``), with no keyring backend, so the API key comes from
  ``SIGNING_MANAGER_API_KEY`` and the client token from the 0600 file in the config directory;
  ``peak_memory`` also gives a run's peak resident memory.
- ``Ops``: ``signing-service identity|apikey`` on a service's data, as an operator runs them.
- ``WebAdmin``: the first admin, signed in over HTTPS as a browser would (CSRF cookie and
  token, Origin and Referer), pressing the switches of the web interface.
- ``Packages`` (fixture ``packages``): flat packages built with ``bsdtar --format xar``, and
  independent checks of a signed one (bsdtar, ``openssl pkeyutl``, ``openssl cms``).

Test files cannot import from each other (``--import-mode=importlib``), so they reach these
helpers through fixtures.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import html
import json
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from asn1crypto import algos, tsp
from asn1crypto import cms as asn1_cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from signing_manager.config import key_id
from signing_manager.pkg.xar import XarArchive
from signing_service.test import (
    CLIENT_FIRST_USE_NOTICES,
    RunningService,
    make_identity,
    run_measuring_peak,
)

SIGNING_MANAGER = str(Path(sys.executable).with_name("signing-manager"))
CLI_TIMEOUT = 120
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
CONFIRMATION_FIELD = 'name="confirmed"'  # on the page that asks before deactivating


# --- The CLI in an isolated home ----------------------------------------------------------------

# A keyring backend for a machine that has one, as a desktop does: entries in a JSON file.
FILE_KEYRING = """
import json
import os
from pathlib import Path

import keyring.backend
import keyring.errors


class FileKeyring(keyring.backend.KeyringBackend):
    priority = 1

    def entries(self):
        path = Path(os.environ["FILE_KEYRING_PATH"])
        return json.loads(path.read_text()) if path.exists() else {}

    def save(self, entries):
        Path(os.environ["FILE_KEYRING_PATH"]).write_text(json.dumps(entries))

    def get_password(self, service, username):
        return self.entries().get(service, {}).get(username)

    def set_password(self, service, username, password):
        entries = self.entries()
        entries.setdefault(service, {})[username] = password
        self.save(entries)

    def delete_password(self, service, username):
        entries = self.entries()
        if username not in entries.get(service, {}):
            raise keyring.errors.PasswordDeleteError(username)
        del entries[service][username]
        self.save(entries)
"""


class Cli:
    """``signing-manager`` on one machine: its own home, config, log and (no) keyring."""

    def __init__(self, home: Path, api_key: str | None = None, keyring: bool = False):
        self.home = home
        self.api_key = api_key
        self.keyring = keyring  # a keyring backend (a JSON file in the home) instead of none
        for folder in (self.home, self.config_home, self.state_home):
            folder.mkdir(parents=True, exist_ok=True)
        if keyring:
            (self.home / "keyring-backend").mkdir(exist_ok=True)
            (self.home / "keyring-backend" / "file_keyring.py").write_text(FILE_KEYRING)

    @property
    def keyring_file(self) -> Path:
        return self.home / "keyring.json"

    def keyring_entries(self) -> dict[str, str]:
        """What the machine's keyring holds for signing-manager."""
        if not self.keyring_file.exists():
            return {}
        return json.loads(self.keyring_file.read_text()).get("signing-manager", {})

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
        """Where this machine keeps its client token for its API key (no keyring)."""
        return self.config_dir / "client-tokens" / key_id(self.api_key or "")

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
            # No keyring backend, whatever the machine running the tests has; or our own.
            PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
            LC_ALL="C.UTF-8",
        )
        if self.keyring:
            env.update(
                PYTHON_KEYRING_BACKEND="file_keyring.FileKeyring",
                PYTHONPATH=str(self.home / "keyring-backend"),
                FILE_KEYRING_PATH=str(self.keyring_file),
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
        obeying_permissions: bool = False,
    ) -> subprocess.CompletedProcess:
        """Run the command; ``api_key=None`` runs it without SIGNING_MANAGER_API_KEY, ``env``
        adds variables. ``obeying_permissions`` takes from a run as root the capability to
        override file permissions (``setpriv``), so that a read-only folder is read-only to it,
        as to any user."""
        key = self.api_key if api_key == "default" else api_key
        command = [SIGNING_MANAGER, *args]
        if obeying_permissions and os.geteuid() == 0:
            command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
        return subprocess.run(
            command,
            env={**self.environment(key), **(env or {})},
            cwd=cwd or self.home,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
        )

    def peak_memory(self, *args: str) -> tuple[subprocess.CompletedProcess, int]:
        """Run the command; its result, and the most memory it held resident (bytes)."""
        return run_measuring_peak(
            [SIGNING_MANAGER, *args],
            env=self.environment(self.api_key),
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
        )

    def ok(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        """Run the command, which must succeed with nothing on stderr but the notices of a
        first use: which certificate it now trusts (with -u), and that it registers."""
        result = self.run(*args, **kwargs)
        assert result.returncode == 0, (args, result.returncode, result.stdout, result.stderr)
        others = [
            line
            for line in result.stderr.splitlines()
            if not line.startswith(CLIENT_FIRST_USE_NOTICES)
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

    def make(api_key: str | None = None, keyring: bool = False) -> Cli:
        return Cli(tmp_path / f"machine-{next(counter)}", api_key, keyring)

    return make


@pytest.fixture
def unwritable_outputs(tmp_path) -> Iterator[tuple[Path, list[tuple[Path, str]]]]:
    """A folder, and outputs in it that cannot be written, each with the sentence that refuses
    it: a folder; a file in a folder that does not exist, in a read-only folder (run the
    command ``obeying_permissions``), and under a regular file."""
    folder = tmp_path / "outputs"
    read_only, regular_file = folder / "read-only", folder / "a file"
    read_only.mkdir(parents=True)
    read_only.chmod(0o555)
    regular_file.write_text("not a folder\n")
    missing = folder / "missing" / "signed"
    yield (
        folder,
        [
            (folder, f"Cannot write {folder}: it is a folder."),
            (missing, f"Cannot write {missing}: the folder {missing.parent} does not exist."),
            (
                read_only / "signed",
                f"Cannot write {read_only / 'signed'}: there is no permission to write in the "
                f"folder {read_only}.",
            ),
            (
                regular_file / "signed",
                f"Cannot write {regular_file / 'signed'}: {regular_file} is not a folder.",
            ),
        ],
    )
    read_only.chmod(0o755)


# --- Operators' commands --------------------------------------------------------------------


class Ops:
    """``signing-service identity|apikey`` on a service's data and database."""

    def __init__(self, service: RunningService, folder: Path):
        self.service = service
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)

    def import_identity(self, made) -> str:
        """Import a ``make_identity`` .p12; its SHA-1 as the command prints it (upper-case)."""
        result = self.service.import_identity(made, self.folder)
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

    def signatures(self, sha1: str) -> list[dict]:
        """The audit's records of the signatures asked of an identity today (``audit
        export``), whether given or refused."""
        today = datetime.datetime.now(datetime.UTC).date().isoformat()
        export = self.service.manage(
            "audit", "export", "--from", today, "--to", today, "--format", "json"
        )
        assert export.returncode == 0, export.stderr
        return [
            row
            for row in json.loads(export.stdout)["records"]
            if row["request_type"] == "sign" and row["identity_sha1"] == sha1.lower()
        ]


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
        """Create an API key on the web; its secret, shown once (on the page the form's answer
        redirects to)."""
        created = self.post("/api-keys/new/", {"name": name})
        assert created.status_code == 302, created.status_code
        response = self.client.get(created.headers["location"])
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
        """Press an on/off switch (a POST form to ``action``) on ``page``; where the service
        asks to confirm a deactivation (a key with clients), confirm it."""
        response = self.post(action, {"next": page}, token_from=page)
        if response.status_code == 200 and CONFIRMATION_FIELD in response.text:
            response = self.post(action, {"next": page, "confirmed": "1"}, token_from=page)
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


@pytest.fixture(scope="module")
def module_ops(module_service, tmp_path_factory) -> Ops:
    return Ops(module_service, tmp_path_factory.mktemp("ops"))


@pytest.fixture
def configured_cli(module_service, module_ops, new_cli):
    """A function making a machine with an API key of its own (named after ``purpose``),
    configured with -u for the module's service."""

    def make(purpose: str) -> Cli:
        machine = new_cli(module_ops.create_api_key(f"{purpose} {secrets.token_hex(3)}"))
        machine.configure(module_service.url)
        return machine

    return make


@pytest.fixture(scope="module")
def installer(module_ops):
    """A Developer ID Installer identity (with the installer-signing usage) in the module's
    service."""
    made = make_identity(
        f"Developer ID Installer: Test {secrets.token_hex(3)} (ABCDE12345)", installer=True
    )
    module_ops.import_identity(made)
    return made


@pytest.fixture(scope="module")
def module_admin(module_service):
    admin = WebAdmin(module_service).sign_in()
    yield admin
    admin.close()


# --- Flat packages (.pkg) built with bsdtar, and independent checks of their signatures ------


class Packages:
    """Flat installer packages (XAR) built at test time with ``bsdtar --format xar``, and what
    checks a signed one without our code: ``bsdtar -t``/``-x`` for the archive, ``openssl
    pkeyutl`` for the RSA signature and ``openssl cms`` for the CMS one.

    Layouts (``build(name)``; each built once per session):

    - ``files``: a few files in nested folders, an empty file and folder, names with spaces,
      XML specials and non-ASCII letters, a relative and an absolute symlink, a hard link
      (gzip, SHA-1 TOC).
    - ``uncompressed``: the same, stored (``xar:compression=none``).
    - ``product``: a product archive: ``Distribution``, ``Resources``, and component packages
      ``Foo.pkg/`` (Bom, PackageInfo, Payload, Scripts) and ``Bar.pkg/`` (no Scripts), their
      Payload and Scripts gzip-compressed cpio archives as pkgbuild writes them.
    - ``md5-bzip2``: ``files`` with an MD5 TOC checksum and bzip2-compressed members.
    - ``no-toc-checksum``: a small package without any TOC checksum.
    """

    OPTIONS = {
        "files": [],
        "uncompressed": ["--options", "xar:compression=none"],
        "product": [],
        "md5-bzip2": ["--options", "xar:toc-checksum=md5,xar:compression=bzip2"],
        "no-toc-checksum": ["--options", "xar:toc-checksum=none"],
    }
    TREES = {
        "files": "files",
        "uncompressed": "files",
        "product": "product",
        "md5-bzip2": "files",
        "no-toc-checksum": "small",
    }

    def __init__(self, folder: Path):
        self.folder = folder
        self._built: dict[str, bytes] = {}
        self._counter = iter(range(1_000_000))

    # --- building ---

    def new_folder(self, name: str) -> Path:
        folder = self.folder / f"{name}-{next(self._counter)}"
        folder.mkdir(parents=True)
        return folder

    @staticmethod
    def bsdtar(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run(
            ["bsdtar", *args],
            capture_output=True,
            cwd=cwd,
            env={**os.environ, "LC_ALL": "C.UTF-8"},
            check=False,
            timeout=60,
        )
        return result

    def tree(self, name: str) -> Path:
        """A source tree (a new folder) for the layout ``name``."""
        rng = random.Random(name)
        root = self.new_folder(f"tree-{name}")
        if name == "small":
            (root / "hello.txt").write_text("Hello, package.\n")
            return root
        if name == "files":
            (root / "docs" / "guide").mkdir(parents=True)
            (root / "bin").mkdir()
            (root / "empty folder").mkdir()
            (root / "README.txt").write_text("A package built by the tests.\n")
            (root / "empty.txt").write_bytes(b"")
            (root / "a&b <c>.txt").write_text("XML specials in a name.\n")
            (root / "docs" / "guide" / "chapter 1.txt").write_text("Chapter one.\n" * 2000)
            (root / "docs" / "guide" / "naïve café.txt").write_text("Non-ASCII name.\n")
            tool = root / "bin" / "tool"
            tool.write_bytes(rng.randbytes(70_000))  # incompressible
            tool.chmod(0o755)
            (root / "docs" / "latest").symlink_to("guide/chapter 1.txt")
            os.link(root / "README.txt", root / "docs" / "README (hard link).txt")
            (root / "bin" / "shell").symlink_to("/bin/sh")
            return root
        if name == "product":
            resources = root / "Resources" / "en.lproj"
            resources.mkdir(parents=True)
            (resources / "Welcome.rtf").write_text("{\\rtf1 Welcome to Foo}\n")
            (root / "Distribution").write_text(
                '<?xml version="1.0" encoding="utf-8"?>\n'
                '<installer-gui-script minSpecVersion="2">\n'
                "  <title>Foo</title>\n"
                '  <pkg-ref id="com.example.foo">#Foo.pkg</pkg-ref>\n'
                '  <pkg-ref id="com.example.bar">#Bar.pkg</pkg-ref>\n'
                '  <choices-outline><line choice="default"/></choices-outline>\n'
                "</installer-gui-script>\n"
            )
            for component, scripts in (("Foo", True), ("Bar", False)):
                folder = root / f"{component}.pkg"
                folder.mkdir()
                (folder / "Bom").write_bytes(b"BOMStore" + rng.randbytes(4000))
                (folder / "PackageInfo").write_text(
                    f'<pkg-info identifier="com.example.{component.lower()}" version="1.0" '
                    f'install-location="/Applications" auth="root"/>\n'
                )
                payload = self.new_folder(f"payload-{component}")
                app = payload / f"{component}.app" / "Contents" / "MacOS"
                app.mkdir(parents=True)
                (app / component).write_bytes(rng.randbytes(30_000))
                (payload / f"{component}.app" / "Contents" / "Info.plist").write_text(
                    "<plist><dict/></plist>\n"
                )
                self.check(
                    self.bsdtar(
                        "--format",
                        "odc",
                        "-czf",
                        str(folder / "Payload"),
                        "-C",
                        str(payload),
                        f"{component}.app",
                    )
                )
                if scripts:
                    script_root = self.new_folder(f"scripts-{component}")
                    script = script_root / "postinstall"
                    script.write_text("#!/bin/sh\nexit 0\n")
                    script.chmod(0o755)
                    self.check(
                        self.bsdtar(
                            "--format",
                            "odc",
                            "-czf",
                            str(folder / "Scripts"),
                            "-C",
                            str(script_root),
                            "postinstall",
                        )
                    )
            return root
        raise ValueError(name)

    @staticmethod
    def check(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
        assert result.returncode == 0, (result.args, result.stderr)
        return result

    def build_file(self, root: Path, output: Path, *options: str) -> Path:
        """``bsdtar --format xar`` of the top-level entries of ``root`` into ``output``, which
        is not read here (it may be large)."""
        names = sorted(path.name for path in root.iterdir())
        self.check(
            self.bsdtar("--format", "xar", *options, "-cf", str(output), "-C", str(root), *names)
        )
        return output

    def build_from(self, root: Path, *options: str) -> bytes:
        """``bsdtar --format xar`` of the top-level entries of ``root``, as bytes."""
        return self.build_file(
            root, self.new_folder("built") / "package.pkg", *options
        ).read_bytes()

    def build(self, layout: str) -> bytes:
        """The package of a layout (built once, then the same bytes)."""
        if layout not in self._built:
            root = self.tree(self.TREES[layout])
            self._built[layout] = self.build_from(root, *self.OPTIONS[layout])
        return self._built[layout]

    def write(self, data: bytes, name: str = "package.pkg") -> Path:
        path = self.new_folder("written") / name
        path.write_bytes(data)
        return path

    # --- reading with bsdtar ---

    def listing(self, data: bytes, verbose: bool = True) -> list[str]:
        """``bsdtar -tvf`` (or ``-tf``): the entries as bsdtar reads them."""
        result = self.check(self.bsdtar("-tvf" if verbose else "-tf", str(self.write(data))))
        return result.stdout.decode().splitlines()

    def extract(self, data: bytes) -> Path:
        """``bsdtar -xf`` into a new folder; the folder."""
        target = self.new_folder("extracted")
        self.check(self.bsdtar("-xf", str(self.write(data)), "-C", str(target)))
        return target

    @staticmethod
    def snapshot(root: Path) -> dict[str, tuple]:
        """Every entry under ``root``: a folder, a file and its bytes, a symlink and its target."""
        entries: dict[str, tuple] = {}
        for path in sorted(root.rglob("*")):
            name = path.relative_to(root).as_posix()
            if path.is_symlink():
                entries[name] = ("symlink", os.readlink(path))
            elif path.is_dir():
                entries[name] = ("folder",)
            else:
                entries[name] = ("file", path.read_bytes(), bool(path.stat().st_mode & 0o100))
        return entries

    # --- the signatures, checked with openssl ---

    @staticmethod
    def signature_parts(data: bytes) -> tuple[bytes, bytes, bytes]:
        """The TOC checksum, the RSA signature and the CMS signature (padding trimmed)."""
        archive = XarArchive.parse(data)
        toc = archive.toc_element
        checksum = archive.heap_range(toc.find("checksum"))
        rsa_signature = archive.heap_range(toc.find("signature"))
        padded = archive.heap_range(toc.find("x-signature"))
        trimmed = asn1_cms.ContentInfo.load(padded, strict=False).dump()
        return checksum, rsa_signature, trimmed

    def openssl_verify(
        self, data: bytes, certificate, ca_certificate
    ) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
        """``openssl pkeyutl -verify`` of the RSA signature over the TOC checksum with the
        certificate's key, and ``openssl cms -verify`` of the CMS with the CA; both results."""
        folder = self.new_folder("openssl")
        checksum, rsa_signature, cms_der = self.signature_parts(data)
        (folder / "checksum.bin").write_bytes(checksum)
        (folder / "rsa.bin").write_bytes(rsa_signature)
        (folder / "cms.der").write_bytes(cms_der)
        (folder / "leaf.pub").write_bytes(
            certificate.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        (folder / "ca.pem").write_bytes(ca_certificate.public_bytes(serialization.Encoding.PEM))
        run = functools.partial(
            subprocess.run, cwd=folder, capture_output=True, text=True, check=False, timeout=60
        )
        rsa_result = run(
            [
                "openssl",
                "pkeyutl",
                "-verify",
                "-pubin",
                "-inkey",
                "leaf.pub",
                "-pkeyopt",
                "digest:sha1",
                "-in",
                "checksum.bin",
                "-sigfile",
                "rsa.bin",
            ]
        )
        cms_result = self.openssl_cms_verify(
            folder / "cms.der", folder / "checksum.bin", folder / "ca.pem"
        )
        return rsa_result, cms_result

    @staticmethod
    def openssl_cms_verify(
        signature: Path, content: Path, ca_file: Path
    ) -> subprocess.CompletedProcess:
        """``openssl cms -verify`` of a detached DER signature over a file, with a CA (PEM)."""
        return subprocess.run(
            [
                "openssl",
                "cms",
                "-verify",
                "-binary",
                "-inform",
                "DER",
                "-in",
                str(signature),
                "-content",
                str(content),
                "-CAfile",
                str(ca_file),
                "-purpose",
                "any",
                "-out",
                os.devnull,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    def assert_openssl_verifies(self, data: bytes, certificate, ca_certificate) -> None:
        rsa_result, cms_result = self.openssl_verify(data, certificate, ca_certificate)
        assert rsa_result.returncode == 0, rsa_result.stdout + rsa_result.stderr
        assert "Signature Verified Successfully" in rsa_result.stdout, rsa_result.stdout
        assert cms_result.returncode == 0, cms_result.stderr
        assert "Verification successful" in cms_result.stderr, cms_result.stderr

    def assert_same_content(self, original: bytes, signed: bytes) -> None:
        """bsdtar lists the same entries (names, modes, owners, sizes, times) and extracts
        byte-identical files and the same symlink targets from both packages."""
        assert self.listing(signed, verbose=False) == self.listing(original, verbose=False)
        assert self.listing(signed) == self.listing(original)
        assert self.snapshot(self.extract(signed)) == self.snapshot(self.extract(original))

    # --- damage ---

    @staticmethod
    def file_data_ranges(data: bytes) -> list[tuple[int, int]]:
        """Absolute (start, length) of every file's stored data, in TOC order."""
        archive = XarArchive.parse(data)
        heap_start = len(data) - len(archive.heap)
        return [
            (heap_start + int(element.findtext("offset")), int(element.findtext("length")))
            for element in archive.toc_element.iter("data")
        ]

    @classmethod
    def flip_file_byte(cls, data: bytes, which: int = 0) -> bytes:
        """A copy with one byte in the middle of a file's stored data changed."""
        start, length = [item for item in cls.file_data_ranges(data) if item[1] > 0][which]
        return flip(data, start + length // 2)


def flip(data: bytes, position: int) -> bytes:
    """A copy of ``data`` with the byte at ``position`` inverted."""
    changed = bytearray(data)
    changed[position] ^= 0xFF
    return bytes(changed)


@pytest.fixture(scope="session")
def packages(tmp_path_factory) -> Packages:
    """Flat packages built with bsdtar, and checks of them (see ``Packages``)."""
    if shutil.which("bsdtar") is None or shutil.which("openssl") is None:
        pytest.skip("bsdtar (libarchive-tools) and openssl are needed for the package tests")
    return Packages(tmp_path_factory.mktemp("packages"))


# --- A time-stamping authority on loopback (RFC 3161), for timestamped signatures ------------


class TimestampAuthority:
    """A small but real RFC 3161 TSA: it parses each TimeStampReq, and answers a TimeStampResp
    whose token is a SignedData over a TSTInfo, signed by its own key and certificate (extended
    key usage timeStamping). ``requests`` counts what it answered."""

    def __init__(self):

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Timestamp Authority")])
        now = datetime.datetime.now(datetime.UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
            )
            .sign(self.key, hashes.SHA256())
        )
        self.requests = 0
        self.serial = 0

    def reply(self, body: bytes) -> bytes:

        request = tsp.TimeStampReq.load(body)
        self.requests += 1
        self.serial += 1
        info = tsp.TSTInfo(
            {
                "version": "v1",
                "policy": "1.2.3.4.1",
                "message_imprint": request["message_imprint"],
                "serial_number": self.serial,
                "gen_time": datetime.datetime.now(datetime.UTC).replace(microsecond=0),
                "nonce": request["nonce"],
            }
        )
        content = info.dump()
        attributes = asn1_cms.CMSAttributes(
            [
                {"type": "content_type", "values": ["tst_info"]},
                {"type": "message_digest", "values": [hashlib.sha256(content).digest()]},
            ]
        )
        signature = self.key.sign(attributes.dump(), padding.PKCS1v15(), hashes.SHA256())
        certificate = asn1_x509.Certificate.load(
            self.certificate.public_bytes(serialization.Encoding.DER)
        )
        signer_info = asn1_cms.SignerInfo(
            {
                "version": "v1",
                "sid": {
                    "issuer_and_serial_number": {
                        "issuer": certificate.issuer,
                        "serial_number": certificate.serial_number,
                    }
                },
                "digest_algorithm": {"algorithm": "sha256"},
                "signed_attrs": attributes,
                "signature_algorithm": algos.SignedDigestAlgorithm(
                    {"algorithm": "rsassa_pkcs1v15"}
                ),
                "signature": signature,
            }
        )
        token = asn1_cms.ContentInfo(
            {
                "content_type": "signed_data",
                "content": {
                    "version": "v3",
                    "digest_algorithms": [{"algorithm": "sha256"}],
                    "encap_content_info": {
                        "content_type": "tst_info",
                        "content": asn1_cms.ParsableOctetString(content),
                    },
                    "certificates": [certificate],
                    "signer_infos": [signer_info],
                },
            }
        )
        return tsp.TimeStampResp(
            {"status": {"status": "granted"}, "time_stamp_token": token}
        ).dump()


@pytest.fixture(scope="session")
def tsa():
    """A TimestampAuthority served over HTTP on loopback; ``tsa.url`` is where to ask."""
    authority = TimestampAuthority()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                answer, status = authority.reply(body), 200
            except ValueError:
                answer, status = b"bad request", 400
            self.send_response(status)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    authority.url = f"http://127.0.0.1:{server.server_address[1]}/tsa"
    yield authority
    server.shutdown()
