"""``signing-service audit export``: the audit records of a date range as CSV or JSON; the export
itself is recorded (who, which range)."""

from __future__ import annotations

import datetime

from django.core.management.base import BaseCommand, CommandError

from signing_service.accounts.bootstrap import prepare_database
from signing_service.audit.admin_actions import Actor
from signing_service.audit.export import FORMATS, events_between, record_export


def parse_date(value: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date; write YYYY-MM-DD.") from None


class Command(BaseCommand):
    help = "Export audit records of a date range (UTC days, both included) to standard output."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        export = actions.add_parser("export", help="Write the records of a date range.")
        export.add_argument("--from", dest="start", required=True, type=str, metavar="DATE")
        export.add_argument("--to", dest="end", required=True, type=str, metavar="DATE")
        export.add_argument("--format", choices=sorted(FORMATS), default="csv")

    def handle(self, *args, **options):
        start, end = parse_date(options["start"]), parse_date(options["end"])
        if start > end:
            raise CommandError("--from is after --to.")
        prepare_database()
        record_export(Actor.operator(), start, end, options["format"])
        lines, _ = FORMATS[options["format"]]
        for line in lines(events_between(start, end)):
            self.stdout.write(line, ending="")
