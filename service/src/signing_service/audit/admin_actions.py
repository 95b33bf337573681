"""Admin actions in the audit: what a person did through the web or the ops command line.

Each is one record of request type ``admin`` whose ``action`` is a name of ``Action`` and whose
``changes`` say what changed, ``{field: [before, after]}`` (``None`` before a creation and after
a deletion), or the details of an action that changes nothing (an export's range). Never a
password, secret, key or file. Who: the signed-in user (web) or the OS user (``source`` cli);
from where: the client address. Callers write the record inside the transaction of the change,
so a change without its record cannot be committed: if the record cannot be written, the change
is rolled back (fail closed, as signing does).
"""

from __future__ import annotations

import dataclasses
import getpass
from enum import StrEnum
from typing import TYPE_CHECKING

from django.db import models
from django.http import HttpRequest
from django.utils.text import capfirst

from signing_service.access.models import ApiKey, Client
from signing_service.audit import records
from signing_service.audit.models import AuditEvent, RequestType, Source, Status
from signing_service.client_address import client_address
from signing_service.identities.models import Identity

if TYPE_CHECKING:
    from signing_service.accounts.models import User


class Action(StrEnum):
    """The vocabulary of admin records (the README's table lists what each means)."""

    SIGN_IN = "user.sign_in"
    SIGN_IN_FAILED = "user.sign_in_failed"
    LOCKED_OUT = "user.locked_out"
    SIGN_OUT = "user.sign_out"
    PASSWORD_CHANGE = "user.password_change"  # noqa: S105 - an action name
    PASSWORD_RESET = "user.password_reset"  # noqa: S105 - an action name
    USER_ADD = "user.add"
    USER_EDIT = "user.edit"
    USER_ACTIVATE = "user.activate"
    USER_DEACTIVATE = "user.deactivate"
    USER_DELETE = "user.delete"
    AGREEMENT_ACCEPT = "agreement.accept"
    IDENTITY_IMPORT = "identity.import"
    IDENTITY_EDIT = "identity.edit"
    IDENTITY_DELETE = "identity.delete"
    IDENTITY_TOGGLE = "identity.toggle"
    IDENTITY_AUTHORIZE = "identity.authorize"
    IDENTITY_GENERATE = "identity.generate"  # a key pair in a token, waiting for its certificate
    IDENTITY_ATTACH = "identity.attach"  # the issued certificate makes the pending key an identity
    IDENTITY_DISCARD = "identity.discard"  # a pending key destroyed in its token
    IDENTITY_MOVE_TO_TOKEN = "identity.move_to_token"  # noqa: S105 - an action name
    CA_UPLOAD = "ca.upload"
    CA_DELETE = "ca.delete"
    APIKEY_CREATE = "apikey.create"
    APIKEY_TOGGLE = "apikey.toggle"
    APIKEY_DELETE = "apikey.delete"
    CLIENT_TOGGLE = "client.toggle"
    CLIENT_DELETE = "client.delete"
    SETTINGS_CHANGE = "settings.change"
    AUDIT_EXPORT = "audit.export"


@dataclasses.dataclass(frozen=True)
class Actor:
    """Who acts and from where: a web user (or a name tried at sign-in), or an OS user."""

    source: Source
    user: User | None = None  # None on the command line, and for a name no one has
    username: str = ""
    address: str | None = None

    @classmethod
    def of_request(cls, request: HttpRequest, user: User | None = None) -> Actor:
        """The signed-in user of a web request (``user`` where the request does not carry it
        yet, as at sign-in), from the request's client address."""
        user = user or request.user
        return cls(Source.WEB, user=user, username=user.username, address=client_address(request))

    @classmethod
    def operator(cls) -> Actor:
        """The OS user running an ops command."""
        return cls(Source.CLI, username=os_user_name())


def os_user_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container's)
        return ""


def describe(item: models.Model) -> str:
    """“User “bob””, “API key “build (smk_…)””: what a record's message calls its target."""
    return f"{capfirst(item._meta.verbose_name)} “{item}”"


def target_fields(item: models.Model | None) -> dict:
    """The record's own columns for the target, so a filter on them finds the record too."""
    if isinstance(item, Identity):
        return {"identity": item}
    if isinstance(item, ApiKey):
        return {"api_key": item}
    if isinstance(item, Client):
        return {"client": item, "api_key": item.api_key}
    return {}


def differences(before: dict, after: dict) -> dict[str, list]:
    """``{field: [before, after]}`` for the fields whose value changed."""
    return {
        name: [before.get(name), after.get(name)]
        for name in after
        if before.get(name) != after.get(name)
    }


def record_admin_action(
    actor: Actor,
    action: Action,
    target: models.Model | None = None,
    *,
    changes: dict | None = None,
    status: Status = Status.SUCCESS,
    reason: str = "",
) -> AuditEvent:
    """Write the record of one admin action (inside the caller's transaction, if any)."""
    event = records.build(
        RequestType.ADMIN,
        status,
        reason=reason,
        message=describe(target) if target is not None else "",
        source=actor.source,
        user=actor.user,
        address=actor.address,
        action=action,
        changes=changes,
        **target_fields(target),
    )
    event.username = actor.username[:150]
    records.save_all([event])
    return event
