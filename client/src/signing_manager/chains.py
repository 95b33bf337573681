"""Certificate chains: from a leaf to its root through the issuers that signed each link.

Path building as RFC 5280 (section 6) and RFC 4158 describe it, reduced to what code signing
needs: from the leaf, each step takes the first candidate that issued the current certificate,
that is, whose subject is the current certificate's issuer, whose subject key identifier equals
the current certificate's authority key identifier (when both are present), and whose signature
over the current certificate verifies. Candidates are tried in the caller's order of
preference, those valid now before expired ones. A path ends at a self-signed certificate (a
root) or where no candidate issued the last link; the caller says what an incomplete chain means.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

# Apple's chains have one intermediate; no real code-signing chain needs more than a few.
MAX_LENGTH = 8


@dataclass(frozen=True)
class Chain:
    """The issuers of a leaf, the leaf's issuer first; ``complete`` when the last is a root."""

    issuers: tuple[x509.Certificate, ...]
    complete: bool

    @property
    def root(self) -> x509.Certificate | None:
        return self.issuers[-1] if self.complete and self.issuers else None


def complete_chain(
    leaf: x509.Certificate,
    candidates: Iterable[x509.Certificate],
    now: datetime.datetime | None = None,
) -> Chain:
    """The chain from ``leaf`` as far as ``candidates`` (in order of preference) reach."""
    now = now or datetime.datetime.now(datetime.UTC)
    ordered = sorted(unique(candidates), key=lambda cert: not valid_at(cert, now))
    issuers: list[x509.Certificate] = []
    current = leaf
    while not is_self_signed(current) and len(issuers) < MAX_LENGTH:
        used = {leaf, *issuers}
        issuer = next((c for c in ordered if c not in used and issued_by(current, c)), None)
        if issuer is None:
            return Chain(tuple(issuers), complete=False)
        issuers.append(issuer)
        current = issuer
    return Chain(tuple(issuers), complete=is_self_signed(current))


def unique(certificates: Iterable[x509.Certificate]) -> list[x509.Certificate]:
    """The certificates in their order, each once (equal DER is the same certificate)."""
    return list(dict.fromkeys(certificates))


def valid_at(certificate: x509.Certificate, now: datetime.datetime) -> bool:
    return certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc


def is_self_signed(certificate: x509.Certificate) -> bool:
    return certificate.subject == certificate.issuer and issued_by(certificate, certificate)


def issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer`` signed ``certificate``: names, key identifiers, then the signature.
    A signature in an algorithm that cannot be checked is no proof, so it is not a link."""
    if certificate.issuer != issuer.subject:
        return False
    authority = key_identifier(certificate, x509.AuthorityKeyIdentifier)
    subject = key_identifier(issuer, x509.SubjectKeyIdentifier)
    if authority is not None and subject is not None and authority != subject:
        return False
    try:
        certificate.verify_directly_issued_by(issuer)
    except InvalidSignature:
        return False
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return sha1_signature_verifies(certificate, issuer.public_key())
    return True


def sha1_signature_verifies(certificate: x509.Certificate, key) -> bool:
    """cryptography's check refuses SHA-1 signatures, which Apple Root CA (2006) still carries
    on itself; the signature is checked here instead. No other algorithm is accepted."""
    if not isinstance(certificate.signature_hash_algorithm, hashes.SHA1):
        return False
    data, signature = certificate.tbs_certificate_bytes, certificate.signature
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hashes.SHA1()))  # noqa: S303
        else:
            return False
    except InvalidSignature:
        return False
    return True


def key_identifier(certificate: x509.Certificate, extension: type) -> bytes | None:
    try:
        value = certificate.extensions.get_extension_for_class(extension).value
    except (x509.ExtensionNotFound, x509.DuplicateExtension, ValueError):
        return None
    return value.key_identifier if extension is x509.AuthorityKeyIdentifier else value.digest
