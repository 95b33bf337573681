"""``signing-service ca import|list|delete``: the CAs that complete identities' chains."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from signing_manager.apple_pki import apple_certificates
from signing_service.accounts.bootstrap import prepare_database
from signing_service.audit.admin_actions import Actor
from signing_service.authorities.models import CertificateAuthority
from signing_service.authorities.reading import (
    MAX_SIZE,
    CertificateFileError,
    name_of,
    read_ca_certificates,
)
from signing_service.authorities.updates import add_authorities, delete_authority, sha256_of
from signing_service.command_input import read_file


class Command(BaseCommand):
    help = "Upload, list and delete the CA certificates that complete identities' chains."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        importer = actions.add_parser(
            "import", help="Upload the CA certificates of a PEM or DER file."
        )
        importer.add_argument("file")
        actions.add_parser("list", help="List CAs: SHA-256, kind, expiry, common name.")
        deleter = actions.add_parser("delete", help="Delete an uploaded CA by its SHA-256.")
        deleter.add_argument("sha256")

    def handle(self, *args, **options):
        action = options["action"]
        data = b""
        if action == "import":
            data = read_file(Path(options["file"]), MAX_SIZE, "1 MiB; a CA certificate is ~2 KiB")
        prepare_database()
        if action == "import":
            self.import_file(Path(options["file"]), data)
        elif action == "list":
            self.list_authorities()
        else:
            self.delete(options["sha256"])

    def import_file(self, path: Path, data: bytes) -> None:
        try:
            added = add_authorities(read_ca_certificates(data), Actor.operator())
        except CertificateFileError as error:
            raise CommandError(f"{path}: {error}") from None
        for authority in added:
            self.stdout.write(f"{authority.sha256.upper()}\t{authority.common_name}")

    def list_authorities(self) -> None:
        for authority in CertificateAuthority.objects.all():
            kind = "root" if authority.is_root else "intermediate"
            self.stdout.write(
                f"{authority.sha256.upper()}\tuploaded {kind}\t{authority.not_after:%Y-%m-%d}\t"
                f"{authority.common_name}"
            )
        for certificate in apple_certificates():
            kind = "root" if certificate.subject == certificate.issuer else "intermediate"
            self.stdout.write(
                f"{sha256_of(certificate).upper()}\tApple {kind}\t"
                f"{certificate.not_valid_after_utc:%Y-%m-%d}\t{name_of(certificate)}"
            )

    def delete(self, fingerprint: str) -> None:
        wanted = fingerprint.strip().lower().replace(":", "")
        authority = CertificateAuthority.objects.filter(sha256=wanted).first()
        if authority is None:
            raise CommandError(f"No uploaded CA has the SHA-256 fingerprint {fingerprint}.")
        delete_authority(authority, Actor.operator())
        self.stdout.write(f"Deleted {authority.common_name}.")
