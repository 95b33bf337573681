"""Envelope encryption of private keys at rest.

Each private key is encrypted with AES-256-GCM under a fresh random data key; the data key is
encrypted (wrapped) with AES-256-GCM under a key derived from the service's master key. Both
encryptions bind a context string (the identity's SHA-256 fingerprint) as associated data, so a
ciphertext copied onto another record does not decrypt.

Layout of each sealed value: ``version (1 byte, 0x01) | nonce (12 bytes) | ciphertext | tag (16)``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from signing_service.master_key import derive_key

VERSION = b"\x01"
NONCE_SIZE = 12
WRAPPING_PURPOSE = "identity-data-key-wrapping"


class UnsealError(Exception):
    """A sealed key does not open: wrong master key, or the stored data was altered."""


@dataclass(frozen=True)
class SealedKey:
    wrapped_data_key: bytes
    ciphertext: bytes


def _encrypt(key: bytes, plaintext: bytes, context: bytes) -> bytes:
    nonce = os.urandom(NONCE_SIZE)
    return VERSION + nonce + AESGCM(key).encrypt(nonce, plaintext, context)


def _decrypt(key: bytes, sealed: bytes, context: bytes) -> bytes:
    if sealed[:1] != VERSION:
        raise UnsealError("Unknown sealed-key format.")
    nonce, ciphertext = sealed[1 : 1 + NONCE_SIZE], sealed[1 + NONCE_SIZE :]
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, context)
    except InvalidTag:
        raise UnsealError(
            "The stored private key does not decrypt: is this the master key it was sealed with?"
        ) from None


def seal(plaintext: bytes, master_key: bytes, context: bytes) -> SealedKey:
    data_key = AESGCM.generate_key(bit_length=256)
    wrapping_key = derive_key(master_key, WRAPPING_PURPOSE)
    return SealedKey(
        wrapped_data_key=_encrypt(wrapping_key, data_key, context),
        ciphertext=_encrypt(data_key, plaintext, context),
    )


def unwrap_data_key(wrapped_data_key: bytes, master_key: bytes, context: bytes) -> bytes:
    """The data key, unwrapped: proof that ``master_key`` is the one the key was sealed with."""
    return _decrypt(derive_key(master_key, WRAPPING_PURPOSE), wrapped_data_key, context)


def unseal(sealed: SealedKey, master_key: bytes, context: bytes) -> bytes:
    data_key = unwrap_data_key(sealed.wrapped_data_key, master_key, context)
    return _decrypt(data_key, sealed.ciphertext, context)
