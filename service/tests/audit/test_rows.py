"""Audit records as table rows (rows.py): written intact whatever they hold, in any number,
and a database that refuses them refuses the signature."""

from django.db import connection

from signing_service.access.models import ApiKey
from signing_service.audit import records, verification
from signing_service.audit.models import AuditEvent, RequestType, Source, Status
from signing_service.test import BaseTestCase, make_client, post_sign

ADDRESS = AuditEvent._meta.get_field("address")
# What COPY's text format and JSON escape: tab, newline, carriage return, backslash, "\N" (its
# NULL), quotes, and text beyond ASCII.
AWKWARD = 'tab\there, line\nbreak\r, back\\slash, \\N, "quoted", \u00e9t\u00e9 \U0001f511'


class RowsTestCase(BaseTestCase):
    def test_awkward_text_comes_back_as_it_was_written(self):
        key, _ = ApiKey.create(AWKWARD[:100])
        client = make_client(key, "mac\tmini")[0]
        identity, _ = self.store_identity()
        written = records.build(
            RequestType.ADMIN,
            Status.FAILURE,
            source=Source.WEB,
            reason="bad_parameters",
            message=AWKWARD,
            api_key=key,
            client=client,
            identity=identity,
            user=self.alice,
            digest=bytes(range(32)),
            address="2001:db8::5",
            action="settings.change",
            changes={"note": [AWKWARD, None], "nested": {"list": [1, 2.5, True, "\\N"]}},
        )
        records.save_all([written])
        stored = AuditEvent.objects.get(pk=written.pk)
        for field in AuditEvent._meta.concrete_fields:
            self.assertEqual(
                getattr(stored, field.attname), getattr(written, field.attname), field.name
            )
        self.assertEqual(stored.changes["note"][0], AWKWARD)
        self.assertEqual(verification.verify().problems, 0)

    def test_addresses_in_every_spelling_are_stored_as_the_chain_hashed_them(self):
        spellings = [
            "192.0.2.9", "2001:0DB8:0000:0000:0000:0000:0000:0005", "::ffff:192.0.2.7",
            "fe80::1", "::", None, "",
        ]  # fmt: skip
        written = [
            records.build(RequestType.SIGN, Status.SUCCESS, address=address)
            for address in spellings
        ]
        records.save_all(written)
        for event, spelling in zip(written, spellings, strict=True):
            with self.subTest(spelling):
                stored = AuditEvent.objects.get(pk=event.pk)
                self.assertEqual(stored.address, event.address)
                self.assertEqual(stored.address, ADDRESS.to_python(spelling) or None)
        self.assertEqual(verification.verify().problems, 0)

    def test_a_thousand_records_at_once_each_get_their_own_row(self):
        written = [
            records.build(RequestType.SIGN, Status.SUCCESS, message=f"record {n}")
            for n in range(1201)  # more than one INSERT statement's worth on SQLite
        ]
        records.save_all(written)
        stored = dict(AuditEvent.objects.values_list("pk", "message"))
        self.assertEqual(stored, {event.pk: event.message for event in written})
        sequences = [event.sequence for event in written]
        self.assertEqual(sequences, list(range(sequences[0], sequences[0] + 1201)))
        self.assertEqual(verification.verify().problems, 0)


class RefusedRowsTestCase(BaseTestCase):
    """A real refusal by the database (a trigger, as a full disk or a revoked grant would
    refuse), not one faked in Django: on PostgreSQL the rows go past Django's cursor."""

    def setUp(self):
        key, _ = ApiKey.create("build machines")
        self.token = make_client(key)[1]
        self.identity, _ = self.store_identity()

    def refuse_audit_rows(self) -> None:
        table = connection.ops.quote_name(AuditEvent._meta.db_table)
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(
                    "CREATE FUNCTION refuse_row() RETURNS trigger LANGUAGE plpgsql AS"
                    " $$ BEGIN RAISE EXCEPTION 'no space left (test)'; END $$"
                )
                cursor.execute(
                    f"CREATE TRIGGER refuse BEFORE INSERT ON {table}"
                    " FOR EACH ROW EXECUTE FUNCTION refuse_row()"
                )
            else:
                cursor.execute(
                    f"CREATE TRIGGER refuse BEFORE INSERT ON {table}"
                    " BEGIN SELECT RAISE(ABORT, 'no space left (test)'); END"
                )

    def test_no_signature_leaves_when_the_database_refuses_the_record(self):
        self.refuse_audit_rows()
        response = post_sign(self.client, self.token, self.identity.sha1, "rsa-pkcs1v15-sha256")
        self.assertEqual(response.status_code, 503, response.content)
        self.assertEqual(response.json()["error"]["code"], "audit_unavailable")
        self.assertNotIn("signature", response.json())
        self.assertFalse(AuditEvent.objects.exists())
