"""Checkpoints: the chain head (sequence and hash) at a moment, signed by the service.

Someone who can write the database can rewrite a record and recompute every hash after it; he
cannot sign. A checkpoint pins the chain up to its record, so ``audit verify`` finds any change
before it. They are written periodically while the head moves (``SIGNING_SERVICE_AUDIT_
CHECKPOINT_SECONDS``, by the service's main process, never on the sign path), at shutdown, and
when the retention purge deletes records (anchoring the first record kept).

The key is Ed25519, derived from the master key (every replica has the same), so an auditor
can check checkpoints without any secret: the public key is on the Audit page and printed by
``signing-service audit public-key``. What is signed is the canonical JSON (chain.py's rules)
of ``{"created", "hash", "kind", "sequence"}``.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import functools
import logging

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.utils import timezone

from signing_service.audit import chain
from signing_service.audit.models import Checkpoint, CheckpointKind
from signing_service.master_key import current_master_key, derive_key

log = logging.getLogger(__name__)

KEY_PURPOSE = "audit checkpoints (Ed25519)"


@functools.cache
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(derive_key(current_master_key(), KEY_PURPOSE))


def public_key_text() -> str:
    """The public key as base64 of its 32 bytes: what an auditor pins."""
    raw = signing_key().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def statement(sequence: int, hash_: str, created: datetime.datetime, kind: str) -> bytes:
    """The bytes a checkpoint's signature is over."""
    fields = {
        "created": chain.timestamp(created),
        "hash": hash_,
        "kind": kind,
        "sequence": sequence,
    }
    return chain.canonical(fields)


def sign(sequence: int, hash_: str, kind: CheckpointKind) -> Checkpoint:
    """Write a checkpoint of record ``sequence`` whose hash is ``hash_``."""
    created = timezone.now().astimezone(datetime.UTC)
    signature = signing_key().sign(statement(sequence, hash_, created, kind))
    return Checkpoint.objects.create(
        sequence=sequence,
        hash=hash_,
        created=created,
        kind=kind,
        signature=base64.b64encode(signature).decode(),
    )


def is_genuine(checkpoint: Checkpoint, public_key: Ed25519PublicKey | None = None) -> bool:
    key = public_key or signing_key().public_key()
    fields = (checkpoint.sequence, checkpoint.hash, checkpoint.created, checkpoint.kind)
    try:
        signature = base64.b64decode(checkpoint.signature, validate=True)
        # Only the one base64 spelling of the signature: not another text of the same bytes.
        if base64.b64encode(signature).decode() != checkpoint.signature:
            return False
        key.verify(signature, statement(*fields))
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def sign_head(kind: CheckpointKind) -> Checkpoint | None:
    """A checkpoint of the chain's head (its last record), unless the last checkpoint already
    is of it."""
    sequence, hash_ = chain.head()
    last = Checkpoint.objects.order_by("-sequence").values_list("sequence", flat=True).first()
    if sequence == 0 or (last is not None and last >= sequence):
        return None
    return sign(sequence, hash_, kind)
