"""POST /api/v1/clients: a machine registers with an API key and gets its client token, once."""

import hashlib
import re

from django.db import connection

from signing_service.access import tokens
from signing_service.access.models import ApiKey, Client
from signing_service.audit.models import AuditEvent
from signing_service.test import BaseTestCase, refuse_audit_inserts

# smc_, a 10-character hex id, 32 random bytes in URL-safe base64.
CLIENT_TOKEN = re.compile(r"smc_([0-9a-f]{10})_([A-Za-z0-9_-]{43})")
MACHINE = {
    "hostname": "mac-mini-1",
    "os": "macOS 15.3 (arm64)",
    "client_version": "0.1.0",
    "machine_id": "5D2E1A0C-6F3B-4C1E-9A7D-0B8E2F4C6A19",
}


class RegisterTestCase(BaseTestCase):
    def setUp(self):
        self.key, self.secret = ApiKey.create("build machines")

    def register(self, body=None, secret: str | None = None, **extra):
        headers = {} if secret == "" else {"Authorization": f"Bearer {secret or self.secret}"}
        return self.client.post(
            "/api/v1/clients",
            MACHINE if body is None else body,
            content_type="application/json",
            headers=headers,
            **extra,
        )

    def assertError(self, response, status: int, code: str):
        self.assertEqual(response.status_code, status, response.content)
        body = response.json()
        self.assertEqual(set(body), {"error"})
        self.assertEqual(set(body["error"]), {"code", "message"})
        self.assertEqual(body["error"]["code"], code)
        self.assertTrue(body["error"]["message"])
        self.assertNotIn(b"client_token", response.content)

    def assertRefusalAudited(self, reason: str, api_key=None) -> AuditEvent:
        event = AuditEvent.objects.get()
        self.assertEqual(
            (event.request_type, event.status, event.reason), ("register", "failure", reason)
        )
        self.assertEqual(event.api_key, api_key)
        self.assertTrue(event.message)
        return event


class RegistrationTestCase(RegisterTestCase):
    def test_it_answers_201_with_the_client_id_and_token(self):
        response = self.register()
        self.assertEqual(response.status_code, 201, response.content)
        body = response.json()
        self.assertEqual(set(body), {"client_id", "client_token"})
        client = Client.objects.get()
        self.assertEqual(body["client_id"], client.pk)
        match = CLIENT_TOKEN.fullmatch(body["client_token"])
        self.assertIsNotNone(match, body["client_token"])
        self.assertEqual(match.group(1), client.token_id)

    def test_it_records_the_machine(self):
        self.register(REMOTE_ADDR="192.0.2.7")
        client = Client.objects.get()
        self.assertEqual(client.api_key, self.key)
        self.assertEqual(client.hostname, "mac-mini-1")
        self.assertEqual(client.os, "macOS 15.3 (arm64)")
        self.assertEqual(client.client_version, "0.1.0")
        self.assertEqual(client.machine_id, MACHINE["machine_id"])
        self.assertEqual(client.address, "192.0.2.7")
        self.assertTrue(client.is_active)
        self.assertIsNotNone(client.first_seen)
        self.assertIsNotNone(client.last_seen)

    def test_os_and_client_version_may_be_left_out(self):
        response = self.register({"hostname": "ci-runner", "machine_id": "abc"})
        self.assertEqual(response.status_code, 201, response.content)
        client = Client.objects.get()
        self.assertEqual((client.os, client.client_version), ("", ""))

    def test_the_token_is_stored_only_as_its_hash(self):
        token = self.register().json()["client_token"]
        random_part = token.split("_", 2)[2]  # the random part may hold "_" itself
        client = Client.objects.get()
        self.assertEqual(client.token_hash, hashlib.sha256(token.encode()).hexdigest())
        rows = [client, *AuditEvent.objects.all()]
        for row in rows:
            for field in row._meta.concrete_fields:
                value = str(field.value_from_object(row))
                with self.subTest(model=type(row).__name__, field=field.name):
                    self.assertNotIn(token, value)
                    self.assertNotIn(random_part, value)

    def test_the_token_lets_the_new_client_list_identities(self):
        identity, _ = self.store_identity()
        token = self.register().json()["client_token"]
        response = self.client.get(
            "/api/v1/certificates", headers={"Authorization": f"Bearer {token}"}
        )
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(
            [item["sha1"] for item in response.json()["certificates"]], [identity.sha1]
        )

    def test_each_registration_gets_its_own_token(self):
        first = self.register().json()
        second = self.register({**MACHINE, "machine_id": "another machine"}).json()
        self.assertNotEqual(first["client_token"], second["client_token"])
        self.assertNotEqual(first["client_id"], second["client_id"])
        self.assertEqual(Client.objects.count(), 2)

    def test_the_same_machine_may_register_with_another_key(self):
        self.register()
        _, other_secret = ApiKey.create("release machines")
        response = self.register(secret=other_secret)
        self.assertEqual(response.status_code, 201, response.content)
        self.assertEqual(Client.objects.count(), 2)

    def test_it_is_audited_with_the_key_name_and_never_the_secret(self):
        self.register()
        event = AuditEvent.objects.get()
        self.assertEqual(
            (event.request_type, event.status, event.reason), ("register", "success", "")
        )
        self.assertEqual((event.api_key, event.api_key_name), (self.key, "build machines"))
        self.assertEqual(
            (event.client, event.client_hostname), (Client.objects.get(), "mac-mini-1")
        )
        self.assertEqual(event.address, "127.0.0.1")
        self.assertNotIn(self.secret.split("_", 2)[2], event.message)


