"""``signing-service apikey create|list|toggle|delete``: API keys without the web interface,
audited as the web's pages are (``source`` cli, the OS user)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count

from signing_service.access import operations
from signing_service.access.models import ApiKey
from signing_service.accounts.bootstrap import prepare_database
from signing_service.audit.admin_actions import Actor
from signing_service.switches import add_switch_arguments, set_active

KEY_HELP = "The key's id as `apikey list` prints it (smk_…), or its name."


def find_key(reference: str) -> ApiKey:
    key = ApiKey.named(reference)
    if key is None:
        raise CommandError(f"No API key is named or has the id {reference!r}.")
    return key


class Command(BaseCommand):
    help = "Create API keys (the secret is printed once), list, switch and delete them."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="Create a key and print its secret once.")
        create.add_argument("name")
        actions.add_parser("list", help="List keys: id, state, clients, name.")
        toggle = actions.add_parser("toggle", help="Switch a key (and so its clients) on or off.")
        toggle.add_argument("key", help=KEY_HELP)
        add_switch_arguments(toggle)
        deleter = actions.add_parser("delete", help="Delete a key and its clients.")
        deleter.add_argument("key", help=KEY_HELP)

    def handle(self, *args, **options):
        prepare_database()
        action = options["action"]
        if action == "create":
            self.create(options["name"].strip())
        elif action == "list":
            self.list_keys()
        elif action == "toggle":
            key = find_key(options["key"])
            active = not key.is_active if options["active"] is None else options["active"]
            set_active(key, active, Actor.operator())
            self.stdout.write(f"{key} is {'active' if active else 'inactive'}.")
        else:
            key = find_key(options["key"])
            clients = operations.delete_key(key, Actor.operator())
            self.stdout.write(f"Deleted {key} and its {clients} clients.")

    def create(self, name: str) -> None:
        problem = ApiKey.name_problem(name)
        if problem:
            raise CommandError(problem)
        _, secret = operations.create_key(name, Actor.operator())
        self.stdout.write(secret)

    def list_keys(self) -> None:
        for key in ApiKey.objects.annotate(client_count=Count("clients")):
            state = "active" if key.is_active else "inactive"
            self.stdout.write(f"{key.display_id}\t{state}\t{key.client_count} clients\t{key.name}")
