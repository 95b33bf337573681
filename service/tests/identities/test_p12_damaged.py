"""Damaged .p12 files that fuzzing found to escape as tracebacks (issue: hostile files), and
the warning cryptography prints for files in BER. Each is made by the test from a generated
identity, with asn1crypto."""

from __future__ import annotations

import warnings

import pytest
from asn1crypto import pkcs12 as asn1_pkcs12
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from signing_service.identities.p12 import P12Error, parse_p12
from signing_service.test import cached_key, make_certificate, make_identity, unprotected_p12


def test_an_authenticated_safe_without_content_is_not_a_p12():
    # asn1crypto raised TypeError ("encoded_data must be a byte string, not NoneType").
    empty = asn1_pkcs12.Pfx({"version": "v3", "auth_safe": {"content_type": "data"}}).dump()

    with pytest.raises(P12Error, match=r"This is not a \.p12 \(PKCS#12\) file, or it is corrupt"):
        parse_p12(empty, "")


def with_an_extension_twice(certificate: x509.Certificate) -> x509.Certificate:
    parsed = asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))
    extensions = parsed["tbs_certificate"]["extensions"]
    extensions.append(extensions[0])
    return x509.load_der_x509_certificate(parsed.dump(force=True))  # read lazily: no error yet


def test_a_certificate_cryptography_can_load_but_not_read_is_refused():
    # cryptography parses names and extensions when first asked: DuplicateExtension escaped
    # from the identity page's description after the import.
    key = cached_key("rsa2048", 5)
    damaged = with_an_extension_twice(make_certificate(key, "Developer ID Application: Twice"))

    with pytest.raises(P12Error, match="A certificate in the file is malformed: Duplicate"):
        parse_p12(unprotected_p12(damaged, key), "")


def as_ber(der: bytes) -> bytes:
    """The same PFX with its outer SEQUENCE in BER's indefinite-length form."""
    header_length = 2 + (der[1] & 0x7F if der[1] & 0x80 else 0)
    return b"\x30\x80" + der[header_length:] + b"\x00\x00"


def test_a_p12_in_ber_imports_without_a_warning():
    made = make_identity()
    ber = as_ber(made.p12)
    assert ber != made.p12

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", append=True)  # after the filters in force
        parsed = parse_p12(ber, made.password)

    assert parsed.certificate == made.certificate
    assert [str(warning.message) for warning in caught] == []


def test_a_certificate_whose_serial_number_is_not_positive_is_refused_without_a_warning():
    # Found by fuzzing: cryptography warned on stderr (and will refuse such certificates).
    key = cached_key("rsa2048", 5)
    parsed = asn1_x509.Certificate.load(
        make_certificate(key, "Developer ID Application: Zero").public_bytes(
            serialization.Encoding.DER
        )
    )
    parsed["tbs_certificate"]["serial_number"] = 0
    with pytest.warns(UserWarning, match="serial number which wasn't positive"):
        zero = x509.load_der_x509_certificate(parsed.dump(force=True))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", append=True)
        with pytest.raises(P12Error, match="serial number that is not positive, which RFC 5280"):
            parse_p12(unprotected_p12(zero, key), "")

    assert [str(warning.message) for warning in caught] == []


def with_tbs(certificate: x509.Certificate, **fields) -> bytes:
    parsed = asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))
    for name, value in fields.items():
        parsed["tbs_certificate"][name] = value
    return parsed.dump(force=True)


def test_a_certificate_of_an_impossible_version_is_refused():
    # Found by fuzzing: cryptography's InvalidVersion escaped from reading the certificates.
    key = cached_key("rsa2048", 5)
    v2 = with_tbs(make_certificate(key, "Developer ID Application: V2"), version="v2")

    with pytest.raises(P12Error, match="malformed: 1 is not a valid X509 version"):
        parse_p12(unprotected_p12_of_der(v2, key), "")


def unprotected_p12_of_der(certificate_der: bytes, key) -> bytes:
    """``unprotected_p12`` for a certificate cryptography will not load on its own."""

    class Raw:
        def public_bytes(self, encoding):
            return certificate_der

    return unprotected_p12(Raw(), key)


def test_a_common_name_longer_than_x520_allows_imports_without_a_warning():
    # Apple's "Developer ID Application: <company> (<team>)" can pass X.520's 64 characters,
    # which cryptography's builder refuses and its parser warns about on every read (found
    # by fuzzing, with an empty name).
    key = cached_key("rsa2048", 5)
    name = "Developer ID Application: A Company With A Rather Long Legal Name Inc (ABCDE12345)"
    subject = asn1_x509.Name.build({"common_name": name, "organizational_unit_name": "ABCDE12345"})
    long_named = with_tbs(make_certificate(key, "Developer ID Application: Short"), subject=subject)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", append=True)
        parsed = parse_p12(unprotected_p12_of_der(long_named, key), "")

    assert parsed.certificate.public_bytes(serialization.Encoding.DER) == long_named
    assert [str(warning.message) for warning in caught] == []
