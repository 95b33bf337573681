"""The ``signing-manager`` command line end to end: the real command, as a subprocess, against a
real Signing Service over HTTPS, on the suite's database engine.

Every machine (``Cli``) has its own home, XDG config and state directories, and no keyring
backend, so the API key comes from ``SIGNING_MANAGER_API_KEY`` and the client token is kept in
a 0600 file, as on a CI machine. Identities are imported and the first API key created with the
operators' commands (``signing-service identity import``, ``apikey create``); further keys and
the on/off switches are the web interface's, pressed by the first admin.

Signatures are checked independently: CMS with ``openssl cms -verify`` against the test CA, raw
signatures with ``cryptography`` and the certificate's public key. Every refusal must be one
sentence on stderr, exit status 1 and no traceback, and must leave no signature file behind.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import ssl
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from asn1crypto import cms as asn1_cms
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding

from signing_service.pytest_plugin import suite_database_url
from signing_service.test import CLIENT_FIRST_USE_NOTICES, free_port, make_identity
from signing_service.test import TestIdentity as MadeIdentity

pytestmark = pytest.mark.e2e

ON_POSTGRES = suite_database_url().startswith("postgres")
CONTENT = b"The content to sign: not a Mach-O, not a package, just bytes.\n" * 50


# --- What every test checks ---------------------------------------------------------------------


def assert_refused(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """The command failed as the CLI must: exit status 1 and one sentence on stderr, naming
    each fragment; no traceback anywhere. The sentence. (On first use, the lines naming the
    certificate it now trusts and saying it registers may come before.)"""
    output = result.stdout + result.stderr
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in output, output
    lines = [
        line
        for line in result.stderr.strip().splitlines()
        if not line.startswith(CLIENT_FIRST_USE_NOTICES)
    ]
    assert len(lines) == 1, result.stderr
    sentence = lines[0]
    assert sentence.startswith("signing-manager: "), sentence
    for fragment in fragments:
        assert fragment in sentence, (fragment, sentence)
    return sentence


def openssl_cms_verify(
    signature: Path, content: Path, ca_file: Path
) -> subprocess.CompletedProcess:
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
    )


def assert_openssl_verifies(signature: Path, content: Path, ca_file: Path) -> None:
    result = openssl_cms_verify(signature, content, ca_file)
    assert result.returncode == 0, result.stderr
    assert "Verification successful" in result.stderr, result.stderr


def signer_certificate_sha1(signature: Path) -> str:
    """The SHA-1 of the certificate the CMS signature's one signer names (issuer and serial)."""
    signed_data = asn1_cms.ContentInfo.load(signature.read_bytes())["content"]
    (signer,) = signed_data["signer_infos"]
    sid = signer["sid"].chosen
    for choice in signed_data["certificates"]:
        certificate = choice.chosen
        if (
            certificate.issuer == sid["issuer"]
            and certificate.serial_number == sid["serial_number"].native
        ):
            return certificate.sha1.hex().upper()
    raise AssertionError("the signer's certificate is not in the signature")


def sha256_of_certificate_file(path: Path) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(path.read_text())).hexdigest()


