"""Test support: the base test case with its named people (as healthchecks does), real .p12
files made by the openssl command line, a real service in a subprocess, and the peak memory of
a command.

Importing this module needs no Django settings (models are imported where they are used), so
benchmarks use it too.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime
import functools
import hashlib
import html
import itertools
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from asn1crypto import cms as asn1_cms
from asn1crypto import keys as asn1_keys
from asn1crypto import pkcs12 as asn1_pkcs12
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import TestCase

PASSWORD = "correct horse battery staple"  # noqa: S105 - a test persona's password


class BaseTestCase(TestCase):
    """Three people, each fully set up (password changed, agreement accepted):

    - alice: an application admin; she may do everything.
    - bob: a non-admin user; he may view and switch things on and off, nothing more.
    - charlie: an outsider whose account an admin deactivated; he may do nothing.
    """

    @classmethod
    def setUpTestData(cls):
        from signing_service.accounts.models import UserAgreement

        agreement = UserAgreement.current()
        cls.alice = cls.make_user("alice", is_admin=True, accepted_agreement=agreement)
        cls.bob = cls.make_user("bob", accepted_agreement=agreement)
        cls.charlie = cls.make_user("charlie", is_active=False, accepted_agreement=agreement)

    def sign_in_unrecorded(self, user) -> None:
        """Sign ``user`` in and drop the sign-in's audit record: for tests of the audit's own
        pages and counts, which make the records they read."""
        from signing_service.audit.models import AuditEvent

        self.client.force_login(user)
        AuditEvent.objects.filter(action="user.sign_in").delete()

    def only_admin_record(self, action: str):
        """The one admin record (request type admin) written since the test began, which must
        be of ``action``; the test fails if there is none, another, or more."""
        from signing_service.audit.models import AuditEvent, RequestType

        admin_records = list(AuditEvent.objects.filter(request_type=RequestType.ADMIN))
        self.assertEqual([event.action for event in admin_records], [action])  # noqa: PT009
        return admin_records[0]

    @staticmethod
    def store_identity(**options):
        """An identity made by ``make_identity`` and saved, as an import would; and its files."""
        from signing_service.identities.models import Identity
        from signing_service.identities.p12 import parse_p12

        made = make_identity(**options)
        identity = Identity()
        identity.fill_from(parse_p12(made.p12, made.password))
        identity.save()
        return identity, made

    @staticmethod
    def make_user(username: str, password: str = PASSWORD, **fields):
        from signing_service.accounts.models import User

        fields.setdefault("must_change_password", False)
        user = User(username=username, password=password_hash(password), **fields)
        user.save()
        return user


def migrate_to(targets: list[tuple[str, str]]):
    """Migrate the test database to ``targets`` (``latest_migrations()`` for all of them), for
    tests of a migration; the apps registry of that state."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()  # sees the state the previous migrate left
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def latest_migrations() -> list[tuple[str, str]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


@functools.cache
def copyable_value(page: str, element_id: str) -> str:
    """What the read-only input ``element_id`` of a page holds (a URL or command to copy), as
    a browser reads it; an AssertionError when the page has no such input."""
    found = re.search(rf'<input id="{re.escape(element_id)}"[^>]*?\svalue="([^"]*)"', page)
    assert found, f"no input {element_id!r} on the page"
    return html.unescape(found.group(1))


def password_hash(password: str) -> str:
    """The service's (Argon2) hash of ``password``, made once per process: each hash takes a
    fifth of a second by design, and every test class makes three users."""
    from django.contrib.auth.hashers import make_password

    return make_password(password)


# --- Clients of the client API ------------------------------------------------------------------


def make_client(api_key, hostname: str = "mac-mini-1", **fields):
    """A registered client of ``api_key`` and its client token, as registration makes them."""
    from signing_service.access import tokens
    from signing_service.access.models import Client

    secret = tokens.new_secret(tokens.CLIENT_TOKEN_PREFIX)
    fields.setdefault("machine_id", f"machine-{secret.token_id}")
    client = Client.objects.create(
        api_key=api_key,
        hostname=hostname,
        token_id=secret.token_id,
        token_hash=secret.digest,
        **fields,
    )
    return client, secret.value


def post_sign(test_client, token: str, sha1: str, algorithm: str, data: bytes = b"x"):
    """``POST /api/v1/sign`` through Django's test client: the SHA-256 digest of ``data``
    (so for an algorithm of SHA-256), signed with the identity of ``sha1``."""
    body = {
        "certificate": sha1,
        "algorithm": algorithm,
        "digest": base64.b64encode(hashlib.sha256(data).digest()).decode(),
    }
    return test_client.post(
        "/api/v1/sign",
        body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )


def refuse_audit_inserts(execute, sql, params, many, context):
    """A ``connection.execute_wrapper`` that makes every audit INSERT fail, as a full disk or a
    revoked grant would."""
    from django.db import DatabaseError

    if "INSERT INTO" in sql.upper() and '"audit_auditevent"' in sql:
        raise DatabaseError("the audit table is not writable (test)")
    return execute(sql, params, many, context)


# --- Identities: real .p12 files made by the openssl command line ------------------------------

P12_PASSWORD = "p12 password"  # noqa: S105 - the test identities' password
TEAM_ID = "ABCDE12345"
P12_ENCODINGS = {
    # OpenSSL 3's default: AES-256-CBC with PBKDF2, HMAC-SHA256 MAC.
    "aes": [],
    # RC2-40 for certificates and 3DES for the key, as old OpenSSL and Windows wrote them.
    "legacy": ["-legacy"],
    # What macOS Keychain Access exports: 3DES everywhere and a SHA-1 MAC.
    "3des": ["-keypbe", "PBE-SHA1-3DES", "-certpbe", "PBE-SHA1-3DES", "-macalg", "sha1"],
}


@dataclasses.dataclass(frozen=True)
class TestIdentity:
    __test__ = False  # a fixture's type, not a test class for pytest to collect

    p12: bytes
    password: str
    certificate: x509.Certificate
    private_key: object
    ca_certificate: x509.Certificate

    @property
    def sha1(self) -> str:
        return self.certificate.fingerprint(hashes.SHA1()).hex()  # noqa: S303

    @property
    def common_name(self) -> str:
        return self.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value

    def pem(self, certificate: x509.Certificate | None = None) -> bytes:
        return (certificate or self.certificate).public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


@functools.cache
def cached_key(kind: str, index: int = 0):
    """Keys are slow to make (RSA 4096 above all); tests share a few by kind and index."""
    if kind == "ec256":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[3:]))


