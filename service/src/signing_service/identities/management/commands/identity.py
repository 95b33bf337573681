"""``signing-service identity import|list``: manage identities without the web interface."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from signing_service.accounts.bootstrap import prepare_database
from signing_service.command_input import read_file, read_password
from signing_service.identities.models import Identity, read_new_identity
from signing_service.identities.p12 import MAX_SIZE, P12Error


class Command(BaseCommand):
    help = "Import identities from .p12 files and list them."

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
        actions.add_parser("list", help="List identities: SHA-1, state, expiry, common name.")

    def handle(self, *args, **options):
        if options["action"] == "import":
            self.import_identity(
                Path(options["file"]), options["password_file"], options["allow_any_usage"]
            )
        else:
            prepare_database()
            self.list_identities()

    def import_identity(self, path: Path, password_file: str | None, allow_any_usage: bool) -> None:
        data = read_file(path, MAX_SIZE, "10 MiB; a .p12 is a few KiB")
        prepare_database()
        password = read_password(password_file, "P12 password: ")
        try:
            parsed = read_new_identity(data, password, allow_any_usage=allow_any_usage)
        except P12Error as error:
            raise CommandError(f"{path}: {error}") from None
        identity = Identity()
        identity.fill_from(parsed)
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
                f"{identity.key_type} {identity.key_size}\t{identity.common_name}"
            )
