"""GET /api/v1/certificates: the active identities the caller's API key may use, fully described."""

import base64
import datetime

from cryptography.hazmat.primitives import hashes, serialization

from signing_service.access import tokens
from signing_service.access.models import ApiKey, Client
from signing_service.audit.models import AuditEvent
from signing_service.identities.models import Identity
from signing_service.test import BaseTestCase, make_client

FIELDS = {
    "sha1",
    "sha256",
    "common_name",
    "certificate",
    "chain",
    "key_type",
    "key_size",
    "not_after",
    "key_location",  # an addition to the contract: where the private key lives
}


def der(certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


class CertificatesTestCase(BaseTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.rsa, cls.rsa_made = cls.store_identity(key_kind="rsa2048")
        cls.ec, cls.ec_made = cls.store_identity(key_kind="ec256")
        cls.key, _ = ApiKey.create("build machines")
        cls.machine, cls.token = make_client(cls.key)

    def certificates(self, token: str | None = None):
        return self.client.get(
            "/api/v1/certificates", headers={"Authorization": f"Bearer {token or self.token}"}
        )

    def listed(self, token: str | None = None) -> dict[str, dict]:
        response = self.certificates(token)
        self.assertEqual(response.status_code, 200, response.content)
        body = response.json()
        self.assertEqual(set(body), {"certificates"})
        return {item["sha1"]: item for item in body["certificates"]}

    def assertError(self, response, status: int, code: str):
        self.assertEqual(response.status_code, status, response.content)
        body = response.json()
        self.assertEqual(set(body), {"error"})
        self.assertEqual(set(body["error"]), {"code", "message"})
        self.assertEqual(body["error"]["code"], code)
        self.assertNotIn(b"certificates", response.content)


class ContentTestCase(CertificatesTestCase):
    def test_every_contract_field_describes_the_real_certificate(self):
        listed = self.listed()
        self.assertEqual(set(listed), {self.rsa.sha1, self.ec.sha1})
        for made, key_type, key_size in [
            (self.rsa_made, "RSA", 2048),
            (self.ec_made, "EC", 256),
        ]:
            certificate = made.certificate
            sha1 = certificate.fingerprint(hashes.SHA1()).hex()  # noqa: S303
            with self.subTest(key_type=key_type):
                item = listed[sha1]
                self.assertEqual(set(item), FIELDS)
                self.assertEqual(item["sha256"], certificate.fingerprint(hashes.SHA256()).hex())
                self.assertEqual(item["common_name"], made.common_name)
                self.assertEqual(
                    base64.b64decode(item["certificate"], validate=True), der(certificate)
                )
                self.assertEqual(
                    [base64.b64decode(entry, validate=True) for entry in item["chain"]],
                    [der(made.ca_certificate)],
                )
                self.assertEqual((item["key_type"], item["key_size"]), (key_type, key_size))
                self.assertEqual(item["key_location"], "database")
                not_after = datetime.datetime.fromisoformat(item["not_after"])
                self.assertIsNotNone(not_after.tzinfo)
                self.assertEqual(not_after, certificate.not_valid_after_utc)

    def test_fingerprints_are_lowercase_hex(self):
        for item in self.listed().values():
            self.assertRegex(item["sha1"], r"^[0-9a-f]{40}$")
            self.assertRegex(item["sha256"], r"^[0-9a-f]{64}$")

    def test_an_identity_without_a_chain_lists_an_empty_one(self):
        self.rsa.chain = []
        self.rsa.save()
        self.assertEqual(self.listed()[self.rsa.sha1]["chain"], [])

    def test_no_identity_gives_an_empty_list(self):
        Identity.objects.all().delete()
        self.assertEqual(self.listed(), {})

    def test_nothing_secret_is_listed(self):
        response = self.certificates()
        for word in [b"private", b"wrapped", b"encrypted", b"PRIVATE KEY"]:
            self.assertNotIn(word, response.content)


class SelectionTestCase(CertificatesTestCase):
    def test_an_inactive_identity_is_not_listed(self):
        self.ec.is_active = False
        self.ec.save()
        self.assertEqual(set(self.listed()), {self.rsa.sha1})

    def test_an_identity_for_chosen_keys_is_listed_to_those_keys_only(self):
        other_key, _ = ApiKey.create("release machines")
        _, other_token = make_client(other_key, "release-mac")
        self.rsa.authorize_all_keys = False
        self.rsa.save()
        self.rsa.authorized_keys.set([self.key])
        self.ec.authorize_all_keys = False
        self.ec.save()
        self.ec.authorized_keys.set([other_key])
        self.assertEqual(set(self.listed()), {self.rsa.sha1})
        self.assertEqual(set(self.listed(other_token)), {self.ec.sha1})

    def test_an_identity_chosen_for_several_keys_is_listed_once(self):
        other_key, _ = ApiKey.create("release machines")
        self.rsa.authorize_all_keys = False
        self.rsa.save()
        self.rsa.authorized_keys.set([self.key, other_key])
        response = self.certificates()
        sha1s = [item["sha1"] for item in response.json()["certificates"]]
        self.assertEqual(sorted(sha1s), sorted([self.rsa.sha1, self.ec.sha1]))

    def test_an_identity_for_no_key_is_listed_to_nobody(self):
        self.rsa.authorize_all_keys = False
        self.rsa.save()
        self.assertEqual(set(self.listed()), {self.ec.sha1})


class RefusalTestCase(CertificatesTestCase):
    def test_unknown_or_malformed_tokens_are_401(self):
        unknown = tokens.new_secret(tokens.CLIENT_TOKEN_PREFIX).value
        for token in [unknown, "garbage", f"smc_{self.machine.token_id}_{'A' * 43}"]:
            with self.subTest(token=token):
                self.assertError(self.certificates(token), 401, "bad_credentials")
        self.assertError(self.client.get("/api/v1/certificates"), 401, "bad_credentials")

    def test_a_client_of_an_inactive_key_is_403(self):
        ApiKey.objects.filter(pk=self.key.pk).update(is_active=False)
        self.assertError(self.certificates(), 403, "inactive_key")

    def test_an_inactive_client_is_403(self):
        Client.objects.filter(pk=self.machine.pk).update(is_active=False)
        self.assertError(self.certificates(), 403, "inactive_client")


class AuditTestCase(CertificatesTestCase):
    def test_a_listing_is_audited_as_an_index_success(self):
        self.listed()
        event = AuditEvent.objects.get()
        self.assertEqual((event.request_type, event.status, event.reason), ("index", "success", ""))
        self.assertEqual((event.api_key, event.api_key_name), (self.key, "build machines"))
        self.assertEqual((event.client, event.client_hostname), (self.machine, "mac-mini-1"))
        self.assertEqual(event.address, "127.0.0.1")
        self.assertIsNone(event.identity)

    def test_each_refusal_is_audited_as_an_index_failure_with_its_reason(self):
        self.certificates("smc_nope")
        Client.objects.filter(pk=self.machine.pk).update(is_active=False)
        self.certificates()
        ApiKey.objects.filter(pk=self.key.pk).update(is_active=False)
        self.certificates()
        events = AuditEvent.objects.order_by("id")
        self.assertEqual(
            [(e.request_type, e.status, e.reason) for e in events],
            [
                ("index", "failure", "bad_credentials"),
                ("index", "failure", "inactive_client"),
                ("index", "failure", "inactive_key"),
            ],
        )
        self.assertIsNone(events[0].client)
        self.assertEqual(events[1].client, self.machine)
        self.assertEqual(events[2].api_key_name, "build machines")
