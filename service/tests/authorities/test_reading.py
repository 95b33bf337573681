"""Reading an uploaded CA certificate file: PEM or DER, every bad file refused with a reason."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from signing_service.authorities.reading import CertificateFileError, read_ca_certificates
from signing_service.test import cached_key, fake_ca, make_certificate, make_intermediate_ca

PEM, DER = serialization.Encoding.PEM, serialization.Encoding.DER


def test_der_and_pem_bundles_are_read_each_certificate_once():
    root, _ = fake_ca()
    intermediate, _ = make_intermediate_ca()

    assert read_ca_certificates(intermediate.public_bytes(DER)) == [intermediate]
    bundle = b"".join(c.public_bytes(PEM) for c in [intermediate, root, intermediate])
    assert read_ca_certificates(bundle) == [intermediate, root]


def expired_ca() -> x509.Certificate:
    root, root_key = fake_ca()
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name.from_rfc4514_string("CN=Old CA"))
        .issuer_name(root.subject)
        .public_key(cached_key("rsa2048", 96).public_key())
        .serial_number(7)
        .not_valid_before(now - datetime.timedelta(days=30))
        .not_valid_after(now - datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(root_key, hashes.SHA256())
    )


def damaged_root() -> bytes:
    der = bytearray(fake_ca()[0].public_bytes(DER))
    der[-1] ^= 0x01
    return bytes(der)


def leaf() -> x509.Certificate:
    return make_certificate(cached_key("rsa2048", 0), "Developer ID Application: Leaf (X)")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "The file is empty."),
        (b"\n  \n", "The file is empty."),
        (b"0" * (1024 * 1024 + 1), "larger than 1 MiB"),
        (b"%PDF-1.7", "not an X.509 certificate (PEM or DER), or it is corrupt"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "corrupt"),
        (lambda: fake_ca()[0].public_bytes(DER)[:300], "corrupt"),
        (
            lambda: (
                fake_ca()[0].public_bytes(PEM)
                + cached_key("rsa2048", 99).private_bytes(
                    PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            ),
            "holds a private key",
        ),
        (lambda: leaf().public_bytes(PEM), "is not a certificate authority"),
        (lambda: expired_ca().public_bytes(DER), "“Old CA” expired on"),
        (damaged_root, "its signature does not verify"),
    ],
    ids=[
        "empty",
        "blank",
        "huge",
        "not a certificate",
        "bad PEM",
        "cut short",
        "with its private key",
        "a leaf",
        "expired",
        "damaged root",
    ],
)
def test_bad_files_are_refused_with_the_reason(data, reason):
    with pytest.raises(CertificateFileError) as refused:
        read_ca_certificates(data() if callable(data) else data)

    assert reason in str(refused.value)


def test_one_bad_certificate_refuses_the_whole_bundle():
    bundle = fake_ca()[0].public_bytes(PEM) + leaf().public_bytes(PEM)

    with pytest.raises(CertificateFileError, match="not a certificate authority"):
        read_ca_certificates(bundle)
