"""``signing-service client list|approve|reject|toggle|delete``: registered clients without the
web, audited as the web's pages are (``source`` cli, the OS user)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from signing_service.access import approval, operations
from signing_service.access.models import Client
from signing_service.accounts.bootstrap import prepare_database
from signing_service.audit.admin_actions import Actor
from signing_service.audit.models import Source
from signing_service.switches import add_switch_arguments, set_active


class Command(BaseCommand):
    help = "List registered clients, approve or reject those waiting, switch or delete them."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("list", help="List clients: id, state, approval, API key, host name.")
        for name, what in (("approve", "Let a pending client list and sign."),
                           ("reject", "Delete a pending client."),
                           ("toggle", "Switch a client on or off."),
                           ("delete", "Forget a client; it may register again.")):  # fmt: skip
            action = actions.add_parser(name, help=what)
            action.add_argument("id", type=int)
            if name == "toggle":
                add_switch_arguments(action)

    def handle(self, *args, **options):
        prepare_database()
        action = options["action"]
        if action == "list":
            self.list_clients()
            return
        client = Client.objects.select_related("api_key").filter(pk=options["id"]).first()
        if client is None:
            raise CommandError(f"No client has the id {options['id']}.")
        if action == "toggle":
            active = not client.is_active if options["active"] is None else options["active"]
            set_active(client, active, Actor.operator())
            state = "active" if active else "inactive"
            self.stdout.write(f"Client {client.pk} ({client.hostname}) is {state}.")
        elif action == "delete":
            operations.delete_client(client, Actor.operator())
            self.stdout.write(f"Deleted client {client.pk} ({client.hostname}).")
        else:
            self.decide(client, action)

    def decide(self, client: Client, action: str) -> None:
        if client.is_approved:
            raise CommandError(f"The client {client.pk} ({client.hostname}) is not pending.")
        decide = approval.approve if action == "approve" else approval.reject
        decide(client, source=Source.CLI, actor=operator())
        verb = "Approved" if action == "approve" else "Rejected and deleted"
        self.stdout.write(f"{verb} client {client.pk} ({client.hostname}).")

    def list_clients(self) -> None:
        for client in Client.objects.select_related("api_key"):
            state = "active" if client.is_active else "inactive"
            approved = "approved" if client.is_approved else "pending"
            self.stdout.write(
                f"{client.pk}\t{state}\t{approved}\t{client.api_key.name}\t{client.hostname}"
            )


def operator() -> str:
    """The OS user running the command, for the approval's audit message."""
    name = Actor.operator().username
    return f"the OS user {name}" if name else "an operator"
