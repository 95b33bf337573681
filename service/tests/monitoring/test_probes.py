"""``/healthz`` and ``/readyz``: unauthenticated, tiny, telling nothing but "ok" or the name of
the check that failed; ``/healthz`` never touches the database."""

from __future__ import annotations

from unittest import mock

from django.db import connection
from django.test import override_settings

from signing_service.audit.models import AuditEvent
from signing_service.identities import models as identity_models
from signing_service.master_key import KEY_SIZE
from signing_service.monitoring import readiness
from signing_service.monitoring.access_log import QuietAccessLogger
from signing_service.test import BaseTestCase, refuse_audit_inserts


class HealthzTestCase(BaseTestCase):
    def test_it_answers_ok_without_sign_in_or_database(self):
        with self.assertNumQueries(0):
            response = self.client.get("/healthz")

        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.content, b"ok\n")
        self.assertEqual(response["Content-Type"], "text/plain; charset=utf-8")
        self.assertIn("no-cache", response["Cache-Control"])

    def test_it_only_reads(self):
        self.assertEqual(self.client.post("/healthz").status_code, 405)


class ReadyzTestCase(BaseTestCase):
    def setUp(self):
        verdicts = mock.patch.object(readiness, "verdicts", readiness.VerdictLog())
        verdicts.start()
        self.addCleanup(verdicts.stop)

    def test_a_ready_replica_answers_ok(self):
        self.store_identity()

        response = self.client.get("/readyz")

        self.assertEqual((response.status_code, response.content), (200, b"ok\n"))

    def test_the_audit_check_leaves_no_record(self):
        before = AuditEvent.objects.count()
        self.client.get("/readyz")
        self.assertEqual(AuditEvent.objects.count(), before)

    def test_an_unwritable_audit_table_is_named_and_nothing_else(self):
        with (
            connection.execute_wrapper(refuse_audit_inserts),
            self.assertLogs("signing_service.monitoring.readiness", "WARNING") as logs,
        ):
            response = self.client.get("/readyz")

        self.assertEqual((response.status_code, response.content), (503, b"audit\n"))
        self.assertIn("the audit check failed (DatabaseError", logs.output[0])

    def test_another_master_key_is_named(self):
        self.store_identity()
        other_key = bytes(range(KEY_SIZE))
        with mock.patch.object(identity_models, "current_master_key", return_value=other_key):
            response = self.client.get("/readyz")

        self.assertEqual((response.status_code, response.content), (503, b"master-key\n"))

    def test_unapplied_migrations_are_named_until_they_are_applied(self):
        unapplied = [("audit", "0099_future")]
        plan = mock.patch.object(readiness.MigrationExecutor, "migration_plan")
        with mock.patch.object(readiness.Migrations, "applied", False), plan as migration_plan:
            migration_plan.return_value = unapplied
            for _ in range(2):
                response = self.client.get("/readyz")
                self.assertEqual(response.status_code, 503)
                self.assertEqual(response.content, b"migrations\n")
            migration_plan.return_value = []  # the upgrade's migration job ran
            self.assertEqual(self.client.get("/readyz").status_code, 200)
            migration_plan.return_value = unapplied
            self.assertEqual(self.client.get("/readyz").status_code, 200)  # not read again

    def test_a_failing_probe_is_logged_once_not_at_each_poll(self):
        with connection.execute_wrapper(refuse_audit_inserts):
            with self.assertLogs("signing_service.monitoring.readiness", "WARNING") as logs:
                for _ in range(3):
                    self.client.get("/readyz")
            with self.assertNoLogs("django.request"):
                self.client.get("/readyz")
        self.assertEqual(len(logs.output), 1)
        with self.assertLogs("signing_service.monitoring.readiness", "WARNING") as logs:
            self.client.get("/readyz")
        self.assertIn("Ready again.", logs.output[0])

    @override_settings(ALLOWED_HOSTS=["signing.example.com"])
    def test_probes_answer_only_to_the_service_names(self):
        self.assertEqual(self.client.get("/readyz", HTTP_HOST="10.1.2.3").status_code, 400)


def access_line_written(path: str) -> bool:
    logger = QuietAccessLogger.__new__(QuietAccessLogger)
    with mock.patch("gunicorn.glogging.Logger.access") as access:
        logger.access(None, None, {"PATH_INFO": path}, None)
    return access.called


def test_probes_and_scrapes_stay_out_of_the_access_log():
    assert not access_line_written("/healthz")
    assert not access_line_written("/readyz")
    assert not access_line_written("/metrics")
    assert access_line_written("/api/v1/sign")
