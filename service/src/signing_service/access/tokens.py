"""API keys and client tokens: generated secrets that the service stores only as hashes.

A secret looks like ``smk_<id>_<random>`` (API key) or ``smc_<id>_<random>`` (client token). The
id (10 characters) finds the row; the SHA-256 of the whole secret is compared in constant time.
SHA-256 suffices: the random part has 256 bits, so there is nothing to guess a password from,
and a stolen database yields no usable secret. The value is shown once and never again.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

API_KEY_PREFIX = "smk"
CLIENT_TOKEN_PREFIX = "smc"  # noqa: S105 - a prefix, not a secret
ID_LENGTH = 10


@dataclass(frozen=True)
class NewSecret:
    value: str  # shown once, never stored
    token_id: str
    digest: str


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_secret(prefix: str) -> NewSecret:
    token_id = secrets.token_hex(ID_LENGTH // 2)
    value = f"{prefix}_{token_id}_{secrets.token_urlsafe(32)}"
    return NewSecret(value=value, token_id=token_id, digest=hash_secret(value))


def split_secret(value: str, prefix: str) -> str | None:
    """The id inside a well-formed secret of the given kind, or None."""
    parts = value.split("_", 2)
    if len(parts) != 3 or parts[0] != prefix or len(parts[1]) != ID_LENGTH:
        return None
    return parts[1]


def secret_matches(value: str, digest: str) -> bool:
    return hmac.compare_digest(hash_secret(value), digest)
