"""``/metrics``: off without a token, behind the token with one, and counting what the client
API did (signatures, refusals, latency, audit failures) and what the database holds."""

from __future__ import annotations

import base64
import hashlib

from django.db import connection
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

from signing_service.access.models import ApiKey
from signing_service.test import BaseTestCase, make_client, refuse_audit_inserts

TOKEN = "metrics-token-for-tests"


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@override_settings(METRICS_TOKEN=TOKEN)
class MetricsTestCase(BaseTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.identity, _ = cls.store_identity()
        cls.key, _ = ApiKey.create("build machines")
        cls.machine, cls.token = make_client(cls.key)

    def scrape(self) -> dict[tuple[str, frozenset], float]:
        response = self.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        self.assertEqual(response.status_code, 200)
        self.assertTrue(response["Content-Type"].startswith("text/plain; version="))
        return samples(response.content.decode())

    def sign(self, token: str | None = None):
        digest = hashlib.sha256(b"code directory").digest()
        body = {
            "certificate": self.identity.sha1,
            "algorithm": "rsa-pkcs1v15-sha256",
            "digest": base64.b64encode(digest).decode(),
        }
        return self.client.post(
            "/api/v1/sign",
            body,
            content_type="application/json",
            headers={"Authorization": f"Bearer {token or self.token}"},
        )

    def count(self, scraped, name: str, **labels) -> float:
        return scraped.get((name, frozenset(labels.items())), 0.0)

    def test_a_signature_is_counted_by_identity_algorithm_and_outcome(self):
        signed = {"identity_sha1": self.identity.sha1, "algorithm": "rsa-pkcs1v15-sha256"}
        before = self.count(
            self.scrape(), "signing_service_signatures_total", **signed, outcome="success"
        )

        self.assertEqual(self.sign().status_code, 200)

        after = self.count(
            self.scrape(), "signing_service_signatures_total", **signed, outcome="success"
        )
        self.assertEqual(after, before + 1)

    def test_a_batch_counts_each_signature_by_its_outcome(self):
        signed = {"identity_sha1": self.identity.sha1, "algorithm": "rsa-pkcs1v15-sha256"}
        name = "signing_service_signatures_total"
        good = {
            "certificate": self.identity.sha1,
            "algorithm": "rsa-pkcs1v15-sha256",
            "digest": base64.b64encode(hashlib.sha256(b"code directory").digest()).decode(),
        }
        short = {**good, "digest": base64.b64encode(bytes(20)).decode()}
        before = self.scrape()

        response = self.client.post(
            "/api/v1/sign/batch",
            {"requests": [good, short, good, good]},
            content_type="application/json",
            headers={"Authorization": f"Bearer {self.token}"},
        )

        self.assertEqual(response.status_code, 200)
        after = self.scrape()
        for outcome, added in (("success", 3), ("failure", 1)):
            self.assertEqual(
                self.count(after, name, **signed, outcome=outcome),
                self.count(before, name, **signed, outcome=outcome) + added,
            )

    def test_refusals_are_counted_by_the_code_the_client_got(self):
        name = "signing_service_api_refusals_total"
        before = self.count(self.scrape(), name, reason="bad_credentials")

        self.assertEqual(self.sign(token="smc_forged.token").status_code, 401)

        self.assertEqual(self.count(self.scrape(), name, reason="bad_credentials"), before + 1)

    def test_api_latency_is_observed_per_route_not_per_path(self):
        name = "signing_service_api_request_duration_seconds_count"
        route = {"route": "api/v1/sign", "method": "POST"}
        before = self.count(self.scrape(), name, **route)

        self.sign()

        scraped = self.scrape()
        self.assertEqual(self.count(scraped, name, **route), before + 1)
        self.assertFalse([key for key in scraped if ("route", "/api/v1/sign") in key[1]])

    def test_audit_write_failures_are_counted(self):
        name = "signing_service_audit_write_failures_total"
        before = self.count(self.scrape(), name)

        with connection.execute_wrapper(refuse_audit_inserts):
            self.assertEqual(self.sign().status_code, 503)

        self.assertEqual(self.count(self.scrape(), name), before + 1)

    def test_clients_and_certificate_expiry_come_from_the_database(self):
        scraped = self.scrape()

        self.assertEqual(self.count(scraped, "signing_service_clients", state="registered"), 1)
        self.assertEqual(self.count(scraped, "signing_service_clients", state="active"), 1)
        expiry = self.count(
            scraped,
            "signing_service_identity_not_after_timestamp_seconds",
            identity_sha1=self.identity.sha1,
            common_name=self.identity.common_name,
        )
        self.assertEqual(expiry, self.identity.not_after.timestamp())

    def test_without_the_token_nothing_is_shown(self):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            response = self.client.get("/metrics", headers=headers)
            self.assertEqual(response.status_code, 401)
            self.assertEqual(response["WWW-Authenticate"], 'Bearer realm="metrics"')
            self.assertNotIn(b"signing_service", response.content)


@override_settings(METRICS_TOKEN="")
class MetricsOffTestCase(BaseTestCase):
    def test_without_a_configured_token_there_are_no_metrics(self):
        response = self.client.get("/metrics", headers={"Authorization": "Bearer anything"})
        self.assertEqual(response.status_code, 404)
