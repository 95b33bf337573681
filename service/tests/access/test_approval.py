"""Client approval (issue 18 item 9): with the Setting on, a machine registers but may not list
or sign until an admin approves it; approvals and rejections are audited."""

from __future__ import annotations

import io

from django.core.management import CommandError, call_command

from signing_service.access.models import ApiKey, Client
from signing_service.audit.models import AuditEvent
from signing_service.configuration.models import ServiceSettings
from signing_service.test import BaseTestCase

MACHINE = {"hostname": "new-mac", "os": "macOS 15", "client_version": "1.0", "machine_id": "m9"}


class ApprovalTestCase(BaseTestCase):
    def setUp(self):
        self.identity, _ = self.store_identity()
        self.key, self.secret = ApiKey.create("build machines")

    def register(self, need_approval: bool) -> tuple[Client, str]:
        ServiceSettings.objects.update_or_create(
            pk=1, defaults={"clients_need_approval": need_approval}
        )
        response = self.client.post(
            "/api/v1/clients",
            MACHINE,
            content_type="application/json",
            headers={"Authorization": f"Bearer {self.secret}"},
        )
        self.assertEqual(response.status_code, 201, response.content)
        return Client.objects.get(pk=response.json()["client_id"]), response.json()["client_token"]

    def certificates(self, token: str):
        return self.client.get("/api/v1/certificates", headers={"Authorization": f"Bearer {token}"})

    def test_without_the_setting_a_new_client_may_list_at_once(self):
        client, token = self.register(need_approval=False)

        self.assertTrue(client.is_approved)
        self.assertEqual(self.certificates(token).status_code, 200)

    def test_a_pending_client_is_refused_and_audited_until_approved(self):
        client, token = self.register(need_approval=True)

        refused = self.certificates(token)

        self.assertFalse(client.is_approved)
        self.assertEqual(refused.status_code, 403)
        self.assertEqual(refused.json()["error"]["code"], "pending_client")
        self.assertEqual(AuditEvent.objects.latest("id").reason, "pending_client")
        self.assertIn(
            "waits for an admin's approval", AuditEvent.objects.get(request_type="register").message
        )

        self.client.force_login(self.alice)
        page = self.client.get("/api-keys/clients/")
        self.assertContains(page, "Pending approval")
        approved = self.client.post(f"/api-keys/clients/{client.pk}/approve/")

        self.assertEqual(approved.status_code, 302)
        self.assertEqual(self.certificates(token).status_code, 200)
        record = AuditEvent.objects.get(request_type="approve")
        self.assertEqual((record.source, record.username, record.client), ("web", "alice", client))

    def test_a_rejected_client_is_gone_and_its_token_with_it(self):
        client, token = self.register(need_approval=True)
        self.client.force_login(self.alice)

        self.client.post(f"/api-keys/clients/{client.pk}/reject/")

        self.assertFalse(Client.objects.filter(pk=client.pk).exists())
        self.assertEqual(self.certificates(token).status_code, 401)
        record = AuditEvent.objects.get(request_type="reject")
        self.assertEqual(record.client_hostname, "new-mac")

    def test_non_admins_may_not_decide(self):
        client, _ = self.register(need_approval=True)
        self.client.force_login(self.bob)

        self.assertEqual(
            self.client.post(f"/api-keys/clients/{client.pk}/approve/").status_code, 403
        )
        self.assertEqual(
            self.client.post(f"/api-keys/clients/{client.pk}/reject/").status_code, 403
        )
        client.refresh_from_db()
        self.assertFalse(client.is_approved)

    def test_the_ops_command_lists_approves_and_refuses_what_it_cannot(self):
        client, token = self.register(need_approval=True)

        listed, done = io.StringIO(), io.StringIO()
        call_command("client", "list", stdout=listed)
        call_command("client", "approve", str(client.pk), stdout=done)

        self.assertEqual(
            listed.getvalue(), f"{client.pk}\tactive\tpending\tbuild machines\tnew-mac\n"
        )
        self.assertEqual(done.getvalue(), f"Approved client {client.pk} (new-mac).\n")

        self.assertEqual(self.certificates(token).status_code, 200)
        record = AuditEvent.objects.get(request_type="approve")
        self.assertEqual(record.source, "cli")
        self.assertIn("by the OS user", record.message)
        with self.assertRaisesMessage(CommandError, "is not pending"):
            call_command("client", "reject", str(client.pk))
        with self.assertRaisesMessage(CommandError, "No client has the id 999"):
            call_command("client", "approve", "999")

    def test_the_settings_page_switches_it(self):
        self.client.force_login(self.alice)
        agreement = self.client.get("/settings/").context["form"].initial["agreement_text"]

        self.client.post(
            "/settings/",
            {
                "audit_retention_days": "365",
                "clients_need_approval": "on",
                "agreement_text": agreement,
            },
        )

        self.assertTrue(ServiceSettings.load().clients_need_approval)
