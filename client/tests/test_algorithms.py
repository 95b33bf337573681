import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from signing_manager.algorithms import (
    Algorithm,
    AlgorithmError,
    default_algorithm,
    sign_digest,
    verify_digest,
)

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def key_for(algorithm: Algorithm):
    return EC_KEY if algorithm.key_type == "EC" else RSA_KEY


def digest_for(algorithm: Algorithm, data: bytes = b"payload") -> bytes:
    return hashlib.new(algorithm.hash_algorithm.name, data).digest()


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_every_algorithm_signs_and_verifies(algorithm):
    digest = digest_for(algorithm)
    signature = sign_digest(key_for(algorithm), algorithm, digest)
    public_key = key_for(algorithm).public_key()
    assert verify_digest(public_key, algorithm, digest, signature)
    assert not verify_digest(public_key, algorithm, digest_for(algorithm, b"other"), signature)


def test_the_wire_names_are_the_contracts():
    assert [algorithm.value for algorithm in Algorithm] == [
        "rsa-pkcs1v15-sha1",
        "rsa-pkcs1v15-sha256",
        "rsa-pkcs1v15-sha384",
        "rsa-pkcs1v15-sha512",
        "rsa-pss-sha256",
        "rsa-pss-sha384",
        "rsa-pss-sha512",
        "ecdsa-sha256",
        "ecdsa-sha384",
        "ecdsa-sha512",
    ]


def test_pss_uses_a_salt_as_long_as_the_digest():
    digest = digest_for(Algorithm.RSA_PSS_SHA384)
    signature = sign_digest(RSA_KEY, Algorithm.RSA_PSS_SHA384, digest)
    # cryptography's verify fails unless the salt length is exactly the one given.
    RSA_KEY.public_key().verify(
        signature,
        digest,
        padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48),
        utils.Prehashed(hashes.SHA384()),
    )


def test_ecdsa_signatures_are_der():
    signature = sign_digest(EC_KEY, Algorithm.ECDSA_SHA256, digest_for(Algorithm.ECDSA_SHA256))
    r, s = utils.decode_dss_signature(signature)
    assert r > 0
    assert s > 0


def test_pkcs1v15_signs_the_digest_as_given_not_a_hash_of_it():
    data = b"payload"
    signature = sign_digest(RSA_KEY, Algorithm.RSA_PKCS1V15_SHA256, hashlib.sha256(data).digest())
    RSA_KEY.public_key().verify(signature, data, padding.PKCS1v15(), hashes.SHA256())


@pytest.mark.parametrize(
    ("algorithm", "digest", "message"),
    [
        (Algorithm.RSA_PKCS1V15_SHA256, bytes(20), "needs a 32-byte digest, not 20 bytes"),
        (Algorithm.ECDSA_SHA512, bytes(64), "cannot be used with an RSA key"),
    ],
)
def test_it_refuses_a_digest_or_key_that_does_not_fit(algorithm, digest, message):
    with pytest.raises(AlgorithmError, match=message):
        sign_digest(RSA_KEY, algorithm, digest)


def test_the_default_follows_the_key_type():
    assert default_algorithm(RSA_KEY) is Algorithm.RSA_PKCS1V15_SHA256
    assert default_algorithm(EC_KEY.public_key()) is Algorithm.ECDSA_SHA256
