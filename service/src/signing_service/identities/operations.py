"""Importing, replacing, deleting and authorizing identities, and the keys kept in a token
(generate, attach the certificate, discard, move), each with its audit record in the same
transaction: the one place the Signing Certificates pages and ``signing-service identity`` go
through. A token is not transactional: a key created in it stays there if the record then
cannot be written (it signs nothing without its identity row)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from signing_service.audit.admin_actions import Action, Actor, differences, record_admin_action
from signing_service.identities import token_keys
from signing_service.identities.models import Identity, PendingIdentity
from signing_service.identities.p12 import ParsedIdentity


def certificate_facts(identity: Identity) -> dict[str, str | bool]:
    """What an import or replacement changes, as the audit shows it (public facts only)."""
    return {
        "common_name": identity.common_name,
        "sha1": identity.sha1,
        "not_after": identity.not_after.isoformat(),
        "usage_check_overridden": identity.usage_check_overridden,
        "key_location": identity.key_location,
    }


def pending_facts(pending: PendingIdentity) -> dict[str, str]:
    return {
        "subject": pending.subject(),
        "key": f"{pending.key_type} {pending.key_size}",
        "key_location": pending.key_location,
    }


def import_identity(parsed: ParsedIdentity, actor: Actor, token_label: str = "") -> Identity:
    """A new identity from a .p12, its key sealed in the record or, with ``token_label``, put
    into that token and kept nowhere else."""
    with transaction.atomic():
        identity = Identity()
        token_keys.fill_identity(identity, parsed, token_label)
        identity.save()
        changes = differences({}, certificate_facts(identity))
        record_admin_action(actor, Action.IDENTITY_IMPORT, identity, changes=changes)
    return identity


def replace_identity(
    identity: Identity, parsed: ParsedIdentity, actor: Actor, token_label: str = ""
) -> None:
    """Put another .p12 in the record; authorizations and the active switch stay as they are."""
    before = certificate_facts(identity)
    with transaction.atomic():
        token_keys.fill_identity(identity, parsed, token_label)
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


def generate_in_token(
    token_label: str, key_spec: str, subject: token_keys.Subject, actor: Actor
) -> PendingIdentity:
    with transaction.atomic():
        pending = token_keys.generate_in_token(token_label, key_spec, subject)
        changes = differences({}, pending_facts(pending))
        record_admin_action(actor, Action.IDENTITY_GENERATE, pending, changes=changes)
    return pending


def attach_certificate(
    pending: PendingIdentity, data: bytes, allow_any_usage: bool, actor: Actor
) -> Identity:
    with transaction.atomic():
        identity = token_keys.attach_certificate(pending, data, allow_any_usage)
        changes = differences({}, certificate_facts(identity))
        record_admin_action(actor, Action.IDENTITY_ATTACH, identity, changes=changes)
    return identity


def discard_pending(pending: PendingIdentity, actor: Actor) -> None:
    with transaction.atomic():
        changes = {name: [value, None] for name, value in pending_facts(pending).items()}
        record_admin_action(actor, Action.IDENTITY_DISCARD, pending, changes=changes)
        token_keys.discard_pending(pending)


def move_to_token(identity: Identity, token_label: str, actor: Actor) -> None:
    before = certificate_facts(identity)
    with transaction.atomic():
        token_keys.move_to_token(identity, token_label)
        changes = differences(before, certificate_facts(identity))
        record_admin_action(actor, Action.IDENTITY_MOVE_TO_TOKEN, identity, changes=changes)
