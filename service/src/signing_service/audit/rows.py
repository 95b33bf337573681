"""Writing audit records as table rows, with as little as possible under the chain's lock.

Every signature's record is written here, and a record gets its sequence number and hash only
under the chain's lock (chain.py), which one writer of all processes holds at a time until its
transaction commits. So everything else is done before the lock: the record's canonical
encoding (chain.prepare) and each column's database value (``prepare``), both made by the sign
path before it even waits for its turn to write.

- PostgreSQL: one statement. The database takes the lock, reads the chain's head and hashes the
  records (the function ``audit_chain_links``, migration 0008) as it inserts them, and, outside
  a caller's transaction, commits in the same round trip. Nothing under the lock waits for the
  service, whose threads share one interpreter lock: each round trip held it a few
  milliseconds more under load (bench/README.md, "The chain's cost").
- SQLite: the service links the records (chain.link) and writes them with multi-row
  ``INSERT … RETURNING id``; SQLite has one writer at a time anyway, in this process.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import operator

from django.db import connections, models
from psycopg.types.json import Jsonb

from signing_service.audit import chain
from signing_service.audit.models import AuditEvent

# The columns the chain fills in under its lock (chain.link); every other one is made before.
CHAINED = ("sequence", "hash")
# Rows per INSERT statement on SQLite: well within its limit of 32,766 parameters.
INSERT_BATCH = 500

# Records linked by the database as they are inserted (the sign path's every write): the
# records as one JSON array of objects (their columns), each taking the place ``links`` gives
# its position; their encodings for the chain (ASCII JSON, which holds no line break) as two
# texts of a line each, not inside the JSON array, where every quote of an encoding would be
# escaped and parsed again (bench/README.md: linking 100 records took the server 0.97 ms from
# the JSON, 0.27 ms from the texts).
# The INSERT takes its lock on the table as the statement is planned, before the function takes
# the chain's: a writer never waits for the table (locked by a migration, say) while holding
# the chain's lock, which would make every other writer wait behind it for its own lock timeout.
APPEND = """
WITH incoming AS (
    SELECT record, link_order
    FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS element (record, link_order)
), links AS (
    SELECT * FROM audit_chain_links(
        (SELECT array_agg(convert_to(line, 'UTF8') ORDER BY line_order)
         FROM unnest(string_to_array(%s, E'\\n')) WITH ORDINALITY AS part (line, line_order)),
        (SELECT array_agg(convert_to(line, 'UTF8') ORDER BY line_order)
         FROM unnest(string_to_array(%s, E'\\n')) WITH ORDINALITY AS part (line, line_order)),
        %s,
        %s
    )
)
INSERT INTO {table} (sequence, hash, {columns})
SELECT links.link_sequence, links.link_hash, {record_columns}
FROM incoming JOIN links USING (link_order)
CROSS JOIN LATERAL jsonb_populate_record(NULL::{table}, incoming.record) AS record
RETURNING sequence, hash, id
"""

FIELDS = [field for field in AuditEvent._meta.concrete_fields if not field.primary_key]
UNCHAINED = [field for field in FIELDS if field.attname not in CHAINED]
COLUMNS = [field.column for field in UNCHAINED]
unchained_values = operator.attrgetter(*(field.attname for field in UNCHAINED))
# Each column's field, and whether the attribute's value can go to the database as it is when it
# is a string, an integer or None: Django's preparation returns those unchanged, at about a
# microsecond a column, most of a record's time here (the address, a string since
# chain.normalize, it parses and the JSON turns back into the same string).
PLAIN_FIELDS = (
    models.CharField | models.IntegerField | models.ForeignKey | models.GenericIPAddressField
)
PREPARED = [(field, isinstance(field, PLAIN_FIELDS)) for field in UNCHAINED]


def prepare(events: list[AuditEvent], using: str = "default") -> None:
    """Make the records' rows ahead of the write, once the chain has encoded them
    (chain.prepare, which settles some values); those made already are left as they are.

    For PostgreSQL a row is a JSON object of its columns' values, and the rows go as one JSON
    array: psycopg escapes each element of an array parameter in Python, which cost 60 µs a
    record with a column an array; the JSON encoder is C (bench/README.md)."""
    connection = connections[using]
    as_json = connection.vendor == "postgresql"
    for event in events:
        if not hasattr(event, "row"):
            values = [
                value
                if plain and (value is None or value.__class__ is int or isinstance(value, str))
                else field.get_db_prep_save(value, connection)
                for (field, plain), value in zip(PREPARED, unchained_values(event), strict=True)
            ]
            event.row = (
                ROW_JSON.encode(dict(zip(COLUMNS, values, strict=True))) if as_json else values
            )


def json_value(value):
    """The JSON of the column values that JSON has no type for."""
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, Jsonb):
        return value.obj
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not a column value this module knows.")


ROW_JSON = json.JSONEncoder(default=json_value)


class Rows:
    """New records on their way into the table, their values made on creation."""

    def __init__(self, events: list[AuditEvent], using: str):
        prepare(events, using)
        self.events = events
        self.connection = connections[using]

    @property
    def linked_by_database(self) -> bool:
        return self.connection.vendor == "postgresql"

    def append(self) -> None:
        """PostgreSQL: link and insert the records in one statement (its own transaction,
        committed with it, unless the caller has one open)."""
        quote = self.connection.ops.quote_name
        columns = [quote(column) for column in COLUMNS]
        statement = APPEND.format(
            table=quote(AuditEvent._meta.db_table),
            columns=", ".join(columns),
            record_columns=", ".join(f"record.{column}" for column in columns),
        )
        befores, afters = zip(*(event.chain_encoding for event in self.events), strict=True)
        parameters = [
            "[" + ",".join(event.row for event in self.events) + "]",
            b"\n".join(befores).decode("ascii"),
            b"\n".join(afters).decode("ascii"),
            chain.GENESIS_HASH,
            chain.ADVISORY_LOCK,
        ]
        with self.connection.cursor() as cursor:
            cursor.execute(statement, parameters)
            linked = sorted(cursor.fetchall())
        for event, (sequence, hash_, pk) in zip(self.events, linked, strict=True):
            event.sequence, event.hash, event.pk = sequence, hash_, pk
            event._state.adding, event._state.db = False, self.connection.alias

    def insert(self) -> None:
        """SQLite: write the records ``chain.link`` has linked."""
        quote = self.connection.ops.quote_name
        columns = ", ".join(quote(column) for column in [*CHAINED, *COLUMNS])
        statement = "INSERT INTO {} ({}) VALUES {} RETURNING id".format(  # noqa: S608 - names
            quote(AuditEvent._meta.db_table), columns, "{}"
        )
        row = "(" + ", ".join(["%s"] * len(FIELDS)) + ")"
        with self.connection.cursor() as cursor:
            for start in range(0, len(self.events), INSERT_BATCH):
                chunk = self.events[start : start + INSERT_BATCH]
                values = [
                    value for event in chunk for value in (event.sequence, event.hash, *event.row)
                ]
                cursor.execute(statement.format(", ".join([row] * len(chunk))), values)
                for event, (pk,) in zip(chunk, cursor.fetchall(), strict=True):
                    event.pk = pk
                    event._state.adding, event._state.db = False, self.connection.alias
