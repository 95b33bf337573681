"""Reading .p12 files that the openssl command line wrote, in every encoding tools use."""

import datetime
import re

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from signing_service.identities.p12 import MAX_SIZE, P12Error, parse_p12
from signing_service.test import (
    cached_key,
    make_certificate,
    make_identity,
    openssl_p12,
    unprotected_p12,
)


@pytest.mark.parametrize("encoding", ["aes", "legacy", "3des"])
@pytest.mark.parametrize("key_kind", ["rsa2048", "rsa4096", "ec256"])
def test_it_reads_every_encoding_and_key_kind(encoding, key_kind):
    identity = make_identity(encoding=encoding, key_kind=key_kind)
    parsed = parse_p12(identity.p12, identity.password)
    assert parsed.certificate == identity.certificate
    assert parsed.key_type == ("EC" if key_kind == "ec256" else "RSA")
    assert parsed.key_size == {"rsa2048": 2048, "rsa4096": 4096, "ec256": 256}[key_kind]
    assert parsed.chain == [identity.ca_certificate]


@pytest.mark.parametrize("password", ["", "pässwörd ✓ 鍵", 'with spaces and "quotes"'])
@pytest.mark.parametrize("encoding", ["aes", "3des"])
def test_it_reads_empty_and_non_ascii_passwords(password, encoding):
    identity = make_identity(password=password, encoding=encoding)
    assert parse_p12(identity.p12, password).certificate == identity.certificate


def test_it_reads_an_identity_without_chain():
    identity = make_identity(with_chain=False)
    assert parse_p12(identity.p12, identity.password).chain == []


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def flipped_length(data: bytes) -> bytes:
    # The outer SEQUENCE's length bytes: the structure no longer adds up.
    return data[:2] + bytes([data[2] ^ 0x7F]) + data[3:]


@pytest.mark.parametrize(
    ("make_data", "password", "message"),
    [
        (lambda identity: identity.p12, "wrong password", "The password is wrong"),
        (lambda identity: truncated(identity.p12), None, "truncated or corrupt"),
        (lambda identity: identity.p12[:40], None, "truncated or corrupt"),
        (lambda identity: flipped_length(identity.p12), None, "corrupt"),
        (lambda identity: identity.pem(), None, "This is a PEM file, not a .p12"),
        (lambda identity: identity.key_pem(), None, "This is a PEM file, not a .p12"),
        (lambda identity: b"", None, "The file is empty"),
        (lambda identity: b"just some text\n", None, "not a .p12 (PKCS#12) file"),
        (lambda identity: b"\x30" + b"\x00" * (MAX_SIZE + 1), None, "larger than 10 MiB"),
    ],
)
def test_it_refuses_bad_files_and_says_why(make_data, password, message):
    identity = make_identity()
    with pytest.raises(P12Error, match=re.escape(message)):
        parse_p12(make_data(identity), identity.password if password is None else password)


def test_it_refuses_a_certificate_without_its_key():
    identity = make_identity()
    data = openssl_p12(identity.certificate, None, "pw", include_key=False)
    with pytest.raises(P12Error, match="holds a certificate but no private key"):
        parse_p12(data, "pw")


def test_it_refuses_a_key_that_does_not_match_the_certificate():
    certificate = make_certificate(cached_key("rsa2048", 0), "Mismatched")
    data = unprotected_p12(certificate, cached_key("rsa2048", 1))
    with pytest.raises(P12Error, match="does not belong to any of its certificates"):
        parse_p12(data, "")


def test_it_refuses_an_expired_certificate_naming_the_date():
    identity = make_identity(expired=True)
    expiry = identity.certificate.not_valid_after_utc
    with pytest.raises(P12Error, match=f"expired on {expiry:%Y-%m-%d %H:%M} UTC"):
        parse_p12(identity.p12, identity.password)


def test_it_checks_expiry_against_the_time_given():
    identity = make_identity()
    later = identity.certificate.not_valid_after_utc + datetime.timedelta(days=1)
    with pytest.raises(P12Error, match="expired"):
        parse_p12(identity.p12, identity.password, now=later)


def test_it_refuses_key_types_it_cannot_sign_with():
    key = ed25519.Ed25519PrivateKey.generate()
    certificate = make_certificate(key, "Ed25519 identity")
    with pytest.raises(P12Error, match="Use an RSA or EC"):
        parse_p12(openssl_p12(certificate, key, "pw"), "pw")
