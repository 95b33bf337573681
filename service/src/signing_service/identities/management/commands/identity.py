"""``signing-service identity import|list|replace|toggle|authorize|delete``: manage identities
without the web interface, audited as the web's pages are (``source`` cli, the OS user)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from signing_service.access.models import ApiKey
from signing_service.accounts.bootstrap import prepare_database
from signing_service.audit.admin_actions import Actor
from signing_service.command_input import read_file, read_password
from signing_service.identities import operations
from signing_service.identities.models import Identity, read_new_identity
from signing_service.identities.p12 import MAX_SIZE, P12Error
from signing_service.switches import set_active

SHA1_HELP = "The identity's SHA-1 fingerprint, as `identity list` prints it."


def add_p12_arguments(parser) -> None:
    parser.add_argument("file")
    parser.add_argument(
        "--password-file", help="Read the .p12 password from the file's first line."
    )
    parser.add_argument(
        "--allow-any-usage",
        action="store_true",
        help="Import even if the certificate is not for code signing (recorded and shown).",
    )


def find_identity(fingerprint: str) -> Identity:
    wanted = fingerprint.strip().lower().replace(":", "")
    identity = Identity.objects.filter(sha1=wanted).first()
    if identity is None:
        raise CommandError(f"No identity has the SHA-1 fingerprint {fingerprint}.")
    return identity


def find_keys(references: list[str]) -> list[ApiKey]:
    keys = []
    for reference in references:
        key = ApiKey.named(reference)
        if key is None:
            raise CommandError(f"No API key is named or has the id {reference!r}.")
        keys.append(key)
    return keys


class Command(BaseCommand):
    help = "Import, list, replace, switch, authorize and delete identities."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        add_p12_arguments(actions.add_parser("import", help="Import one .p12 identity."))
        actions.add_parser("list", help="List identities: SHA-1, state, expiry, common name.")
        replacer = actions.add_parser(
            "replace", help="Put another .p12 in an identity, keeping its authorizations and state."
        )
        replacer.add_argument("sha1", help=SHA1_HELP)
        add_p12_arguments(replacer)
        toggle = actions.add_parser("toggle", help="Switch an identity on or off.")
        toggle.add_argument("sha1", help=SHA1_HELP)
        state = toggle.add_mutually_exclusive_group()
        state.add_argument("--on", dest="active", action="store_true", default=None)
        state.add_argument("--off", dest="active", action="store_false")
        authorizer = actions.add_parser("authorize", help="Choose which API keys may use it.")
        authorizer.add_argument("sha1", help=SHA1_HELP)
        who = authorizer.add_mutually_exclusive_group(required=True)
        who.add_argument("--all", action="store_true", help="All API keys, present and future.")
        who.add_argument(
            "--only",
            nargs="*",
            metavar="KEY",
            help="Only these API keys (name or id); none: no key.",
        )
        deleter = actions.add_parser("delete", help="Delete an identity and its private key.")
        deleter.add_argument("sha1", help=SHA1_HELP)

    def handle(self, *args, **options):
        action = options["action"]
        data = b""
        if action in {"import", "replace"}:
            data = read_file(Path(options["file"]), MAX_SIZE, "10 MiB; a .p12 is a few KiB")
        prepare_database()
        if action == "import":
            self.import_identity(data, options)
        elif action == "list":
            self.list_identities()
        elif action == "replace":
            self.replace(find_identity(options["sha1"]), data, options)
        elif action == "toggle":
            self.toggle(find_identity(options["sha1"]), options["active"])
        elif action == "authorize":
            self.authorize(find_identity(options["sha1"]), options["all"], options["only"])
        else:
            identity = find_identity(options["sha1"])
            operations.delete_identity(identity, Actor.operator())
            self.stdout.write(f"Deleted {identity.common_name}.")

    def read_identity(self, data: bytes, options, replacing: Identity | None = None):
        password = read_password(options["password_file"], "P12 password: ")
        try:
            return read_new_identity(
                data, password, replacing, allow_any_usage=options["allow_any_usage"]
            )
        except P12Error as error:
            raise CommandError(f"{options['file']}: {error}") from None

    def import_identity(self, data: bytes, options) -> None:
        identity = operations.import_identity(self.read_identity(data, options), Actor.operator())
        self.stdout.write(f"{identity.common_name}\t{identity.sha1.upper()}")
        self.warn_of_an_incomplete_chain(identity)

    def replace(self, identity: Identity, data: bytes, options) -> None:
        parsed = self.read_identity(data, options, replacing=identity)
        operations.replace_identity(identity, parsed, Actor.operator())
        self.stdout.write(f"{identity.common_name}\t{identity.sha1.upper()}")
        self.warn_of_an_incomplete_chain(identity)

    def warn_of_an_incomplete_chain(self, identity: Identity) -> None:
        if not identity.chain_reaches_root:
            self.stderr.write(
                "Warning: the chain does not reach a root certificate; upload the missing CA "
                "with `signing-service ca import FILE`. Signing still works."
            )

    def toggle(self, identity: Identity, active: bool | None) -> None:
        active = not identity.is_active if active is None else active
        set_active(identity, active, Actor.operator())
        state = "active" if active else "inactive"
        self.stdout.write(f"{identity.common_name} is {state}.")

    def authorize(self, identity: Identity, all_keys: bool, references: list[str] | None) -> None:
        # Under --all the chosen keys stay for a later --only, as on the web.
        keys = list(identity.authorized_keys.all()) if all_keys else find_keys(references or [])
        operations.authorize(identity, all_keys, keys, Actor.operator())
        if all_keys:
            self.stdout.write(f"All API keys may use {identity.common_name}.")
        elif keys:
            names = ", ".join(key.name for key in keys)
            self.stdout.write(f"Only {names} may use {identity.common_name}.")
        else:
            self.stderr.write(f"Warning: no API key may use {identity.common_name} now.")

    def list_identities(self) -> None:
        for identity in Identity.objects.all():
            state = "active" if identity.is_active else "inactive"
            self.stdout.write(
                f"{identity.sha1.upper()}\t{state}\t{identity.not_after:%Y-%m-%d}\t"
                f"{identity.key_type} {identity.key_size}\t{identity.common_name}"
            )
