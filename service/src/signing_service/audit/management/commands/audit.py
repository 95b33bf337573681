"""``signing-service audit``: export the records of a date range as CSV or JSON (the export
itself is recorded: who, which range); verify the hash chain and its checkpoints; write a
checkpoint now; print the checkpoints' public key."""

from __future__ import annotations

import datetime

from django.core.management.base import BaseCommand, CommandError

from signing_service.accounts.bootstrap import prepare_database
from signing_service.audit import checkpoints, verification
from signing_service.audit.admin_actions import Actor
from signing_service.audit.export import FORMATS, events_between, record_export
from signing_service.audit.models import CheckpointKind


def parse_date(value: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date; write YYYY-MM-DD.") from None


class Command(BaseCommand):
    help = "Export, verify and checkpoint the audit records."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        export = actions.add_parser(
            "export",
            help="Write the records of a date range (UTC days, both included) to standard output.",
        )
        export.add_argument("--from", dest="start", required=True, type=str, metavar="DATE")
        export.add_argument("--to", dest="end", required=True, type=str, metavar="DATE")
        export.add_argument("--format", choices=sorted(FORMATS), default="csv")
        verify = actions.add_parser(
            "verify",
            help="Check the hash chain and the checkpoints; one line per problem, exit 1 if any.",
        )
        verify.add_argument("--from", dest="first", type=int, metavar="SEQUENCE")
        verify.add_argument("--to", dest="last", type=int, metavar="SEQUENCE")
        actions.add_parser("checkpoint", help="Sign the chain's head (its last record) now.")
        actions.add_parser("public-key", help="Print the key that checks checkpoints (base64).")

    def handle(self, *args, **options):
        prepare_database()
        getattr(self, options["action"].replace("-", "_"))(options)

    def export(self, options):
        start, end = parse_date(options["start"]), parse_date(options["end"])
        if start > end:
            raise CommandError("--from is after --to.")
        record_export(Actor.operator(), start, end, options["format"])
        lines, _ = FORMATS[options["format"]]
        for line in lines(events_between(start, end)):
            self.stdout.write(line, ending="")

    def verify(self, options):
        first, last = options["first"], options["last"]
        if first is not None and last is not None and first > last:
            raise CommandError("--from is after --to.")
        outcome = verification.verify(first, last, report=self.stdout.write)
        if first is None and last is None:
            verification.remember(outcome)  # for the Audit page's "verified up to"
        if outcome.last_checkpoint:
            pinned = outcome.last_checkpoint
            self.stdout.write(
                f"Last checkpoint: record {pinned.sequence} ({pinned.get_kind_display()},"
                f" {pinned.created:%Y-%m-%d %H:%M:%S} UTC)."
            )
        if outcome.problems:
            raise CommandError(f"The audit does not verify: {outcome.problems} problem(s).")
        self.stdout.write(
            f"The audit verifies: {outcome.records} records, up to record {outcome.last_sequence}."
        )

    def checkpoint(self, options):
        made = checkpoints.sign_head(CheckpointKind.REQUEST)
        if made is None:
            self.stdout.write("The last checkpoint is already of the last record.")
        else:
            self.stdout.write(f"Checkpoint of record {made.sequence} ({made.hash}).")

    def public_key(self, options):
        self.stdout.write(checkpoints.public_key_text())
