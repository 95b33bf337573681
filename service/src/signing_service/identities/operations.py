"""Importing, replacing, deleting and authorizing identities, each with its audit record in the
same transaction: the one place the Signing Certificates pages and ``signing-service identity``
go through."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from signing_service.audit.admin_actions import Action, Actor, differences, record_admin_action
from signing_service.identities.models import Identity
from signing_service.identities.p12 import ParsedIdentity


def certificate_facts(identity: Identity) -> dict[str, str | bool]:
    """What an import or replacement changes, as the audit shows it (public facts only)."""
    return {
        "common_name": identity.common_name,
        "sha1": identity.sha1,
        "not_after": identity.not_after.isoformat(),
        "usage_check_overridden": identity.usage_check_overridden,
    }


def import_identity(parsed: ParsedIdentity, actor: Actor) -> Identity:
    with transaction.atomic():
        identity = Identity()
        identity.fill_from(parsed)
        identity.save()
        changes = differences({}, certificate_facts(identity))
        record_admin_action(actor, Action.IDENTITY_IMPORT, identity, changes=changes)
    return identity


def replace_identity(identity: Identity, parsed: ParsedIdentity, actor: Actor) -> None:
    """Put another .p12 in the record; authorizations and the active switch stay as they are."""
    before = certificate_facts(identity)
    with transaction.atomic():
        identity.fill_from(parsed)
        identity.save()
        changes = differences(before, certificate_facts(identity))
        record_admin_action(actor, Action.IDENTITY_EDIT, identity, changes=changes)


def delete_identity(identity: Identity, actor: Actor) -> None:
    with transaction.atomic():
        # Written first: the record names the identity, which is gone a moment later.
        changes = {name: [value, None] for name, value in certificate_facts(identity).items()}
        record_admin_action(actor, Action.IDENTITY_DELETE, identity, changes=changes)
        identity.delete()


def authorization(identity: Identity) -> dict[str, bool | list[str]]:
    """Who may use the identity: all keys or chosen ones, named with their public ids."""
    return {
        "authorize_all_keys": identity.authorize_all_keys,
        "authorized_keys": sorted(str(key) for key in identity.authorized_keys.all()),
    }


def authorize(identity: Identity, all_keys: bool, keys: Iterable, actor: Actor) -> None:
    """Let all API keys use the identity, or only ``keys`` (kept for later under all keys)."""
    # As stored: a bound form has already put its choice on ``identity``.
    before = authorization(Identity.objects.get(pk=identity.pk))
    with transaction.atomic():
        identity.authorize_all_keys = all_keys
        identity.save(update_fields=["authorize_all_keys", "updated"])
        identity.authorized_keys.set(keys)
        changes = differences(before, authorization(identity))
        if changes:
            record_admin_action(actor, Action.IDENTITY_AUTHORIZE, identity, changes=changes)
