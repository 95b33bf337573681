"""``signing-service user create|set-password``: manage users without the web interface."""

from __future__ import annotations

from axes.utils import reset as axes_reset
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from signing_service.accounts.bootstrap import prepare_database
from signing_service.accounts.models import User
from signing_service.accounts.validators import validate_username
from signing_service.command_input import read_password


def read_new_password(password_file: str | None, user: User) -> str:
    """The new password, from a file or typed twice, and valid by the password rules."""
    password = read_password(password_file, f"New password for {user.username}: ", confirm=True)
    try:
        password_validation.validate_password(password, user)
    except ValidationError as error:
        raise CommandError(" ".join(error.messages)) from None
    return password


class Command(BaseCommand):
    help = "Create users and set passwords. New passwords must be changed at first sign-in."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="Add a user.")
        create.add_argument("name")
        create.add_argument("--admin", action="store_true", help="Make the user an admin.")
        create.add_argument("--password-file", help="Read the password from the file's first line.")
        set_password = actions.add_parser("set-password", help="Set a user's password.")
        set_password.add_argument("name")
        set_password.add_argument(
            "--password-file", help="Read the password from the file's first line."
        )

    def handle(self, *args, **options):
        prepare_database()
        name = options["name"]
        if options["action"] == "create":
            try:
                validate_username(name)
            except ValidationError as error:
                raise CommandError(" ".join(error.messages)) from None
            if User.objects.filter(username__iexact=name).exists():
                raise CommandError(f"A user named {name!r} already exists.")
            user = User(username=name, is_admin=options["admin"])
        else:
            user = User.objects.filter(username=name).first()
            if user is None:
                raise CommandError(f"There is no user named {name!r}.")
        user.set_password(read_new_password(options["password_file"], user))
        user.must_change_password = True
        user.save()
        axes_reset(username=user.username)  # a new password lifts a sign-in lockout
        role = "admin" if user.is_admin else "user"
        verb = "Created" if options["action"] == "create" else "Set the password of"
        self.stdout.write(
            f"{verb} {role} {user.username}; the password must be changed at sign-in."
        )
