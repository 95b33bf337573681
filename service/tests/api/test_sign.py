"""POST /api/v1/sign: one digest, signed with an identity the caller's key may use, and audited."""

import base64
import hashlib

from django.db import connection

from signing_manager.algorithms import Algorithm, verify_digest
from signing_service.access import tokens
from signing_service.access.models import ApiKey, Client
from signing_service.audit.models import AuditEvent
from signing_service.test import BaseTestCase, make_client, refuse_audit_inserts

# The contract's algorithms (DESIGN.md, "Client API v1"), written out rather than taken from
# the code, so that a missing or renamed one fails here.
RSA_ALGORITHMS = [
    "rsa-pkcs1v15-sha1",
    "rsa-pkcs1v15-sha256",
    "rsa-pkcs1v15-sha384",
    "rsa-pkcs1v15-sha512",
    "rsa-pss-sha256",
    "rsa-pss-sha384",
    "rsa-pss-sha512",
]
EC_ALGORITHMS = ["ecdsa-sha256", "ecdsa-sha384", "ecdsa-sha512"]
PAYLOAD = b"the bytes of a Mach-O CodeDirectory"


def digest_for(algorithm: str, data: bytes = PAYLOAD) -> bytes:
    return hashlib.new(algorithm.rsplit("-", 1)[1], data).digest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class SignTestCase(BaseTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.rsa, cls.rsa_made = cls.store_identity(key_kind="rsa2048")
        cls.ec, cls.ec_made = cls.store_identity(key_kind="ec256")
        cls.key, _ = ApiKey.create("build machines")
        cls.machine, cls.token = make_client(cls.key)

    def sign(self, body, token: str | None = None):
        return self.client.post(
            "/api/v1/sign",
            body,
            content_type="application/json",
            headers={"Authorization": f"Bearer {token or self.token}"},
        )

    def request(self, algorithm="rsa-pss-sha256", identity=None, **fields) -> dict:
        identity = identity or self.rsa
        body = {
            "certificate": identity.sha1,
            "algorithm": algorithm,
            "digest": b64(digest_for(algorithm)),
        }
        body.update(fields)
        return body

    def assertError(self, response, status: int, code: str):
        self.assertEqual(response.status_code, status, response.content)
        body = response.json()
        self.assertEqual(set(body), {"error"})
        self.assertEqual(set(body["error"]), {"code", "message"})
        self.assertEqual(body["error"]["code"], code)
        self.assertIsInstance(body["error"]["message"], str)
        self.assertTrue(body["error"]["message"])
        self.assertNotIn(b"signature", response.content)

    def signature_of(self, response) -> bytes:
        self.assertEqual(response.status_code, 200, response.content)
        body = response.json()
        self.assertEqual(set(body), {"signature"})
        return base64.b64decode(body["signature"], validate=True)

    def only_event(self) -> AuditEvent:
        events = list(AuditEvent.objects.all())
        self.assertEqual(len(events), 1, [(e.status, e.reason) for e in events])
        return events[0]


class SignatureTestCase(SignTestCase):
    def test_every_rsa_algorithm_gives_a_signature_the_certificate_verifies(self):
        public_key = self.rsa_made.certificate.public_key()
        for algorithm in RSA_ALGORITHMS:
            with self.subTest(algorithm=algorithm):
                signature = self.signature_of(self.sign(self.request(algorithm)))
                self.assertTrue(
                    verify_digest(
                        public_key, Algorithm(algorithm), digest_for(algorithm), signature
                    )
                )

    def test_every_ecdsa_algorithm_gives_a_signature_the_certificate_verifies(self):
        public_key = self.ec_made.certificate.public_key()
        for algorithm in EC_ALGORITHMS:
            with self.subTest(algorithm=algorithm):
                response = self.sign(self.request(algorithm, identity=self.ec))
                signature = self.signature_of(response)
                self.assertTrue(
                    verify_digest(
                        public_key, Algorithm(algorithm), digest_for(algorithm), signature
                    )
                )

    def test_the_contract_names_exactly_the_algorithms_the_service_knows(self):
        self.assertEqual(
            sorted(algorithm.value for algorithm in Algorithm),
            sorted(RSA_ALGORITHMS + EC_ALGORITHMS),
        )

    def test_the_signature_is_of_the_digest_sent_not_of_another(self):
        response = self.sign(self.request("rsa-pkcs1v15-sha256"))
        signature = self.signature_of(response)
        public_key = self.rsa_made.certificate.public_key()
        other = digest_for("rsa-pkcs1v15-sha256", b"something else")
        self.assertFalse(verify_digest(public_key, Algorithm.RSA_PKCS1V15_SHA256, other, signature))

    def test_the_identity_is_found_by_sha1_or_sha256_in_either_case(self):
        public_key = self.rsa_made.certificate.public_key()
        for fingerprint in [
            self.rsa.sha1,
            self.rsa.sha1.upper(),
            self.rsa.sha256,
            self.rsa.sha256.upper(),
        ]:
            with self.subTest(fingerprint=fingerprint):
                response = self.sign(self.request("rsa-pss-sha512", certificate=fingerprint))
                signature = self.signature_of(response)
                self.assertTrue(
                    verify_digest(
                        public_key,
                        Algorithm.RSA_PSS_SHA512,
                        digest_for("rsa-pss-sha512"),
                        signature,
                    )
                )

    def test_a_success_is_audited_once_with_identity_algorithm_and_digest(self):
        self.signature_of(self.sign(self.request("ecdsa-sha384", identity=self.ec)))
        event = self.only_event()
        self.assertEqual((event.request_type, event.status, event.reason), ("sign", "success", ""))
        self.assertEqual((event.api_key, event.api_key_name), (self.key, "build machines"))
        self.assertEqual((event.client, event.client_hostname), (self.machine, "mac-mini-1"))
        self.assertEqual(event.identity, self.ec)
        self.assertEqual(event.identity_sha1, self.ec.sha1)
        self.assertEqual(event.identity_common_name, self.ec.common_name)
        self.assertEqual(event.algorithm, "ecdsa-sha384")
        self.assertEqual(event.digest, digest_for("ecdsa-sha384").hex())
        self.assertEqual(event.address, "127.0.0.1")
        self.assertEqual(event.source, "api")


class RefusalTestCase(SignTestCase):
    def assertRefused(self, response, status: int, code: str, reason: str | None = None):
        """The error body, and exactly one failure record with the reason (the code unless
        the audit knows more than the caller may)."""
        self.assertError(response, status, code)
        event = self.only_event()
        self.assertEqual((event.request_type, event.status), ("sign", "failure"))
        self.assertEqual(event.reason, reason or code)
        AuditEvent.objects.all().delete()

    def test_an_unknown_token_is_refused_401(self):
        unknown = tokens.new_secret(tokens.CLIENT_TOKEN_PREFIX).value
        self.assertRefused(self.sign(self.request(), token=unknown), 401, "bad_credentials")

    def test_a_malformed_token_is_refused_401(self):
        self.assertRefused(self.sign(self.request(), token="not-a-token"), 401, "bad_credentials")

    def test_no_token_is_refused_401(self):
        response = self.client.post("/api/v1/sign", self.request(), content_type="application/json")
        self.assertRefused(response, 401, "bad_credentials")

    def test_a_client_of_an_inactive_key_is_refused_403(self):
        ApiKey.objects.filter(pk=self.key.pk).update(is_active=False)
        self.assertRefused(self.sign(self.request()), 403, "inactive_key")

    def test_an_inactive_client_is_refused_403(self):
        Client.objects.filter(pk=self.machine.pk).update(is_active=False)
        self.assertRefused(self.sign(self.request()), 403, "inactive_client")

    def test_an_inactive_identity_reads_as_unknown(self):
        self.rsa.is_active = False
        self.rsa.save()
        response = self.sign(self.request())
        self.assertRefused(response, 404, "unknown_identity", "inactive_identity")

    def test_an_identity_of_other_keys_reads_as_unknown(self):
        other_key, _ = ApiKey.create("release machines")
        self.rsa.authorize_all_keys = False
        self.rsa.save()
        self.rsa.authorized_keys.set([other_key])
        response = self.sign(self.request())
        self.assertRefused(response, 404, "unknown_identity", "unauthorized_identity")

    def test_not_yours_and_does_not_exist_look_the_same(self):
        # Issue 18: a client must not learn which identities exist, nor their names.
        other_key, _ = ApiKey.create("release machines")
        self.rsa.authorize_all_keys = False
        self.rsa.save()
        self.rsa.authorized_keys.set([other_key])
        missing_sha1 = "ab" * 20

        not_mine = self.sign(self.request())
        missing = self.sign(self.request(certificate=missing_sha1))

        self.assertEqual(not_mine.status_code, missing.status_code)
        self.assertEqual(
            not_mine.content.decode().replace(self.rsa.sha1, missing_sha1),
            missing.content.decode(),
        )
        self.assertNotIn(self.rsa.common_name, not_mine.content.decode())

    def test_an_unknown_identity_is_404(self):
        for fingerprint in ["0" * 40, "f" * 64]:
            with self.subTest(fingerprint=fingerprint):
                response = self.sign(self.request(certificate=fingerprint))
                self.assertRefused(response, 404, "unknown_identity")

    def test_a_digest_that_is_not_base64_is_422(self):
        for digest in ["not base64!", "////", "=" * 44, "aGVsbG8"]:
            with self.subTest(digest=digest):
                response = self.sign(self.request(digest=digest))
                self.assertRefused(response, 422, "bad_parameters")

    def test_a_digest_of_the_wrong_length_is_422(self):
        for algorithm, size in [("rsa-pkcs1v15-sha256", 20), ("rsa-pss-sha512", 32)]:
            with self.subTest(algorithm=algorithm):
                body = self.request(algorithm, digest=b64(b"\x01" * size))
                self.assertRefused(self.sign(body), 422, "bad_parameters")
        self.assertRefused(self.sign(self.request(digest="")), 422, "bad_parameters")

    def test_an_unknown_algorithm_is_422(self):
        for algorithm in ["rsa-pkcs1v15-md5", "RSA-PSS-SHA256", "", "ed25519"]:
            with self.subTest(algorithm=algorithm):
                body = {**self.request("rsa-pss-sha256"), "algorithm": algorithm}
                self.assertRefused(self.sign(body), 422, "bad_parameters")

    def test_an_algorithm_for_the_other_kind_of_key_is_422(self):
        self.assertRefused(
            self.sign(self.request("ecdsa-sha256", identity=self.rsa)), 422, "bad_parameters"
        )
        self.assertRefused(
            self.sign(self.request("rsa-pss-sha256", identity=self.ec)), 422, "bad_parameters"
        )

    def test_a_fingerprint_that_is_not_one_is_422(self):
        for fingerprint in ["", "xyz", self.rsa.sha1[:-1], self.rsa.sha1 + "0", "g" * 40]:
            with self.subTest(fingerprint=fingerprint):
                response = self.sign(self.request(certificate=fingerprint))
                self.assertRefused(response, 422, "bad_parameters")

    def test_missing_fields_and_bodies_that_are_not_json_are_422(self):
        body = self.request()
        del body["digest"]
        self.assertRefused(self.sign(body), 422, "bad_parameters")
        self.assertRefused(self.sign("{not json"), 422, "bad_parameters")
        self.assertRefused(self.sign([]), 422, "bad_parameters")


class AuditTestCase(SignTestCase):
    """Whatever the outcome, exactly one record, with the reason and what was asked for."""

    def assertAudited(self, response, status: int, reason: str) -> AuditEvent:
        self.assertEqual(response.status_code, status, response.content)
        event = self.only_event()
        self.assertEqual(
            (event.request_type, event.status, event.reason), ("sign", "failure", reason)
        )
        self.assertTrue(event.message)
        AuditEvent.objects.all().delete()
        return event

    def test_a_refused_token_is_audited_as_bad_credentials(self):
        event = self.assertAudited(
            self.sign(self.request(), token="smc_nope"), 401, "bad_credentials"
        )
        self.assertIsNone(event.api_key)
        self.assertIsNone(event.client)
        self.assertEqual(event.address, "127.0.0.1")

    def test_an_inactive_key_or_client_is_audited_with_its_reason(self):
        Client.objects.filter(pk=self.machine.pk).update(is_active=False)
        event = self.assertAudited(self.sign(self.request()), 403, "inactive_client")
        self.assertEqual((event.api_key, event.client), (self.key, self.machine))
        ApiKey.objects.filter(pk=self.key.pk).update(is_active=False)
        event = self.assertAudited(self.sign(self.request()), 403, "inactive_key")
        self.assertEqual(event.api_key_name, "build machines")
        self.assertEqual(event.client_hostname, "mac-mini-1")

    def test_an_unknown_identity_is_audited_with_the_algorithm_and_no_identity(self):
        event = self.assertAudited(
            self.sign(self.request("rsa-pss-sha384", certificate="0" * 40)),
            404,
            "unknown_identity",
        )
        self.assertEqual(event.identity_sha1, "")
        self.assertEqual(event.algorithm, "rsa-pss-sha384")
        self.assertEqual(event.client, self.machine)

    def test_bad_parameters_are_audited_with_the_identity_and_algorithm(self):
        event = self.assertAudited(
            self.sign(self.request("ecdsa-sha256", identity=self.rsa)), 422, "bad_parameters"
        )
        self.assertEqual((event.identity, event.identity_sha1), (self.rsa, self.rsa.sha1))
        self.assertEqual(event.identity_common_name, self.rsa.common_name)
        self.assertEqual(event.algorithm, "ecdsa-sha256")
        self.assertEqual(event.digest, digest_for("ecdsa-sha256").hex())
        event = self.assertAudited(
            self.sign(self.request(digest=b64(b"short"))), 422, "bad_parameters"
        )
        self.assertEqual(event.identity_sha1, self.rsa.sha1)
        self.assertEqual(event.algorithm, "rsa-pss-sha256")

    def test_a_body_the_schema_refuses_is_audited_once(self):
        body = {**self.request("rsa-pss-sha256"), "algorithm": "rsa-pkcs1v15-md5"}
        self.assertAudited(self.sign(body), 422, "bad_parameters")
        self.assertAudited(self.sign("{not json"), 422, "bad_parameters")

    def assertNamesTheIdentity(self, event: AuditEvent, identity, algorithm: str):
        self.assertEqual(event.algorithm, algorithm)
        self.assertEqual(event.identity, identity)
        self.assertEqual(event.identity_sha1, identity.sha1)
        self.assertEqual(event.identity_common_name, identity.common_name)
        self.assertEqual(event.digest, digest_for(algorithm).hex())

    # Product bug: signing.find_identity raises before prepare() sets job.identity or decodes
    # the digest, so a refusal for an existing identity is audited without naming it.
    def test_an_unauthorized_identity_is_audited_with_its_snapshot_and_the_digest(self):
        other_key, _ = ApiKey.create("release machines")
        self.rsa.authorize_all_keys = False
        self.rsa.save()
        self.rsa.authorized_keys.set([other_key])
        response = self.sign(self.request("rsa-pkcs1v15-sha256"))
        event = self.assertAudited(response, 404, "unauthorized_identity")
        self.assertNamesTheIdentity(event, self.rsa, "rsa-pkcs1v15-sha256")

    def test_an_inactive_identity_is_audited_with_its_snapshot_and_the_digest(self):
        self.ec.is_active = False
        self.ec.save()
        response = self.sign(self.request("ecdsa-sha256", identity=self.ec))
        event = self.assertAudited(response, 404, "inactive_identity")
        self.assertNamesTheIdentity(event, self.ec, "ecdsa-sha256")


class FailClosedTestCase(SignTestCase):
    """A signature leaves only once its audit record is written: no record, no signature."""

    def test_no_signature_leaves_when_the_audit_cannot_be_written(self):
        with connection.execute_wrapper(refuse_audit_inserts):
            response = self.sign(self.request())
        self.assertError(response, 503, "audit_unavailable")
        self.assertFalse(AuditEvent.objects.exists())

    def test_a_refusal_that_cannot_be_audited_is_503_too(self):
        with connection.execute_wrapper(refuse_audit_inserts):
            response = self.sign(self.request(), token="smc_nope")
        self.assertError(response, 503, "audit_unavailable")

    def test_signing_works_again_once_the_audit_can_be_written(self):
        with connection.execute_wrapper(refuse_audit_inserts):
            self.assertError(self.sign(self.request()), 503, "audit_unavailable")
        self.signature_of(self.sign(self.request()))
        self.assertEqual(self.only_event().status, "success")
