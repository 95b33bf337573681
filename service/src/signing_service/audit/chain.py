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
from json.encoder import encode_basestring_ascii

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
# The canonical encoding's keys in its (sorted) order, split at the sequence number, which a
# record gets only under the chain's lock; the text around the values is the same for every
# record (``encode``).
KEY_ORDER = sorted(CHAINED_FIELDS)
KEYS_BEFORE = KEY_ORDER[: KEY_ORDER.index("sequence")]
KEYS_AFTER = KEY_ORDER[KEY_ORDER.index("sequence") + 1 :]
TEXT_BEFORE = "{" + ",".join(f'"{key}":%s' for key in KEYS_BEFORE) + ',"sequence":'
TEXT_AFTER = "," + ",".join(f'"{key}":%s' for key in KEYS_AFTER) + "}"
values_before = operator.attrgetter(*KEYS_BEFORE)
values_after = operator.attrgetter(*KEYS_AFTER)
CREATED_BEFORE = KEYS_BEFORE.index("created")
GROWING_BEFORE = [KEYS_BEFORE.index(name) for name in GROWING_FIELDS]
ADDRESS_FIELD = AuditEvent._meta.get_field("address")


def timestamp(moment: datetime.datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC (isoformat, ending in +00:00: a third of
    strftime's time; the time of a record to be written is in UTC already, ``normalize``)."""
    if moment.tzinfo is not datetime.UTC:
        moment = moment.astimezone(datetime.UTC)
    return moment.isoformat(timespec="microseconds")[: -len("+00:00")] + "Z"


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

    The keys and their order being the same for every record, the values are put into a
    template (``TEXT_BEFORE``, ``TEXT_AFTER``), each as the canonical encoding writes it; this
    takes half the time of building the record's dictionary and encoding it with sorted
    keys (``canonical``, which verification uses, and which the tests hold this to)."""
    normalize(event)
    before = list(values_before(event))
    before[CREATED_BEFORE] = timestamp(before[CREATED_BEFORE])
    if event.reason == COUNTER_REASON and not event.api_key_name:
        for at in GROWING_BEFORE:
            before[at] = None
    return (
        (TEXT_BEFORE % json_texts(before)).encode(),
        (TEXT_AFTER % json_texts(values_after(event))).encode(),
    )


def json_texts(values) -> tuple[str, ...]:
    """Each value as JSON, as ``CANONICAL_JSON`` writes it; strings, most of them, without a
    call of the encoder (which builds an encoder object of C for each value but a string)."""
    return tuple([
        encode_basestring_ascii(value) if isinstance(value, str) else json_text(value)
        for value in values
    ])  # fmt: skip


def json_text(value) -> str:
    if value is None:
        return "null"
    if value.__class__ is int:
        return repr(value)
    if value == {}:
        return "{}"
    return CANONICAL_JSON.encode(value)


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
    event.address = ADDRESS_FIELD.get_prep_value(event.address) or None
    if event.created.tzinfo is not datetime.UTC:
        event.created = event.created.astimezone(datetime.UTC)
