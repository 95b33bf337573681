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

from django.db import connections

from signing_service.audit import chain
from signing_service.audit.models import AuditEvent

# The columns the chain fills in under its lock (chain.link); every other one is made before.
CHAINED = ("sequence", "hash")
# Rows per INSERT statement on SQLite: well within its limit of 32,766 parameters.
INSERT_BATCH = 500

# Records linked by the database as they are inserted (the sign path's every write): the
# records' values as arrays, one a column, unnested in the order of ``links``.
APPEND = """
WITH links AS (SELECT * FROM audit_chain_links(%s::bytea[], %s::bytea[], %s, %s))
INSERT INTO {table} (sequence, hash, {columns})
SELECT links.link_sequence, links.link_hash, {row_columns}
FROM unnest({arrays}) WITH ORDINALITY AS incoming ({columns}, link_order)
JOIN links USING (link_order)
RETURNING sequence, hash, id
"""

FIELDS = [field for field in AuditEvent._meta.concrete_fields if not field.primary_key]
UNCHAINED = [field for field in FIELDS if field.attname not in CHAINED]


def prepare(events: list[AuditEvent], using: str = "default") -> None:
    """Make the records' column values ahead of the write, once the chain has encoded them
    (chain.prepare, which settles some values); those made already are left as they are."""
    connection = connections[using]
    for event in events:
        if not hasattr(event, "column_values"):
            event.column_values = [
                field.get_db_prep_save(getattr(event, field.attname), connection)
                for field in UNCHAINED
            ]


class Rows:
    """New records on their way into the table, their values made on creation."""

    def __init__(self, events: list[AuditEvent], using: str):
        prepare(events, using)
        self.events = events
        self.connection = connections[using]
        self.values = [event.column_values for event in events]

    @property
    def linked_by_database(self) -> bool:
        return self.connection.vendor == "postgresql"

    def append(self) -> None:
        """PostgreSQL: link and insert the records in one statement (its own transaction,
        committed with it, unless the caller has one open)."""
        quote = self.connection.ops.quote_name
        columns = [quote(column) for column in unchained_columns()]
        types = [field.db_type(self.connection) for field in UNCHAINED]
        statement = APPEND.format(
            table=quote(AuditEvent._meta.db_table),
            columns=", ".join(columns),
            arrays=", ".join(f"%s::{type_}[]" for type_ in types),
            row_columns=", ".join(f"incoming.{column}" for column in columns),
        )
        encodings = [event.chain_encoding for event in self.events]
        parameters = [
            [before for before, _ in encodings],
            [after for _, after in encodings],
            chain.GENESIS_HASH,
            chain.ADVISORY_LOCK,
            *(list(column) for column in zip(*self.values, strict=True)),
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
        columns = ", ".join(quote(column) for column in [*CHAINED, *unchained_columns()])
        statement = "INSERT INTO {} ({}) VALUES {} RETURNING id".format(  # noqa: S608 - names
            quote(AuditEvent._meta.db_table), columns, "{}"
        )
        row = "(" + ", ".join(["%s"] * len(FIELDS)) + ")"
        rows = list(zip(self.events, self.values, strict=True))
        with self.connection.cursor() as cursor:
            for start in range(0, len(rows), INSERT_BATCH):
                chunk = rows[start : start + INSERT_BATCH]
                values = [
                    value
                    for event, values in chunk
                    for value in (event.sequence, event.hash, *values)
                ]
                cursor.execute(statement.format(", ".join([row] * len(chunk))), values)
                for (event, _), (pk,) in zip(chunk, cursor.fetchall(), strict=True):
                    event.pk = pk
                    event._state.adding, event._state.db = False, self.connection.alias


def unchained_columns() -> list[str]:
    return [field.column for field in UNCHAINED]
