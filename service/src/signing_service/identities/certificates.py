"""What the detail page shows about an X.509 certificate, read with cryptography."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from signing_manager.algorithms import key_type_of
from signing_manager.key_usage import extended_key_usages, usage_names


@dataclass(frozen=True)
class CertificateFacts:
    common_name: str
    subject: str
    issuer: str
    serial_number: str
    not_before: datetime.datetime
    not_after: datetime.datetime
    sha1: str
    sha256: str
    key_type: str
    key_size: int
    extended_key_usages: list[str]
    team_identifier: str
    pem: str


def fingerprint(certificate: x509.Certificate, algorithm: hashes.HashAlgorithm) -> str:
    """Lower-case hex, no separators: the form the API and the CLI use."""
    return certificate.fingerprint(algorithm).hex()


def first_attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    attributes = name.get_attributes_for_oid(oid)
    return str(attributes[0].value) if attributes else ""


def describe(certificate: x509.Certificate) -> CertificateFacts:
    public_key = certificate.public_key()
    return CertificateFacts(
        common_name=first_attribute(certificate.subject, NameOID.COMMON_NAME)
        or certificate.subject.rfc4514_string(),
        subject=certificate.subject.rfc4514_string(),
        issuer=certificate.issuer.rfc4514_string(),
        serial_number=format(certificate.serial_number, "X"),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        sha1=fingerprint(certificate, hashes.SHA1()),  # noqa: S303 - the guide's identity name
        sha256=fingerprint(certificate, hashes.SHA256()),
        key_type=key_type_of(public_key),
        key_size=public_key.key_size,
        extended_key_usages=usage_names(extended_key_usages(certificate) or []),
        team_identifier=first_attribute(certificate.subject, NameOID.ORGANIZATIONAL_UNIT_NAME),
        pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
    )
