"""The JSON export carries the proof: an exported file verifies offline with the client's
``signing-manager audit-verify`` (signing_manager.audit_verify), and a changed byte does not."""

import base64
import contextlib
import io
import json
import string
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.http import StreamingHttpResponse
from django.utils import timezone

from signing_manager import audit_verify
from signing_service.access.models import ApiKey
from signing_service.api import failed_auth
from signing_service.audit import checkpoints, records
from signing_service.audit.models import Checkpoint, CheckpointKind, RequestType, Status
from signing_service.test import BaseTestCase

# A byte changed into another of its kind keeps the file JSON, mostly.
SWAPS = {
    **{c: "7" if c != "7" else "3" for c in string.digits},
    **{c: "q" if c != "q" else "r" for c in string.ascii_lowercase},
    **{c: "Q" if c != "Q" else "R" for c in string.ascii_uppercase},
}


def proven(export: dict) -> dict:
    """What the file proves: not the public key in it (the auditor's pinned one counts), nor
    a counter's count and message, which grow after it is chained (README)."""
    proven = {name: export.get(name) for name in ("format", "previous_hash", "checkpoints")}
    proven["records"] = [
        {**r, "count": None, "message": None} if r.get("reason") == "bad_credentials" else r
        for r in export.get("records", [])
    ]
    return proven


def verify(path: Path, key: str | None) -> tuple[int, list[str]]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = audit_verify.run(path, key)
    return status, out.getvalue().splitlines()


class ExportProofTestCase(BaseTestCase):
    def setUp(self):
        # Record 1 is the sign-in; the export's own record (written before its rows) is the last.
        self.client.force_login(self.alice)
        key, _ = ApiKey.create("build machines")
        records.record(RequestType.REGISTER, Status.SUCCESS, api_key=key, address="10.0.0.5")
        failed_auth.failed_authentication(RequestType.SIGN, "10.0.0.9")
        failed_auth.failed_authentication(RequestType.SIGN, "10.0.0.9")  # a counter that grew
        checkpoints.sign_head(CheckpointKind.PERIODIC)
        records.record(
            RequestType.ADMIN, Status.SUCCESS, user=self.alice, action="settings.change",
            changes={"audit_retention_days": [365, 30]}, message="Einstellungen geändert",
        )  # fmt: skip
        records.record(RequestType.SIGN, Status.SUCCESS, api_key=key, digest=b"\x01" * 32)
        self.key = checkpoints.public_key_text()

    def exported(self) -> bytes:
        today = timezone.now().date()
        response = self.client.get(f"/audit/export/?date_from={today}&date_to={today}&format=json")
        self.assertIsInstance(response, StreamingHttpResponse)
        return b"".join(response.streaming_content)

    def write(self, content: bytes) -> Path:
        path = Path(self.enterContext(tempfile.TemporaryDirectory())) / "audit.json"
        path.write_bytes(content)
        return path

    def test_an_exported_file_verifies_offline(self):
        path = self.write(self.exported())
        status, lines = verify(path, self.key)
        self.assertEqual(status, 0, lines)
        self.assertEqual(lines, [f"{path} verifies: 6 records (records 1 to 6)."])

    def test_the_export_carries_the_proof(self):
        export = json.loads(self.exported())
        self.assertEqual(export["public_key"], self.key)
        self.assertEqual(export["previous_hash"], "0" * 64)
        self.assertEqual([r["sequence"] for r in export["records"]], [1, 2, 3, 4, 5, 6])
        kinds = [(c["sequence"], c["kind"]) for c in export["checkpoints"]]
        self.assertIn((3, "periodic"), kinds)
        self.assertEqual(kinds[-1], (6, "export"))  # the file's last record, signed as exported
        self.assertTrue(Checkpoint.objects.filter(kind=CheckpointKind.EXPORT, sequence=6).exists())

    def test_a_changed_byte_does_not_verify(self):
        content = self.exported()
        original = proven(json.loads(content))
        tried = 0
        for position, byte in enumerate(content):
            swapped = SWAPS.get(chr(byte))
            if swapped is None:
                continue
            changed = content[:position] + swapped.encode() + content[position + 1 :]
            with contextlib.suppress(ValueError):
                if proven(json.loads(changed)) == original:
                    continue
            with self.subTest(position=position, around=content[position - 20 : position + 20]):
                path = self.write(changed)
                try:
                    status, _ = verify(path, self.key)
                except audit_verify.ExportUnreadable:
                    status = 1
                self.assertEqual(status, 1)
            tried += 1
        self.assertGreater(tried, 1000)

    def test_another_key_does_not_verify(self):
        other = (
            Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        )
        path = self.write(self.exported())
        status, lines = verify(path, base64.b64encode(other).decode())
        self.assertEqual(status, 1)
        self.assertIn(
            "checkpoint of record 6: its signature is not the service's (forged or altered).",
            lines,
        )

    def test_without_a_pinned_key_it_says_what_was_proven(self):
        status, lines = verify(self.write(self.exported()), None)
        self.assertEqual(status, 0)
        self.assertIn("--public-key", lines[-1] + lines[-2])

    def test_a_file_cut_short_does_not_verify(self):
        export = json.loads(self.exported())
        export["records"].pop()
        export["checkpoints"].pop()  # the export's own checkpoint of the record removed
        status, lines = verify(self.write(json.dumps(export).encode()), self.key)
        self.assertEqual(status, 1)
        self.assertEqual(lines[0], "record 5, the last, is not pinned by a checkpoint.")
