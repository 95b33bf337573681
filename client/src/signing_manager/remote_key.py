"""A signer whose private key stays in the Signing Service.

``RemoteSigner`` has the shape of every signer (``certificate``, ``chain``, ``sign_digest`` and
its batch form) and checks each signature the service returns against the identity's
certificate before handing it on, so a wrong or compromised service cannot make us write a bad
signature.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptography import x509

from signing_manager.algorithms import Algorithm, default_algorithm, verify_digest
from signing_manager.errors import BadSignature, ServiceRefused

if TYPE_CHECKING:  # for annotations only: the service's module imports httpx, which is slow
    from signing_manager.service import RemoteIdentity, ServiceClient


class RemoteSigner:
    def __init__(self, service: ServiceClient, identity: RemoteIdentity):
        self.service = service
        self.identity = identity

    @property
    def certificate(self) -> x509.Certificate:
        return self.identity.certificate

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        return self.identity.chain

    def default_algorithm(self) -> Algorithm:
        return default_algorithm(self.certificate.public_key())

    def sign_digest(self, digest: bytes, algorithm: Algorithm) -> bytes:
        signature = self.service.sign(self.identity.sha1, algorithm, digest)
        self.check(digest, algorithm, signature)
        return signature

    def sign_digests(self, requests: list[tuple[bytes, Algorithm]]) -> list[bytes]:
        """Every digest in one round trip (batches of 1,000); all must be signed and verify."""
        signatures: list[bytes] = []
        for start in range(0, len(requests), 1000):
            chunk = requests[start : start + 1000]
            results = self.service.sign_batch(
                [(self.identity.sha1, algorithm, digest) for digest, algorithm in chunk]
            )
            for (digest, algorithm), result in zip(chunk, results, strict=True):
                if isinstance(result, ServiceRefused):
                    raise result
                self.check(digest, algorithm, result)
                signatures.append(result)
        return signatures

    def check(self, digest: bytes, algorithm: Algorithm, signature: bytes) -> None:
        if not verify_digest(self.certificate.public_key(), algorithm, digest, signature):
            raise BadSignature(
                f"The service returned a signature that does not verify with the certificate of "
                f"“{self.identity.common_name}”; nothing was written."
            )
