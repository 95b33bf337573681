"""Decrypted keys kept for a bounded time, and dropped as soon as any identity changes."""

import time
from unittest import mock

from signing_service.access.models import ApiKey
from signing_service.audit.admin_actions import Actor
from signing_service.identities import key_cache as key_cache_module
from signing_service.identities.key_cache import KeyCache
from signing_service.identities.models import Identity, IdentityVersion
from signing_service.switches import set_active
from signing_service.test import BaseTestCase, make_client, post_sign


def version() -> int:
    return IdentityVersion.objects.get(pk=1).number


class OpeningCounter:
    """Counts how often an identity's sealed key is decrypted, while installed."""

    def __init__(self, test):
        self.count = 0
        self.real = Identity.private_key

        def private_key(identity):
            self.count += 1
            return self.real(identity)

        patcher = mock.patch.object(Identity, "private_key", private_key)
        patcher.start()
        test.addCleanup(patcher.stop)


class KeyCacheTestCase(BaseTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.identity, _ = cls.store_identity(key_kind="ec256")

    def setUp(self):
        self.opened = OpeningCounter(self)

    def test_a_key_is_opened_once_while_the_version_stands(self):
        cache = KeyCache(300)
        first = cache.private_key(self.identity, version())
        self.assertIs(cache.private_key(self.identity, version()), first)
        self.assertEqual(self.opened.count, 1)

    def test_a_change_to_any_identity_drops_every_kept_key(self):
        other, _ = self.store_identity(key_kind="ec256")
        cache = KeyCache(300)
        cache.private_key(self.identity, version())
        before = version()
        set_active(other, False, Actor.operator())
        self.assertGreater(version(), before)
        cache.private_key(self.identity, version())
        self.assertEqual(self.opened.count, 2)

    def test_saving_and_deleting_an_identity_move_the_version(self):
        before = version()
        self.identity.save()
        self.assertEqual(version(), before + 1)
        other, _ = self.store_identity(key_kind="ec256")
        other.delete()
        self.assertEqual(version(), before + 3)  # its creation, then its deletion

    def test_a_key_sealed_anew_is_opened_anew(self):
        cache = KeyCache(300)
        cache.private_key(self.identity, version())
        self.identity.seal_key(b"not compared: only the sealed form is")
        self.opened.real = lambda identity: "the new key"
        self.assertEqual(cache.private_key(self.identity, version()), "the new key")

    def test_a_key_is_opened_again_once_its_time_is_up(self):
        cache = KeyCache(300)
        with mock.patch.object(key_cache_module.time, "monotonic", return_value=1000.0):
            cache.private_key(self.identity, version())
        with mock.patch.object(key_cache_module.time, "monotonic", return_value=1299.0):
            cache.private_key(self.identity, version())  # still kept: used, not extended
        with mock.patch.object(key_cache_module.time, "monotonic", return_value=1300.0):
            cache.private_key(self.identity, version())
        self.assertEqual(self.opened.count, 2)

    def test_nothing_is_kept_when_turned_off_or_without_a_version(self):
        for cache, known in ((KeyCache(0), version()), (KeyCache(300), None)):
            cache.private_key(self.identity, known)
            cache.private_key(self.identity, known)
            self.assertEqual(cache.keys, {})
        self.assertEqual(self.opened.count, 4)

    def test_a_worker_without_requests_drops_its_keys_in_time(self):
        cache = KeyCache(0.2)
        cache.private_key(self.identity, version())
        self.assertEqual(len(cache.keys), 1)
        deadline = time.monotonic() + 5
        while cache.keys and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(cache.keys, {})
        while cache.sweeper is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIsNone(cache.sweeper)  # the sweeping thread ended with the last key


class SignPathTestCase(BaseTestCase):
    """The sign endpoint keeps its keys, and stops using them when an identity changes."""

    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.identity, _ = cls.store_identity(key_kind="ec256")
        cls.key, _ = ApiKey.create("build machines")
        cls.machine, cls.token = make_client(cls.key)

    def setUp(self):
        self.opened = OpeningCounter(self)
        key_cache_module.key_cache.clear()
        self.addCleanup(key_cache_module.key_cache.clear)

    def sign(self):
        return post_sign(self.client, self.token, self.identity.sha1, "ecdsa-sha256")

    def test_signing_again_uses_the_key_kept(self):
        for _ in range(3):
            self.assertEqual(self.sign().status_code, 200)
        self.assertEqual(self.opened.count, 1)

    def test_an_identity_switched_off_and_on_again_has_its_key_opened_again(self):
        self.assertEqual(self.sign().status_code, 200)
        set_active(self.identity, False, Actor.operator())
        self.assertEqual(self.sign().status_code, 404)
        set_active(self.identity, True, Actor.operator())
        self.assertEqual(self.sign().status_code, 200)
        self.assertEqual(self.opened.count, 2)
