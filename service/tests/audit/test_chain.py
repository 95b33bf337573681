"""The audit hash chain: sequence and hash of every record, ``audit verify`` finding each kind of
tampering (made with raw SQL, as a database administrator would), checkpoints and the purge."""

import datetime
import hashlib
import io
import json

from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from signing_service.access.models import ApiKey
from signing_service.api import failed_auth
from signing_service.audit import chain, checkpoints, records, verification
from signing_service.audit.models import (
    AuditEvent,
    Checkpoint,
    CheckpointKind,
    RequestType,
    Source,
    Status,
    Verification,
)
from signing_service.configuration.models import ServiceSettings
from signing_service.test import BaseTestCase

EDITED = "edited, reordered or replaced"
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
TEXTS = st.text() | st.sampled_from(['"sequence":', '"sequence":0,"source":', "\\", "\x00"])


def sql(statement: str, *parameters) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, parameters)


def write(count: int, **fields) -> list[AuditEvent]:
    return [
        records.record(RequestType.SIGN, Status.SUCCESS, message=f"record {n}", **fields)
        for n in range(count)
    ]


def verify_lines(*arguments: str) -> list[str]:
    """What ``audit verify`` prints but the last checkpoint (see test_the_last_checkpoint_is_
    named); its last line says whether the audit verifies."""
    out = io.StringIO()
    try:
        call_command("audit", "verify", *arguments, stdout=out)
    except CommandError as error:
        out.write(str(error))
    return [line for line in out.getvalue().splitlines() if not line.startswith("Last checkpoint")]


@given(
    values=st.fixed_dictionaries(
        {
            name: TEXTS
            for name in chain.CHAINED_FIELDS
            if name not in {"sequence", "created", "address", "changes", "count"}
        }
    ),
    reason=st.sampled_from(["", chain.COUNTER_REASON]) | TEXTS,
    api_key_name=st.sampled_from([""]) | TEXTS,
    address=st.none() | st.ip_addresses().map(str),
    changes=st.dictionaries(st.text(), JSON_VALUES, max_size=4),
    count=st.integers(0, 2**31 - 1),
    created=st.datetimes(
        min_value=datetime.datetime(1970, 1, 2),
        timezones=st.sampled_from(
            [datetime.UTC, datetime.timezone(datetime.timedelta(hours=-9, minutes=-30))]
        ),
    ),
    sequence=st.integers(1, 2**63 - 1),
)
def test_the_encoding_made_ahead_is_the_canonical_one(values, sequence, **fields):
    """``encode``'s template, filled in before the lock, gives the bytes of ``canonical`` (what
    verification and auditors compute) once the number is put in, whatever the values."""
    event = AuditEvent(**{**values, **fields})
    before, after = chain.encode(event)
    expected = chain.canonical({**chain.fields_of(event), "sequence": sequence})
    assert before + str(sequence).encode() + after == expected


