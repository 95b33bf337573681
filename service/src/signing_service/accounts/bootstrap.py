"""First start: the default admin of the guide, and the warning while its password is unchanged."""

from __future__ import annotations

import logging

from django.core.management import call_command

from signing_service.accounts.models import User
from signing_service.accounts.validators import DEFAULT_ADMIN_PASSWORD, DEFAULT_ADMIN_USERNAME

log = logging.getLogger(__name__)


def prepare_database() -> None:
    """Bring the database schema up to date and, on the first start, add the default admin."""
    call_command("migrate", interactive=False, verbosity=0)
    create_default_admin()


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