def openssl_fingerprint(path: Path) -> str:
    """The SHA-256 fingerprint as openssl prints it (and the service's API page shows it)."""
    result = subprocess.run(
        ["openssl", "x509", "-in", str(path), "-noout", "-fingerprint", "-sha256"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return result.stdout.strip().split("=", 1)[1]


def leftovers(folder: Path) -> list[str]:
    """Temporary files a signature write could leave beside its target."""
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


# --- One service and its identities for the module -----------------------------------------------


@dataclass
class World:
    """The module's service, its operator and admin, what they set up, and one configured CLI."""

    service: object
    ops: object
    admin: object
    rsa: MadeIdentity
    ec: MadeIdentity
    twins: tuple[MadeIdentity, MadeIdentity]
    ca_file: Path
    cli: object  # configured with the API key the operator created, trusting (-u) the service
    tag: str

    def key(self, name: str) -> tuple[str, str]:
        """A new API key made on the web: its name (unique) and secret."""
        name = f"{name} {self.tag}"
        return name, self.admin.create_api_key(name)


@pytest.fixture(scope="module")
def world(module_service, module_ops, module_admin, cli_class, tmp_path_factory) -> World:
    tag = secrets.token_hex(3)
    rsa = make_identity(f"CLI RSA {tag}")
    ec_identity = make_identity(f"CLI EC {tag}", key_kind="ec256")
    twins = (make_identity(f"CLI Twin {tag}"), make_identity(f"CLI Twin {tag}"))
    assert twins[0].sha1 != twins[1].sha1
    with ThreadPoolExecutor(max_workers=5) as pool:
        imported = pool.submit(module_ops.import_identities, rsa, ec_identity, *twins)
        api_key = pool.submit(module_ops.create_api_key, f"CLI e2e {tag}")
        assert imported.result() == [made.sha1.upper() for made in (rsa, ec_identity, *twins)]
        secret = api_key.result()
    folder = tmp_path_factory.mktemp("world")
    ca_file = folder / "ca.pem"
    ca_file.write_bytes(rsa.pem(rsa.ca_certificate))
    cli = cli_class(folder / "machine", secret)
    cli.configure(module_service.url)
    return World(
        module_service, module_ops, module_admin, rsa, ec_identity, twins, ca_file, cli, tag
    )


@pytest.fixture
def files(tmp_path) -> Path:
    """A folder with a file to sign, ``content.bin``."""
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "content.bin").write_bytes(CONTENT)
    return folder


# --- Settings: -s, -p -----------------------------------------------------------------------------


def test_settings_are_saved_with_s_and_printed_with_p_as_the_guide_shows(world, new_cli):
    _, api_key = world.key("settings")
    cli = new_cli(api_key)
    url = world.service.url

    # Nothing saved yet, no key in the environment.
    assert cli.ok("-p", api_key=None).stdout.splitlines() == [
        "api_host: ",
        "trust self signed: false",
        "debug: false",
        "API key: Not set",
    ]

    # The guide's example; with no keyring, the key is taken from SIGNING_MANAGER_API_KEY.
    saved = cli.ok("-s", "-i", url, "-a", api_key, "-u")
    assert "SIGNING_MANAGER_API_KEY" in saved.stdout
    assert api_key not in saved.stdout
    printed = cli.ok("-p")
    assert printed.stdout.splitlines() == [
        f"api_host: {url}",
        "trust self signed: true",
        "debug: false",
        "API key: Set",
        f"API key from: SIGNING_MANAGER_API_KEY ({api_key[:14]}…)",  # the public part only
    ]
    assert api_key not in printed.stdout

    # Saving with no keyring and no SIGNING_MANAGER_API_KEY says where the key must go.
    assert_refused(
        cli.run("-s", "-i", url, "-a", api_key, "-u", api_key=None), "SIGNING_MANAGER_API_KEY"
    )

    # Saved again without -u and with -d (and a trailing slash, which is dropped).
    cli.ok("-s", "-i", url + "/", "-a", api_key, "-d")
    assert cli.ok("-p").stdout.splitlines()[:4] == [
        f"api_host: {url}",
        "trust self signed: false",
        "debug: true",
        "API key: Set",
    ]
    # Without the environment variable the key is not set: no keyring kept it.
    assert cli.ok("-p", api_key=None).stdout.splitlines()[-1] == "API key: Not set"
    assert json.loads(cli.config_file.read_text())["api_host"] == url

    # The key was never written anywhere under the machine's home.
    assert api_key not in cli.files_text()


def test_s_needs_i_and_a_and_an_https_url(world, new_cli):
    _, api_key = world.key("bad settings")
    cli = new_cli(api_key)
    url = world.service.url

    assert_refused(cli.run("-r"), "No service is configured", "signing-manager -s -i URL -a")
    assert_refused(cli.run("-s"), "-s needs both -i URL and -a API_KEY")
    assert_refused(cli.run("-s", "-i", url), "-s needs both -i URL and -a API_KEY")
    assert_refused(cli.run("-s", "-a", api_key), "-s needs both -i URL and -a API_KEY")
    assert_refused(cli.run("-i", url, "-a", api_key, "-u"), "saved with -s")
    http_url = url.replace("https://", "http://")
    assert_refused(cli.run("-s", "-i", http_url, "-a", api_key, "-u"), "https://", http_url)
    assert_refused(cli.run("-s", "-i", "127.0.0.1:443", "-a", api_key), "https://")
    # Nothing was saved by the refused commands.
    assert not cli.config_file.exists()
    assert cli.ok("-p").stdout.splitlines()[0] == "api_host: "
    # Nor is a plain-HTTP URL accepted from the environment.
    assert_refused(cli.run("-r", env={"SIGNING_MANAGER_URL": http_url}), "must start with https://")
    assert api_key not in cli.files_text()


# --- -r, identity, sign ------------------------------------------------------------------------


def test_r_lists_the_identities_with_upper_case_sha1(world):
    result = world.cli.ok("-r")
    for made in (world.rsa, world.ec, *world.twins):
        assert made.common_name in result.stdout
        assert made.sha1.upper() in result.stdout
        assert made.sha1.lower() not in result.stdout
    assert "RSA 2048" in result.stdout
    assert "EC 256" in result.stdout
    assert world.service.url in result.stdout  # the table's title names the service


def test_r_json_describes_each_identity(world):
    listed = json.loads(world.cli.ok("-r", "--json").stdout)
    by_sha1 = {item["sha1"]: item for item in listed}
    for made, key_type, key_size in [(world.rsa, "RSA", 2048), (world.ec, "EC", 256)]:
        certificate = made.certificate
        assert by_sha1[made.sha1.upper()] == {
            "common_name": made.common_name,
            "sha1": made.sha1.upper(),
            "sha256": certificate.fingerprint(hashes.SHA256()).hex().upper(),
            "key_type": key_type,
            "key_size": key_size,
            "not_after": by_sha1[made.sha1.upper()]["not_after"],
            "key_location": "database",
        }
        not_after = datetime.datetime.fromisoformat(by_sha1[made.sha1.upper()]["not_after"])
        assert not_after == certificate.not_valid_after_utc
    assert {made.sha1.upper() for made in world.twins} <= set(by_sha1)


def test_r_json_on_first_use_prints_only_json_on_stdout(world, new_cli):
    _, api_key = world.key("json first use")
    cli = new_cli(api_key)
    cli.configure(world.service.url)
    result = cli.run("-r", "--json")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)  # a script piping this into jq must get JSON alone
    assert world.rsa.sha1.upper() in {item["sha1"] for item in listed}


