"""What a certificate may sign, read from its key usage and extended key usage."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from signing_manager.key_usage import (
    APPLE_INSTALLER_SIGNING,
    code_signing_problem,
    signs_code,
    signs_installers,
)

KEY = ec.generate_private_key(ec.SECP256R1())
CODE, SERVER = ExtendedKeyUsageOID.CODE_SIGNING, ExtendedKeyUsageOID.SERVER_AUTH
ANY = ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE


def certificate(usages=None, digital_signature=True) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name.from_rfc4514_string("CN=Usage")
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(KEY.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.KeyUsage(digital_signature, False, not digital_signature, *[False] * 6),
            critical=True,
        )
    )
    if usages is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=True)
    return builder.sign(KEY, hashes.SHA256())


@pytest.mark.parametrize(
    ("usages", "code", "installer"),
    [
        ([CODE], True, False),
        ([APPLE_INSTALLER_SIGNING], False, True),
        ([CODE, APPLE_INSTALLER_SIGNING], True, True),
        ([ANY], True, True),
        (None, True, True),  # no extended key usage: unrestricted (RFC 5280)
        ([SERVER], False, False),
    ],
)
def test_the_extended_key_usage_decides_the_purpose(usages, code, installer):
    made = certificate(usages)

    assert (signs_code(made), signs_installers(made)) == (code, installer)
    assert (code_signing_problem(made) is None) == (code or installer)


def test_a_key_usage_without_digital_signatures_signs_nothing():
    made = certificate([CODE], digital_signature=False)

    assert not signs_code(made)
    assert code_signing_problem(made) == "its key usage does not allow digital signatures"


def test_the_problem_names_what_the_certificate_is_for():
    made = certificate([SERVER, ExtendedKeyUsageOID.CLIENT_AUTH])

    assert code_signing_problem(made) == (
        "its extended key usage allows only TLS Web Server Authentication, "
        "TLS Web Client Authentication"
    )
