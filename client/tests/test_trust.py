"""Trust in a signature's chain: Apple's roots and the anchors given, at the signature's time."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from signing_manager.apple_pki import apple_roots
from signing_manager.errors import ConfigurationError
from signing_manager.trust import judge, load_anchors

LEAVES = Path(__file__).parent / "data" / "apple-leaves"
NOW = datetime.datetime.now(datetime.UTC)


def apple_leaf() -> x509.Certificate:
    return x509.load_der_x509_certificate(
        (LEAVES / "apple-signed-developer-id-installer.cer").read_bytes()
    )


def own_chain():
    """(root, leaf) of a CA of our own."""
    root_key, leaf_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    name = x509.Name.from_rfc4514_string("CN=Company Root")

    def build(subject, key, ca):
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - datetime.timedelta(days=1))
            .not_valid_after(NOW + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(root_key, hashes.SHA256())
        )

    root = build(name, root_key, True)
    return root, build(x509.Name.from_rfc4514_string("CN=Company Signer"), leaf_key, False)


def test_a_real_developer_id_signature_is_trusted_at_its_time_through_apples_root():
    leaf = apple_leaf()
    made = leaf.not_valid_before_utc + datetime.timedelta(days=30)

    verdict = judge(leaf, [], apple_roots(), made)

    assert verdict.problem is None
    assert verdict.apple
    assert verdict.chain[-1] in apple_roots()


def test_without_a_timestamp_the_certificates_must_be_valid_now():
    leaf = apple_leaf()  # expired in 2026

    verdict = judge(leaf, [], apple_roots(), leaf.not_valid_after_utc + datetime.timedelta(1))

    assert verdict.problem.startswith("“Developer ID Installer: Gregory Szorc (MK22MZP987)” was")
    assert "not valid at" in verdict.problem


def test_an_own_root_is_trusted_only_when_given():
    root, leaf = own_chain()

    untrusted = judge(leaf, [root], apple_roots(), NOW)
    trusted = judge(leaf, [root], (*apple_roots(), root), NOW)

    assert untrusted.problem == (
        "the certificate chain ends at “Company Root”, which is not a trusted anchor (Apple's "
        "roots, or a root given with --anchor FILE or SIGNING_MANAGER_ANCHORS)"
    )
    assert trusted.problem is None
    assert not trusted.apple


def test_a_chain_whose_issuer_is_unknown_is_not_trusted():
    _, leaf = own_chain()

    verdict = judge(leaf, [], apple_roots(), NOW)

    assert not verdict.complete
    assert "stops at “Company Signer”, whose issuer is not known" in verdict.problem


def test_anchors_come_from_files_and_the_environment(tmp_path, monkeypatch):
    root, _ = own_chain()
    other, _ = own_chain()
    (tmp_path / "a.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "b.cer").write_bytes(other.public_bytes(serialization.Encoding.DER))
    monkeypatch.setenv("SIGNING_MANAGER_ANCHORS", str(tmp_path / "b.cer"))

    anchors = load_anchors([str(tmp_path / "a.pem")])

    assert anchors == (*apple_roots(), other, root)


@pytest.mark.parametrize(
    ("content", "message"), [(None, "Cannot read"), (b"x", "not a certificate")]
)
def test_a_bad_anchor_file_is_refused(tmp_path, content, message):
    path = tmp_path / "anchor.pem"
    if content is not None:
        path.write_bytes(content)

    with pytest.raises(ConfigurationError, match=message):
        load_anchors([str(path)])