def test_identity_commands_copy_what_the_guide_menu_copies(world):
    cli, rsa = world.cli, world.rsa
    sha1 = rsa.sha1.upper()
    assert cli.ok("identity", "cn", sha1).stdout == rsa.common_name + "\n"
    assert cli.ok("identity", "cn", rsa.sha1.lower()).stdout == rsa.common_name + "\n"
    assert cli.ok("identity", "sha1", rsa.common_name).stdout == sha1 + "\n"
    assert cli.ok("identity", "sha1", world.ec.common_name).stdout == world.ec.sha1.upper() + "\n"
    assert cli.ok("identity", "codesign", rsa.common_name).stdout == (
        f'signing-manager codesign -f -s "{sha1}"\n'
    )
    assert cli.ok("identity", "productsign", sha1).stdout == (
        f'signing-manager productsign --sign "{sha1}" source.pkg destination.pkg\n'
    )
    shown = cli.ok("identity", "show", rsa.common_name).stdout
    assert f"Common name: {rsa.common_name}\n" in shown
    assert f"SHA-1:       {sha1}\n" in shown
    assert f"SHA-256:     {rsa.certificate.fingerprint(hashes.SHA256()).hex().upper()}\n" in shown
    assert "Key:         RSA 2048\nKey kept in: database\n" in shown
    assert "Issuer:      CN=Signing Manager Test CA\n" in shown
    assert shown.endswith(rsa.pem().decode())


