"""Migration 0007: the records written before the hash chain are chained, oldest first."""

import datetime

from django.test import TransactionTestCase

from signing_service.audit import verification
from signing_service.test import latest_migrations, migrate_to

BEFORE = [("audit", "0005_admin_activity")]
AFTER = [("audit", "0007_hash_chain")]


class ChainMigrationTestCase(TransactionTestCase):
    def tearDown(self):
        migrate_to(latest_migrations())

    def test_existing_records_are_chained_in_the_order_they_were_written(self):
        old = migrate_to(BEFORE).get_model("audit", "AuditEvent")
        start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
        for n in range(5):
            old.objects.create(
                created=start + datetime.timedelta(hours=n), request_type="sign",
                status="success", message=f"old {n}", address="10.0.0.1",
            )  # fmt: skip
        new = migrate_to(AFTER).get_model("audit", "AuditEvent")
        chained = new.objects.order_by("id")
        self.assertEqual([e.sequence for e in chained], [1, 2, 3, 4, 5])
        self.assertEqual(new.objects.values("hash").distinct().count(), 5)
        migrate_to(latest_migrations())
        outcome = verification.verify()
        self.assertEqual((outcome.records, outcome.problems), (5, 0))
