"""The certificates a .p12 supplies must link up (issue: hostile files): a leaf whose
signature does not verify under the CA certificate the same file holds as its issuer (an
altered leaf, or a stand-in CA with the real one's name) is refused with the reason."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from signing_service.identities.p12 import P12Error, parse_p12
from signing_service.test import P12_PASSWORD, cached_key, fake_ca, make_certificate, openssl_p12


def stand_in_ca() -> x509.Certificate:
    """A CA certificate with the test CA's name and extensions, but a key of its own."""
    real, _ = fake_ca()
    key = cached_key("rsa2048", 98)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(real.subject)
        .issuer_name(real.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    return builder.sign(key, hashes.SHA256())


def test_a_leaf_not_signed_by_the_ca_the_file_holds_is_refused():
    key = cached_key("rsa2048", 0)
    leaf = make_certificate(key, "Developer ID Application: Chain (ABCDE12345)")
    p12 = openssl_p12(leaf, key, P12_PASSWORD, chain=[stand_in_ca()])

    with pytest.raises(P12Error) as refused:
        parse_p12(p12, P12_PASSWORD)

    assert str(refused.value) == (
        "The certificate 'Developer ID Application: Chain (ABCDE12345)' is not signed by "
        "'Signing Manager Test CA', which the file holds as its issuer: the chain is broken or "
        "was altered."
    )


def test_a_leaf_signed_by_the_ca_the_file_holds_is_imported_with_its_chain():
    key = cached_key("rsa2048", 0)
    leaf = make_certificate(key, "Developer ID Application: Chain (ABCDE12345)")
    ca, _ = fake_ca()

    parsed = parse_p12(openssl_p12(leaf, key, P12_PASSWORD, chain=[ca]), P12_PASSWORD)

    assert parsed.certificate == leaf
    assert parsed.chain == [ca]
