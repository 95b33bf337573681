"""``signing-service settings show|set``: the Settings page without the web interface, with its
rules (``SettingsForm``) and audited as it is (``source`` cli, the OS user)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from signing_service.accounts.bootstrap import prepare_database
from signing_service.accounts.models import UserAgreement
from signing_service.audit.admin_actions import Actor
from signing_service.command_input import read_file
from signing_service.configuration.forms import SettingsForm
from signing_service.configuration.models import ServiceSettings

MAX_AGREEMENT_SIZE = 1024 * 1024
YES_NO = {"yes": True, "no": False}


class Command(BaseCommand):
    help = "Show the Settings, or change some of them."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("show", help="Print each setting, one per line, tab-separated.")
        change = actions.add_parser("set", help="Change the settings given; the rest stay.")
        change.add_argument("--audit-retention-days", type=int, metavar="DAYS")
        change.add_argument("--clients-need-approval", choices=sorted(YES_NO))
        change.add_argument(
            "--agreement-file", help="A UTF-8 text file: the new user agreement, to be accepted."
        )

    def handle(self, *args, **options):
        text = None
        if options["action"] == "set" and options["agreement_file"]:
            data = read_file(Path(options["agreement_file"]), MAX_AGREEMENT_SIZE, "1 MiB")
            try:
                text = data.decode()
            except UnicodeDecodeError:
                raise CommandError(f"{options['agreement_file']} is not UTF-8 text.") from None
        prepare_database()
        if options["action"] == "set":
            self.change(options, text)
        self.show()

    def change(self, options, agreement_text: str | None) -> None:
        form = SettingsForm.for_current()
        data = {name: form[name].value() for name in form.fields}
        if options["audit_retention_days"] is not None:
            data["audit_retention_days"] = options["audit_retention_days"]
        if options["clients_need_approval"]:
            data["clients_need_approval"] = YES_NO[options["clients_need_approval"]]
        if agreement_text is not None:
            data["agreement_text"] = agreement_text
        form = SettingsForm.for_current(data)
        if not form.is_valid():
            problems = [
                f"{form[name].label}: {' '.join(errors)}" for name, errors in form.errors.items()
            ]
            raise CommandError(" ".join(problems))
        if form.apply(Actor.operator()):
            self.stderr.write("Every user must accept the new agreement.")

    def show(self) -> None:
        settings = ServiceSettings.load()
        agreement = UserAgreement.current()
        self.stdout.write(f"audit-retention-days\t{settings.audit_retention_days}")
        self.stdout.write(
            f"clients-need-approval\t{'yes' if settings.clients_need_approval else 'no'}"
        )
        self.stdout.write(f"agreement\tversion {agreement.pk} of {agreement.created:%Y-%m-%d}")
