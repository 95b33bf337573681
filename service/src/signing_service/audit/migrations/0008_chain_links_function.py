"""PostgreSQL: the function that links new records into the hash chain inside the statement
that writes them (audit/rows.py), so that no round trip to the service falls within the
chain's lock. SQLite links records in the service (chain.link): it has one writer at a time."""

from django.db import migrations

CREATE = r"""
CREATE OR REPLACE FUNCTION audit_chain_links(
    befores bytea[], afters bytea[], genesis text, lock_key bigint
) RETURNS TABLE (link_order integer, link_sequence bigint, link_hash text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    last_sequence bigint;
    last_hash text;
BEGIN
    -- The chain's lock, held to the end of the transaction; then the head as committed once
    -- it is held (each statement of a volatile function sees what was committed when it began).
    PERFORM pg_advisory_xact_lock(lock_key);
    SELECT e.sequence, e.hash INTO last_sequence, last_hash
        FROM audit_auditevent e ORDER BY e.sequence DESC LIMIT 1;
    IF NOT FOUND THEN
        SELECT c.sequence, c.hash INTO last_sequence, last_hash
            FROM audit_checkpoint c ORDER BY c.sequence DESC LIMIT 1;
        IF NOT FOUND THEN
            last_sequence := 0;
            last_hash := genesis;
        END IF;
    END IF;
    -- chain.py: SHA-256 of the previous hash's hex, then the record's canonical encoding with
    -- its sequence number spliced in between the text before it and the text after it.
    FOR i IN 1 .. coalesce(array_length(befores, 1), 0) LOOP
        last_sequence := last_sequence + 1;
        last_hash := encode(sha256(
            convert_to(last_hash, 'UTF8') || befores[i]
            || convert_to(last_sequence::text, 'UTF8') || afters[i]
        ), 'hex');
        link_order := i;
        link_sequence := last_sequence;
        link_hash := last_hash;
        RETURN NEXT;
    END LOOP;
END
$$;
"""
DROP = "DROP FUNCTION IF EXISTS audit_chain_links(bytea[], bytea[], text, bigint)"


def on_postgresql(statement: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("audit", "0007_hash_chain")]

    operations = [migrations.RunPython(on_postgresql(CREATE), on_postgresql(DROP))]