def test_sign_writes_a_detached_cms_signature_openssl_verifies(world, files):
    cli, rsa = world.cli, world.rsa
    content = files / "content.bin"

    # By SHA-1 (as codesign -s takes it).
    signed = cli.ok("sign", "--identity", rsa.sha1.upper(), str(content))
    signature = files / "content.bin.p7s"
    assert signed.stdout == f"Signed {content} with “{rsa.common_name}”: {signature}\n"
    assert_openssl_verifies(signature, content, world.ca_file)
    assert signer_certificate_sha1(signature) == rsa.sha1.upper()

    # The signature is of this content: any other content fails to verify.
    tampered = files / "tampered.bin"
    tampered.write_bytes(CONTENT + b"!")
    assert openssl_cms_verify(signature, tampered, world.ca_file).returncode != 0

    # By common name, into a chosen file, with RSA-PSS.
    other = files / "by-name.sig.der"
    cli.ok(
        "sign",
        "--identity",
        rsa.common_name,
        "--algorithm",
        "rsa-pss-sha256",
        "-o",
        str(other),
        str(content),
    )
    assert_openssl_verifies(other, content, world.ca_file)
    assert leftovers(files) == []


def test_sign_with_an_ec_identity(world, files):
    cli, made = world.cli, world.ec
    content = files / "content.bin"
    cli.ok("sign", "--identity", made.common_name, str(content))
    signature = files / "content.bin.p7s"
    assert_openssl_verifies(signature, content, world.ca_file)
    assert signer_certificate_sha1(signature) == made.sha1.upper()
    cli.ok(
        "sign",
        "--identity",
        made.sha1.lower(),
        "--algorithm",
        "ecdsa-sha384",
        "-o",
        str(files / "sha384.p7s"),
        str(content),
    )
    assert_openssl_verifies(files / "sha384.p7s", content, world.ca_file)


def test_sign_digest_only_writes_a_raw_signature_the_public_key_verifies(world, files):
    cli = world.cli
    content = files / "content.bin"

    cli.ok("sign", "--identity", world.rsa.common_name, "--digest-only", str(content))
    signature = (files / "content.bin.sig").read_bytes()
    world.rsa.certificate.public_key().verify(
        signature, CONTENT, padding.PKCS1v15(), hashes.SHA256()
    )

    pss = files / "pss.sig"
    cli.ok(
        "sign",
        "--identity",
        world.rsa.sha1.upper(),
        "--digest-only",
        "--algorithm",
        "rsa-pss-sha512",
        "-o",
        str(pss),
        str(content),
    )
    world.rsa.certificate.public_key().verify(
        pss.read_bytes(),
        CONTENT,
        padding.PSS(mgf=padding.MGF1(hashes.SHA512()), salt_length=64),
        hashes.SHA512(),
    )

    ec_signature = files / "ec.sig"
    cli.ok(
        "sign",
        "--identity",
        world.ec.common_name,
        "--digest-only",
        "-o",
        str(ec_signature),
        str(content),
    )
    world.ec.certificate.public_key().verify(
        ec_signature.read_bytes(), CONTENT, ec.ECDSA(hashes.SHA256())
    )
    assert leftovers(files) == []


# --- The log and the secrets on disk -------------------------------------------------------------


def test_log_is_written_and_never_holds_a_secret(world, files):
    cli = world.cli
    # Something to log, with debug lines: a signature, and a refusal.
    debug = cli.run("-d", "sign", "--identity", world.rsa.sha1.upper(), str(files / "content.bin"))
    assert debug.returncode == 0, debug.stderr
    assert "DEBUG signing_manager.service: POST /sign -> 200" in debug.stderr  # -d: to stderr too
    assert_refused(
        cli.run("sign", "--identity", "Nobody at all", str(files / "content.bin")), "Nobody at all"
    )

    assert cli.ok("log", "--path").stdout == f"{cli.log_file}\n"
    assert cli.log_file.name == "SigningManager.log"
    log = cli.log_file.read_text()
    assert len(log.splitlines()) >= 3, log
    assert "Registered with API key smk_" in log
    assert "Pinned the service's certificate" in log
    assert "Signed" in log
    assert "Nobody at all" in log
    assert "DEBUG signing_manager.service: POST /sign -> 200" in log
    shown = cli.ok("log").stdout.splitlines()
    assert shown[0] == str(cli.log_file)
    # The log's last 40 lines as they were, ending with this run's own "Started" line.
    assert shown[1:] == cli.log_file.read_text().splitlines()[:-1][-40:]
    assert shown[-1].endswith("Started: signing-manager log")

    client_token = cli.token_file.read_text().strip()
    for secret in (cli.api_key, client_token):
        assert secret not in log
        assert secret[12:] not in log  # not even the part after the prefix and id
    # The API key is nowhere on disk; the client token only in its own file.
    assert cli.api_key not in cli.files_text()
    others = [p for p in cli.home.rglob("*") if p.is_file() and p != cli.token_file]
    assert all(client_token not in p.read_text(errors="replace") for p in others)


