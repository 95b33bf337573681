"""The audit export: CSV or JSON for a date range (UTC days, both included), streamed."""

import csv
import datetime
import io
import json

from django.http import StreamingHttpResponse

from signing_service.audit import chain
from signing_service.audit.models import AuditEvent, RequestType, Status
from signing_service.test import BaseTestCase

UTC = datetime.UTC
MICROSECOND = datetime.timedelta(microseconds=1)
HEADER = [
    "sequence",
    "hash",
    "created",
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
# A JSON record holds what the hash chain encodes (chain.py), and its hash.
JSON_FIELDS = [*chain.CHAINED_FIELDS, "hash"]
RANGE = "date_from=2026-03-10&date_to=2026-03-12"


def event(created: datetime.datetime, message: str, **fields) -> AuditEvent:
    fields.setdefault("request_type", RequestType.SIGN)
    fields.setdefault("status", Status.SUCCESS)
    return AuditEvent.objects.create(created=created, message=message, **fields)


class ExportTestCase(BaseTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        first_day = datetime.datetime(2026, 3, 10, tzinfo=UTC)
        after_last_day = datetime.datetime(2026, 3, 13, tzinfo=UTC)
        event(first_day - MICROSECOND, "just before")
        cls.first = event(
            first_day,
            "first instant",
            request_type=RequestType.INDEX,
            status=Status.FAILURE,
            reason="inactive_key",
            api_key_name="build machines",
            client_hostname="mac-mini-1",
            address="10.0.0.5",
        )
        event(datetime.datetime(2026, 3, 11, 12, tzinfo=UTC), "middle day")
        event(
            after_last_day - MICROSECOND,
            "last instant",
            identity_common_name="Developer ID Application: Example (ABCDE12345)",
            identity_sha1="ab" * 20,
            algorithm="rsa-pkcs1v15-sha256",
            digest="cd" * 32,
            username="alice",
        )
        event(after_last_day, "just after")

    def setUp(self):
        self.client.force_login(self.alice)

    def export(self, query: str):
        return self.client.get("/audit/export/?" + query)

    def content(self, response) -> str:
        self.assertIsInstance(response, StreamingHttpResponse)
        return b"".join(response.streaming_content).decode()

    def csv_rows(self, response) -> list[list[str]]:
        return list(csv.reader(io.StringIO(self.content(response), newline="")))

    def test_csv_is_a_streamed_attachment(self):
        response = self.export(RANGE + "&format=csv")
        self.assertEqual(response.status_code, 200)
        self.assertTrue(response["Content-Type"].startswith("text/csv"))
        self.assertEqual(
            response["Content-Disposition"], 'attachment; filename="audit-20260310-20260312.csv"'
        )
        self.assertIsInstance(response, StreamingHttpResponse)

    def test_csv_has_a_header_and_the_records_of_the_range_oldest_first(self):
        header, *rows = self.csv_rows(self.export(RANGE + "&format=csv"))
        self.assertEqual(header, HEADER)
        messages = [row[HEADER.index("message")] for row in rows]
        self.assertEqual(messages, ["first instant", "middle day", "last instant"])

    def test_csv_rows_hold_the_record(self):
        _, first, *_ = self.csv_rows(self.export(RANGE + "&format=csv"))
        row = dict(zip(HEADER, first, strict=True))
        self.assertEqual(datetime.datetime.fromisoformat(row["created"]), self.first.created)
        self.assertEqual(row["request_type"], "index")
        self.assertEqual(row["status"], "failure")
        self.assertEqual(row["reason"], "inactive_key")
        self.assertEqual(row["api_key_name"], "build machines")
        self.assertEqual(row["client_hostname"], "mac-mini-1")
        self.assertEqual(row["address"], "10.0.0.5")
        self.assertEqual(row["source"], "api")

    def test_json_is_a_streamed_attachment(self):
        response = self.export(RANGE + "&format=json")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["Content-Type"], "application/json")
        self.assertEqual(
            response["Content-Disposition"], 'attachment; filename="audit-20260310-20260312.json"'
        )
        self.assertIsInstance(response, StreamingHttpResponse)

    def json_records(self, query: str) -> list[dict]:
        return json.loads(self.content(self.export(query)))["records"]

    def test_json_holds_the_records_of_the_range(self):
        records = self.json_records(RANGE + "&format=json")
        self.assertEqual(
            [record["message"] for record in records],
            ["first instant", "middle day", "last instant"],
        )
        self.assertEqual([record["sequence"] for record in records], [2, 3, 4])
        for record in records:
            self.assertEqual(sorted(record), sorted(JSON_FIELDS))
        last = records[-1]
        self.assertEqual(last["created"], "2026-03-12T23:59:59.999999Z")
        self.assertEqual(
            last["identity_common_name"], "Developer ID Application: Example (ABCDE12345)"
        )
        self.assertEqual(last["identity_sha1"], "ab" * 20)
        self.assertEqual(last["digest"], "cd" * 32)
        self.assertEqual(last["algorithm"], "rsa-pkcs1v15-sha256")
        self.assertEqual(last["username"], "alice")
        self.assertIsNone(last["address"])

    def test_a_single_day_includes_the_whole_day(self):
        query = "date_from=2026-03-12&date_to=2026-03-12&format=json"
        records = self.json_records(query)
        self.assertEqual([record["message"] for record in records], ["last instant"])

    def test_an_empty_range_exports_no_records(self):
        query = "date_from=2027-01-01&date_to=2027-01-31&format="
        self.assertEqual(self.json_records(query + "json"), [])
        self.assertEqual(self.csv_rows(self.export(query + "csv")), [HEADER])

    def test_a_start_after_the_end_is_refused(self):
        response = self.export("date_from=2026-03-12&date_to=2026-03-10&format=csv")
        self.assertContains(response, "The start date is after the end date.", status_code=400)

    def test_missing_or_invalid_parameters_are_refused(self):
        for query in [
            "",
            "format=csv",
            "date_from=2026-03-10&format=csv",
            "date_to=2026-03-12&format=json",
            RANGE,
            RANGE + "&format=xml",
            "date_from=2026-03-10&date_to=tomorrow&format=csv",
            "date_from=2026-02-30&date_to=2026-03-12&format=csv",
        ]:
            with self.subTest(query=query):
                response = self.export(query)
                self.assertEqual(response.status_code, 400)
                self.assertNotIsInstance(response, StreamingHttpResponse)
                self.assertContains(response, 'role="alert"', status_code=400)

    def test_bob_may_not_export(self):
        self.client.force_login(self.bob)
        self.assertEqual(self.export(RANGE + "&format=csv").status_code, 403)
        self.assertEqual(self.export(RANGE + "&format=json").status_code, 403)

    def test_the_audit_page_offers_the_export(self):
        response = self.client.get("/audit/")
        self.assertContains(response, 'action="/audit/export/"')
        self.assertContains(response, 'name="date_from"')
        self.assertContains(response, 'name="date_to"')
        self.assertContains(response, 'name="format"')


class CsvInjectionTestCase(BaseTestCase):
    """Client host names are chosen by whoever runs the client: a spreadsheet must not run them."""

    HOSTNAMES = [
        '=HYPERLINK("http://evil.example/","click")',
        "+cmd|' /C calc'!A0",
        "-2+3+cmd|' /C calc'!A0",
        "@SUM(1+1)*cmd|' /C calc'!A0",
        "\t=1+1",
        "\r=1+1",
        "\n=1+1",
        " =1+1",
        "  \n @SUM(1)",
    ]

    def test_cells_that_start_like_a_formula_are_quoted(self):
        created = datetime.datetime(2026, 3, 10, 12, tzinfo=UTC)
        for number, hostname in enumerate(self.HOSTNAMES):
            event(created + datetime.timedelta(minutes=number), "", client_hostname=hostname)
        event(created + datetime.timedelta(hours=1), "", client_hostname="mac-mini-1")
        self.client.force_login(self.alice)
        response = self.client.get(
            "/audit/export/?date_from=2026-03-10&date_to=2026-03-10&format=csv"
        )
        content = b"".join(response.streaming_content).decode()
        _, *rows = csv.reader(io.StringIO(content, newline=""))
        hostnames = [row[HEADER.index("client_hostname")] for row in rows]
        self.assertEqual(
            hostnames, ["'" + hostname for hostname in self.HOSTNAMES] + ["mac-mini-1"]
        )

    def test_every_column_is_quoted_not_only_host_names(self):
        event(
            datetime.datetime(2026, 3, 10, 12, tzinfo=UTC),
            "=1+1",
            api_key_name="+1",
            identity_common_name="-1",
            username="@me",
        )
        self.client.force_login(self.alice)
        response = self.client.get(
            "/audit/export/?date_from=2026-03-10&date_to=2026-03-10&format=csv"
        )
        content = b"".join(response.streaming_content).decode()
        _, row = csv.reader(io.StringIO(content, newline=""))
        row = dict(zip(HEADER, row, strict=True))
        self.assertEqual(row["message"], "'=1+1")
        self.assertEqual(row["api_key_name"], "'+1")
        self.assertEqual(row["identity_common_name"], "'-1")
        self.assertEqual(row["username"], "'@me")


class AdminRecordExportTestCase(BaseTestCase):
    """Admin records export with their action and changes: an object in JSON, JSON text in CSV."""

    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        event(
            datetime.datetime(2026, 3, 10, 12, tzinfo=UTC),
            "API key “=build”",
            request_type=RequestType.ADMIN,
            action="apikey.toggle",
            changes={"is_active": [True, False]},
            api_key_name="=build",
        )

    def setUp(self):
        self.client.force_login(self.alice)

    def export(self, name: str) -> str:
        response = self.client.get(
            f"/audit/export/?date_from=2026-03-10&date_to=2026-03-10&format={name}"
        )
        return b"".join(response.streaming_content).decode()

    def test_json_holds_the_action_and_the_changes_as_an_object(self):
        (record,) = json.loads(self.export("json"))["records"]
        self.assertEqual(record["action"], "apikey.toggle")
        self.assertEqual(record["changes"], {"is_active": [True, False]})

    def test_csv_holds_them_as_text_and_stays_spreadsheet_safe(self):
        _, row = csv.reader(io.StringIO(self.export("csv"), newline=""))
        row = dict(zip(HEADER, row, strict=True))
        self.assertEqual(row["action"], "apikey.toggle")
        self.assertEqual(json.loads(row["changes"]), {"is_active": [True, False]})
        self.assertEqual(row["api_key_name"], "'=build")

    def test_records_without_changes_have_a_blank_cell(self):
        event(datetime.datetime(2026, 3, 10, 13, tzinfo=UTC), "a signature")
        *_, row = csv.reader(io.StringIO(self.export("csv"), newline=""))
        self.assertEqual(dict(zip(HEADER, row, strict=True))["changes"], "")
