"""The lines the guide's menu operations copy and show (``menu.py``), for the CLI's ``identity``
command and the window alike."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives import hashes

from signing_manager.menu import (
    apple_codesign_command,
    apple_productsign_command,
    certificate_text,
    chain_lines,
    copied_line,
    extension_lines,
    summary_lines,
)
from signing_manager.service import RemoteIdentity
from signing_service.test import cached_key, fake_ca, make_certificate

CERTIFICATE = make_certificate(
    cached_key("rsa2048"), "Developer ID Installer: Menu", installer=True
)
IDENTITY = RemoteIdentity(
    sha1=CERTIFICATE.fingerprint(hashes.SHA1()).hex(),  # noqa: S303 - a name
    sha256=CERTIFICATE.fingerprint(hashes.SHA256()).hex(),
    common_name="Developer ID Installer: Menu",
    certificate=CERTIFICATE,
    chain=(fake_ca()[0],),
    key_type="RSA",
    key_size=2048,
    not_after=CERTIFICATE.not_valid_after_utc,
)
SHA1 = IDENTITY.sha1.upper()


@pytest.mark.parametrize(
    ("what", "line"),
    [
        ("cn", "Developer ID Installer: Menu"),
        ("sha1", SHA1),
        ("codesign", f'signing-manager codesign -f -s "{SHA1}"'),
        ("productsign", f'signing-manager productsign --sign "{SHA1}" source.pkg destination.pkg'),
    ],
    ids=["cn", "sha1", "codesign", "productsign"],  # the same in every xdist worker
)
def test_each_copied_line_is_this_clients(what, line):
    assert copied_line(IDENTITY, what) == line


def test_apples_lines_are_the_guides():
    assert apple_codesign_command(IDENTITY) == f'codesign -fs "{SHA1}"'
    assert apple_productsign_command(IDENTITY) == (
        f'productsign --sign "{SHA1}" source.pkg destination.pkg'
    )


def test_extensions_are_named_and_apples_usages_by_their_oid():
    assert extension_lines(CERTIFICATE) == [
        "basicConstraints (critical): ca=False, path_length=None",
        "extendedKeyUsage (critical): codeSigning, 1.2.840.113635.100.4.13",
    ]


def test_the_chain_is_listed_leaf_first_with_sha256():
    leaf, root = chain_lines(IDENTITY)
    assert leaf == f"0: {CERTIFICATE.subject.rfc4514_string()}  SHA-256 {IDENTITY.sha256.upper()}"
    root_sha256 = fake_ca()[0].fingerprint(hashes.SHA256()).hex().upper()
    assert root == f"1: CN=Signing Manager Test CA  SHA-256 {root_sha256}"


def test_the_certificate_text_has_every_part():
    text = certificate_text(IDENTITY)
    start = CERTIFICATE.not_valid_before_utc
    assert f"Valid:       {start:%Y-%m-%d} to {IDENTITY.not_after:%Y-%m-%d}" in text
    assert text.index("Extensions:") < text.index("Chain:") < text.index("-----BEGIN CERTIFICATE")


def test_the_summary_says_where_the_key_is_kept_when_the_service_says_so():
    in_token = dataclasses.replace(IDENTITY, key_location="token:signing")
    assert summary_lines(in_token)[-2:] == ["Key:         RSA 2048", "Key kept in: token:signing"]
    # A service older than key_location does not say: no line for it.
    assert summary_lines(IDENTITY)[-1] == "Key:         RSA 2048"
