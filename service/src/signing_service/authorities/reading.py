"""Reading a CA certificate file an admin uploads: DER, or PEM holding one or more certificates.

Every refusal is a ``CertificateFileError`` whose message says what is wrong with the file; a
file with one bad certificate is refused whole, so nothing is half-imported.
"""

from __future__ import annotations

import datetime

from cryptography import x509

from signing_manager.chains import is_self_signed, unique
from signing_manager.cms import ASN1_ERRORS
from signing_service.identities.certificates import first_attribute

MAX_SIZE = 1024 * 1024  # a CA certificate is 1-2 KiB; a bundle of every CA in use fits easily


class CertificateFileError(ValueError):
    """The file cannot be imported as CA certificates; the message says why."""


def read_ca_certificates(data: bytes, now: datetime.datetime | None = None):
    """The CA certificates in ``data``, each checked: a current certificate authority."""
    if not data.strip():
        raise CertificateFileError("The file is empty.")
    if len(data) > MAX_SIZE:
        raise CertificateFileError("The file is larger than 1 MiB; a CA certificate is ~2 KiB.")
    if b"PRIVATE KEY-----" in data:
        raise CertificateFileError(
            "The file holds a private key: upload the CA's certificate only, and keep its key "
            "where it was."
        )
    certificates = load(data)
    now = now or datetime.datetime.now(datetime.UTC)
    for certificate in certificates:
        check_authority(certificate, now)
    return certificates


def load(data: bytes) -> list[x509.Certificate]:
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            certificates = x509.load_pem_x509_certificates(data)
        else:
            certificates = [x509.load_der_x509_certificate(data)]
        for certificate in certificates:  # parsed lazily: read everything now
            certificate.subject, certificate.issuer, certificate.public_key()
            list(certificate.extensions)
    except (*ASN1_ERRORS, x509.DuplicateExtension, x509.InvalidVersion):
        raise CertificateFileError(
            "This is not an X.509 certificate (PEM or DER), or it is corrupt."
        ) from None
    return unique(certificates)


def name_of(certificate: x509.Certificate) -> str:
    return (
        first_attribute(certificate.subject, x509.NameOID.COMMON_NAME)
        or certificate.subject.rfc4514_string()
    )


def check_authority(certificate: x509.Certificate, now: datetime.datetime) -> None:
    name = name_of(certificate)
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        is_ca = constraints.value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise CertificateFileError(
            f"“{name}” is not a certificate authority (its basic constraints do not say CA), "
            "so it cannot issue a chain's link. Upload the certificate of its issuer instead."
        )
    expiry = certificate.not_valid_after_utc
    if expiry < now:
        raise CertificateFileError(f"“{name}” expired on {expiry:%Y-%m-%d %H:%M} UTC.")
    if certificate.subject == certificate.issuer and not is_self_signed(certificate):
        raise CertificateFileError(
            f"“{name}” names itself as its issuer but its signature does not verify: the "
            "certificate is damaged or was altered."
        )
