"""Users of the web interface, and the user agreement they accept."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models

DEFAULT_AGREEMENT = """\
This service holds the code-signing identities of the organisation. By using it you agree to:

1. Sign only software that the organisation builds and means to ship.
2. Keep API keys and client machines in your care secret, and report any that may have leaked.
3. Accept that every request to list or use an identity is recorded in the audit log.
"""


class UserAgreement(models.Model):
    """One version of the user agreement; the newest row is the one in force.

    Changing the text means adding a row, which makes every user accept again.
    """

    text = models.TextField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"User agreement #{self.pk}"

    @classmethod
    def current(cls) -> UserAgreement:
        agreement = cls.objects.order_by("-id").first()
        if agreement is None:
            agreement = cls.objects.create(text=DEFAULT_AGREEMENT)
        return agreement


class User(AbstractUser):
    """A person who signs in to the Signing Service.

    ``is_admin`` is the guide's "application admin": it grants every permission.
    """

    is_admin = models.BooleanField(
        "application admin",
        default=False,
        help_text="Admins may manage users, identities, API keys, audit and settings.",
    )
    must_change_password = models.BooleanField(default=True)
    accepted_agreement = models.ForeignKey(
        UserAgreement, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["username"]

    @property
    def role(self) -> str:
        return "admin" if self.is_admin else "user"

    def has_accepted_current_agreement(self) -> bool:
        return self.accepted_agreement_id == UserAgreement.current().pk
