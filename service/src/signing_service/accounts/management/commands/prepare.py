"""``signing-service prepare``: apply migrations and add the first admin, then exit.

``run`` and every ops command do this first; a deployment runs it alone, once, before
starting or upgrading replicas (the Helm chart's migration job), so that no replica waits on
it. Safe to run while others run it too (``prepare_database`` takes a lock).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from signing_service.accounts.bootstrap import prepare_database


class Command(BaseCommand):
    help = "Apply database migrations and add the first admin (under a lock), then exit."

    def handle(self, *args, **options):
        prepare_database()
        self.stdout.write("The database is ready.")
