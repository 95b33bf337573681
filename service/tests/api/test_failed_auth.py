"""Calls without a valid token (issue 18 item 1): one aggregated audit record per address and
interval instead of one row each, and 429 with Retry-After past the limit; calls with a valid
token are never limited, and their refusals stay one record each."""

from __future__ import annotations

import base64
import datetime
import hashlib
from unittest import mock

from django.db import connection
from django.test import override_settings

from signing_service.access.models import ApiKey
from signing_service.api.failed_auth import interval_start
from signing_service.audit.models import AuditEvent
from signing_service.test import BaseTestCase, make_client, refuse_audit_inserts

ATTACKER, BUILD_MACHINE = "203.0.113.9", "198.51.100.7"


@override_settings(API_AUTH_FAILURE_LIMIT=5, API_AUTH_FAILURE_INTERVAL=60)
class FailedAuthenticationTestCase(BaseTestCase):
    def setUp(self):
        self.identity, _ = self.store_identity()
        self.key, self.key_secret = ApiKey.create("build machines")
        _, self.token = make_client(self.key)

    def call(self, path: str, token: str | None, address: str = ATTACKER, body=None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if body is None:
            return self.client.get(path, headers=headers, REMOTE_ADDR=address)
        return self.client.post(
            path, body, content_type="application/json", headers=headers, REMOTE_ADDR=address
        )

    def sign(self, token: str | None, address: str = ATTACKER):
        body = {
            "certificate": self.identity.sha1,
            "algorithm": "rsa-pkcs1v15-sha256",
            "digest": base64.b64encode(hashlib.sha256(b"x").digest()).decode(),
        }
        return self.call("/api/v1/sign", token, address, body)

    def unauthenticated(self, count: int, address: str = ATTACKER):
        calls = [
            lambda: self.call("/api/v1/certificates", None, address),
            lambda: self.sign("smc_0123456789_forged", address),
            lambda: self.call("/api/v1/clients", "smk_nope", address, {"hostname": "x"}),
        ]
        return [calls[n % len(calls)]() for n in range(count)]

    def test_failures_from_one_address_are_one_record_with_a_count(self):
        responses = self.unauthenticated(5)

        self.assertEqual({r.status_code for r in responses}, {401})
        (event,) = AuditEvent.objects.all()
        self.assertEqual(
            (event.reason, event.address, event.count), ("bad_credentials", ATTACKER, 5)
        )
        self.assertEqual(event.message, f"5 calls without a valid token from {ATTACKER}.")

    def test_past_the_limit_the_address_gets_429_with_retry_after(self):
        self.unauthenticated(5)

        response = self.sign("smc_0123456789_forged")

        self.assertEqual(response.status_code, 429, response.content)
        self.assertEqual(response.json()["error"]["code"], "too_many_failures")
        self.assertTrue(1 <= int(response["Retry-After"]) <= 60)
        self.assertEqual(AuditEvent.objects.get().count, 6)

    def test_other_addresses_and_valid_tokens_are_not_limited(self):
        self.unauthenticated(8)

        self.assertEqual(self.sign("smc_0123456789_forged", BUILD_MACHINE).status_code, 401)
        self.assertEqual(self.sign(self.token).status_code, 200)  # from the limited address
        counts = dict(
            AuditEvent.objects.filter(reason="bad_credentials").values_list("address", "count")
        )
        self.assertEqual(counts, {ATTACKER: 8, BUILD_MACHINE: 1})
        self.assertEqual(AuditEvent.objects.filter(status="success").count(), 1)

    def test_a_new_interval_starts_a_new_record_and_lifts_the_limit(self):
        self.unauthenticated(7)
        later = interval_start(datetime.datetime.now(datetime.UTC)) + datetime.timedelta(seconds=61)

        with mock.patch("django.utils.timezone.now", return_value=later):
            response = self.sign("smc_0123456789_forged")

        self.assertEqual(response.status_code, 401)
        self.assertEqual(sorted(AuditEvent.objects.values_list("count", flat=True)), [1, 7])

    def test_refusals_of_a_valid_token_stay_one_record_each(self):
        ApiKey.objects.filter(pk=self.key.pk).update(is_active=False)

        for _ in range(3):
            self.assertEqual(self.sign(self.token).status_code, 403)

        self.assertEqual(
            list(AuditEvent.objects.values_list("reason", "count")), [("inactive_key", 1)] * 3
        )

    def test_a_failure_that_cannot_be_counted_is_refused_503(self):
        with connection.execute_wrapper(refuse_audit_inserts):
            response = self.sign(None)

        self.assertEqual(response.status_code, 503)
        self.assertEqual(response.json()["error"]["code"], "audit_unavailable")