def test_the_client_token_file_is_readable_by_the_user_alone(world):
    world.cli.ok("-r")
    token_file = world.cli.token_file
    assert token_file.is_file()
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert token_file.read_text().startswith("smc_")
    assert not list(token_file.parent.glob("*.tmp"))


# --- TLS: pinning, replaced certificates, untrusted and unreachable services ------------------


def test_u_pins_the_certificate_and_a_replaced_one_is_refused(start_service, new_cli, tmp_path):
    service = start_service()
    ops_secret = service.manage("apikey", "create", "pinning")
    assert ops_secret.returncode == 0, ops_secret.stderr
    cli = new_cli(ops_secret.stdout.strip())
    cli.configure(service.url)
    first = sha256_of_certificate_file(service.cert_path)

    # First use: the presented certificate's SHA-256 is shown and kept.
    result = cli.ok("-r")
    shown = openssl_fingerprint(service.cert_path)
    assert f"Trusting the service's certificate, SHA-256 {shown}\n" in result.stderr
    assert json.loads(cli.config_file.read_text())["pinned_sha256"] == first
    assert sha256_of_certificate_file(cli.config_dir / "pinned-certificate.pem") == first
    assert "Trusting" not in cli.ok("-r").stdout  # only the first time

    # The service comes back on the same address with a new certificate.
    port = service.port
    assert service.stop() == 0
    shutil.rmtree(service.data_dir / "tls")
    restarted = start_service(service.data_dir, port)
    second = sha256_of_certificate_file(restarted.cert_path)
    assert second != first

    sentence = assert_refused(
        cli.run("-r"), shown, openssl_fingerprint(restarted.cert_path), "-s -i URL -a API_KEY -u"
    )
    assert "Traceback" not in sentence
    content = tmp_path / "content.bin"
    content.write_bytes(CONTENT)
    assert_refused(cli.run("sign", "--identity", "anything", str(content)), shown)
    assert not (tmp_path / "content.bin.p7s").exists()
    # The pin is unchanged by the refusals.
    assert json.loads(cli.config_file.read_text())["pinned_sha256"] == first


def test_s_u_again_trusts_a_replaced_certificate(start_service, new_cli):
    service = start_service()
    created = service.manage("apikey", "create", "re-trust")
    assert created.returncode == 0, created.stderr
    cli = new_cli(created.stdout.strip())
    cli.configure(service.url)
    cli.ok("-r")
    port = service.port
    assert service.stop() == 0
    shutil.rmtree(service.data_dir / "tls")
    restarted = start_service(service.data_dir, port)
    second = sha256_of_certificate_file(restarted.cert_path)
    assert_refused(cli.run("-r"), openssl_fingerprint(restarted.cert_path))

    cli.configure(restarted.url)
    result = cli.run("-r")
    assert result.returncode == 0, result.stderr
    shown = openssl_fingerprint(restarted.cert_path)
    assert f"Trusting the service's certificate, SHA-256 {shown}\n" in result.stderr
    assert json.loads(cli.config_file.read_text())["pinned_sha256"] == second


def test_a_self_signed_service_is_refused_without_u(world, new_cli):
    _, api_key = world.key("no trust")
    cli = new_cli(api_key)
    cli.configure(world.service.url, trust=False)
    assert_refused(cli.run("-r"), "not trusted", "-u")
    assert_refused(cli.run("identity", "sha1", world.rsa.common_name), "-u")
    # Nothing was pinned, and the API key was never sent: no client token.
    assert not (cli.config_dir / "pinned-certificate.pem").exists()
    assert not cli.token_file.exists()


