"""``signing-service ca import|list|delete`` against a running service's data, beside Apple's
CAs; bad input is one line and changes nothing. (That uploads complete identities' chains is
tested through the pages, the client API and the client: authorities/, codesign/.)"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes, serialization

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


def sha256(certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex().upper()


def one_line_error(result, fragment: str) -> None:
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert fragment in result.stderr, result.stderr


def test_ca_import_list_delete_and_the_chain_they_complete(running_service, tmp_path):
    service = running_service
    intermediate, root = make_intermediate_ca()[0], fake_ca()[0]
    key = cached_key("rsa2048", 13)
    leaf = make_certificate(key, "Developer ID Application: Ops (ABCDE12345)", issuer=(
        make_intermediate_ca()
    ))  # fmt: skip
    made = TestIdentity(openssl_p12(leaf, key, P12_PASSWORD), P12_PASSWORD, leaf, key, root)
    assert "does not reach a root" in service.import_identity(made, tmp_path / "ops").stderr
    bundle = tmp_path / "issuers.pem"
    bundle.write_bytes(intermediate.public_bytes(PEM) + root.public_bytes(PEM))

    imported = service.manage("ca", "import", str(bundle))
    listing = service.manage("ca", "list").stdout.splitlines()

    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.splitlines() == [
        f"{sha256(intermediate)}\tSigning Manager Test Intermediate CA",
        f"{sha256(root)}\tSigning Manager Test CA",
    ]
    assert f"{sha256(root)}\tuploaded root\t" in "\n".join(listing)
    assert any(line.endswith("\tApple root\t2035-02-09\tApple Root CA") for line in listing)
    assert len(listing) == 2 + 10

    colons = ":".join(sha256(root)[i : i + 2] for i in range(0, 64, 2))
    deleted = service.manage("ca", "delete", colons)
    assert deleted.stdout == "Deleted Signing Manager Test CA.\n"
    assert sha256(root) not in service.manage("ca", "list").stdout


def test_ca_commands_refuse_bad_input_in_one_line_and_change_nothing(running_service, tmp_path):
    service = running_service
    (tmp_path / "junk.pem").write_text("junk\n")
    (tmp_path / "huge.pem").write_bytes(b"0" * (1024 * 1024 + 1))
    (tmp_path / "root.pem").write_bytes(fake_ca()[0].public_bytes(PEM))
    assert service.manage("ca", "import", str(tmp_path / "root.pem")).returncode == 0
    before = service.manage("ca", "list").stdout

    cases = {
        "missing": (("import", str(tmp_path / "missing.pem")), "No such file or directory"),
        "huge": (("import", str(tmp_path / "huge.pem")), "is larger than 1 MiB"),
        "junk": (("import", str(tmp_path / "junk.pem")), "not an X.509 certificate"),
        "again": (("import", str(tmp_path / "root.pem")), "is already uploaded"),
        "unknown": (("delete", "00" * 32), "No uploaded CA has the SHA-256 fingerprint"),
    }
    for arguments, fragment in cases.values():
        one_line_error(service.manage("ca", *arguments), fragment)
    assert service.manage("ca", "list").stdout == before
