"""Switching identities, API keys, clients and users on and off, audited: the one way the web's
switches and the ops commands (``identity|apikey|client toggle``, ``user activate|deactivate``)
change ``is_active``."""

from __future__ import annotations

from django.db import models, transaction

from signing_service.audit.admin_actions import Action, Actor, record_admin_action


def switch_action(item: models.Model, active: bool) -> Action:
    """The audit action for switching ``item`` to ``active``."""
    from signing_service.access.models import ApiKey, Client
    from signing_service.accounts.models import User

    if isinstance(item, User):
        return Action.USER_ACTIVATE if active else Action.USER_DEACTIVATE
    if isinstance(item, ApiKey):
        return Action.APIKEY_TOGGLE
    if isinstance(item, Client):
        return Action.CLIENT_TOGGLE
    return Action.IDENTITY_TOGGLE


def set_active(item: models.Model, active: bool, actor: Actor) -> None:
    """Switch ``item`` on or off and record it, both or neither; nothing when it is already so
    (a second confirmation, a script run twice)."""
    before = item.is_active
    if before == active:
        return
    with transaction.atomic():
        item.is_active = active
        item.save(update_fields=["is_active"])
        changes = {"is_active": [before, active]}
        record_admin_action(actor, switch_action(item, active), item, changes=changes)