def test_an_unreachable_service_is_reported(new_cli, tmp_path):
    url = f"https://127.0.0.1:{free_port()}"  # nothing listens there
    content = tmp_path / "content.bin"
    content.write_bytes(CONTENT)
    for trust in (True, False):
        cli = new_cli("smk_0123456789_" + secrets.token_urlsafe(32))
        cli.configure(url, trust=trust)
        refused = f"Nothing answers at 127.0.0.1:{urlsplit(url).port} (connection refused)"
        assert_refused(cli.run("-r"), refused, "check that the Signing Service runs there")
        assert_refused(cli.run("sign", "--identity", "X", str(content)), refused)
        assert not (tmp_path / "content.bin.p7s").exists()


# --- Refusals of the service: 401, 403, 404, 422, 503 -----------------------------------------


def test_a_wrong_api_key_is_refused(world, new_cli, files):
    wrong = "smk_0123456789_" + secrets.token_urlsafe(32)
    cli = new_cli(wrong)
    cli.configure(world.service.url)
    assert_refused(
        cli.run("-r"),
        "The service does not accept the API key smk_0123456789… from SIGNING_MANAGER_API_KEY",
        "set the environment variable SIGNING_MANAGER_API_KEY",
    )
    assert_refused(cli.run("sign", "--identity", world.rsa.sha1, str(files / "content.bin")))
    assert not (files / "content.bin.p7s").exists()
    assert not cli.token_file.exists()

    # With -d, debug lines go to stderr too; still no traceback, and no key anywhere.
    debug = cli.run("-d", "-r")
    assert debug.returncode == 1
    assert "Traceback" not in debug.stderr
    assert (
        debug.stderr.strip()
        .splitlines()[-1]
        .startswith("signing-manager: The service does not accept the API key")
    )
    assert "DEBUG" in debug.stderr
    assert wrong not in debug.stderr + debug.stdout
    assert wrong not in cli.files_text()


def test_an_inactive_api_key_is_refused_until_it_is_active_again(world, new_cli, files):
    name, api_key = world.key("inactive key")
    cli = new_cli(api_key)
    cli.configure(world.service.url)
    cli.ok("-r")

    world.admin.toggle_api_key(name)  # inactive
    assert_refused(cli.run("-r"), "The service refused", f"The API key “{name}” is inactive")
    assert_refused(
        cli.run("sign", "--identity", world.rsa.sha1, str(files / "content.bin")),
        f"“{name}” is inactive",
    )
    assert not (files / "content.bin.p7s").exists()

    world.admin.toggle_api_key(name)  # active again
    cli.ok("sign", "--identity", world.rsa.sha1, str(files / "content.bin"))
    assert_openssl_verifies(files / "content.bin.p7s", files / "content.bin", world.ca_file)


def test_an_inactive_client_is_refused_until_it_is_active_again(world, new_cli, files):
    name, api_key = world.key("inactive client")
    cli = new_cli(api_key)
    cli.configure(world.service.url)
    cli.ok("-r")
    (client_pk,) = world.admin.client_pks(name)

    world.admin.toggle_client(client_pk)  # inactive
    assert_refused(cli.run("-r"), "The service refused", "This client (", ") is inactive")
    assert_refused(
        cli.run("sign", "--identity", world.ec.common_name, str(files / "content.bin")),
        "is inactive",
    )
    assert not (files / "content.bin.p7s").exists()

    world.admin.toggle_client(client_pk)  # active again
    assert world.ec.sha1.upper() in cli.ok("-r").stdout
    assert world.admin.client_pks(name) == [client_pk]


