"""Signers: the one place where a stored identity's private key signs a digest.

``Signer`` is the interface (the client package has remote and local signers of the same shape).
``SoftwareSigner`` decrypts the sealed key for each use and keeps it only while signing.
"""

from __future__ import annotations

from typing import Protocol

from cryptography import x509

from signing_manager.algorithms import Algorithm, sign_digest


class Signer(Protocol):
    def certificate(self) -> x509.Certificate: ...

    def sign_digest(self, digest: bytes, algorithm: Algorithm) -> bytes: ...


class SoftwareSigner:
    """Signs with an identity's private key, kept encrypted in the database."""

    def __init__(self, identity):
        self.identity = identity

    def certificate(self) -> x509.Certificate:
        return self.identity.certificate()

    def sign_digest(self, digest: bytes, algorithm: Algorithm) -> bytes:
        return sign_digest(self.identity.private_key(), algorithm, digest)

    def sign_digests(self, requests: list[tuple[bytes, Algorithm]]) -> list[bytes]:
        """Several signatures with one decryption of the key."""
        key = self.identity.private_key()
        return [sign_digest(key, algorithm, digest) for digest, algorithm in requests]