@functools.cache
def fake_ca() -> tuple[x509.Certificate, object]:
    key = cached_key("rsa2048", 99)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Signing Manager Test CA")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def make_certificate(
    key,
    common_name: str,
    *,
    valid_days: int = 365,
    expired: bool = False,
    installer: bool = False,
    issuer: tuple[x509.Certificate, object] | None = None,
    usages: list[x509.ObjectIdentifier] | None = None,
    starts_in: datetime.timedelta = datetime.timedelta(days=-1),
) -> x509.Certificate:
    """A leaf issued by ``issuer`` (the test CA by default); ``usages`` replaces the extended
    key usages (Code Signing, and Apple's installer usage when ``installer``)."""
    ca_certificate, ca_key = issuer or fake_ca()
    now = datetime.datetime.now(datetime.UTC)
    start = now - datetime.timedelta(days=valid_days + 10) if expired else now + starts_in
    end = (
        now + datetime.timedelta(days=-10)
        if expired
        else start + datetime.timedelta(days=valid_days)
    )
    if usages is None:
        usages = [ExtendedKeyUsageOID.CODE_SIGNING]
        usages += [x509.ObjectIdentifier("1.2.840.113635.100.4.13")] if installer else []
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, TEAM_ID),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, TEAM_ID),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Signing Manager Tests"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=True)
        .sign(ca_key, hashes.SHA256())
    )