def test_a_deleted_client_registers_again_transparently(world, new_cli, files):
    name, api_key = world.key("deleted client")
    cli = new_cli(api_key)
    cli.configure(world.service.url)
    cli.ok("-r")
    (first_pk,) = world.admin.client_pks(name)
    first_token = cli.token_file.read_text()

    world.admin.delete_client(first_pk)
    assert world.admin.client_pks(name) == []

    cli.ok("sign", "--identity", world.rsa.common_name, str(files / "content.bin"))
    assert_openssl_verifies(files / "content.bin.p7s", files / "content.bin", world.ca_file)
    (second_pk,) = world.admin.client_pks(name)
    assert second_pk != first_pk
    assert cli.token_file.read_text() != first_token
    assert cli.token_file.stat().st_mode & 0o777 == 0o600
    assert "registering again" in cli.log_file.read_text()


def test_an_unknown_identity_is_refused(world, files):
    cli = world.cli
    content = files / "content.bin"
    for wanted in ("No Such Identity", "0" * 40):
        assert_refused(
            cli.run("sign", "--identity", wanted, str(content)),
            f"No identity available to this API key matches “{wanted}”",
            "signing-manager -r",
        )
        assert_refused(cli.run("identity", "cn", wanted), f"“{wanted}”")
    # In the wrong case: the identity is named as a close candidate, not used.
    wrong_case = world.rsa.common_name.lower()
    assert_refused(
        cli.run("sign", "--identity", wrong_case, str(content)),
        f"No identity available to this API key matches “{wrong_case}”; close: "
        f"“{world.rsa.common_name}” ({world.rsa.sha1.upper()})",
    )
    assert_refused(
        cli.run("sign", "--identity", "No Such Identity", "--digest-only", str(content)),
        "No Such Identity",
    )
    assert sorted(path.name for path in files.iterdir()) == ["content.bin"]


def test_a_missing_input_file_is_refused(world, files):
    missing = files / "missing.bin"
    assert_refused(
        world.cli.run("sign", "--identity", world.rsa.sha1, str(missing)), f"Cannot read {missing}"
    )
    assert sorted(path.name for path in files.iterdir()) == ["content.bin"]


def test_an_output_that_cannot_be_written_is_refused_before_anything_is_signed(
    world, files, unwritable_outputs
):
    folder, cases = unwritable_outputs
    signed_before = len(world.ops.signatures(world.rsa.sha1))

    for output, sentence in cases:
        result = world.cli.run(
            "sign",
            "--identity",
            world.rsa.sha1,
            "-o",
            str(output),
            str(files / "content.bin"),
            obeying_permissions=True,  # else root writes in the read-only folder
        )

        assert assert_refused(result) == f"signing-manager: {sentence}"

    assert len(world.ops.signatures(world.rsa.sha1)) == signed_before
    assert sorted(path.name for path in folder.rglob("*")) == ["a file", "read-only"]
    assert sorted(path.name for path in files.iterdir()) == ["content.bin"]


def test_an_algorithm_that_does_not_fit_the_key_is_refused_and_nothing_is_written(world, files):
    cli = world.cli
    content = files / "content.bin"
    signature = files / "content.bin.p7s"
    cli.ok("sign", "--identity", world.rsa.sha1.upper(), str(content))
    before = signature.read_bytes()

    assert_refused(
        cli.run("sign", "--identity", world.rsa.sha1, "--algorithm", "ecdsa-sha256", str(content)),
        "The service refused",
        f"ecdsa-sha256 cannot be used with the RSA key of “{world.rsa.common_name}”",
    )
    assert_refused(
        cli.run(
            "sign",
            "--identity",
            world.ec.common_name,
            "--digest-only",
            "--algorithm",
            "rsa-pkcs1v15-sha256",
            str(content),
        ),
        f"rsa-pkcs1v15-sha256 cannot be used with the EC key of “{world.ec.common_name}”",
    )
    # The earlier signature is untouched, no .sig appeared, and no temporary file is left.
    assert signature.read_bytes() == before
    assert sorted(path.name for path in files.iterdir()) == ["content.bin", "content.bin.p7s"]


