"""A Keychain-style identity (the leaf alone in its .p12) signs with the whole chain once an
admin uploads its issuers: the real service, the ops CLI, the real client, and checks we did not
write (``openssl cms -verify`` given only the root; ``openssl pkcs7 -print_certs``)."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from signing_manager.codesign.blobs import BlobMagic, Slot, SuperBlob
from signing_manager.codesign.verify import slices_of
from signing_manager.key_usage import APPLE_INSTALLER_SIGNING
from signing_service.test import (
    P12_PASSWORD,
    TestIdentity,
    cached_key,
    fake_ca,
    make_certificate,
    make_intermediate_ca,
    openssl_p12,
)

pytestmark = pytest.mark.e2e

PEM = serialization.Encoding.PEM
INTERMEDIATE = "Signing Manager Test Intermediate CA"
ROOT = "Signing Manager Test CA"


def leaf_only(common_name: str, index: int, **options) -> TestIdentity:
    key = cached_key("rsa2048", index)
    intermediate = make_intermediate_ca()
    certificate = make_certificate(key, common_name, issuer=intermediate, **options)
    p12 = openssl_p12(certificate, key, P12_PASSWORD)  # no -certfile: the leaf alone
    return TestIdentity(p12, P12_PASSWORD, certificate, key, fake_ca()[0])


def printed_certificates(cms_der: bytes, folder: Path) -> list[str]:
    """The subjects of the CMS's certificates in their order, as openssl prints them."""
    (folder / "cms.der").write_bytes(cms_der)
    result = subprocess.run(
        ["openssl", "pkcs7", "-inform", "DER", "-in", "cms.der", "-print_certs", "-noout"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return [line for line in result.stdout.splitlines() if line.startswith("subject=")]


@pytest.fixture(scope="module")
def uploaded_issuers(module_service, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cas")
    bundle = folder / "issuers.pem"
    bundle.write_bytes(make_intermediate_ca()[0].public_bytes(PEM) + fake_ca()[0].public_bytes(PEM))
    result = module_service.manage("ca", "import", str(bundle))
    assert result.returncode == 0, result.stderr
    assert [line.split("\t")[1] for line in result.stdout.splitlines()] == [INTERMEDIATE, ROOT]
    return fake_ca()[0]


@pytest.fixture
def cli(module_service, module_ops, new_cli):
    machine = new_cli(module_ops.create_api_key(f"chains {secrets.token_hex(3)}"))
    machine.configure(module_service.url)
    return machine


def test_a_leaf_only_identity_is_imported_with_a_warning(module_service, tmp_path):
    made = leaf_only(f"Developer ID Application: Lonely {secrets.token_hex(3)} (ABCDE12345)", 6)

    result = module_service.import_identity(made, tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{made.common_name}\t{made.sha1.upper()}\n"
    assert "the chain does not reach a root certificate" in result.stderr
    assert "signing-service ca import FILE" in result.stderr


def test_a_leaf_whose_issuer_nobody_knows_still_signs(cli, module_service, machos, tmp_path):
    key = cached_key("rsa2048", 12)
    stranger = make_intermediate_ca("Nobody's Intermediate CA", index=94)
    name = f"Developer ID Application: Stranger {secrets.token_hex(3)} (ABCDE12345)"
    certificate = make_certificate(key, name, issuer=stranger)
    made = TestIdentity(openssl_p12(certificate, key, P12_PASSWORD), P12_PASSWORD, certificate,
                        key, stranger[0])  # fmt: skip
    imported = module_service.import_identity(made, tmp_path / "ops")
    assert "the chain does not reach a root certificate" in imported.stderr
    path = machos.copy("arm64-exe", tmp_path, "tool")

    cli.ok("codesign", "-s", made.sha1, str(path))

    (macho,) = slices_of(path.read_bytes())
    entries = SuperBlob.parse(macho.signature_data, BlobMagic.EMBEDDED_SIGNATURE).entries
    assert len(printed_certificates(entries[Slot.SIGNATURE][8:], tmp_path)) == 1  # the leaf
    # Sound, but not trusted: checking says so rather than passing in silence.
    checked = cli.run("codesign", "-v", str(path))
    assert checked.returncode == 1
    assert f"the certificate chain stops at “{name}”, whose issuer is not known" in checked.stderr


def test_codesign_embeds_leaf_intermediate_and_root_and_openssl_needs_only_the_root(
    cli, module_ops, uploaded_issuers, machos, independent, tmp_path
):
    made = leaf_only(f"Developer ID Application: Keychain {secrets.token_hex(3)} (ABCDE12345)", 7)
    module_ops.import_identity(made)
    path = machos.copy("arm64-exe", tmp_path, "tool")

    cli.ok("codesign", "-s", made.sha1, str(path))

    assert independent.openssl_verifies(path.read_bytes(), uploaded_issuers) == 1
    (macho,) = slices_of(path.read_bytes())
    entries = SuperBlob.parse(macho.signature_data, BlobMagic.EMBEDDED_SIGNATURE).entries
    subjects = printed_certificates(entries[Slot.SIGNATURE][8:], tmp_path)
    # Stored as Apple stores them, in DER's order; verifiers find the chain by issuer.
    assert len(subjects) == 3, subjects
    assert {INTERMEDIATE, ROOT} < {s.removeprefix("subject=CN = ") for s in subjects}
    assert any(made.common_name in s for s in subjects)
    described = cli.run("codesign", "-d", "-vvv", str(path)).stderr
    assert [line for line in described.splitlines() if line.startswith("Authority=")] == [
        f"Authority={made.common_name}",
        f"Authority={INTERMEDIATE}",
        f"Authority={ROOT}",
    ]


def test_productsign_embeds_the_whole_chain_and_pkgutil_lists_it(
    cli, module_ops, uploaded_issuers, packages, tmp_path
):
    made = leaf_only(
        f"Developer ID Installer: Keychain {secrets.token_hex(3)} (ABCDE12345)", 8, installer=True
    )
    module_ops.import_identity(made)
    source = packages.write(packages.build("files"), "source.pkg")
    destination = tmp_path / "signed.pkg"

    cli.ok("productsign", "--sign", made.sha1, str(source), str(destination))

    signed = destination.read_bytes()
    packages.assert_openssl_verifies(signed, made.certificate, uploaded_issuers)
    _, _, cms_der = packages.signature_parts(signed)
    assert len(printed_certificates(cms_der, tmp_path)) == 3
    check = cli.run("pkgutil", "--check-signature", str(destination)).stdout
    assert f"    1. {made.common_name}\n" in check
    assert f"    2. {INTERMEDIATE}\n" in check
    assert f"    3. {ROOT}\n" in check


def test_codesign_warns_when_the_identity_is_not_for_code_signing(
    cli, module_service, machos, tmp_path
):
    made = leaf_only(
        f"Installer only {secrets.token_hex(3)}",
        9,
        usages=[APPLE_INSTALLER_SIGNING],
    )
    result = module_service.import_identity(made, tmp_path / "ops")
    assert result.returncode == 0, result.stderr
    path = machos.copy("arm64-exe", tmp_path, "tool")

    signed = cli.run("codesign", "-s", made.sha1, str(path))

    assert signed.returncode == 0, signed.stderr
    assert f"warning: “{made.common_name}” lacks the code-signing usage" in signed.stderr


def test_an_identity_not_for_code_signing_needs_the_explicit_override(module_service, tmp_path):
    made = leaf_only("www.example.com", 10, usages=[ExtendedKeyUsageOID.SERVER_AUTH])
    p12, password = tmp_path / "tls.p12", tmp_path / "password.txt"
    p12.write_bytes(made.p12)
    password.write_text(P12_PASSWORD + "\n")
    command = ("identity", "import", str(p12), "--password-file", str(password))

    refused = module_service.manage(*command)
    overridden = module_service.manage(*command, "--allow-any-usage")

    assert refused.returncode == 1
    assert "not for code signing" in refused.stderr
    assert "TLS Web Server Authentication" in refused.stderr
    assert overridden.returncode == 0, overridden.stderr
    assert made.sha1.upper() in overridden.stdout
