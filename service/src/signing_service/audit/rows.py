"""Writing audit records as table rows, with as little as possible under the chain's lock.

Every signature's record is written here, and a record gets its sequence number and hash only
under the chain's lock (chain.py), which one writer of all processes holds at a time until its
transaction commits. So everything else is done before the lock: each column's database value
(``prepare``, which the sign path calls before it even waits for its turn to write) and, on
PostgreSQL, the rows' primary keys, taken from the table's identity sequence (numbers no
transaction waits for; a number left unused by a rolled-back write is a gap in ids only, which
the chain does not cover). Under the lock only the two chained columns are filled in and the
rows sent:

- PostgreSQL: ``COPY … FROM STDIN``. A multi-row ``INSERT`` of a batch's hundred records has
  2,300 parameters to bind, parse and plan, and held the lock four times as long (measured in
  bench/README.md, "The chain's cost").
- SQLite: multi-row ``INSERT … RETURNING id``, in the process, without a server to parse for;
  the ORM's own ``bulk_create`` costs three times as much per record.
"""

from __future__ import annotations

from django.db import connections

from signing_service.audit.models import AuditEvent

# The columns the chain fills in under its lock (chain.link); every other one is made before.
CHAINED = ("sequence", "hash")
# Rows per INSERT statement on SQLite: well within its limit of 32,766 parameters.
INSERT_BATCH = 500

# The table's name is in the text (not a parameter) so that what watches statements sees
# which table the ids are for: the COPY that follows goes past Django's cursor.
RESERVE_IDS = "SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, %s)"

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
    """New records on their way into the table: made ready on creation (before the chain's
    lock), sent by ``write`` (under it, once ``chain.link`` has given them their places)."""

    def __init__(self, events: list[AuditEvent], using: str):
        prepare(events, using)
        self.events = events
        self.connection = connections[using]
        self.values = [event.column_values for event in events]
        self.ids = self.reserve_ids() if self.connection.vendor == "postgresql" else None

    def reserve_ids(self) -> list[int]:
        table = self.connection.ops.quote_name(AuditEvent._meta.db_table)
        with self.connection.cursor() as cursor:
            cursor.execute(RESERVE_IDS.format(table=table), [len(self.events)])
            return [id_ for (id_,) in cursor.fetchall()]

    def write(self) -> None:
        if self.ids is None:
            self.insert()
        else:
            self.copy()
        for event in self.events:
            event._state.adding, event._state.db = False, self.connection.alias

    def chained_row(self, event: AuditEvent, values: list) -> list:
        return [event.sequence, event.hash, *values]

    def copy(self) -> None:
        quote = self.connection.ops.quote_name
        columns = ", ".join(quote(column) for column in ["id", *CHAINED, *unchained_columns()])
        statement = f"COPY {quote(AuditEvent._meta.db_table)} ({columns}) FROM STDIN"
        # Past Django's cursor, so its errors are made Django's here (DatabaseError and kin).
        with (
            self.connection.wrap_database_errors,
            self.connection.cursor() as cursor,
            cursor.cursor.copy(statement) as copy,
        ):
            for id_, event, values in zip(self.ids, self.events, self.values, strict=True):
                copy.write_row([id_, *self.chained_row(event, values)])
        for id_, event in zip(self.ids, self.events, strict=True):
            event.pk = id_

    def insert(self) -> None:
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
                values = [value for pair in chunk for value in self.chained_row(*pair)]
                cursor.execute(statement.format(", ".join([row] * len(chunk))), values)
                for (event, _), (pk,) in zip(chunk, cursor.fetchall(), strict=True):
                    event.pk = pk


def unchained_columns() -> list[str]:
    return [field.column for field in UNCHAINED]