def test_a_common_name_shared_by_two_identities_is_ambiguous(world, files):
    cli = world.cli
    first, second = world.twins
    content = files / "content.bin"
    sentence = assert_refused(
        cli.run("sign", "--identity", first.common_name, str(content)),
        f"2 identities match “{first.common_name}”",
        "give one's SHA-1 or whole name",
        first.sha1.upper(),
        second.sha1.upper(),
    )
    assert first.sha1.lower() not in sentence
    assert_refused(cli.run("identity", "sha1", first.common_name), first.sha1.upper())
    assert not (files / "content.bin.p7s").exists()

    # Each is usable by its SHA-1.
    cli.ok("sign", "--identity", second.sha1.upper(), str(content))
    assert signer_certificate_sha1(files / "content.bin.p7s") == second.sha1.upper()
    assert_openssl_verifies(files / "content.bin.p7s", content, world.ca_file)


def test_no_identity_at_all(start_service, new_cli, files):
    service = start_service()
    created = service.manage("apikey", "create", "lonely")
    assert created.returncode == 0, created.stderr
    cli = new_cli(created.stdout.strip())
    cli.configure(service.url)
    cli.ok("-r")  # pins and registers
    assert "No identity is available to this API key." in cli.ok("-r").stdout
    assert json.loads(cli.ok("-r", "--json").stdout) == []
    assert_refused(
        cli.run("sign", "--identity", "Developer ID Application", str(files / "content.bin")),
        "No identity available to this API key matches",
    )
    assert_refused(cli.run("identity", "codesign", "a" * 40), "No identity available")
    assert sorted(path.name for path in files.iterdir()) == ["content.bin"]


@contextlib.contextmanager
def audit_inserts_fail(service):
    """Every insert into the audit table fails while inside, as on a full disk."""
    if ON_POSTGRES:
        import psycopg

        def run_sql(sql: str) -> None:
            with psycopg.connect(service.env["DATABASE_URL"], autocommit=True) as connection:
                connection.execute(sql)

        run_sql(
            "CREATE FUNCTION cli_e2e_audit_disk_full() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit disk full'; END $$"
        )
        run_sql(
            "CREATE TRIGGER cli_e2e_audit_disk_full BEFORE INSERT ON audit_auditevent "
            "FOR EACH ROW EXECUTE FUNCTION cli_e2e_audit_disk_full()"
        )
        try:
            yield
        finally:
            run_sql("DROP TRIGGER cli_e2e_audit_disk_full ON audit_auditevent")
            run_sql("DROP FUNCTION cli_e2e_audit_disk_full()")
    else:
        database = service.data_dir / "signing-service.sqlite3"
        assert database.is_file()

        def run_sql(sql: str) -> None:
            with contextlib.closing(sqlite3.connect(database, timeout=30)) as connection:
                connection.execute(sql)
                connection.commit()

        run_sql(
            "CREATE TRIGGER cli_e2e_audit_disk_full BEFORE INSERT ON audit_auditevent "
            "BEGIN SELECT RAISE(ABORT, 'audit disk full'); END"
        )
        try:
            yield
        finally:
            run_sql("DROP TRIGGER cli_e2e_audit_disk_full")


def test_a_service_that_cannot_audit_is_reported(world, new_cli, files):
    _, api_key = world.key("audit down")
    cli = new_cli(api_key)
    cli.configure(world.service.url)
    cli.ok("-r")
    content = files / "content.bin"
    no_retry = {"SIGNING_MANAGER_RETRY_SECONDS": "0"}
    with audit_inserts_fail(world.service):
        assert_refused(cli.run("-r", env=no_retry), "The service refused", "could not be audited")
        assert_refused(
            cli.run("sign", "--identity", world.rsa.sha1, str(content), env=no_retry),
            "could not be audited",
        )
        # With a budget, the 503 is asked again after the service's Retry-After (5 s), said on
        # standard error, and then reported in one sentence as before.
        retried = cli.run("-r", env={"SIGNING_MANAGER_RETRY_SECONDS": "6"})
    assert retried.returncode == 1
    lines = retried.stderr.strip().splitlines()
    assert lines[0].endswith(
        "could not be audited, so it was not carried out. Trying again in 5 s."
    )
    assert lines[1:] == ["signing-manager: The service refused: The request could not be audited, "
                         "so it was not carried out."]  # fmt: skip
    assert not (files / "content.bin.p7s").exists()
    cli.ok("sign", "--identity", world.rsa.sha1, str(content))
    assert_openssl_verifies(files / "content.bin.p7s", content, world.ca_file)