class RefusedCredentialsTestCase(RegisterTestCase):
    def test_no_malformed_or_unknown_key_is_401(self):
        for secret in [
            "",
            "hello",
            "smk",
            f"smk_{self.key.token_id}",
            f"smk_{self.key.token_id}_{'A' * 43}",
            tokens.new_secret(tokens.API_KEY_PREFIX).value,
            self.secret.upper(),
        ]:
            with self.subTest(secret=secret):
                self.assertError(self.register(secret=secret), 401, "bad_credentials")
                self.assertRefusalAudited("bad_credentials")
                AuditEvent.objects.all().delete()
        self.assertFalse(Client.objects.exists())

    def test_a_client_token_is_not_an_api_key(self):
        token = self.register().json()["client_token"]
        AuditEvent.objects.all().delete()
        response = self.register({**MACHINE, "machine_id": "other"}, secret=token)
        self.assertError(response, 401, "bad_credentials")
        self.assertRefusalAudited("bad_credentials")
        self.assertEqual(Client.objects.count(), 1)

    def test_an_inactive_key_registers_no_client(self):
        ApiKey.objects.filter(pk=self.key.pk).update(is_active=False)
        self.assertError(self.register(), 403, "inactive_key")
        self.assertFalse(Client.objects.exists())
        event = self.assertRefusalAudited("inactive_key", api_key=self.key)
        self.assertEqual(event.api_key_name, "build machines")


class KnownMachineTestCase(RegisterTestCase):
    def test_a_replayed_registration_is_409_and_makes_no_client(self):
        first = self.register().json()
        AuditEvent.objects.all().delete()
        response = self.register()
        self.assertError(response, 409, "already_registered")
        self.assertEqual(list(Client.objects.values_list("pk", flat=True)), [first["client_id"]])
        self.assertRefusalAudited("already_registered", api_key=self.key)

    def test_an_inactive_client_cannot_register_its_way_out(self):
        self.register()
        Client.objects.update(is_active=False)
        AuditEvent.objects.all().delete()
        for hostname in ["mac-mini-1", "renamed-mac"]:
            with self.subTest(hostname=hostname):
                response = self.register({**MACHINE, "hostname": hostname})
                self.assertError(response, 403, "inactive_client")
                self.assertRefusalAudited("inactive_client", api_key=self.key)
                AuditEvent.objects.all().delete()
        self.assertEqual(Client.objects.count(), 1)
        self.assertFalse(Client.objects.get().is_active)

    def test_an_inactive_key_is_named_before_the_known_machine(self):
        self.register()
        ApiKey.objects.filter(pk=self.key.pk).update(is_active=False)
        self.assertError(self.register(), 403, "inactive_key")

    def test_a_deleted_client_may_register_again(self):
        old = self.register().json()
        Client.objects.filter(pk=old["client_id"]).delete()
        response = self.register()
        self.assertEqual(response.status_code, 201, response.content)
        new = response.json()
        self.assertNotEqual(new["client_token"], old["client_token"])
        self.assertEqual(Client.objects.get().pk, new["client_id"])

    def test_a_deleted_client_of_an_inactive_key_may_not(self):
        old = self.register().json()
        Client.objects.filter(pk=old["client_id"]).delete()
        ApiKey.objects.filter(pk=self.key.pk).update(is_active=False)
        self.assertError(self.register(), 403, "inactive_key")
        self.assertFalse(Client.objects.exists())


