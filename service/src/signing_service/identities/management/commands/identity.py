"""``signing-service identity import|list|replace|toggle|authorize|delete|generate|csr|attach|
move-to-token``: manage identities without the web interface, their keys in the database or in
a PKCS#11 token, audited as the web's pages are (``source`` cli, the OS user)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from signing_service.access.models import ApiKey
from signing_service.accounts.bootstrap import prepare_database
from signing_service.audit.admin_actions import Actor
from signing_service.command_input import read_file, read_password
from signing_service.identities import operations, token_keys
from signing_service.identities.hsm import TokenUnavailable, configured_tokens
from signing_service.identities.models import Identity, PendingIdentity, read_new_identity
from signing_service.identities.p12 import MAX_SIZE, P12Error
from signing_service.switches import add_switch_arguments, set_active

SHA1_HELP = "The identity's SHA-1 fingerprint, as `identity list` prints it."


def add_p12_arguments(parser) -> None:
    parser.add_argument("file")
    add_token_argument(parser, "Put the key into this PKCS#11 token, not the database.")
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
    help = (
        "Import, list, replace, switch, authorize and delete identities; generate keys in a "
        "token and attach their certificates."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        add_p12_arguments(actions.add_parser("import", help="Import one .p12 identity."))
        actions.add_parser("list", help="List identities: SHA-1, state, expiry, key, name.")
        replacer = actions.add_parser(
            "replace", help="Put another .p12 in an identity, keeping its authorizations and state."
        )
        replacer.add_argument("sha1", help=SHA1_HELP)
        add_p12_arguments(replacer)
        toggle = actions.add_parser("toggle", help="Switch an identity on or off.")
        toggle.add_argument("sha1", help=SHA1_HELP)
        add_switch_arguments(toggle)
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
        add_token_key_parsers(actions)

    def handle(self, *args, **options):
        action = options["action"]
        data = b""
        if action in {"import", "replace"}:
            data = read_file(Path(options["file"]), MAX_SIZE, "10 MiB; a .p12 is a few KiB")
        prepare_database()
        try:
            self.run_action(action, data, options)
        except (TokenUnavailable, token_keys.TokenKeyError) as error:
            raise CommandError(str(error)) from None

    def run_action(self, action: str, data: bytes, options) -> None:
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
        elif action == "delete":
            identity = find_identity(options["sha1"])
            operations.delete_identity(identity, Actor.operator())
            self.stdout.write(f"Deleted {identity.common_name}.")
        elif action == "generate":
            self.generate(options)
        elif action == "csr":
            self.stdout.write(pending_identity(options["pending"]).csr_pem(), ending="")
        elif action == "attach":
            self.attach(options)
        else:
            identity = find_identity(options["sha1"])
            operations.move_to_token(identity, chosen_token(options["token"]), Actor.operator())
            self.stdout.write(f"{identity.common_name}\t{identity.key_location}")

    def read_identity(self, data: bytes, options, replacing: Identity | None = None):
        password = read_password(options["password_file"], "P12 password: ")
        try:
            return read_new_identity(
                data, password, replacing, allow_any_usage=options["allow_any_usage"]
            )
        except P12Error as error:
            raise CommandError(f"{options['file']}: {error}") from None

    def import_identity(self, data: bytes, options) -> None:
        identity = operations.import_identity(
            self.read_identity(data, options), Actor.operator(), token_option(options)
        )
        self.stdout.write(f"{identity.common_name}\t{identity.sha1.upper()}")
        self.warn_of_an_incomplete_chain(identity)

    def replace(self, identity: Identity, data: bytes, options) -> None:
        parsed = self.read_identity(data, options, replacing=identity)
        operations.replace_identity(identity, parsed, Actor.operator(), token_option(options))
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
                f"{identity.key_type} {identity.key_size}\t{identity.key_location}\t"
                f"{identity.common_name}"
            )
        for pending in PendingIdentity.objects.all():
            self.stdout.write(
                f"pending {pending.pk}\twaits for its certificate\t-\t"
                f"{pending.key_type} {pending.key_size}\t{pending.key_location}\t"
                f"{pending.common_name}"
            )

    def generate(self, options) -> None:
        subject = token_keys.Subject(
            common_name=options["common_name"],
            email=options["email"],
            organization=options["organization"],
            organizational_unit=options["organizational_unit"],
            country=options["country"],
        )
        pending = operations.generate_in_token(
            chosen_token(options["token"]), options["key"], subject, Actor.operator()
        )
        self.stderr.write(
            f"Pending identity {pending.pk}: send this CSR to your CA, then "
            f"`signing-service identity attach {pending.pk} CERTIFICATE`."
        )
        self.stdout.write(pending.csr_pem(), ending="")

    def attach(self, options) -> None:
        pending = pending_identity(options["pending"])
        data = read_file(Path(options["file"]), token_keys.MAX_CERTIFICATE_FILE, "1 MiB")
        identity = operations.attach_certificate(
            pending, data, options["allow_any_usage"], Actor.operator()
        )
        self.stdout.write(f"{identity.common_name}\t{identity.sha1.upper()}")


def add_token_key_parsers(actions) -> None:
    """The subcommands for keys generated in a token and for moving a key into one."""
    generator = actions.add_parser(
        "generate", help="Generate a key pair in a token; print its CSR (PEM)."
    )
    add_token_argument(generator, "The token to generate the key in.")
    generator.add_argument("--key", choices=token_keys.KEY_SPECS, default="rsa2048")
    generator.add_argument("--common-name", required=True)
    generator.add_argument("--email", default="")
    generator.add_argument("--organization", default="")
    generator.add_argument("--organizational-unit", default="")
    generator.add_argument("--country", default="", help="Two letters, e.g. US.")
    csr = actions.add_parser("csr", help="Print the CSR (PEM) of a pending identity.")
    csr.add_argument("pending", type=int, help="The pending identity's number.")
    attach = actions.add_parser(
        "attach", help="Attach the issued certificate (PEM, DER or .p7b) to a pending key."
    )
    attach.add_argument("pending", type=int, help="The pending identity's number.")
    attach.add_argument("file")
    attach.add_argument("--allow-any-usage", action="store_true")
    mover = actions.add_parser(
        "move-to-token", help="Move an identity's key from the database into a token."
    )
    mover.add_argument("sha1", help=SHA1_HELP)
    add_token_argument(mover, "The token to move the key into.")


def add_token_argument(parser, help_text: str) -> None:
    parser.add_argument(
        "--token",
        nargs="?",
        const="",
        help=f"{help_text} The label; may be left out when one token is configured.",
    )


def token_option(options) -> str:
    """The token ``--token`` chose for a .p12's key, or "" (the database) without it."""
    return chosen_token(options["token"]) if options["token"] is not None else ""


def chosen_token(label: str | None) -> str:
    """The configured token an admin named, or the only one configured."""
    tokens = configured_tokens()
    if not tokens:
        raise CommandError(
            "No PKCS#11 token is configured: set SIGNING_SERVICE_PKCS11_MODULE, "
            "SIGNING_SERVICE_PKCS11_TOKENS and SIGNING_SERVICE_PKCS11_PIN_FILE."
        )
    if not label:
        if len(tokens) > 1:
            raise CommandError(f"Name the token with --token: one of {', '.join(tokens)}.")
        return tokens[0]
    if label not in tokens:
        raise CommandError(f"The token “{label}” is not configured ({', '.join(tokens)}).")
    return label


def pending_identity(number: int) -> PendingIdentity:
    pending = PendingIdentity.objects.filter(pk=number).first()
    if pending is None:
        raise CommandError(f"No pending identity has the number {number}.")
    return pending
