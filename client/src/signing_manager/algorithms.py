"""Signature algorithms of the client API (DESIGN.md, "Client API v1"), shared by both sides.

A request names an algorithm and carries a digest made with its hash; the service signs the
digest as it is (the hash is never computed again), and the client verifies the signature with
the certificate's public key before it uses it. RSA-PSS uses a salt as long as the digest;
ECDSA signatures are DER-encoded.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils


class Algorithm(StrEnum):
    RSA_PKCS1V15_SHA1 = "rsa-pkcs1v15-sha1"
    RSA_PKCS1V15_SHA256 = "rsa-pkcs1v15-sha256"
    RSA_PKCS1V15_SHA384 = "rsa-pkcs1v15-sha384"
    RSA_PKCS1V15_SHA512 = "rsa-pkcs1v15-sha512"
    RSA_PSS_SHA256 = "rsa-pss-sha256"
    RSA_PSS_SHA384 = "rsa-pss-sha384"
    RSA_PSS_SHA512 = "rsa-pss-sha512"
    ECDSA_SHA256 = "ecdsa-sha256"
    ECDSA_SHA384 = "ecdsa-sha384"
    ECDSA_SHA512 = "ecdsa-sha512"

    @property
    def key_type(self) -> str:
        """``"RSA"`` or ``"EC"``: the kind of key the algorithm needs."""
        return "EC" if self.value.startswith("ecdsa") else "RSA"

    @property
    def hash_algorithm(self) -> hashes.HashAlgorithm:
        name = self.value.rsplit("-", 1)[1]
        return {
            "sha1": hashes.SHA1(),  # noqa: S303 - Apple's legacy signatures still need SHA-1
            "sha256": hashes.SHA256(),
            "sha384": hashes.SHA384(),
            "sha512": hashes.SHA512(),
        }[name]

    @property
    def digest_size(self) -> int:
        return self.hash_algorithm.digest_size


class AlgorithmError(ValueError):
    """The algorithm does not fit the key, or the digest does not fit the algorithm."""


@dataclass(frozen=True)
class _Parameters:
    prehashed: utils.Prehashed
    padding: padding.AsymmetricPadding | None


def _parameters(algorithm: Algorithm, digest: bytes) -> _Parameters:
    parameters = _parameters_of(algorithm)
    if len(digest) != parameters.prehashed.digest_size:
        raise AlgorithmError(
            f"{algorithm} needs a {algorithm.digest_size}-byte digest, not {len(digest)} bytes."
        )
    return parameters


# Made once an algorithm (they hold no state): a service signs each batch item with them.
@functools.cache
def _parameters_of(algorithm: Algorithm) -> _Parameters:
    hash_algorithm = algorithm.hash_algorithm
    if algorithm.key_type == "EC":
        chosen = None
    elif algorithm.value.startswith("rsa-pss"):
        chosen = padding.PSS(mgf=padding.MGF1(hash_algorithm), salt_length=algorithm.digest_size)
    else:
        chosen = padding.PKCS1v15()
    return _Parameters(utils.Prehashed(hash_algorithm), chosen)


def key_type_of(key) -> str:
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "RSA"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return "EC"
    raise AlgorithmError(f"Keys of type {type(key).__name__} are not supported.")


def _check_key(key, algorithm: Algorithm) -> None:
    if key_type_of(key) != algorithm.key_type:
        raise AlgorithmError(f"{algorithm} cannot be used with an {key_type_of(key)} key.")


def sign_digest(private_key, algorithm: Algorithm, digest: bytes) -> bytes:
    """Sign a digest already made with the algorithm's hash."""
    _check_key(private_key, algorithm)
    parameters = _parameters(algorithm, digest)
    if parameters.padding is None:
        return private_key.sign(digest, ec.ECDSA(parameters.prehashed))
    return private_key.sign(digest, parameters.padding, parameters.prehashed)


def verify_digest(public_key, algorithm: Algorithm, digest: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is the key's signature of ``digest`` under ``algorithm``."""
    _check_key(public_key, algorithm)
    parameters = _parameters(algorithm, digest)
    try:
        if parameters.padding is None:
            public_key.verify(signature, digest, ec.ECDSA(parameters.prehashed))
        else:
            public_key.verify(signature, digest, parameters.padding, parameters.prehashed)
    except InvalidSignature:
        return False
    return True


def default_algorithm(key) -> Algorithm:
    """The algorithm to use when none is asked for: SHA-256 with the key's usual scheme."""
    return Algorithm.ECDSA_SHA256 if key_type_of(key) == "EC" else Algorithm.RSA_PKCS1V15_SHA256
