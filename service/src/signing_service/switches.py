"""Switching identities, API keys, clients and users on and off, audited: the one way the web's
switches and the ops commands (``identity|apikey|client toggle``, ``user activate|deactivate``)
change ``is_active``."""

from __future__ import annotations

from django.db import models, transaction

from signing_service.audit.admin_actions import Action, Actor, record_admin_action

# What switching each kind of row is called in the audit (users: see ``switch_action``).
TOGGLE_ACTIONS = {
    "identities.identity": Action.IDENTITY_TOGGLE,
    "access.apikey": Action.APIKEY_TOGGLE,
    "access.client": Action.CLIENT_TOGGLE,
}


def switch_action(item: models.Model, active: bool) -> Action:
    """The audit action for switching ``item`` to ``active``."""
    if item._meta.label_lower == "accounts.user":
        return Action.USER_ACTIVATE if active else Action.USER_DEACTIVATE
    return TOGGLE_ACTIONS[item._meta.label_lower]


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


def add_switch_arguments(parser) -> None:
    """``--on`` / ``--off`` for a ``toggle`` command: ``active`` is True, False, or None
    (neither: switch over)."""
    state = parser.add_mutually_exclusive_group()
    state.add_argument("--on", dest="active", action="store_true", default=None)
    state.add_argument("--off", dest="active", action="store_false")
