"""``signing-service client list|approve|reject``: registered clients without the web."""

from __future__ import annotations

import getpass

from django.core.management.base import BaseCommand, CommandError

from signing_service.access import approval
from signing_service.access.models import Client
from signing_service.accounts.bootstrap import prepare_database
from signing_service.audit.models import Source


class Command(BaseCommand):
    help = "List registered clients, and approve or reject those waiting for approval."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("list", help="List clients: id, state, approval, API key, host name.")
        for name, what in (("approve", "Let a pending client list and sign."),
                           ("reject", "Delete a pending client.")):  # fmt: skip
            action = actions.add_parser(name, help=what)
            action.add_argument("id", type=int)

    def handle(self, *args, **options):
        prepare_database()
        if options["action"] == "list":
            self.list_clients()
            return
        client = Client.objects.select_related("api_key").filter(pk=options["id"]).first()
        if client is None:
            raise CommandError(f"No client has the id {options['id']}.")
        if client.is_approved:
            raise CommandError(f"The client {client.pk} ({client.hostname}) is not pending.")
        decide = approval.approve if options["action"] == "approve" else approval.reject
        decide(client, source=Source.CLI, actor=operator())
        verb = "Approved" if options["action"] == "approve" else "Rejected and deleted"
        self.stdout.write(f"{verb} client {client.pk} ({client.hostname}).")

    def list_clients(self) -> None:
        for client in Client.objects.select_related("api_key"):
            state = "active" if client.is_active else "inactive"
            approved = "approved" if client.is_approved else "pending"
            self.stdout.write(
                f"{client.pk}\t{state}\t{approved}\t{client.api_key.name}\t{client.hostname}"
            )


def operator() -> str:
    """The OS user running the command, for the audit record."""
    try:
        return f"the OS user {getpass.getuser()}"
    except (KeyError, OSError):  # no name for this uid (a container's)
        return "an operator"
