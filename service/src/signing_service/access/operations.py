"""Creating and deleting API keys and deleting clients, each with its audit record in the same
transaction: the one place the API Keys pages and ``signing-service apikey|client`` go through.
(Switching them on and off: ``signing_service.switches``.)"""

from __future__ import annotations

from django.db import transaction

from signing_service.access.models import ApiKey, Client
from signing_service.audit.admin_actions import Action, Actor, record_admin_action


def create_key(name: str, actor: Actor) -> tuple[ApiKey, str]:
    """A new key and its secret, which the caller shows once (the record holds only its id)."""
    with transaction.atomic():
        key, secret = ApiKey.create(name, created_by=actor.user)
        record_admin_action(actor, Action.APIKEY_CREATE, key, changes={"name": [None, key.name]})
    return key, secret


def delete_key(key: ApiKey, actor: Actor) -> int:
    """Delete the key and its clients; how many clients went with it."""
    with transaction.atomic():
        clients = key.clients.count()
        changes = {"name": [key.name, None], "clients": [clients, 0]}
        # Written first: the record names the key, which is gone a moment later.
        record_admin_action(actor, Action.APIKEY_DELETE, key, changes=changes)
        key.delete()
    return clients


def delete_client(client: Client, actor: Actor) -> None:
    """Forget a client: its token stops working; the machine may register again while its key
    is active (to stop it for good, switch it off instead)."""
    with transaction.atomic():
        changes = {"hostname": [client.hostname, None]}
        record_admin_action(actor, Action.CLIENT_DELETE, client, changes=changes)
        client.delete()
