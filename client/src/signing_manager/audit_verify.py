"""``signing-manager audit-verify FILE``: check a JSON audit export of the Signing Service
offline, without the service or any secret.

The file holds records as the service's hash chain encodes them, the hash the first one chains
from, signed checkpoints and the public key that checks them. A record's hash is SHA-256 of the
previous hash (64 hex characters) followed by the record's canonical encoding: the record's
fields but ``hash`` as JSON with sorted keys, no spaces, non-ASCII escaped; for a counter of
calls without a valid token (``reason`` bad_credentials, no API key name), ``count`` and
``message`` enter as null, since they grow while its interval runs. A checkpoint's Ed25519
signature is over the canonical JSON of its ``created``, ``hash``, ``kind`` and ``sequence``.

The file verifies when its records follow each other without a gap, each matches its hash,
every checkpoint is genuine and agrees with the record it names, and the last record is pinned
by a checkpoint (the export signs one): then no byte of a record can change unnoticed. Pass the
key from the service's Audit page with ``--public-key``; without it the key in the file is used,
which proves the file consistent, not that the service made it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from signing_manager.errors import SigningManagerError

EXPORT_FORMAT = "signing-service audit export 1"
GENESIS_HASH = "0" * 64
COUNTER_REASON = "bad_credentials"
GROWING_FIELDS = ("count", "message")


class ExportUnreadable(SigningManagerError):
    """The file is not an audit export this verifier knows."""


def canonical(fields: dict) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def record_hash(previous: str, record: dict) -> str:
    fields = {name: value for name, value in record.items() if name != "hash"}
    if fields.get("reason") == COUNTER_REASON and not fields.get("api_key_name"):
        fields.update(dict.fromkeys(GROWING_FIELDS))
    return hashlib.sha256(previous.encode() + canonical(fields)).hexdigest()


def is_genuine(checkpoint: dict, key: Ed25519PublicKey) -> bool:
    signed = {name: checkpoint.get(name) for name in ("created", "hash", "kind", "sequence")}
    try:
        signature = base64.b64decode(checkpoint["signature"], validate=True)
        # Only the one base64 spelling of the signature: not another text of the same bytes.
        if base64.b64encode(signature).decode() != checkpoint["signature"]:
            return False
        key.verify(signature, canonical(signed))
    except (InvalidSignature, binascii.Error, KeyError, TypeError, ValueError):
        return False
    return True


def public_key(text: str) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (binascii.Error, TypeError, ValueError):
        raise ExportUnreadable(f"{text!r} is not an Ed25519 public key in base64.") from None


def load(path: Path) -> dict:
    try:
        export = json.loads(path.read_bytes())
    except (OSError, ValueError) as error:
        raise ExportUnreadable(f"{path} cannot be read as JSON: {error}") from None
    if not isinstance(export, dict) or export.get("format") != EXPORT_FORMAT:
        raise ExportUnreadable(f"{path} is not a Signing Service audit export (JSON).")
    parts = ("records", list), ("checkpoints", list), ("previous_hash", (str, type(None)))
    for name, kind in parts:
        if not isinstance(export.get(name, ...), kind):
            raise ExportUnreadable(f"{path} has no {name!r}: it is not a whole audit export.")
    numbered = all(
        isinstance(item, dict) and type(item.get("sequence")) is int
        for item in export["records"] + export["checkpoints"]
    )
    if not numbered:
        raise ExportUnreadable(f"{path} has records or checkpoints without a sequence number.")
    return export


def problems(export: dict, key: Ed25519PublicKey) -> list[str]:
    """Every problem of the export, one line each; none if it verifies."""
    found: list[str] = []
    pinned: dict[int, str] = {}
    for checkpoint in export["checkpoints"]:
        if is_genuine(checkpoint, key):
            pinned.setdefault(checkpoint["sequence"], checkpoint["hash"])
            if pinned[checkpoint["sequence"]] != checkpoint["hash"]:
                found.append(f"checkpoints of record {checkpoint['sequence']} disagree.")
        else:
            found.append(
                f"checkpoint of record {checkpoint.get('sequence')}: its signature is not the"
                " service's (forged or altered)."
            )
    records = export["records"]
    if not records:
        return found
    previous_sequence = records[0]["sequence"] - 1
    previous_hash = export["previous_hash"]
    if previous_sequence in pinned and pinned[previous_sequence] != previous_hash:
        found.append(f"record {previous_sequence} (before the first): differs from its checkpoint.")
    for record in records:
        sequence = record.get("sequence")
        if sequence != previous_sequence + 1:
            found.append(
                f"record {sequence}: follows record {previous_sequence} (a gap or reorder)."
            )
        elif previous_hash is None or record_hash(previous_hash, record) != record.get("hash"):
            found.append(f"record {sequence}: does not match its hash (edited).")
        if sequence in pinned and pinned[sequence] != record.get("hash"):
            found.append(f"record {sequence}: differs from its checkpoint.")
        previous_sequence, previous_hash = sequence, record.get("hash")
    if previous_sequence not in pinned:
        found.append(f"record {previous_sequence}, the last, is not pinned by a checkpoint.")
    return found


def run(path: Path, key_text: str | None) -> int:
    """Print one line per problem, or that the file verifies; 0 if it does, 1 if not."""
    export = load(path)
    key = public_key(key_text or export.get("public_key", ""))
    found = problems(export, key)
    for line in found:
        print(line)
    if found:
        print(f"{path} does not verify: {len(found)} problem(s).")
        return 1
    records = export["records"]
    span = f"records {records[0]['sequence']} to {records[-1]['sequence']}" if records else "none"
    print(f"{path} verifies: {len(records)} records ({span}).")
    if not key_text:
        print("The checkpoints were checked with the key in the file; pass --public-key with the")
        print("key on the service's Audit page to prove the service signed them.")
    return 0
