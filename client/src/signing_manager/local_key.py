"""A signer with the private key at hand: for tests, and for ad-hoc local signing."""

from __future__ import annotations

from cryptography import x509

from signing_manager.algorithms import Algorithm, default_algorithm, sign_digest


class LocalSigner:
    def __init__(self, certificate: x509.Certificate, private_key, chain=()):
        self.certificate = certificate
        self.private_key = private_key
        self.chain = tuple(chain)

    def default_algorithm(self) -> Algorithm:
        return default_algorithm(self.private_key)

    def sign_digest(self, digest: bytes, algorithm: Algorithm) -> bytes:
        return sign_digest(self.private_key, algorithm, digest)

    def sign_digests(self, requests: list[tuple[bytes, Algorithm]]) -> list[bytes]:
        return [self.sign_digest(digest, algorithm) for digest, algorithm in requests]
