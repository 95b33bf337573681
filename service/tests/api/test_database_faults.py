"""Database faults in the client API (issue 18 item 4, issue 21 item 1): every failure is the
JSON error body with Retry-After, never Django's HTML 500; and work after the audit commit
cannot turn a delivered signature into a failure the audit does not record."""

from __future__ import annotations

from django.db import OperationalError, connection

from signing_service.access.models import ApiKey, Client
from signing_service.audit.models import AuditEvent
from signing_service.test import BaseTestCase, make_client, post_sign, refuse_audit_inserts

MACHINE = {"hostname": "mac-1", "os": "macOS 15", "client_version": "1.0", "machine_id": "m-1"}


def refusing(statement: str, table: str):
    """An execute wrapper failing every ``statement`` (SELECT, INSERT, UPDATE) on ``table``."""

    def wrapper(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith(statement) and f'"{table}"' in sql:
            raise OperationalError(f"{statement} on {table} failed (test)")
        return execute(sql, params, many, context)

    return wrapper


class DatabaseFaultTestCase(BaseTestCase):
    def setUp(self):
        self.identity, _ = self.store_identity()
        self.key, self.key_secret = ApiKey.create("build machines")
        self.machine, self.token = make_client(self.key)

    def sign(self):
        return post_sign(self.client, self.token, self.identity.sha1, "rsa-pkcs1v15-sha256")

    def assertUnavailable(self, response, code: str):
        self.assertEqual(response.status_code, 503, response.content)
        self.assertEqual(response["Content-Type"], "application/json; charset=utf-8")
        self.assertEqual(response.json()["error"]["code"], code)
        self.assertEqual(response["Retry-After"], "5")
        self.assertNotIn(b"signature", response.content)

    def test_a_fault_after_the_audit_commit_does_not_take_the_signature_back(self):
        Client.objects.filter(pk=self.machine.pk).update(last_seen=None)  # due for an update

        with connection.execute_wrapper(refusing("UPDATE", "access_client")):
            response = self.sign()

        self.assertEqual(response.status_code, 200, response.content)
        self.assertIn("signature", response.json())
        self.assertEqual(AuditEvent.objects.get().status, "success")

    def test_a_fault_while_reading_the_token_is_a_json_503(self):
        with connection.execute_wrapper(refusing("SELECT", "access_client")):
            response = self.sign()

        self.assertUnavailable(response, "service_unavailable")

    def test_a_registration_the_database_refuses_is_a_json_503(self):
        with connection.execute_wrapper(refusing("INSERT", "access_client")):
            response = self.client.post(
                "/api/v1/clients",
                MACHINE,
                content_type="application/json",
                headers={"Authorization": f"Bearer {self.key_secret}"},
            )

        self.assertUnavailable(response, "service_unavailable")
        self.assertFalse(Client.objects.filter(machine_id="m-1").exists())

    def test_an_audit_that_cannot_be_written_says_when_to_retry(self):
        with connection.execute_wrapper(refuse_audit_inserts):
            response = self.sign()

        self.assertUnavailable(response, "audit_unavailable")
