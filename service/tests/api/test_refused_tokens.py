"""Tokens the client API must not accept, or must not trust beyond their own API key."""

import base64
import hashlib

from signing_service.access import tokens
from signing_service.access.models import ApiKey, Client
from signing_service.audit.models import AuditEvent
from signing_service.test import BaseTestCase, make_client

DIGEST = base64.b64encode(hashlib.sha256(b"payload").digest()).decode()


class RefusedTokenTestCase(BaseTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.build_key, cls.build_secret = ApiKey.create("build machines")
        cls.release_key, _ = ApiKey.create("release machines")
        cls.build_machine, cls.build_token = make_client(cls.build_key, "build-mac")
        cls.release_machine, cls.release_token = make_client(cls.release_key, "release-mac")
        cls.shared, _ = cls.store_identity()
        cls.build_only, _ = cls.store_identity()
        cls.release_only, _ = cls.store_identity()
        for identity, key in [(cls.build_only, cls.build_key), (cls.release_only, cls.release_key)]:
            identity.authorize_all_keys = False
            identity.save()
            identity.authorized_keys.set([key])

    def list_with(self, authorization: str | None):
        headers = {} if authorization is None else {"Authorization": authorization}
        return self.client.get("/api/v1/certificates", headers=headers)

    def sign_with(self, authorization: str | None, identity=None):
        headers = {} if authorization is None else {"Authorization": authorization}
        return self.client.post(
            "/api/v1/sign",
            {
                "certificate": (identity or self.shared).sha1,
                "algorithm": "rsa-pkcs1v15-sha256",
                "digest": DIGEST,
            },
            content_type="application/json",
            headers=headers,
        )

    def assertError(self, response, status: int, code: str):
        self.assertEqual(response.status_code, status, response.content)
        self.assertEqual(
            response.json(),
            {"error": {"code": code, "message": response.json()["error"]["message"]}},
        )
        self.assertNotIn(b"signature", response.content)
        self.assertNotIn(b"certificates", response.content)


class OtherKeyTestCase(RefusedTokenTestCase):
    def test_a_client_sees_only_its_own_keys_identities(self):
        listed = self.list_with(f"Bearer {self.release_token}").json()["certificates"]
        self.assertEqual(
            sorted(item["sha1"] for item in listed),
            sorted([self.shared.sha1, self.release_only.sha1]),
        )
        listed = self.list_with(f"Bearer {self.build_token}").json()["certificates"]
        self.assertEqual(
            sorted(item["sha1"] for item in listed),
            sorted([self.shared.sha1, self.build_only.sha1]),
        )

    def test_a_client_cannot_sign_with_another_keys_identity(self):
        response = self.sign_with(f"Bearer {self.release_token}", self.build_only)
        self.assertError(response, 404, "unknown_identity")
        event = AuditEvent.objects.get()
        self.assertEqual((event.status, event.reason), ("failure", "unauthorized_identity"))
        self.assertEqual(event.api_key, self.release_key)
        self.assertEqual(event.client, self.release_machine)

    def test_it_can_sign_with_its_own(self):
        response = self.sign_with(f"Bearer {self.release_token}", self.release_only)
        self.assertEqual(response.status_code, 200, response.content)

    def test_an_inactive_client_does_not_stop_another_client_of_its_key(self):
        _, second_token = make_client(self.build_key, "build-mac-2")
        Client.objects.filter(pk=self.build_machine.pk).update(is_active=False)
        self.assertError(self.sign_with(f"Bearer {self.build_token}"), 403, "inactive_client")
        self.assertEqual(self.sign_with(f"Bearer {second_token}").status_code, 200)


class RefusedHeaderTestCase(RefusedTokenTestCase):
    def refused_authorizations(self) -> dict[str, str | None]:
        token_id = self.build_machine.token_id
        return {
            "no header": None,
            "empty": "",
            "scheme only": "Bearer",
            "scheme and a space": "Bearer ",
            "basic auth": "Basic "
            + base64.b64encode(b"build-mac:" + self.build_token.encode()).decode(),
            "basic with the token": f"Basic {self.build_token}",
            "token without scheme": self.build_token,
            "malformed token": "bearer  smc_x",
            "right id, wrong random part": f"Bearer smc_{token_id}_{'A' * 43}",
            "right id, no random part": f"Bearer smc_{token_id}_",
            "truncated token": f"Bearer {self.build_token[:-1]}",
            "unknown token": f"Bearer {tokens.new_secret(tokens.CLIENT_TOKEN_PREFIX).value}",
            "api key as client token": f"Bearer {self.build_secret}",
            "two tokens": f"Bearer {self.build_token} {self.release_token}",
        }

    def test_malformed_or_unknown_authorizations_cannot_list(self):
        for name, authorization in self.refused_authorizations().items():
            with self.subTest(name):
                self.assertError(self.list_with(authorization), 401, "bad_credentials")
                event = AuditEvent.objects.get()
                self.assertEqual(
                    (event.request_type, event.status, event.reason),
                    ("index", "failure", "bad_credentials"),
                )
                self.assertIsNone(event.client)
                AuditEvent.objects.all().delete()

    def test_malformed_or_unknown_authorizations_cannot_sign(self):
        for name, authorization in self.refused_authorizations().items():
            with self.subTest(name):
                self.assertError(self.sign_with(authorization), 401, "bad_credentials")
                event = AuditEvent.objects.get()
                self.assertEqual(
                    (event.request_type, event.status, event.reason),
                    ("sign", "failure", "bad_credentials"),
                )
                self.assertIsNone(event.api_key)
                AuditEvent.objects.all().delete()

    def test_the_scheme_is_case_insensitive(self):
        response = self.list_with(f"bearer {self.build_token}")
        self.assertEqual(response.status_code, 200, response.content)


class DeletedClientTestCase(RefusedTokenTestCase):
    def test_a_deleted_clients_token_is_401(self):
        Client.objects.filter(pk=self.build_machine.pk).delete()
        self.assertError(self.list_with(f"Bearer {self.build_token}"), 401, "bad_credentials")
        self.assertError(self.sign_with(f"Bearer {self.build_token}"), 401, "bad_credentials")
        # Calls without a valid token aggregate into one record per address and interval.
        self.assertEqual(
            list(AuditEvent.objects.values_list("request_type", "status", "reason", "count")),
            [("index", "failure", "bad_credentials", 2)],
        )

    def test_a_deleted_keys_client_tokens_are_401(self):
        ApiKey.objects.filter(pk=self.build_key.pk).delete()
        self.assertError(self.list_with(f"Bearer {self.build_token}"), 401, "bad_credentials")
        self.assertError(self.sign_with(f"Bearer {self.build_token}"), 401, "bad_credentials")
