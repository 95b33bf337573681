"""The audit hash chain: every record has a sequence number (1, 2, 3 … with no gaps) and
``hash = SHA-256(previous record's hash || canonical encoding of the record)``, the first record
chaining from 64 zeros. Whoever edits, removes or reorders a record breaks every hash after it;
checkpoints (checkpoints.py) sign the head so the chain itself cannot simply be recomputed.

The canonical encoding (``canonical``) is what an auditor reimplements: the record as a JSON
object of the fields in ``CHAINED_FIELDS``, keys sorted, no spaces (separators ``,`` and ``:``),
non-ASCII escaped as ``\\uXXXX``, NULL as ``null``, ``created`` in UTC as
``YYYY-MM-DDTHH:MM:SS.ffffffZ``, ``changes`` as the JSON object it is; the previous hash enters
as its 64 hex characters (ASCII). That is every column but ``id``, ``hash`` and the links to
the API key, client, identity and user, which become NULL when those are deleted (the names
recorded beside them are chained). A new column must be added here with care: the records
already written were hashed without it.

One exception: the per-address counters of calls without a valid token (failed_auth.py) grow
during their interval, so their ``count`` and ``message`` enter as ``null``. The rest of such a
record (time, address, type) is chained like any other.

Appending is serialized: the writer takes one lock, reads the last record (by the unique index
on ``sequence``) and appends after it, so every process and replica extends the same chain;
the lock is held only until its transaction commits. On PostgreSQL the lock is a
transaction-level advisory lock taken by the database itself, in the one statement that links
and inserts the records (the function ``audit_chain_links`` of migration 0008, rows.py); the
service encodes the records before (``prepare``) and the database splices in the numbers and
hashes exactly as ``link`` does. On SQLite every transaction takes the database's write lock
at BEGIN (database.py) and ``link`` does the linking. Taking no row lock and updating no head
row keeps the cost to one indexed read and the hashing (bench/README.md). With no record left
(the purge took all), the chain goes on from the last checkpoint, so sequence numbers are
never used twice.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import operator

from django.db import connections

from signing_service.audit.models import AuditEvent, Checkpoint

GENESIS_HASH = "0" * 64
# The advisory lock's number: any constant no other lock of this database uses ("audit" chain).
ADVISORY_LOCK = 0x6175646974
LAST_OF = "SELECT sequence, hash FROM %s ORDER BY sequence DESC LIMIT 1"
# Written by failed_auth.py while their interval runs: not chained (see above).
COUNTER_REASON = "bad_credentials"
GROWING_FIELDS = ("count", "message")
CHAINED_FIELDS = (
    "sequence", "created", "request_type", "status", "reason", "message", "source",
    "api_key_name", "client_hostname", "identity_common_name", "identity_sha1", "username",
    "algorithm", "digest", "address", "action", "changes", "count",
)  # fmt: skip
# Not chained: the row's own number and hash, and links that deleting what they name clears.
UNCHAINED_FIELDS = ("id", "hash", "api_key", "client", "identity", "user")
# Made once: every record written is hashed on the sign path (json.dumps would make one a call).
CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)
chained_values = operator.attrgetter(*CHAINED_FIELDS)
SEQUENCE_KEY = b'"sequence":'


def timestamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def fields_of(event: AuditEvent) -> dict:
    """The record's chained fields, as the canonical encoding holds them."""
    return encoded(dict(zip(CHAINED_FIELDS, chained_values(event), strict=True)))


def encoded(values: dict) -> dict:
    """Chained field values as read from the database, as the canonical encoding holds them."""
    fields = {**values, "created": timestamp(values["created"])}
    # A counter has no API key: its key's name is empty (the name, unlike the link, is kept).
    if fields["reason"] == COUNTER_REASON and not fields["api_key_name"]:
        fields.update(dict.fromkeys(GROWING_FIELDS))
    return fields


def document(event: AuditEvent) -> dict:
    """The record for the export and the live stream: its chained fields as they are (a
    counter's growing ones too) and its hash."""
    values = {name: getattr(event, name) for name in CHAINED_FIELDS}
    return {**values, "created": timestamp(event.created), "hash": event.hash}


def canonical(fields: dict) -> bytes:
    return CANONICAL_JSON.encode(fields).encode()


def next_hash(previous: str, fields: dict) -> str:
    return hashlib.sha256(previous.encode() + canonical(fields)).hexdigest()


def link(events: list[AuditEvent], using: str = "default") -> None:
    """Give new records their sequence numbers and hashes, on SQLite (PostgreSQL links them as
    it inserts them, rows.py). Call inside the transaction that writes them, which holds
    SQLite's one write lock from its BEGIN to its commit (database.py)."""
    if not events:
        return
    prepare(events)
    sequence, previous = head(using)
    for event in events:
        before, after = event.chain_encoding
        sequence += 1
        event.sequence = sequence
        number = str(sequence).encode()
        event.hash = previous = hashlib.sha256(
            previous.encode() + before + number + after
        ).hexdigest()


def prepare(events: list[AuditEvent]) -> None:
    """Encode records for ``link`` ahead of the write, outside every lock (``encode``); those
    encoded already are left as they are."""
    for event in events:
        if not hasattr(event, "chain_encoding"):
            event.chain_encoding = encode(event)


def encode(event: AuditEvent) -> tuple[bytes, bytes]:
    """The record's canonical encoding but its sequence number, which it gets under the lock:
    the text before the number and after it. Encoding is most of the hashing's cost, and the
    lock is held by one writer of all processes at a time, so writers encode before it
    (``prepare``; measured: batches of cheap signatures ran at 0.6 of the rate without the
    chain while the encoding was done under the lock).

    The number goes where the placeholder is: at the top level, keys are sorted and every key
    after "sequence" ("source", "status", "username") holds a string, in which JSON escapes
    every quote, so the last ``"sequence":`` of the text is the record's own, whatever
    ``changes`` (sorted before it) holds."""
    normalize(event)
    text = canonical({**fields_of(event), "sequence": 0})
    at = text.rindex(SEQUENCE_KEY) + len(SEQUENCE_KEY)
    return text[:at], text[at + 1 :]  # without the placeholder's "0"


def head(using: str = "default") -> tuple[int, str]:
    """The last record's sequence and hash; the last checkpoint's if no record is left.

    Plain SQL, a statement of its own after the lock's (a statement sees what was committed
    when it began): this runs for every audit write, and the ORM's cost per query is several
    times the hashing's (bench/README.md)."""
    with connections[using].cursor() as cursor:
        for table in (AuditEvent._meta.db_table, Checkpoint._meta.db_table):
            cursor.execute(LAST_OF % table)
            row = cursor.fetchone()
            if row:
                return row[0], row[1]
    return 0, GENESIS_HASH


def normalize(event: AuditEvent) -> None:
    """Store what will be read back, so the hash computed now is the one verified later: the
    address as the database writes it, the time in whole microseconds of UTC."""
    field = AuditEvent._meta.get_field("address")
    event.address = field.get_prep_value(event.address) or None
    event.created = event.created.astimezone(datetime.UTC)
