"""Signing in and out in the audit: Django's sign-in signals, recorded as admin actions.

A failed sign-in is recorded with the name that was tried (no user, when no one has it); one
that django-axes refuses because the name is locked out (or that locks it) is ``user.locked_out``
instead, so each attempt is one record. The receivers run after axes's own (its app comes first
in ``INSTALLED_APPS``), which marks the request as locked out. A record that cannot be written
fails the request, and a failed response saves no session: no sign-in without its record.
"""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from signing_service.accounts.models import User
from signing_service.audit.admin_actions import Action, Actor, record_admin_action
from signing_service.audit.models import Source, Status
from signing_service.client_address import client_address


@receiver(user_logged_in, dispatch_uid="audit_sign_in")
def record_sign_in(sender, request, user, **kwargs) -> None:
    record_admin_action(Actor.of_request(request, user), Action.SIGN_IN)


@receiver(user_logged_out, dispatch_uid="audit_sign_out")
def record_sign_out(sender, request, user, **kwargs) -> None:
    if user is not None:  # signing out without a session changes nothing
        record_admin_action(Actor.of_request(request, user), Action.SIGN_OUT)


@receiver(user_login_failed, dispatch_uid="audit_sign_in_failed")
def record_failed_sign_in(sender, credentials, request=None, **kwargs) -> None:
    if request is None:  # not a sign-in through the web (a check in code)
        return
    # ``credentials`` comes with the password already masked; only the name is kept.
    name = str(credentials.get("username", ""))[:150]
    known = User.objects.filter(username=name).first()
    actor = Actor(Source.WEB, user=known, username=name, address=client_address(request))
    locked = getattr(request, "axes_locked_out", False)
    action = Action.LOCKED_OUT if locked else Action.SIGN_IN_FAILED
    reason = "locked_out" if locked else "wrong_credentials"
    record_admin_action(actor, action, status=Status.FAILURE, reason=reason)