def issue_for_request(
    csr: x509.CertificateSigningRequest, usages: list[x509.ObjectIdentifier] | None = None
) -> x509.Certificate:
    """What the test CA issues for a CSR, as Apple's portal does: the request's subject and
    key, for code signing (or the extended key usages ``usages``)."""
    ca_certificate, ca_key = fake_ca()
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca_certificate.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(usages or [ExtendedKeyUsageOID.CODE_SIGNING]), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )


def make_intermediate_ca(
    common_name: str = "Signing Manager Test Intermediate CA", index: int = 97
) -> tuple[x509.Certificate, object]:
    """A CA issued by the test root, with key identifiers, as Apple's intermediates are."""
    root, root_key = fake_ca()
    key = cached_key("rsa2048", index)
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1825))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    return certificate, key


def openssl_p12(
    certificate: x509.Certificate,
    key,
    password: str,
    encoding: str = "aes",
    chain: list[x509.Certificate] = (),
    include_key: bool = True,
) -> bytes:
    """A .p12 written by ``openssl pkcs12 -export`` in the given encoding."""
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        (folder / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        arguments = ["openssl", "pkcs12", "-export", "-in", str(folder / "cert.pem")]
        if include_key:
            (folder / "key.pem").write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
            arguments += ["-inkey", str(folder / "key.pem")]
        else:
            arguments.append("-nokeys")
        if chain:
            (folder / "chain.pem").write_bytes(
                b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in chain)
            )
            arguments += ["-certfile", str(folder / "chain.pem")]
        arguments += ["-passout", f"pass:{password}", "-out", str(folder / "out.p12")]
        arguments += P12_ENCODINGS[encoding]
        environment = {**os.environ, "LC_ALL": "C.UTF-8"}
        subprocess.run(arguments, check=True, capture_output=True, env=environment)
        return (folder / "out.p12").read_bytes()


