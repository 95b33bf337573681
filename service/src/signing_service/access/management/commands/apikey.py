"""``signing-service apikey create|list``: API keys without the web interface."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count

from signing_service.access.models import ApiKey
from signing_service.accounts.bootstrap import prepare_database


class Command(BaseCommand):
    help = "Create API keys (the secret is printed once) and list them."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="Create a key and print its secret once.")
        create.add_argument("name")
        actions.add_parser("list", help="List keys: id, state, clients, name.")

    def handle(self, *args, **options):
        prepare_database()
        if options["action"] == "create":
            name = options["name"].strip()
            problem = ApiKey.name_problem(name)
            if problem:
                raise CommandError(problem)
            _, secret = ApiKey.create(name)
            self.stdout.write(secret)
            return
        for key in ApiKey.objects.annotate(client_count=Count("clients")):
            state = "active" if key.is_active else "inactive"
            self.stdout.write(f"{key.display_id}\t{state}\t{key.client_count} clients\t{key.name}")
