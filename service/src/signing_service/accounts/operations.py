"""Adding, editing, switching and deleting users and setting passwords, each with its audit
record in the same transaction: the one place the Users pages, the account pages and
``signing-service user`` go through. Never a password in a record."""

from __future__ import annotations

from axes.utils import reset as axes_reset
from django.db import transaction

from signing_service.accounts.models import User, UserAgreement
from signing_service.audit.admin_actions import Action, Actor, differences, record_admin_action
from signing_service.switches import set_active

EDITABLE = ("username", "is_admin", "is_active")


def account(user: User) -> dict[str, str | bool]:
    return {name: getattr(user, name) for name in EDITABLE}


def change_problem(actor: User | None, subject: User, *, deleting: bool) -> str | None:
    """Why a change to ``subject`` (carrying its unsaved new values) is refused, or None.

    Admins may not delete, deactivate or demote themselves, and no one (the ops command line
    included) the last active admin: the service never loses its last admin.
    """
    if actor is not None and subject.pk == actor.pk:
        if deleting:
            return "You cannot delete your own account."
        if not subject.is_active:
            return "You cannot deactivate your own account."
        if not subject.is_admin:
            return "You cannot remove your own admin role."
        return None
    if not deleting and subject.is_active and subject.is_admin:
        return None
    admins = User.objects.filter(is_admin=True, is_active=True)
    if admins.filter(pk=subject.pk).exists() and not admins.exclude(pk=subject.pk).exists():
        return f"{subject.username} is the last active admin; the service would have none."
    return None


def set_user_active(subject: User, active: bool, actor: Actor) -> str | None:
    """Switch a user on or off; why not, when refused (see ``change_problem``)."""
    stored = subject.is_active
    subject.is_active = active
    problem = change_problem(actor.user, subject, deleting=False)
    subject.is_active = stored  # set_active records the change from the stored state
    if problem is None:
        set_active(subject, active, actor)
    return problem


def add_user(username: str, is_admin: bool, password: str, actor: Actor) -> User:
    """A new user, who must change the password at first sign-in."""
    user = User(username=username, is_admin=is_admin)
    user.set_password(password)
    with transaction.atomic():
        user.save()
        changes = differences({}, {"username": username, "is_admin": is_admin})
        record_admin_action(actor, Action.USER_ADD, user, changes=changes)
    axes_reset(username=username)  # a lockout of the name, tried before it existed, is lifted
    return user


def edit_user(edited: User, actor: Actor) -> None:
    """Save name, role and state as ``edited`` carries them."""
    before = account(User.objects.get(pk=edited.pk))
    with transaction.atomic():
        edited.save(update_fields=EDITABLE)
        changes = differences(before, account(edited))
        if changes:
            record_admin_action(actor, Action.USER_EDIT, edited, changes=changes)


def delete_user(subject: User, actor: Actor) -> None:
    with transaction.atomic():
        changes = {name: [value, None] for name, value in account(subject).items()}
        record_admin_action(actor, Action.USER_DELETE, subject, changes=changes)
        subject.delete()


def reset_password(subject: User, password: str, actor: Actor) -> None:
    """Set a temporary password, which its owner must change at next sign-in; a new password
    hash also ends the user's open sessions, and lifts a sign-in lockout."""
    before = subject.must_change_password
    subject.set_password(password)
    subject.must_change_password = True
    with transaction.atomic():
        subject.save(update_fields=["password", "must_change_password"])
        changes = {"must_change_password": [before, True]}
        record_admin_action(actor, Action.PASSWORD_RESET, subject, changes=changes)
    axes_reset(username=subject.username)


def change_own_password(user: User, actor: Actor) -> None:
    """Save the password the user chose (already set on ``user``)."""
    before = user.must_change_password
    user.must_change_password = False
    with transaction.atomic():
        user.save(update_fields=["password", "must_change_password"])
        changes = differences({"must_change_password": before}, {"must_change_password": False})
        record_admin_action(actor, Action.PASSWORD_CHANGE, user, changes=changes)


def accept_agreement(user: User, agreement: UserAgreement, actor: Actor) -> None:
    before = user.accepted_agreement_id
    with transaction.atomic():
        user.accepted_agreement = agreement
        user.save(update_fields=["accepted_agreement"])
        changes = {"accepted_agreement": [before, agreement.pk]}
        record_admin_action(actor, Action.AGREEMENT_ACCEPT, user, changes=changes)
