"""What ``/readyz`` checks before a replica takes traffic: each check is a function that
returns nothing when it holds and raises when it does not (``NotReady`` when nothing else went
wrong); ``failing_check`` names the first that fails.

- ``database``: a connection answers.
- ``migrations``: no migration of the code is missing from the database (a replica of a new
  version waits for the upgrade's migrations).
- ``master-key``: the master key loads, and unwraps the data key of a stored identity (a
  replica given another key would fail every signature).
- ``tokens``: each configured PKCS#11 token answers (a key kept there could not sign).
- ``audit``: a record can be written to the audit table (signing fails closed without it); the
  record is rolled back.
"""

from __future__ import annotations

import logging

from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor

from signing_service.audit.models import AuditEvent, RequestType, Status
from signing_service.identities.hsm import configured_tokens, sessions
from signing_service.identities.models import check_master_key

log = logging.getLogger(__name__)

# How long the audit check waits for a lock before calling the table unwritable (PostgreSQL).
AUDIT_LOCK_TIMEOUT = "2s"


class NotReady(Exception):
    """A check found the replica not ready, without anything else going wrong."""


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


class Migrations:
    """Whether this version's migrations are applied. Migrations are not undone under a
    running service, so once they are, that is remembered (reading the migration graph takes
    a while); until then each check looks again."""

    applied = False

    @classmethod
    def check(cls) -> None:
        if cls.applied:
            return
        executor = MigrationExecutor(connection)
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            raise NotReady("migrations of this version are not applied")
        cls.applied = True


class RolledBack(Exception):
    """Leaves the atomic block of the audit check, undoing its test write."""


def check_audit() -> None:
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(f"SET LOCAL lock_timeout = '{AUDIT_LOCK_TIMEOUT}'")
            AuditEvent.objects.create(
                request_type=RequestType.INDEX, status=Status.SUCCESS, reason="readiness-check"
            )
            raise RolledBack
    except RolledBack:
        pass


def check_tokens() -> None:
    for label in configured_tokens():
        sessions().check(label)


CHECKS = {
    "database": check_database,
    "migrations": Migrations.check,
    "master-key": check_master_key,  # another replica may have imported under another key
    "tokens": check_tokens,
    "audit": check_audit,
}


def failing_check() -> str | None:
    """The name of the first check that fails, or None when the replica is ready. Why it
    failed goes to the log (once each time the verdict changes), never to the caller."""
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as error:  # whatever fails, the replica is not ready
            verdicts.report(name, error)
            return name
    verdicts.report(None, None)
    return None


class VerdictLog:
    """Logs a verdict when it changes, not at every poll of the orchestrator."""

    def __init__(self):
        self.failing: str | None = None

    def report(self, failing: str | None, error: Exception | None) -> None:
        if failing == self.failing:
            return
        self.failing = failing
        if failing is None:
            log.warning("Ready again.")
        else:
            reason = f"{type(error).__name__}: {error}"
            log.warning("Not ready: the %s check failed (%s).", failing, reason)


verdicts = VerdictLog()  # one per process