class ChainTestCase(BaseTestCase):
    def test_records_are_numbered_without_gaps_and_hashed_as_the_readme_says(self):
        key, _ = ApiKey.create("build machines")
        write(2, api_key=key, address="2001:db8::1")
        records.record(
            RequestType.ADMIN, Status.SUCCESS, source=Source.WEB, user=self.alice,
            action="settings.change", changes={"retention": [365, 30], "note": "é"},
        )  # fmt: skip
        previous = "0" * 64
        rows = AuditEvent.objects.order_by("sequence")
        self.assertEqual([event.sequence for event in rows], [1, 2, 3])
        for event in rows:
            # The documented encoding, written out independently of chain.py.
            fields = {
                name: getattr(event, name)
                for name in [
                    "sequence",
                    "request_type",
                    "status",
                    "reason",
                    "message",
                    "source",
                    "api_key_name",
                    "client_hostname",
                    "identity_common_name",
                    "identity_sha1",
                    "username",
                    "algorithm",
                    "digest",
                    "address",
                    "action",
                    "changes",
                    "count",
                ]
            }
            fields["created"] = (
                event.created.astimezone(datetime.UTC)
                .isoformat(timespec="microseconds")
                .replace("+00:00", "Z")
            )
            encoding = json.dumps(fields, sort_keys=True, separators=(",", ":"))
            previous = hashlib.sha256((previous + encoding).encode()).hexdigest()
            self.assertEqual(event.hash, previous)

    def test_records_encoded_ahead_hash_as_the_canonical_encoding_says(self):
        """The number is put into an encoding made before the lock: wherever else the text
        ``"sequence":`` stands, the hash is the canonical one's."""
        tricky = [
            records.build(RequestType.SIGN, Status.SUCCESS, message='"sequence":0,"source":'),
            records.build(
                RequestType.ADMIN,
                Status.SUCCESS,
                source=Source.CLI,
                action="settings.change",
                changes={"sequence": [0, 1], "z": {"sequence": 0}},
            ),
            records.build(RequestType.SIGN, Status.FAILURE, reason="x" * 64, message="ü" * 500),
        ]
        chain.prepare(tricky)
        AuditEvent.objects.bulk_create(tricky)
        previous = chain.GENESIS_HASH
        for event in AuditEvent.objects.order_by("sequence"):
            self.assertEqual(event.hash, chain.next_hash(previous, chain.fields_of(event)))
            previous = event.hash
        self.assertEqual(verify_lines(), ["The audit verifies: 3 records, up to record 3."])

    def test_every_column_is_chained_or_deliberately_left_out(self):
        columns = {field.name for field in AuditEvent._meta.concrete_fields}
        self.assertEqual(columns, {*chain.CHAINED_FIELDS, *chain.UNCHAINED_FIELDS})

    def test_an_untouched_chain_verifies(self):
        write(5)
        lines = verify_lines()
        self.assertEqual(lines, ["The audit verifies: 5 records, up to record 5."])

    def test_deleting_what_a_record_names_keeps_it_verifiable(self):
        key, _ = ApiKey.create("build machines")
        write(2, api_key=key, user=self.bob)
        key.delete()
        self.bob.delete()
        self.assertEqual(verify_lines(), ["The audit verifies: 2 records, up to record 2."])

    def test_a_growing_counter_of_calls_without_a_token_keeps_it_verifiable(self):
        for _ in range(3):
            failed_auth.failed_authentication(RequestType.SIGN, "10.0.0.9")
        write(1)
        self.assertEqual(AuditEvent.objects.get(sequence=1).count, 3)
        self.assertEqual(verify_lines()[-1], "The audit verifies: 2 records, up to record 2.")

    def test_an_edited_record_is_found(self):
        write(4)
        sql("UPDATE audit_auditevent SET digest = %s WHERE sequence = 2", "ab" * 32)
        self.assertEqual(
            verify_lines(),
            [
                "record 2: does not match its hash (edited, reordered or replaced).",
                "The audit does not verify: 1 problem(s).",
            ],
        )

    def test_a_deleted_record_is_found(self):
        write(4)
        sql("DELETE FROM audit_auditevent WHERE sequence = 3")
        self.assertEqual(verify_lines()[0], "record 3 is missing (deleted).")

    def test_reordered_records_are_found(self):
        write(4)
        sql("UPDATE audit_auditevent SET sequence = 100 WHERE sequence = 2")
        sql("UPDATE audit_auditevent SET sequence = 2 WHERE sequence = 3")
        sql("UPDATE audit_auditevent SET sequence = 3 WHERE sequence = 100")
        self.assertEqual(
            verify_lines()[:2],
            [
                "record 2: does not match its hash (edited, reordered or replaced).",
                "record 3: does not match its hash (edited, reordered or replaced).",
            ],
        )

    def test_a_removed_tail_is_found_by_the_checkpoint(self):
        write(5)
        checkpoints.sign_head(CheckpointKind.REQUEST)
        write(1)
        sql("DELETE FROM audit_auditevent WHERE sequence >= 4")
        self.assertEqual(
            verify_lines()[0],
            "records 4 to 5 are missing (the end was cut off: a checkpoint covers it).",
        )

    def test_a_rewritten_chain_is_found_by_the_checkpoint(self):
        events = write(3)
        checkpoints.sign_head(CheckpointKind.PERIODIC)
        rewritten = events[1]
        rewritten.message = "nothing to see"
        previous = events[0].hash
        for event in events[1:]:  # the chain recomputed after the edit, head and all
            event.hash = previous = chain.next_hash(previous, chain.fields_of(event))
            sql("UPDATE audit_auditevent SET message = %s, hash = %s WHERE id = %s",
                event.message, event.hash, event.pk)  # fmt: skip
        lines = verify_lines()
        self.assertEqual(len(lines), 2)
        self.assertRegex(lines[0], r"^record 3: differs from the checkpoint of .* UTC")

    def test_a_forged_checkpoint_is_found(self):
        write(3)
        checkpoint = checkpoints.sign_head(CheckpointKind.PERIODIC)
        sql("UPDATE audit_checkpoint SET hash = %s WHERE id = %s", "0" * 64, checkpoint.pk)
        self.assertEqual(
            verify_lines()[0],
            f"checkpoint {checkpoint.pk} (record 3): its signature is not the service's"
            " (forged or altered).",
        )

    def test_a_partial_walk_checks_only_its_range(self):
        write(6)
        sql("UPDATE audit_auditevent SET message = 'x' WHERE sequence = 5")
        within = verify_lines("--from", "2", "--to", "4")
        self.assertEqual(within[-1], "The audit verifies: 3 records, up to record 4.")
        through = verify_lines("--from", "4")
        self.assertEqual(through[0], f"record 5: does not match its hash ({EDITED}).")

    def test_a_checkpoint_is_signed_after_writes_at_most_once_per_interval(self):
        records.checkpoint_throttle.allow_now()
        write(2)
        (made,) = Checkpoint.objects.all()
        self.assertEqual((made.sequence, made.kind), (1, CheckpointKind.PERIODIC))
        self.assertTrue(checkpoints.is_genuine(made))

    def test_the_last_checkpoint_is_named(self):
        write(2)
        made = checkpoints.sign(2, AuditEvent.objects.get(sequence=2).hash, CheckpointKind.REQUEST)
        out = io.StringIO()
        call_command("audit", "verify", stdout=out)
        self.assertIn(
            f"Last checkpoint: record 2 (on request, {made.created:%Y-%m-%d %H:%M:%S} UTC).",
            out.getvalue().splitlines(),
        )

    def test_verifying_remembers_the_outcome_for_the_audit_page(self):
        write(2)
        remembered = verification.remember(verification.verify())
        self.assertEqual((remembered.sequence, remembered.problems), (2, 0))


