"""First start: migrations and the default admin of the guide, and the warning while its
password is unchanged."""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Iterator
from pathlib import Path

from django.core.management import call_command
from django.db import connection

from signing_service.accounts.models import User
from signing_service.accounts.validators import DEFAULT_ADMIN_PASSWORD, DEFAULT_ADMIN_USERNAME
from signing_service.database import unbounded_waits
from signing_service.identities.hsm import check_tokens
from signing_service.identities.models import check_master_key

log = logging.getLogger(__name__)


# The PostgreSQL advisory lock that serializes preparing the database (any number that is this
# service's alone): "SIGN" in ASCII.
PREPARE_LOCK = 0x5349474E


def prepare_database() -> None:
    """Bring the database schema up to date and, on the first start, add the default admin.

    Replicas, a migration job and ops commands may all start at once on one database: one at
    a time prepares it, the others wait and then find nothing left to do. Then the master key
    must open the stored identities, and each configured PKCS#11 token must answer to its PIN,
    or nothing starts (``ImproperlyConfigured``). Migrating, or waiting for another to, may take
    longer than a request may wait."""
    with unbounded_waits(), database_lock():
        call_command("migrate", interactive=False, verbosity=0)
        create_default_admin()
    check_master_key()
    check_tokens()


@contextlib.contextmanager
def database_lock() -> Iterator[None]:
    """A lock across processes on the database: an advisory lock on PostgreSQL, a lock on a
    file beside the database on SQLite (whose users share one machine)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [PREPARE_LOCK])
            try:
                yield
            finally:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [PREPARE_LOCK])
        return
    database = str(connection.settings_dict["NAME"])
    if connection.vendor != "sqlite" or database.startswith(("file:", ":memory:")):
        yield  # an in-memory database (tests) has one user
        return
    with open(Path(database).with_name(Path(database).name + ".lock"), "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        yield


def create_default_admin() -> User | None:
    """Create ``admin`` / ``change_password`` when the service has no user at all."""
    if User.objects.exists():
        return None
    admin = User(username=DEFAULT_ADMIN_USERNAME, is_admin=True, must_change_password=True)
    admin.set_password(DEFAULT_ADMIN_PASSWORD)
    admin.save()
    log.info("Created the default admin %r; sign in to choose its password.", admin.username)
    return admin


def users_with_default_password() -> list[str]:
    return [
        user.username
        for user in User.objects.filter(is_active=True, must_change_password=True)
        if user.check_password(DEFAULT_ADMIN_PASSWORD)
    ]
