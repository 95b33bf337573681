"""A committed audit record survives a power cut: on SQLite every commit syncs the WAL
(synchronous=FULL); on PostgreSQL the service leaves the server's durable defaults alone."""

from django.db import connection
from django.test import TestCase


class DurabilityTestCase(TestCase):
    def setting(self, query: str):
        with connection.cursor() as cursor:
            cursor.execute(query)
            return cursor.fetchone()[0]

    def test_commits_are_synced_to_disk(self):
        if connection.vendor == "sqlite":
            self.assertEqual(self.setting("PRAGMA synchronous"), 2)  # FULL, on every connection
        else:
            self.assertEqual(self.setting("SHOW synchronous_commit"), "on")
            self.assertEqual(self.setting("SHOW fsync"), "on")
