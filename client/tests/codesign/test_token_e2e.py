"""Keys that never leave a PKCS#11 token (SoftHSM2), end to end: a service started with a
token of its own, a key generated there by ``signing-service identity generate``, its CSR
issued by the test CA and the certificate attached; then ``signing-manager codesign`` and
``productsign`` sign with it and ``openssl cms -verify`` checks what they wrote. Also: a .p12
imported into the token leaves no key bytes in the data directory or the log, many signatures
at once from threads against two workers, the token taken away mid-run (503 audited, then
recovery), a wrong PIN at start, and moving a sealed key into the token on the command line."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import secrets
import subprocess
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from signing_manager.algorithms import Algorithm, verify_digest
from signing_service import test as support
from signing_service.pytest_plugin import suite_database_url
from signing_service.test import (
    RunningService,
    SoftHsm,
    assert_stopped_with,
    fake_ca,
    issue_for_request,
    make_identity,
)

pytestmark = [pytest.mark.e2e, pytest.mark.database]

TEAM = "ABCDE12345"
INSTALLER_USAGE = x509.ObjectIdentifier("1.2.840.113635.100.4.13")


class TokenWorld:
    """The module's service, its token, and a token-held identity issued for a CSR."""

    def __init__(self, service: RunningService, token: SoftHsm, folder):
        self.service = service
        self.token = token
        self.folder = folder

    def manage_ok(self, *args: str) -> str:
        result = self.service.manage(*args)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def generate_and_attach(self, common_name: str, key: str = "rsa2048") -> x509.Certificate:
        """``identity generate`` → the CSR, checked by openssl → issued by the test CA →
        ``identity attach``; the issued certificate."""
        csr_pem = self.manage_ok(
            "identity", "generate", "--key", key, "--common-name", common_name,
            "--email", "release@example.com",
        )  # fmt: skip
        csr_file = self.folder / f"{secrets.token_hex(4)}.csr"
        csr_file.write_text(csr_pem)
        checked = subprocess.run(
            ["openssl", "req", "-in", str(csr_file), "-verify", "-noout"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert "verify OK" in checked.stdout + checked.stderr, checked.stderr
        pending = [line for line in self.manage_ok("identity", "list").splitlines()
                   if line.startswith("pending ") and line.endswith(common_name)]  # fmt: skip
        number = pending[0].split("\t")[0].split()[1]
        certificate = issue_for_request(
            x509.load_pem_x509_csr(csr_pem.encode()),
            [ExtendedKeyUsageOID.CODE_SIGNING, INSTALLER_USAGE],
        )
        certificate_file = self.folder / f"{number}.cer"
        certificate_file.write_bytes(certificate.public_bytes(serialization.Encoding.DER))
        attached = self.manage_ok("identity", "attach", number, str(certificate_file))
        assert attached == f"{common_name}\t{sha1(certificate).upper()}\n"
        return certificate

    def api_key(self) -> str:
        return self.manage_ok("apikey", "create", f"token e2e {secrets.token_hex(3)}").strip()

    def http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.service.url, verify=self.service.ssl_context(), timeout=60
        )

    def client_token(self) -> str:
        with self.http() as http:
            registered = http.post(
                "/api/v1/clients",
                json={"hostname": "token-e2e", "os": "Linux", "client_version": "1",
                      "machine_id": secrets.token_hex(8)},
                headers={"Authorization": f"Bearer {self.api_key()}"},
            )  # fmt: skip
        assert registered.status_code == 201, registered.text
        return registered.json()["client_token"]

    def sign_records(self, certificate: x509.Certificate) -> list[dict]:
        today = datetime.datetime.now(datetime.UTC).date().isoformat()
        exported = self.manage_ok(
            "audit", "export", "--from", today, "--to", today, "--format", "json"
        )
        return [
            row
            for row in json.loads(exported)["records"]
            if row["request_type"] == "sign" and row["identity_sha1"] == sha1(certificate)
        ]


def sha1(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA1()).hex()  # noqa: S303


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A service with two workers and a SoftHSM2 token of its own."""
    folder = tmp_path_factory.mktemp("token-e2e")
    token = SoftHsm(folder / "softhsm").initialise()
    with support.service_environment(suite_database_url()) as env:
        env = {**env, **token.environment(), "SIGNING_SERVICE_WORKERS": "2"}
        service = RunningService(folder / "data", env)
        service.start()
        try:
            yield TokenWorld(service, token, folder)
        finally:
            service.stop()


@pytest.fixture(scope="module")
def token_identity(world) -> x509.Certificate:
    return world.generate_and_attach(f"Developer ID Application: Token E2E ({TEAM})")


@pytest.fixture
def cli(world, new_cli):
    machine = new_cli(world.api_key())
    machine.configure(world.service.url)
    return machine


def test_codesign_with_a_key_generated_in_the_token(
    world, token_identity, cli, machos, independent, files_folder
):
    path = machos.copy("arm64-exe", files_folder)
    result = cli.run(
        "codesign", "-s", sha1(token_identity).upper(), "-i", "com.example.t", str(path)
    )
    assert result.returncode == 0, result.stderr
    assert independent.openssl_verifies(path.read_bytes(), fake_ca()[0]) == 1
    shown = cli.ok("identity", "show", sha1(token_identity).upper()).stdout
    assert "Key kept in: token:" + world.token.label in shown


def test_productsign_with_a_key_generated_in_the_token(
    world, token_identity, cli, packages, tmp_path
):
    source = packages.write(packages.build("product"), "source.pkg")
    destination = tmp_path / "signed.pkg"
    cli.ok("productsign", "--sign", sha1(token_identity).upper(), str(source), str(destination))
    packages.assert_openssl_verifies(destination.read_bytes(), token_identity, fake_ca()[0])


def test_an_imported_key_leaves_no_bytes_in_the_data_or_the_log(world, tmp_path):
    made = make_identity(key_kind="rsa2048")
    p12 = tmp_path / "id.p12"
    p12.write_bytes(made.p12)
    password = tmp_path / "password"
    password.write_text(made.password + "\n")
    imported = world.manage_ok(
        "identity", "import", str(p12), "--password-file", str(password), "--token"
    )
    assert imported == f"{made.common_name}\t{made.sha1.upper()}\n"
    assert f"token:{world.token.label}\t{made.common_name}" in world.manage_ok("identity", "list")
    numbers = made.private_key.private_numbers()
    secrets_of_key = [numbers.d, numbers.p, numbers.q]
    stored = (
        b"".join(path.read_bytes() for path in world.service.data_dir.rglob("*") if path.is_file())
        + world.service.log().encode()
    )
    for secret in secrets_of_key:
        width = (secret.bit_length() + 7) // 8
        for needle in (secret.to_bytes(width, "big"), secret.to_bytes(width, "little")):
            assert needle not in stored
            assert needle.hex().encode() not in stored
            assert base64.b64encode(needle)[:40] not in stored


def test_concurrent_signatures_from_threads_and_workers(world, token_identity):
    token = world.client_token()
    public_key = token_identity.public_key()

    def sign_batch(number: int) -> bool:
        digests = [hashlib.sha256(f"{number}-{i}".encode()).digest() for i in range(5)]
        with world.http() as http:
            response = http.post(
                "/api/v1/sign/batch",
                json={"requests": [
                    {"certificate": sha1(token_identity), "algorithm": "rsa-pss-sha256",
                     "digest": base64.b64encode(digest).decode()} for digest in digests
                ]},
                headers={"Authorization": f"Bearer {token}"},
            )  # fmt: skip
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        return all(
            verify_digest(
                public_key, Algorithm.RSA_PSS_SHA256, digest, base64.b64decode(item["signature"])
            )
            for digest, item in zip(digests, results, strict=True)
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(sign_batch, range(40)))


def test_a_token_taken_away_gives_503_audited_and_signing_resumes(world, token_identity):
    token = world.client_token()
    digest = hashlib.sha256(b"while the token is away").digest()
    body = {
        "certificate": sha1(token_identity),
        "algorithm": "rsa-pkcs1v15-sha256",
        "digest": base64.b64encode(digest).decode(),
    }
    headers = {"Authorization": f"Bearer {token}"}
    with world.http() as http:
        assert http.post("/api/v1/sign", json=body, headers=headers).status_code == 200
        with world.token.removed():
            # Two workers: each finds the token gone.
            for _ in range(4):
                response = http.post("/api/v1/sign", json=body, headers=headers)
                assert response.status_code == 503, response.text
                assert response.json()["error"]["code"] == "key_unavailable"
                assert response.headers["Retry-After"]
            assert http.get("/readyz").status_code == 503
        for _ in range(6):
            response = http.post("/api/v1/sign", json=body, headers=headers)
            assert response.status_code == 200, response.text
            signature = base64.b64decode(response.json()["signature"])
            assert verify_digest(
                token_identity.public_key(), Algorithm.RSA_PKCS1V15_SHA256, digest, signature
            )
        assert http.get("/readyz").status_code == 200
    refused = [row for row in world.sign_records(token_identity) if row["status"] == "failure"]
    assert len(refused) >= 4
    assert {row["reason"] for row in refused} == {"key_unavailable"}


def test_a_wrong_pin_stops_the_start_with_one_clear_sentence(world, tmp_path):
    wrong_pin = tmp_path / "wrong-pin"
    wrong_pin.write_text("not-the-pin\n")
    env = {**world.service.env, "SIGNING_SERVICE_PKCS11_PIN_FILE": str(wrong_pin)}
    assert_stopped_with(
        RunningService(tmp_path / "data", env),
        f"signing-service: configuration error: The token “{world.token.label}” refuses the PIN",
    )


@pytest.fixture
def files_folder(tmp_path):
    folder = tmp_path / "files"
    folder.mkdir()
    return folder


def test_move_to_token_and_attach_on_the_command_line(world, tmp_path):
    made = make_identity(key_kind="ec256")
    p12, password = tmp_path / "id.p12", tmp_path / "password"
    p12.write_bytes(made.p12)
    password.write_text(made.password + "\n")
    world.manage_ok("identity", "import", str(p12), "--password-file", str(password))
    assert f"database\t{made.common_name}" in world.manage_ok("identity", "list")
    moved = world.manage_ok("identity", "move-to-token", made.sha1.upper(), "--token")
    assert moved == f"{made.common_name}\ttoken:{world.token.label}\n"
    assert f"token:{world.token.label}\t{made.common_name}" in world.manage_ok("identity", "list")
    again = world.service.manage("identity", "move-to-token", made.sha1, "--token")
    assert again.returncode == 1
    (sentence,) = again.stderr.strip().splitlines()
    assert f"The key of “{made.common_name}” is in a token already." in sentence

    token = world.client_token()
    digest = hashlib.sha384(b"moved").digest()
    with world.http() as http:
        response = http.post(
            "/api/v1/sign",
            json={"certificate": made.sha1, "algorithm": "ecdsa-sha384",
                  "digest": base64.b64encode(digest).decode()},
            headers={"Authorization": f"Bearer {token}"},
        )  # fmt: skip
    assert response.status_code == 200, response.text
    signature = base64.b64decode(response.json()["signature"])
    assert verify_digest(made.certificate.public_key(), Algorithm.ECDSA_SHA384, digest, signature)

    # A pending key: its CSR again, and a certificate for another key refused in one line.
    csr = world.manage_ok("identity", "generate", "--key", "ec-p384", "--common-name", "Pending")
    number = next(
        line.split("\t")[0].split()[1]
        for line in world.manage_ok("identity", "list").splitlines()
        if line.startswith("pending ") and line.endswith("\tPending")
    )
    assert world.manage_ok("identity", "csr", number) == csr
    other = tmp_path / "other.pem"
    other.write_bytes(made.pem())
    refused = world.service.manage("identity", "attach", number, str(other))
    assert refused.returncode == 1
    (sentence,) = refused.stderr.strip().splitlines()
    assert "This certificate is for another key, not the one generated for “Pending”" in sentence
    assert f"pending {number}\t" in world.manage_ok("identity", "list")
