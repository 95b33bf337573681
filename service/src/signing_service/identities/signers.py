"""Signers: the one place where a stored identity's private key signs a digest.

``Signer`` is the interface (the client package has remote and local signers of the same shape).
``SoftwareSigner`` decrypts the sealed key for each use and keeps it only while signing;
``Pkcs11Signer`` asks the PKCS#11 token that holds the key (hsm.py). ``signer_for`` picks one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from asn1crypto import algos
from cryptography import x509

from signing_manager.algorithms import Algorithm, AlgorithmError, sign_digest
from signing_service.identities import hsm
from signing_service.identities.key_cache import key_cache


class Signer(Protocol):
    def certificate(self) -> x509.Certificate: ...

    def sign_digest(self, digest: bytes, algorithm: Algorithm) -> bytes: ...

    def sign_digests(self, requests: list[tuple[bytes, Algorithm]]) -> list[bytes]: ...


class SoftwareSigner:
    """Signs with an identity's private key, kept encrypted in the database. Given the
    identities' version read with the identity, it may use the key a worker opened earlier
    (key_cache.py); without, it decrypts the key for this use only."""

    def __init__(self, identity, version: int | None = None):
        self.identity = identity
        self.version = version

    def certificate(self) -> x509.Certificate:
        return self.identity.certificate()

    def private_key(self):
        return key_cache.private_key(self.identity, self.version)

    def sign_digest(self, digest: bytes, algorithm: Algorithm) -> bytes:
        return sign_digest(self.private_key(), algorithm, digest)

    def sign_digests(self, requests: list[tuple[bytes, Algorithm]]) -> list[bytes]:
        """Several signatures with one decryption of the key."""
        key = self.private_key()
        return [sign_digest(key, algorithm, digest) for digest, algorithm in requests]


class Pkcs11Signer:
    """Signs with a private key that lives in a PKCS#11 token and never leaves it. A token that
    is absent or refuses raises ``hsm.TokenUnavailable``.

    The certificate is read only when asked for: signing needs only the token and the key's id,
    and the sign path loads an identity's row without the certificate (api/lookups.py)."""

    def __init__(
        self,
        token_label: str,
        key_id: bytes,
        certificate: Callable[[], x509.Certificate] | None = None,
    ):
        self.token_label = token_label
        self.key_id = key_id
        self._certificate = certificate

    @classmethod
    def of(cls, identity) -> Pkcs11Signer:
        return cls(identity.token_label, identity.token_key_id_bytes, identity.certificate)

    def certificate(self) -> x509.Certificate:
        if self._certificate is None:
            raise ValueError("This signer was made without its certificate.")
        return self._certificate()

    def sign_digest(self, digest: bytes, algorithm: Algorithm) -> bytes:
        return self.sign_digests([(digest, algorithm)])[0]

    def sign_digests(self, requests: list[tuple[bytes, Algorithm]]) -> list[bytes]:
        """Several signatures in one session with the token."""
        pkcs11 = hsm.pkcs11_module()
        with hsm.sessions().session(self.token_label) as session:
            # A key the token lacks (NoSuchKey) is a token error like any other: the token
            # may be another than the one that was configured, or not fully back yet.
            key = session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, id=self.key_id)
            return [
                token_signature(pkcs11, key, digest, algorithm) for digest, algorithm in requests
            ]


def token_signature(pkcs11, key, digest: bytes, algorithm: Algorithm) -> bytes:
    """The token's signature of a digest under one of the contract's algorithms, in the form
    the contract returns (signing_manager.algorithms): the token's mechanisms take the digest as
    it is, so nothing is hashed again."""
    if len(digest) != algorithm.digest_size:
        raise AlgorithmError(f"{algorithm} needs a {algorithm.digest_size}-byte digest.")
    hash_name = algorithm.hash_algorithm.name
    if algorithm.key_type == "EC":
        raw = key.sign(digest, mechanism=pkcs11.Mechanism.ECDSA)  # r || s
        return pkcs11.util.ec.encode_ecdsa_signature(raw)
    if algorithm.value.startswith("rsa-pss"):
        return key.sign(
            digest,
            mechanism=pkcs11.Mechanism.RSA_PKCS_PSS,
            mechanism_param=(
                pkcs11.Mechanism[hash_name.upper()],  # the hash the digest was made with
                pkcs11.MGF[hash_name.upper()],  # MGF1 with the same hash
                algorithm.digest_size,  # the contract's salt: as long as the digest
            ),
        )
    # PKCS#1 v1.5: the raw mechanism pads what it is given, so it is given the DigestInfo.
    digest_info = algos.DigestInfo(
        {"digest_algorithm": {"algorithm": hash_name}, "digest": digest}
    ).dump()
    return key.sign(digest_info, mechanism=pkcs11.Mechanism.RSA_PKCS)


def signer_for(identity, version: int | None = None) -> SoftwareSigner | Pkcs11Signer:
    """The signer of an identity: its token's when its key lives in one. ``version``: the
    identities' version read with ``identity``, if it was (see ``SoftwareSigner``)."""
    if identity.token_label:
        return Pkcs11Signer.of(identity)
    return SoftwareSigner(identity, version)