def unprotected_p12(certificate: x509.Certificate, key) -> bytes:
    """A .p12 with plain (unencrypted) bags and no MAC, as some scripts write them.

    openssl and cryptography refuse to write a key with a certificate it does not belong to,
    so this is how a test gets such a file.
    """
    key_bag = asn1_pkcs12.SafeBag(
        {
            "bag_id": "key_bag",
            "bag_value": asn1_keys.PrivateKeyInfo.load(
                key.private_bytes(
                    serialization.Encoding.DER,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            ),
        }
    )
    cert_bag = asn1_pkcs12.SafeBag(
        {
            "bag_id": "cert_bag",
            "bag_value": asn1_pkcs12.CertBag(
                {
                    "cert_id": "x509",
                    "cert_value": asn1_x509.Certificate.load(
                        certificate.public_bytes(serialization.Encoding.DER)
                    ),
                }
            ),
        }
    )
    contents = asn1_pkcs12.SafeContents([key_bag, cert_bag])
    safe = asn1_pkcs12.AuthenticatedSafe(
        [asn1_cms.ContentInfo({"content_type": "data", "content": contents.dump()})]
    )
    return asn1_pkcs12.Pfx(
        {
            "version": "v3",
            "auth_safe": asn1_cms.ContentInfo({"content_type": "data", "content": safe.dump()}),
        }
    ).dump()


_identity_counter = itertools.count(1)


def make_identity(
    common_name: str | None = None,
    *,
    key_kind: str = "rsa2048",
    encoding: str = "aes",
    password: str = P12_PASSWORD,
    with_chain: bool = True,
    expired: bool = False,
    installer: bool = False,
) -> TestIdentity:
    """A fresh identity (its own certificate) signed by the test CA, as a real .p12 file."""
    number = next(_identity_counter)
    common_name = common_name or f"Developer ID Application: Test {number} ({TEAM_ID})"
    key = cached_key(key_kind, number % 3)
    certificate = make_certificate(key, common_name, expired=expired, installer=installer)
    ca_certificate, _ = fake_ca()
    chain = [ca_certificate] if with_chain else []
    p12 = openssl_p12(certificate, key, password, encoding, chain)
    return TestIdentity(p12, password, certificate, key, ca_certificate)


# --- A SoftHSM2 token, for keys kept in a PKCS#11 token ----------------------------------------

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"  # Debian's softhsm2 (scripts/system-packages)


@dataclasses.dataclass
class SoftHsm:
    """A SoftHSM2 token initialised in a directory of its own: its configuration file (which
    ``SOFTHSM2_CONF`` names), its token store, and the PIN file a service reads."""

    directory: Path
    label: str = "signing-tests"
    pin: str = dataclasses.field(default_factory=lambda: secrets.token_hex(8))

    @property
    def config_path(self) -> Path:
        return self.directory / "softhsm2.conf"

    @property
    def token_dir(self) -> Path:
        return self.directory / "tokens"

    @property
    def pin_file(self) -> Path:
        return self.directory / "pin"

    def initialise(self) -> SoftHsm:
        self.token_dir.mkdir(parents=True)
        self.config_path.write_text(
            f"directories.tokendir = {self.token_dir}\nobjectstore.backend = file\n"
            "log.level = ERROR\n"
        )
        self.pin_file.write_text(self.pin + "\n")
        self.pin_file.chmod(0o600)
        subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", self.label,
             "--pin", self.pin, "--so-pin", secrets.token_hex(8)],
            env={**os.environ, "SOFTHSM2_CONF": str(self.config_path)},
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        return self

    def environment(self) -> dict[str, str]:
        """What a service subprocess needs to keep keys in this token."""
        return {
            "SOFTHSM2_CONF": str(self.config_path),
            "SIGNING_SERVICE_PKCS11_MODULE": SOFTHSM_MODULE,
            "SIGNING_SERVICE_PKCS11_TOKENS": self.label,
            "SIGNING_SERVICE_PKCS11_PIN_FILE": str(self.pin_file),
        }

    @contextlib.contextmanager
    def removed(self) -> Iterator[None]:
        """The token taken away (its store moved aside), as an unplugged HSM; back afterwards."""
        aside = self.directory / "tokens-removed"
        self.token_dir.rename(aside)
        self.token_dir.mkdir()
        try:
            yield
        finally:
            self.token_dir.rmdir()
            aside.rename(self.token_dir)


def token_objects(token_label: str, key_id_hex: str) -> list:
    """The objects (private and public key) of one key in a configured token, by its CKA_ID."""
    from signing_service.identities import hsm

    pkcs11 = hsm.pkcs11_module()
    with hsm.sessions().session(token_label) as session:
        return list(session.get_objects({pkcs11.Attribute.ID: bytes.fromhex(key_id_hex)}))


# --- A real service in a subprocess, for end-to-end tests and benchmarks --------------------

SERVICE_COMMAND = str(Path(sys.executable).with_name("signing-service"))
START_TIMEOUT = 90
PORT_ATTEMPTS = 3
PORT_TAKEN = "the port is in use by another process"  # what `run` says of a taken port


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# What signing-manager says on stderr the first time it meets a service or an API key: the
# certificate it pins (-u), and that it registers. Tests of its output set these lines aside.
CLIENT_FIRST_USE_NOTICES = (
    "Trusting the service's certificate, SHA-256 ",
    "signing-manager: registering this machine with the API key ",
)


class ServiceError(RuntimeError):
    """The service subprocess did not start or stop as it should; the message has its log."""


