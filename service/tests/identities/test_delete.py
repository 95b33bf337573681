from signing_service.audit import records
from signing_service.audit.models import AuditEvent, RequestType, Status
from signing_service.identities.models import Identity
from signing_service.test import BaseTestCase


class DeleteTestCase(BaseTestCase):
    def setUp(self):
        self.identity, self.made = self.store_identity()
        self.client.force_login(self.alice)

    def test_it_asks_for_confirmation_first(self):
        response = self.client.get(f"/identities/{self.identity.pk}/delete/")
        self.assertContains(response, f"Delete “{self.identity.common_name}”?")
        self.assertTrue(Identity.objects.filter(pk=self.identity.pk).exists())

    def test_it_deletes_and_the_audit_keeps_its_snapshot(self):
        records.record(RequestType.SIGN, Status.SUCCESS, identity=self.identity)
        response = self.client.post(f"/identities/{self.identity.pk}/delete/")
        self.assertRedirects(response, "/identities/", fetch_redirect_response=False)
        self.assertFalse(Identity.objects.exists())
        event = AuditEvent.objects.get(request_type=RequestType.SIGN)
        self.assertIsNone(event.identity)
        self.assertEqual(event.identity_common_name, self.made.common_name)
        self.assertEqual(event.identity_sha1, self.made.sha1)

    def test_non_admins_may_not_delete(self):
        self.client.force_login(self.bob)
        response = self.client.post(f"/identities/{self.identity.pk}/delete/")
        self.assertEqual(response.status_code, 403)
        self.assertTrue(Identity.objects.filter(pk=self.identity.pk).exists())
