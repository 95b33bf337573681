"""The base test case of the service's tests, with its named people (as healthchecks does)."""

from __future__ import annotations

from django.test import TestCase

from signing_service.accounts.models import User, UserAgreement

PASSWORD = "correct horse battery staple"  # noqa: S105 - a test persona's password


class BaseTestCase(TestCase):
    """Three people, each fully set up (password changed, agreement accepted):

    - alice: an application admin; she may do everything.
    - bob: a non-admin user; he may view and switch things on and off, nothing more.
    - charlie: an outsider whose account an admin deactivated; he may do nothing.
    """

    @classmethod
    def setUpTestData(cls):
        agreement = UserAgreement.current()
        cls.alice = cls.make_user("alice", is_admin=True, accepted_agreement=agreement)
        cls.bob = cls.make_user("bob", accepted_agreement=agreement)
        cls.charlie = cls.make_user("charlie", is_active=False, accepted_agreement=agreement)

    @staticmethod
    def make_user(username: str, password: str = PASSWORD, **fields) -> User:
        fields.setdefault("must_change_password", False)
        user = User(username=username, **fields)
        user.set_password(password)
        user.save()
        return user
