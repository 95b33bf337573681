"""productsign and pkgutil through the real CLI, signing with the real service."""

import secrets

import pytest

from signing_service.test import CLIENT_FIRST_USE_NOTICES, make_identity

pytestmark = pytest.mark.e2e


@pytest.fixture
def cli(configured_cli):
    return configured_cli("productsign")


def test_productsign_signs_and_pkgutil_checks(cli, installer, packages, tmp_path, module_ops):
    source = packages.write(packages.build("product"), "source.pkg")
    before = source.read_bytes()
    destination = tmp_path / "signed.pkg"
    result = cli.ok("productsign", "--sign", installer.sha1.upper(), str(source), str(destination))
    assert "signed" in result.stdout
    assert "warning" not in result.stderr
    assert source.read_bytes() == before
    signed = destination.read_bytes()
    packages.assert_same_content(before, signed)
    packages.assert_openssl_verifies(signed, installer.certificate, installer.ca_certificate)

    check = cli.run("pkgutil", "--check-signature", str(destination))
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.startswith(
        'Package "signed.pkg":\n   Status: signed by untrusted certificate\n'
    )
    assert f"    1. {installer.common_name}" in check.stdout
    assert "SHA256 Fingerprint:" in check.stdout
    anchor = tmp_path / "root.pem"
    anchor.write_bytes(installer.pem(installer.ca_certificate))
    anchored = cli.run("pkgutil", "--check-signature", str(destination), "--anchor", str(anchor))
    assert "Status: signed by a certificate trusted through an anchor" in anchored.stdout

    # Both signatures came from one batch: two sign records, one per algorithm.
    rows = module_ops.signatures(installer.sha1)
    assert sorted(row["algorithm"] for row in rows) == ["rsa-pkcs1v15-sha1", "rsa-pkcs1v15-sha256"]
    assert all(row["status"] == "success" for row in rows)


def test_productsign_by_common_name_and_tampering_detected(cli, installer, packages, tmp_path):
    source = packages.write(packages.build("files"), "files.pkg")
    destination = tmp_path / "signed.pkg"
    cli.ok("productsign", "--sign", installer.common_name, str(source), str(destination))
    tampered = tmp_path / "tampered.pkg"
    tampered.write_bytes(packages.flip_file_byte(destination.read_bytes()))
    check = cli.run("pkgutil", "--check-signature", str(tampered))
    assert check.returncode == 1
    assert "Status: invalid signature" in check.stdout


def test_an_unsigned_package_has_no_signature(cli, packages):
    check = cli.run("pkgutil", "--check-signature", str(packages.write(packages.build("files"))))
    assert check.returncode == 1
    assert "Status: no signature" in check.stdout


def test_a_signed_package_needs_force(cli, installer, packages, tmp_path):
    source = packages.write(packages.build("files"), "a.pkg")
    first, second = tmp_path / "first.pkg", tmp_path / "second.pkg"
    cli.ok("productsign", "--sign", installer.sha1, str(source), str(first))
    refused = cli.run("productsign", "--sign", installer.sha1, str(first), str(second))
    assert refused.returncode == 1
    assert "already signed" in refused.stderr
    assert not second.exists()
    cli.ok("productsign", "--force", "--sign", installer.sha1, str(first), str(second))
    assert cli.run("pkgutil", "--check-signature", str(second)).returncode == 0


def test_bad_requests_are_one_sentence(cli, installer, packages, tmp_path):
    source = packages.write(packages.build("files"), "b.pkg")
    not_a_package = tmp_path / "not.pkg"
    not_a_package.write_bytes(b"PK\x03\x04 not a xar")
    cases = [
        (
            ["--timestamp=http://127.0.0.1:9/tsa", str(source), str(tmp_path / "t.pkg")],
            "Cannot reach the timestamp server",
        ),
        ([str(source), str(source)], "must differ from SOURCE"),
        ([str(not_a_package), str(tmp_path / "n.pkg")], "not a flat package"),
    ]
    for arguments, message in cases:
        result = cli.run("productsign", "--sign", installer.sha1, *arguments)
        assert result.returncode == 1, result.stderr
        assert message in result.stderr
        assert "Traceback" not in result.stderr


def test_an_identity_without_the_installer_usage_gets_a_warning(
    cli, module_ops, packages, tmp_path
):
    made = make_identity(f"Developer ID Application: No installer {secrets.token_hex(3)}")
    module_ops.import_identity(made)
    source = packages.write(packages.build("files"), "c.pkg")
    result = cli.run("productsign", "--sign", made.sha1, str(source), str(tmp_path / "c.pkg"))
    assert result.returncode == 0, result.stderr
    assert "lacks the installer-signing usage" in result.stderr
    assert (tmp_path / "c.pkg").exists()


def test_productsign_with_a_timestamp(cli, installer, packages, tmp_path, tsa):
    source = packages.write(packages.build("files"), "d.pkg")
    destination = tmp_path / "stamped.pkg"
    cli.ok(
        "productsign",
        "--sign",
        installer.sha1,
        f"--timestamp={tsa.url}",
        str(source),
        str(destination),
    )
    check = cli.run("pkgutil", "--check-signature", str(destination))
    assert check.returncode == 0, check.stdout
    assert "Signed with a timestamp on:" in check.stdout


def test_apples_productsign_line_runs_unchanged(cli, installer, packages, tmp_path, tsa):
    # A bare --timestamp before the paths takes no value (the TSA comes from the environment
    # here); --cert and --keychain are accepted, and said to be unneeded.
    source = packages.write(packages.build("files"), "e.pkg")
    destination = tmp_path / "e-signed.pkg"
    before = tsa.requests

    result = cli.run(
        "productsign",
        "--sign",
        installer.common_name,
        "--timestamp",
        "--cert",
        "Developer ID Certification Authority",
        "--keychain",
        "build.keychain-db",
        str(source),
        str(destination),
        env={"SIGNING_MANAGER_TSA_URL": tsa.url},
    )

    assert result.returncode == 0, result.stderr
    assert "--cert is not needed: the service sends the identity's whole chain" in result.stderr
    assert "--keychain is not needed" in result.stderr
    assert tsa.requests == before + 1
    check = cli.run("pkgutil", "--check-signature", str(destination))
    assert "Signed with a timestamp on:" in check.stdout


def test_an_output_that_cannot_be_written_is_refused_before_anything_is_signed(
    cli, installer, module_ops, packages, unwritable_outputs
):
    source = packages.write(packages.build("files"), "g.pkg")
    folder, cases = unwritable_outputs
    signed_before = len(module_ops.signatures(installer.sha1))

    for destination, sentence in cases:
        result = cli.run(
            "productsign",
            "--sign",
            installer.sha1,
            str(source),
            str(destination),
            obeying_permissions=True,  # else root writes in the read-only folder
        )

        assert result.returncode == 1, (destination, result.stderr)
        lines = [
            line
            for line in result.stderr.splitlines()
            if not line.startswith(CLIENT_FIRST_USE_NOTICES)
        ]
        assert lines == [f"signing-manager: {sentence}"]

    assert len(module_ops.signatures(installer.sha1)) == signed_before
    assert sorted(path.name for path in folder.rglob("*")) == ["a file", "read-only"]