class BadBodyTestCase(RegisterTestCase):
    def assertBadParameters(self, body):
        self.assertError(self.register(body), 422, "bad_parameters")
        self.assertFalse(Client.objects.exists())
        self.assertRefusalAudited("bad_parameters", api_key=self.key)
        AuditEvent.objects.all().delete()

    def test_a_missing_hostname_or_machine_id_is_422(self):
        for field in ["hostname", "machine_id"]:
            with self.subTest(field=field):
                self.assertBadParameters({k: v for k, v in MACHINE.items() if k != field})

    def test_an_empty_hostname_or_machine_id_is_422(self):
        for field in ["hostname", "machine_id"]:
            with self.subTest(field=field):
                self.assertBadParameters({**MACHINE, field: ""})

    def test_over_long_fields_are_422(self):
        for field, limit in [
            ("hostname", 255),
            ("os", 255),
            ("client_version", 64),
            ("machine_id", 255),
        ]:
            with self.subTest(field=field):
                self.assertBadParameters({**MACHINE, field: "x" * (limit + 1)})

    def test_fields_at_their_limit_are_accepted(self):
        body = {
            "hostname": "h" * 255,
            "os": "o" * 255,
            "client_version": "v" * 64,
            "machine_id": "m" * 255,
        }
        self.assertEqual(self.register(body).status_code, 201)

    def test_wrong_types_are_422(self):
        self.assertBadParameters({**MACHINE, "hostname": ["a", "list"]})
        self.assertBadParameters({**MACHINE, "machine_id": {"an": "object"}})

    def test_a_body_that_is_not_json_is_422(self):
        self.assertBadParameters("{this is not json")
        self.assertBadParameters("")

    # Product bug: RegisterIn accepts NUL characters. SQLite stores them; PostgreSQL refuses
    # them, and the service answers 503 audit_unavailable (hostname, os, client_version) or
    # fails with an unaudited 500 HTML page (machine_id) instead of an audited 422.
    def test_a_nul_character_in_the_hostname_is_422(self):
        self.assertBadParameters({**MACHINE, "hostname": "mac\x00mini"})

    def test_a_nul_character_in_the_machine_id_is_422(self):
        self.assertBadParameters({**MACHINE, "machine_id": "5D2E1A0C\x00"})

    def test_control_characters_are_422_in_every_field(self):
        for field in ("hostname", "os", "client_version", "machine_id"):
            for bad in (
                "mac\tmini",
                "mac\r\nEvil: yes",
                "mac\x1b[31m",
                "mac\x85mini",
                "mac\u202egnp",
            ):
                with self.subTest(field=field, value=bad):
                    self.assertBadParameters({**MACHINE, field: bad})

    def test_leading_and_trailing_spaces_are_trimmed(self):
        self.assertBadParameters({**MACHINE, "hostname": "   "})
        body = {**MACHINE, "hostname": "  mac-mini-7 ", "os": " macOS 15 ", "machine_id": " m1 "}

        self.assertEqual(self.register(body).status_code, 201)

        client = Client.objects.get(hostname="mac-mini-7")
        self.assertEqual((client.os, client.machine_id), ("macOS 15", "m1"))

    def test_text_that_is_not_unicode_is_422(self):
        self.assertBadParameters({**MACHINE, "hostname": "mac\ud800"})

    def test_a_bad_body_with_a_bad_key_is_401(self):
        self.assertError(self.register({}, secret="smk_nope"), 401, "bad_credentials")
        self.assertRefusalAudited("bad_credentials")

    def test_a_bad_body_with_an_inactive_key_is_403(self):
        ApiKey.objects.filter(pk=self.key.pk).update(is_active=False)
        self.assertError(self.register({}), 403, "inactive_key")
        self.assertRefusalAudited("inactive_key", api_key=self.key)


class RegisterFailClosedTestCase(RegisterTestCase):
    def test_no_client_is_made_when_the_audit_cannot_be_written(self):
        with connection.execute_wrapper(refuse_audit_inserts):
            response = self.register()
        self.assertError(response, 503, "audit_unavailable")
        self.assertFalse(Client.objects.exists())
        self.assertFalse(AuditEvent.objects.exists())

    def test_the_machine_can_register_once_the_audit_works_again(self):
        with connection.execute_wrapper(refuse_audit_inserts):
            self.register()
        self.assertEqual(self.register().status_code, 201)
        self.assertEqual(Client.objects.count(), 1)
