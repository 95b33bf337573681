"""``signing-service identity import|list|generate|csr|attach|move-to-token``: manage identities
without the web interface, their keys in the database or in a PKCS#11 token."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from signing_service.accounts.bootstrap import prepare_database
from signing_service.command_input import read_file, read_password
from signing_service.identities import token_keys
from signing_service.identities.hsm import TokenUnavailable, configured_tokens
from signing_service.identities.models import Identity, PendingIdentity, read_new_identity
from signing_service.identities.p12 import MAX_SIZE, P12Error


class Command(BaseCommand):
    help = "Import identities, generate keys in a token and attach their certificates, list."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        importer = actions.add_parser("import", help="Import one .p12 identity.")
        importer.add_argument("file")
        importer.add_argument(
            "--password-file", help="Read the .p12 password from the file's first line."
        )
        importer.add_argument(
            "--allow-any-usage",
            action="store_true",
            help="Import even if the certificate is not for code signing (recorded and shown).",
        )
        add_token_argument(importer, "Put the key into this PKCS#11 token, not the database.")
        actions.add_parser("list", help="List identities: SHA-1, state, expiry, key, name.")
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
        mover.add_argument("sha1", help="The identity's SHA-1 fingerprint.")
        add_token_argument(mover, "The token to move the key into.")

    def handle(self, *args, **options):
        action = options["action"]
        if action == "import":
            self.import_identity(
                Path(options["file"]),
                options["password_file"],
                options["allow_any_usage"],
                options["token"],
            )
            return
        prepare_database()
        try:
            if action == "list":
                self.list_identities()
            elif action == "generate":
                self.generate(options)
            elif action == "csr":
                self.stdout.write(pending_identity(options["pending"]).csr_pem(), ending="")
            elif action == "attach":
                self.attach(options)
            else:
                self.move_to_token(options["sha1"], options["token"])
        except (TokenUnavailable, token_keys.TokenKeyError) as error:
            raise CommandError(str(error)) from None

    def import_identity(
        self, path: Path, password_file: str | None, allow_any_usage: bool, token: str | None
    ) -> None:
        data = read_file(path, MAX_SIZE, "10 MiB; a .p12 is a few KiB")
        prepare_database()
        token = chosen_token(token) if token is not None else None
        password = read_password(password_file, "P12 password: ")
        try:
            parsed = read_new_identity(data, password, allow_any_usage=allow_any_usage)
            identity = Identity()
            token_keys.fill_identity(identity, parsed, token or "")
        except P12Error as error:
            raise CommandError(f"{path}: {error}") from None
        except (TokenUnavailable, token_keys.TokenKeyError) as error:
            raise CommandError(str(error)) from None
        identity.save()
        self.stdout.write(f"{identity.common_name}\t{identity.sha1.upper()}")
        if not identity.chain_reaches_root:
            self.stderr.write(
                "Warning: the chain does not reach a root certificate; upload the missing CA "
                "with `signing-service ca import FILE`. Signing still works."
            )

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
        pending = token_keys.generate_in_token(
            chosen_token(options["token"]), options["key"], subject
        )
        self.stderr.write(
            f"Pending identity {pending.pk}: send this CSR to your CA, then "
            f"`signing-service identity attach {pending.pk} CERTIFICATE`."
        )
        self.stdout.write(pending.csr_pem(), ending="")

    def attach(self, options) -> None:
        pending = pending_identity(options["pending"])
        data = read_file(Path(options["file"]), token_keys.MAX_CERTIFICATE_FILE, "1 MiB")
        identity = token_keys.attach_certificate(pending, data, options["allow_any_usage"])
        self.stdout.write(f"{identity.common_name}\t{identity.sha1.upper()}")

    def move_to_token(self, sha1: str, token: str | None) -> None:
        identity = Identity.objects.filter(sha1=sha1.lower().replace(":", "")).first()
        if identity is None:
            raise CommandError(f"No identity has the SHA-1 fingerprint {sha1}.")
        token_keys.move_to_token(identity, chosen_token(token))
        self.stdout.write(f"{identity.common_name}\t{identity.key_location}")


def add_token_argument(parser, help_text: str) -> None:
    parser.add_argument(
        "--token",
        nargs="?",
        const="",
        help=f"{help_text} The label; may be left out when one token is configured.",
    )


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
