"""A client's last-seen time and address: noted when it lists or signs, at most once a minute."""

import base64
import datetime
import hashlib

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from signing_service.access.models import ApiKey, Client
from signing_service.test import BaseTestCase, make_client

DIGEST = base64.b64encode(hashlib.sha256(b"payload").digest()).decode()


def client_updates(queries) -> list[str]:
    return [
        query["sql"]
        for query in queries
        if query["sql"].lstrip().upper().startswith("UPDATE") and '"access_client"' in query["sql"]
    ]


class LastSeenTestCase(BaseTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.identity, _ = cls.store_identity()
        cls.key, _ = ApiKey.create("build machines")

    def setUp(self):
        self.machine, self.token = make_client(self.key)

    def list_identities(self, address: str = "127.0.0.1"):
        response = self.client.get(
            "/api/v1/certificates",
            headers={"Authorization": f"Bearer {self.token}"},
            REMOTE_ADDR=address,
        )
        self.assertEqual(response.status_code, 200, response.content)
        return response

    def sign(self, address: str = "127.0.0.1", token: str | None = None):
        return self.client.post(
            "/api/v1/sign",
            {"certificate": self.identity.sha1, "algorithm": "rsa-pss-sha256", "digest": DIGEST},
            content_type="application/json",
            headers={"Authorization": f"Bearer {token or self.token}"},
            REMOTE_ADDR=address,
        )

    def seen(self) -> Client:
        return Client.objects.get(pk=self.machine.pk)

    def test_a_new_client_has_not_been_seen(self):
        self.assertIsNone(self.seen().last_seen)

    def test_listing_notes_the_time_and_address(self):
        before = timezone.now()
        self.list_identities("192.0.2.10")
        client = self.seen()
        self.assertGreaterEqual(client.last_seen, before)
        self.assertLessEqual(client.last_seen, timezone.now())
        self.assertEqual(client.address, "192.0.2.10")

    def test_signing_notes_the_time_and_address(self):
        before = timezone.now()
        self.assertEqual(self.sign("2001:db8::7").status_code, 200)
        client = self.seen()
        self.assertGreaterEqual(client.last_seen, before)
        self.assertEqual(client.address, "2001:db8::7")

    def test_a_second_sign_within_a_minute_writes_nothing(self):
        with CaptureQueriesContext(connection) as first:
            self.assertEqual(self.sign().status_code, 200)
        self.assertEqual(len(client_updates(first.captured_queries)), 1)
        noted = self.seen().last_seen
        with CaptureQueriesContext(connection) as second:
            self.assertEqual(self.sign().status_code, 200)
        self.assertEqual(client_updates(second.captured_queries), [])
        self.assertEqual(self.seen().last_seen, noted)

    def test_a_second_listing_within_a_minute_writes_nothing(self):
        self.list_identities()
        with CaptureQueriesContext(connection) as second:
            self.list_identities()
        self.assertEqual(client_updates(second.captured_queries), [])

    def test_it_is_noted_again_after_a_minute(self):
        long_ago = timezone.now() - datetime.timedelta(minutes=2)
        Client.objects.filter(pk=self.machine.pk).update(last_seen=long_ago, address="127.0.0.1")
        self.sign()
        self.assertGreater(self.seen().last_seen, long_ago + datetime.timedelta(minutes=1))

    def test_a_new_address_is_noted_at_once(self):
        self.sign("192.0.2.10")
        self.sign("192.0.2.11")
        self.assertEqual(self.seen().address, "192.0.2.11")

    def test_another_client_is_not_touched(self):
        other, _ = make_client(self.key, "mac-mini-2")
        self.sign("192.0.2.10")
        other = Client.objects.get(pk=other.pk)
        self.assertIsNone(other.last_seen)
        self.assertIsNone(other.address)