class PurgeKeepsTheProofTestCase(BaseTestCase):
    def setUp(self):
        ServiceSettings.objects.update_or_create(pk=1, defaults={"audit_retention_days": 30})
        past = timezone.now() - datetime.timedelta(days=40)
        for days in range(4):
            event = records.build(RequestType.SIGN, Status.SUCCESS, message=f"old {days}")
            event.created = past + datetime.timedelta(days=days)
            records.save_all([event])
        write(3)

    def test_the_purge_anchors_the_first_kept_record(self):
        self.assertEqual(records.purge_expired(), 4)
        anchor = Checkpoint.objects.get(kind=CheckpointKind.PURGE)
        self.assertEqual(anchor.sequence, 4)
        self.assertEqual(verify_lines(), ["The audit verifies: 3 records, up to record 7."])

    def test_deleting_a_kept_record_after_the_purge_is_found(self):
        records.purge_expired()
        sql("DELETE FROM audit_auditevent WHERE sequence = 5")
        self.assertEqual(verify_lines()[0], "record 5 is missing (deleted).")

    def test_after_a_purge_of_every_record_the_sequence_goes_on(self):
        ServiceSettings.objects.filter(pk=1).update(audit_retention_days=1)
        self.assertEqual(records.purge_expired(timezone.now() + datetime.timedelta(days=2)), 7)
        (event,) = write(1)
        self.assertEqual(event.sequence, 8)
        self.assertEqual(verify_lines(), ["The audit verifies: 1 records, up to record 8."])

    def test_records_older_than_the_purge_are_not_required(self):
        records.purge_expired()
        records.purge_expired()  # nothing more to purge: no second checkpoint
        self.assertEqual(Checkpoint.objects.filter(kind=CheckpointKind.PURGE).count(), 1)


class ProofOnTheAuditPageTestCase(BaseTestCase):
    def test_the_page_says_when_the_chain_was_last_verified(self):
        self.client.force_login(self.alice)  # record 1: the sign-in
        self.assertContains(self.client.get("/audit/"), "Not verified yet.")
        write(3)
        response = self.client.post("/audit/verify/", follow=True)
        self.assertRedirects(response, "/audit/#proof")
        self.assertContains(response, "The audit verifies, up to record 4.")
        self.assertContains(response, "Verified up to record 4 at ")
        self.assertContains(response, checkpoints.public_key_text())

    def test_a_failed_verification_shows_its_first_problem(self):
        self.client.force_login(self.alice)  # record 1: the sign-in
        write(3)
        sql("DELETE FROM audit_auditevent WHERE sequence = 3")
        response = self.client.post("/audit/verify/", follow=True)
        self.assertContains(response, "The audit does not verify: record 3 is missing (deleted).")
        self.assertContains(response, "Verification failed")

    def test_the_command_line_verification_shows_on_the_page(self):
        write(2)
        verify_lines()
        self.client.force_login(self.alice)
        self.assertContains(self.client.get("/audit/"), "Verified up to record 2 at ")

    def test_only_admins_may_verify_and_only_by_post(self):
        self.client.force_login(self.bob)
        self.assertEqual(self.client.post("/audit/verify/").status_code, 403)
        self.client.force_login(self.alice)
        self.assertEqual(self.client.get("/audit/verify/").status_code, 405)
        self.assertFalse(Verification.objects.exists())
