"""Which identities an API key may use: all keys (the default) or a chosen set; active ones only."""

from django.test import TestCase

from signing_service.access.models import ApiKey
from signing_service.api import lookups
from signing_service.identities.models import Identity
from signing_service.identities.p12 import parse_p12
from signing_service.test import make_identity


def store_identity(**fields) -> Identity:
    made = make_identity()
    identity = Identity(**fields)
    identity.fill_from(parse_p12(made.p12, made.password))
    identity.save()
    return identity


def authorized(identity: Identity, key: ApiKey) -> bool:
    """What the sign path reads: may ``key`` use ``identity``."""
    return lookups.identity_for(identity.sha1, key).authorized


class UsableByTestCase(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.build, _ = ApiKey.create("build machines")
        cls.release, _ = ApiKey.create("release machines")
        cls.shared = store_identity()
        cls.chosen = store_identity(authorize_all_keys=False)
        cls.chosen.authorized_keys.set([cls.release])

    def test_a_new_identity_is_authorized_for_all_keys(self):
        self.assertTrue(self.shared.authorize_all_keys)
        new_key, _ = ApiKey.create("a key made later")
        for key in [self.build, self.release, new_key]:
            with self.subTest(key=key.name):
                self.assertIn(self.shared, Identity.objects.usable_by(key))
                self.assertTrue(authorized(self.shared, key))

    def test_a_chosen_set_authorizes_those_keys_only(self):
        self.assertIn(self.chosen, Identity.objects.usable_by(self.release))
        self.assertNotIn(self.chosen, Identity.objects.usable_by(self.build))
        self.assertTrue(authorized(self.chosen, self.release))
        self.assertFalse(authorized(self.chosen, self.build))

    def test_an_empty_chosen_set_authorizes_no_key(self):
        self.chosen.authorized_keys.clear()
        for key in [self.build, self.release]:
            self.assertNotIn(self.chosen, Identity.objects.usable_by(key))

    def test_an_inactive_identity_is_usable_by_nobody(self):
        Identity.objects.filter(pk__in=[self.shared.pk, self.chosen.pk]).update(is_active=False)
        for key in [self.build, self.release]:
            with self.subTest(key=key.name):
                self.assertFalse(Identity.objects.usable_by(key).exists())

    def test_each_identity_is_offered_once(self):
        self.shared.authorized_keys.set([self.build, self.release])
        usable = list(Identity.objects.usable_by(self.build))
        self.assertEqual(usable, [self.shared])
        usable = list(Identity.objects.usable_by(self.release))
        self.assertEqual(
            sorted(identity.pk for identity in usable), [self.shared.pk, self.chosen.pk]
        )

    def test_deleting_a_key_removes_it_from_the_chosen_set(self):
        self.release.delete()
        self.assertFalse(self.chosen.authorized_keys.exists())
        self.assertNotIn(self.chosen, Identity.objects.usable_by(self.build))
