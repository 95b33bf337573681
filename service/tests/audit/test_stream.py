"""The live stream (SIGNING_SERVICE_AUDIT_LOG): every committed record as one line of JSON,
after the commit; a stream that cannot be written never stops a record (or a signature)."""

import json
import tempfile
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.test import override_settings

from signing_service.audit import chain, records, stream
from signing_service.audit.models import AuditEvent, RequestType, Source, Status
from signing_service.test import BaseTestCase


class LiveStreamTestCase(BaseTestCase):
    def setUp(self):
        self.folder = Path(self.enterContext(tempfile.TemporaryDirectory()))
        self.path = self.folder / "audit.jsonl"
        self.enterContext(override_settings(AUDIT_LOG=str(self.path)))

    def streamed(self) -> list[dict]:
        stream.current().flush()
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines()]

    def test_each_committed_record_is_one_line_as_in_the_database(self):
        with self.captureOnCommitCallbacks(execute=True):
            records.record(RequestType.INDEX, Status.SUCCESS, address="10.0.0.1")
            records.record(
                RequestType.ADMIN, Status.SUCCESS, source=Source.CLI, action="apikey.toggle",
                changes={"is_active": [True, False]}, message="Schlüssel „build“",
            )  # fmt: skip
        in_database = [chain.document(event) for event in AuditEvent.objects.order_by("sequence")]
        self.assertEqual(self.streamed(), json.loads(json.dumps(in_database)))
        self.assertEqual([line["sequence"] for line in self.streamed()], [1, 2])

    def test_a_rolled_back_record_is_not_streamed(self):
        with (
            self.captureOnCommitCallbacks(execute=True),
            self.assertRaises(RuntimeError),
            transaction.atomic(),
        ):
            records.record(RequestType.INDEX, Status.SUCCESS)
            raise RuntimeError("rolled back")
        self.assertEqual(self.streamed(), [])

    def test_a_stream_that_cannot_be_written_loses_the_line_not_the_record(self):
        self.path = self.folder / "gone" / "audit.jsonl"  # its folder does not exist
        with (
            override_settings(AUDIT_LOG=str(self.path)),
            self.assertLogs("signing_service.audit.stream", "ERROR") as logged,
        ):
            with self.captureOnCommitCallbacks(execute=True):
                event = records.record(RequestType.SIGN, Status.SUCCESS)
            stream.current().flush()
        self.assertTrue(AuditEvent.objects.filter(pk=event.pk).exists())
        self.assertEqual(
            logged.output,
            [
                f"ERROR:signing_service.audit.stream:Audit stream: record {event.sequence} not"
                " written: No such file or directory."
            ],
        )

    def test_a_file_that_cannot_be_written_is_refused_at_start(self):
        missing = self.folder / "gone" / "audit.jsonl"
        with self.assertRaisesMessage(
            ImproperlyConfigured,
            f"SIGNING_SERVICE_AUDIT_LOG: cannot write to {missing}: No such file or directory.",
        ):
            stream.check_destination(str(missing))
        stream.check_destination("stdout")
        stream.check_destination(str(self.path))