@dataclasses.dataclass
class RunningService:
    """A ``signing-service run`` subprocess and what a test needs to reach it."""

    data_dir: Path
    env: dict[str, str]
    port: int = dataclasses.field(default_factory=free_port)
    # A restart must come back on its port; otherwise a port another test's service took
    # between free_port() and our bind (tests run side by side) is given up for a new one.
    keep_port: bool = False
    http: bool = False  # ``--http``: plain HTTP behind a proxy (the tests' nginx)
    # Another installation's command (a benchmark's baseline: another version of the service).
    command: str = SERVICE_COMMAND
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"{'http' if self.http else 'https'}://127.0.0.1:{self.port}"

    @property
    def cert_path(self) -> Path:
        return self.data_dir / "tls" / "cert.pem"

    def ssl_context(self) -> ssl.SSLContext:
        """Trust exactly the certificate this service generated, and check the host name."""
        return ssl.create_default_context(cafile=str(self.cert_path))

    def start(self, *extra_args: str) -> RunningService:
        attempts = 1
        while True:
            self.spawn(*extra_args)
            try:
                self.wait_until_ready()
                return self
            except ServiceError:
                if self.keep_port or PORT_TAKEN not in self.log() or attempts == PORT_ATTEMPTS:
                    raise
            attempts += 1
            self.port = free_port()

    def spawn(self, *extra_args: str) -> None:
        self.log_path = self.data_dir.with_name(self.data_dir.name + f"-{self.port}.log")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [self.command, "run", "--data-dir", str(self.data_dir),
                 "--bind", f"127.0.0.1:{self.port}", *(["--http"] if self.http else []),
                 *extra_args],
                env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServiceError(
                    f"signing-service exited with {self.process.returncode}:\n{self.log()}"
                )
            if self.http or self.cert_path.exists():
                context = None if self.http else self.ssl_context()
                with contextlib.suppress(OSError):
                    urllib.request.urlopen(  # noqa: S310 - our own loopback service
                        self.url + "/api/v1/version", context=context, timeout=5
                    ).read()
                    return
            time.sleep(0.2)
        self.stop()
        raise ServiceError(f"signing-service did not answer in {START_TIMEOUT}s:\n{self.log()}")

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
            raise ServiceError(f"signing-service ignored SIGTERM:\n{self.log()}") from None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def worker_pids(self) -> list[int]:
        """gunicorn's workers: the children of its master, this ``signing-service run`` (Linux)."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        return sorted(int(child) for child in children.split())

    def manage(self, *args: str, input_text: str | None = None) -> subprocess.CompletedProcess:
        """Run another ``signing-service`` command on this service's data and database."""
        return subprocess.run(
            [self.command, *args, "--data-dir", str(self.data_dir)],
            env=self.env,
            input=input_text,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def import_identity(self, made, folder: Path) -> subprocess.CompletedProcess:
        """``identity import`` of a ``make_identity`` .p12, its files written (0600) to
        ``folder``; the finished command."""
        folder.mkdir(parents=True, exist_ok=True)
        number = secrets.token_hex(4)
        p12, password = folder / f"identity-{number}.p12", folder / f"identity-{number}.txt"
        for path, content in ((p12, made.p12), (password, (made.password + "\n").encode())):
            path.write_bytes(content)
            path.chmod(0o600)
        return self.manage("identity", "import", str(p12), "--password-file", str(password))


def assert_stopped_with(service: RunningService, sentence: str) -> None:
    """The service refuses to start: exit status 1, no traceback, and the log's last line
    begins with ``sentence``."""
    try:
        service.start()
    except ServiceError:
        pass
    else:
        raise AssertionError(f"the service started:\n{service.log()}")
    finally:
        service.stop()  # should it have started after all, it must not outlive the test
    assert service.process.returncode == 1
    log = service.log()
    assert "Traceback" not in log, log
    assert log.strip().splitlines()[-1].startswith(sentence), log


@contextlib.contextmanager
def service_environment(database_server: str) -> Iterator[dict[str, str]]:
    """The environment for a service subprocess: quiet and small, on a fresh database of the
    given PostgreSQL server, or on SQLite in its data directory when ``database_server`` is
    empty. Nothing of the caller's ``SIGNING_*`` settings or ``DATABASE_URL`` leaks in."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SIGNING_") and key != "DATABASE_URL"
    }
    env.update(SIGNING_SERVICE_WORKERS="1", SIGNING_SERVICE_THREADS="4")
    # One interval of failed-authentication counting for a whole test (an hour), so that the
    # rows a test expects do not depend on when a minute happens to end.
    env.update(SIGNING_SERVICE_API_AUTH_FAILURE_INTERVAL="3600")
    if database_server.startswith("postgres"):
        with fresh_postgres_database(database_server) as url:
            yield {**env, "DATABASE_URL": url}
    else:
        yield env


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


class TcpForwarder:
    """A loopback port that forwards to another (a database server) until ``cut``: then every
    connection through it is closed and new ones are refused, as when the server stops, until
    ``restore``. For tests of what the service does while its database is gone."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.port = free_port()
        self.connections: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        threading.Thread(target=self.accept, args=(self.listener,), daemon=True).start()

    def cut(self) -> None:
        # shutdown wakes the thread blocked in accept(); close alone would leave it listening.
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self.lock:
            for connection in self.connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()
            self.connections.clear()

    def accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.connections += [client, server]
            for source, destination in ((client, server), (server, client)):
                threading.Thread(target=self.pump, args=(source, destination), daemon=True).start()

    @staticmethod
    def pump(source: socket.socket, destination: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                destination.sendall(data)
        with contextlib.suppress(OSError):
            destination.shutdown(socket.SHUT_WR)


class TemporaryPostgres:
    """A PostgreSQL server of a test's own: ``initdb`` in a temporary directory, ``pg_ctl`` on
    a free loopback port, trust authentication, one database ``signing``. Fault tests stop,
    crash and lock it, which they must never do to the machine's shared server.

    PostgreSQL refuses to run as root; under root its commands run as the ``postgres`` user,
    which then owns the directory."""

    def __init__(self):
        self.directory = Path(tempfile.mkdtemp(prefix="signing-postgres-"))
        self.data = self.directory / "data"
        self.port = free_port()
        self.bin_dir = self.find_bin_dir()
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")
        self.start()
        self.execute("CREATE DATABASE signing", database="postgres")

    @staticmethod
    def find_bin_dir() -> Path:
        """Debian keeps the server's commands out of PATH, in /usr/lib/postgresql/VERSION/bin."""
        candidates = sorted(
            Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3])
        )
        if candidates:
            return candidates[-1].parent
        raise RuntimeError("PostgreSQL's server is not installed (scripts/system-packages).")

    def url(self, database: str = "signing") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def run(self, command: str, *args: str) -> None:
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(
            [*as_postgres, str(self.bin_dir / command), *args],
            check=True, capture_output=True, timeout=120, cwd=self.directory,
        )  # fmt: skip

    def start(self) -> None:
        settings = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory}"
        log = str(self.directory / "postgres.log")
        self.run("pg_ctl", "-D", str(self.data), "-l", log, "-o", settings, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast``: a clean shutdown that ends sessions; ``immediate``: a crash, recovered
        from at the next start."""
        self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def execute(self, sql: str, parameters=(), database: str = "signing") -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True, connect_timeout=5) as connection:
            cursor = connection.execute(sql, parameters)
            return cursor.fetchall() if cursor.description else []

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


# --- The peak memory of a command, for tests and benchmarks ---------------------------------

# Runs a command (argv[2:]) and writes its peak resident memory, in KiB, to the file argv[1].
MEASURE_PEAK = (
    "import resource, subprocess, sys; status = subprocess.call(sys.argv[2:]); "
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); "
    "sys.exit(status)"
)


def run_measuring_peak(command: list[str], **options) -> tuple[subprocess.CompletedProcess, int]:
    """Run ``command`` as ``subprocess.run(command, **options)`` does; its result, and the most
    memory it held resident at any time (bytes).

    A process's peak counts the memory of the process that started it (Linux carries it over
    until the new program replaces it), so the command is started by a small Python of its
    own, which reports its only child's peak (``RUSAGE_CHILDREN``) in a file."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "peak"
        wrapped = [sys.executable, "-S", "-c", MEASURE_PEAK, str(report), *command]
        result = subprocess.run(wrapped, **options)
        return result, int(report.read_text()) * 1024  # kibibytes on Linux
