"""Signing with keys kept in a PKCS#11 token (SoftHSM2): every algorithm of the contract that
the key type allows, checked with the certificate's public key."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from signing_manager.algorithms import Algorithm, verify_digest
from signing_service.identities import hsm, token_keys
from signing_service.identities.signers import Pkcs11Signer
from signing_service.test import make_certificate

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def keys_in_token():
    """An RSA and an EC key (made in software here, to have certificates for them) put into
    the token once for the module."""
    return {
        "RSA": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "EC": ec.generate_private_key(ec.SECP256R1()),
    }


@pytest.mark.parametrize("algorithm", list(Algorithm), ids=str)
def test_every_algorithm_verifies_with_the_certificate(token_settings, keys_in_token, algorithm):
    key = keys_in_token[algorithm.key_type]
    certificate = make_certificate(key, "Token key")
    key_id = token_keys.create_in_token(key, token_settings.label, certificate)
    signer = Pkcs11Signer(token_settings.label, key_id, lambda: certificate)
    digest = hashlib.new(algorithm.hash_algorithm.name, b"signed in the token").digest()
    signature = signer.sign_digest(digest, algorithm)
    assert verify_digest(certificate.public_key(), algorithm, digest, signature)
    other = hashlib.new(algorithm.hash_algorithm.name, b"something else").digest()
    assert not verify_digest(certificate.public_key(), algorithm, other, signature)


def test_a_key_the_token_lacks_is_unavailable(token_settings):
    signer = Pkcs11Signer(token_settings.label, b"no such key")
    with pytest.raises(hsm.TokenUnavailable, match="NoSuchKey"):
        signer.sign_digest(bytes(32), Algorithm.RSA_PKCS1V15_SHA256)
