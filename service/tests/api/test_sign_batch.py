"""POST /api/v1/sign/batch: up to 1000 digests; each gets a signature or an error, and a record."""

import base64
import hashlib

from django.db import connection

from signing_manager.algorithms import Algorithm, verify_digest
from signing_service.access import tokens
from signing_service.access.models import ApiKey, Client
from signing_service.audit.models import AuditEvent
from signing_service.test import BaseTestCase, make_client, refuse_audit_inserts

MAX_BATCH = 1000  # DESIGN.md, "Client API v1"


def digest_for(algorithm: str, data: bytes = b"a file") -> bytes:
    return hashlib.new(algorithm.rsplit("-", 1)[1], data).digest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class BatchTestCase(BaseTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.rsa, cls.rsa_made = cls.store_identity(key_kind="rsa2048")
        cls.ec, cls.ec_made = cls.store_identity(key_kind="ec256")
        cls.key, _ = ApiKey.create("build machines")
        cls.machine, cls.token = make_client(cls.key)

    def batch(self, requests, token: str | None = None):
        return self.client.post(
            "/api/v1/sign/batch",
            {"requests": requests},
            content_type="application/json",
            headers={"Authorization": f"Bearer {token or self.token}"},
        )

    def item(self, algorithm="rsa-pkcs1v15-sha256", identity=None, data=b"a file", **fields):
        body = {
            "certificate": (identity or self.rsa).sha256,
            "algorithm": algorithm,
            "digest": b64(digest_for(algorithm, data)),
        }
        return {**body, **fields}

    def results(self, response) -> list[dict]:
        self.assertEqual(response.status_code, 200, response.content[:500])
        body = response.json()
        self.assertEqual(set(body), {"results"})
        return body["results"]

    def assertError(self, response, status: int, code: str):
        self.assertEqual(response.status_code, status, response.content[:500])
        body = response.json()
        self.assertEqual(set(body), {"error"})
        self.assertEqual(set(body["error"]), {"code", "message"})
        self.assertEqual(body["error"]["code"], code)
        self.assertNotIn(b"signature", response.content)

    def assertVerifies(self, result: dict, made, algorithm: str, data: bytes = b"a file"):
        self.assertEqual(set(result), {"signature"})
        signature = base64.b64decode(result["signature"], validate=True)
        self.assertTrue(
            verify_digest(
                made.certificate.public_key(),
                Algorithm(algorithm),
                digest_for(algorithm, data),
                signature,
            )
        )


class MixedBatchTestCase(BatchTestCase):
    def setUp(self):
        other_key, _ = ApiKey.create("release machines")
        self.inactive, _ = self.store_identity()
        self.inactive.is_active = False
        self.inactive.save()
        self.elsewhere, _ = self.store_identity()
        self.elsewhere.authorize_all_keys = False
        self.elsewhere.save()
        self.elsewhere.authorized_keys.set([other_key])
        self.requests = [
            self.item("rsa-pss-sha256", data=b"first"),
            self.item(certificate="0" * 40),
            self.item(identity=self.inactive),
            self.item(identity=self.elsewhere),
            self.item(digest=b64(b"too short")),
            self.item(digest="***"),
            self.item("ecdsa-sha256", identity=self.rsa),
            self.item(certificate="not a fingerprint"),
            self.item("ecdsa-sha512", identity=self.ec, data=b"last"),
        ]
        # On the wire, another key's identity and an inactive one read as unknown (issue 18);
        # the audit keeps the precise reason.
        self.answered = [None, *["unknown_identity"] * 3, *["bad_parameters"] * 4, None]
        self.expected = [
            None,
            "unknown_identity",
            "inactive_identity",
            "unauthorized_identity",
            "bad_parameters",
            "bad_parameters",
            "bad_parameters",
            "bad_parameters",
            None,
        ]

    def test_each_item_gets_a_signature_or_an_error_in_order(self):
        results = self.results(self.batch(self.requests))
        self.assertEqual(len(results), len(self.requests))
        for result, code in zip(results, self.answered, strict=True):
            if code is None:
                self.assertEqual(set(result), {"signature"}, result)
            else:
                self.assertEqual(set(result), {"error"}, result)
                self.assertEqual(set(result["error"]), {"code", "message"})
                self.assertEqual(result["error"]["code"], code)
                self.assertTrue(result["error"]["message"])
        unknown, inactive, elsewhere = (results[n]["error"]["message"] for n in (1, 2, 3))
        self.assertEqual(
            [unknown, inactive, elsewhere],
            [f"No identity available to this client has the fingerprint {sha1}." for sha1 in (
                "0" * 40, self.inactive.sha256, self.elsewhere.sha256
            )],
        )  # fmt: skip
        self.assertVerifies(results[0], self.rsa_made, "rsa-pss-sha256", b"first")
        self.assertVerifies(results[-1], self.ec_made, "ecdsa-sha512", b"last")

    def test_no_result_carries_a_null(self):
        for result in self.results(self.batch(self.requests)):
            self.assertEqual(len(result), 1, result)
            self.assertNotIn(None, result.values())
            if "error" in result:
                self.assertNotIn(None, result["error"].values())

    def test_each_item_is_audited_once_with_its_outcome(self):
        self.batch(self.requests)
        events = list(AuditEvent.objects.order_by("id"))
        self.assertEqual(len(events), len(self.requests))
        for event, code in zip(events, self.expected, strict=True):
            self.assertEqual(event.request_type, "sign")
            self.assertEqual(event.status, "success" if code is None else "failure")
            self.assertEqual(event.reason, code or "")
            self.assertEqual((event.api_key, event.client), (self.key, self.machine))
        self.assertEqual(events[0].identity, self.rsa)
        self.assertEqual(events[0].algorithm, "rsa-pss-sha256")
        self.assertEqual(events[0].digest, digest_for("rsa-pss-sha256", b"first").hex())
        self.assertEqual(events[-1].identity_sha1, self.ec.sha1)
        self.assertEqual(events[-1].digest, digest_for("ecdsa-sha512", b"last").hex())


class BatchSizeTestCase(BatchTestCase):
    def test_a_thousand_digests_are_signed_and_audited(self):
        requests = [
            self.item("ecdsa-sha256", identity=self.ec, data=str(n).encode())
            for n in range(MAX_BATCH)
        ]
        results = self.results(self.batch(requests))
        self.assertEqual(len(results), MAX_BATCH)
        self.assertTrue(all(set(result) == {"signature"} for result in results))
        for n in (0, 499, 999):
            self.assertVerifies(results[n], self.ec_made, "ecdsa-sha256", str(n).encode())
        self.assertEqual(AuditEvent.objects.filter(status="success").count(), MAX_BATCH)
        self.assertEqual(AuditEvent.objects.count(), MAX_BATCH)

    def test_a_thousand_and_one_are_refused_and_the_refusal_audited(self):
        response = self.batch([self.item() for _ in range(MAX_BATCH + 1)])
        self.assertError(response, 422, "bad_parameters")
        event = AuditEvent.objects.get()
        self.assertEqual((event.request_type, event.status), ("sign", "failure"))
        self.assertEqual(event.reason, "bad_parameters")
        self.assertEqual(event.client, self.machine)

    def test_an_empty_batch_is_refused(self):
        self.assertError(self.batch([]), 422, "bad_parameters")
        self.assertEqual(AuditEvent.objects.get().reason, "bad_parameters")

    def test_a_body_without_requests_is_refused(self):
        response = self.client.post(
            "/api/v1/sign/batch",
            {"digests": [self.item()]},
            content_type="application/json",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        self.assertError(response, 422, "bad_parameters")

    def test_an_item_with_an_unknown_algorithm_refuses_the_batch(self):
        requests = [self.item(), {**self.item(), "algorithm": "rsa-pkcs1v15-md5"}]
        self.assertError(self.batch(requests), 422, "bad_parameters")
        self.assertEqual(AuditEvent.objects.get().reason, "bad_parameters")


class BatchCredentialsTestCase(BatchTestCase):
    def test_an_unknown_token_is_refused_whole_with_one_record(self):
        unknown = tokens.new_secret(tokens.CLIENT_TOKEN_PREFIX).value
        self.assertError(self.batch([self.item()] * 3, token=unknown), 401, "bad_credentials")
        event = AuditEvent.objects.get()
        self.assertEqual((event.status, event.reason), ("failure", "bad_credentials"))

    def test_an_inactive_client_is_refused_whole(self):
        Client.objects.filter(pk=self.machine.pk).update(is_active=False)
        self.assertError(self.batch([self.item()] * 3), 403, "inactive_client")
        self.assertEqual(AuditEvent.objects.get().reason, "inactive_client")

    def test_a_client_of_an_inactive_key_is_refused_whole(self):
        ApiKey.objects.filter(pk=self.key.pk).update(is_active=False)
        self.assertError(self.batch([self.item()] * 3), 403, "inactive_key")
        self.assertEqual(AuditEvent.objects.get().reason, "inactive_key")


class BatchFailClosedTestCase(BatchTestCase):
    def test_no_signature_leaves_when_the_audit_cannot_be_written(self):
        requests = [self.item(data=b"one"), self.item("ecdsa-sha256", identity=self.ec)]
        with connection.execute_wrapper(refuse_audit_inserts):
            response = self.batch(requests)
        self.assertError(response, 503, "audit_unavailable")
        self.assertFalse(AuditEvent.objects.exists())
