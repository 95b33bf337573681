"""Migration 0004: keys that share a name (in any case) are renamed before the names become
unique."""

from django.test import TransactionTestCase

from signing_service.test import latest_migrations, migrate_to

BEFORE = [("access", "0003_client_is_approved")]
AFTER = [("access", "0004_api_key_name_unique")]


class KeyNameMigrationTestCase(TransactionTestCase):
    def tearDown(self):
        migrate_to(latest_migrations())  # the other tests need every table as it is now

    def test_later_keys_with_a_taken_name_get_a_number(self):
        old_apps = migrate_to(BEFORE)
        ApiKey = old_apps.get_model("access", "ApiKey")
        for number, name in enumerate(["build", "Build", "release", "BUILD", "x" * 100]):
            ApiKey.objects.create(name=name, token_id=f"{number:010d}", secret_hash="")
        ApiKey.objects.create(name="X" * 100, token_id="9999999999", secret_hash="")

        new_apps = migrate_to(AFTER)
        names = new_apps.get_model("access", "ApiKey").objects.order_by("id")
        self.assertEqual(
            [key.name for key in names],
            ["build", "Build (2)", "release", "BUILD (3)", "x" * 100, "X" * 96 + " (2)"],
        )
