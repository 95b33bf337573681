"""``signing-service user create|set-password|edit|activate|deactivate|delete``: manage users
without the web interface, with the Users pages' rules, audited as they are (``source`` cli,
the OS user)."""

from __future__ import annotations

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from signing_service.accounts import operations
from signing_service.accounts.bootstrap import prepare_database
from signing_service.accounts.forms import UserEditForm
from signing_service.accounts.models import User
from signing_service.accounts.validators import validate_username
from signing_service.audit.admin_actions import Actor
from signing_service.command_input import read_password

PASSWORD_FILE_HELP = "Read the password from the file's first line."  # noqa: S105 - a help text


def read_new_password(password_file: str | None, user: User) -> str:
    """The new password, from a file or typed twice, and valid by the password rules."""
    password = read_password(password_file, f"New password for {user.username}: ", confirm=True)
    try:
        password_validation.validate_password(password, user)
    except ValidationError as error:
        raise CommandError(" ".join(error.messages)) from None
    return password


def find_user(name: str) -> User:
    user = User.objects.filter(username=name).first()
    if user is None:
        raise CommandError(f"There is no user named {name!r}.")
    return user


class Command(BaseCommand):
    help = "Create, edit, switch and delete users and set passwords (changed at next sign-in)."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="Add a user.")
        create.add_argument("name")
        create.add_argument("--admin", action="store_true", help="Make the user an admin.")
        create.add_argument("--password-file", help=PASSWORD_FILE_HELP)
        set_password = actions.add_parser("set-password", help="Set a user's password.")
        set_password.add_argument("name")
        set_password.add_argument("--password-file", help=PASSWORD_FILE_HELP)
        edit = actions.add_parser("edit", help="Rename a user or change the role.")
        edit.add_argument("name")
        edit.add_argument("--rename", metavar="NEW_NAME")
        role = edit.add_mutually_exclusive_group()
        role.add_argument("--admin", dest="admin", action="store_true", default=None)
        role.add_argument("--no-admin", dest="admin", action="store_false")
        for name, what in (("activate", "Let a user sign in again."),
                           ("deactivate", "Stop a user signing in; their records stay."),
                           ("delete", "Delete a user.")):  # fmt: skip
            actions.add_parser(name, help=what).add_argument("name")

    def handle(self, *args, **options):
        prepare_database()
        action, name = options["action"], options["name"]
        if action == "create":
            self.create(name, options["admin"], options["password_file"])
        elif action == "set-password":
            user = find_user(name)
            password = read_new_password(options["password_file"], user)
            operations.reset_password(user, password, Actor.operator())
            self.stdout.write(
                f"Set the password of {user.role} {user.username}; "
                "the password must be changed at sign-in."
            )
        elif action == "edit":
            self.edit(find_user(name), options["rename"], options["admin"])
        elif action == "delete":
            user = find_user(name)
            self.refuse_if(operations.change_problem(None, user, deleting=True))
            operations.delete_user(user, Actor.operator())
            self.stdout.write(f"Deleted {user.role} {user.username}.")
        else:
            user = find_user(name)
            active = action == "activate"
            self.refuse_if(operations.set_user_active(user, active, Actor.operator()))
            self.stdout.write(f"{user.username} is {'active' if active else 'inactive'}.")

    @staticmethod
    def refuse_if(problem: str | None) -> None:
        if problem:
            raise CommandError(problem)

    def create(self, name: str, admin: bool, password_file: str | None) -> None:
        try:
            validate_username(name)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        if User.objects.filter(username__iexact=name).exists():
            raise CommandError(f"A user named {name!r} already exists.")
        password = read_new_password(password_file, User(username=name, is_admin=admin))
        user = operations.add_user(name, admin, password, Actor.operator())
        self.stdout.write(
            f"Created {user.role} {user.username}; the password must be changed at sign-in."
        )

    def edit(self, user: User, new_name: str | None, admin: bool | None) -> None:
        data = {
            "username": user.username if new_name is None else new_name,
            "is_admin": user.is_admin if admin is None else admin,
            "is_active": user.is_active,
        }
        form = UserEditForm(data, instance=user)
        if not form.is_valid():
            raise CommandError(
                " ".join(message for errors in form.errors.values() for message in errors)
            )
        edited = form.save(commit=False)
        self.refuse_if(operations.change_problem(None, edited, deleting=False))
        operations.edit_user(edited, Actor.operator())
        self.stdout.write(f"Saved {edited.role} {edited.username}.")
