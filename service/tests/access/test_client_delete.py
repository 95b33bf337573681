from signing_service.access import tokens
from signing_service.access.models import ApiKey, Client
from signing_service.test import BaseTestCase


class ClientDeleteTestCase(BaseTestCase):
    def setUp(self):
        self.key, _ = ApiKey.create("build machines")
        secret = tokens.new_secret(tokens.CLIENT_TOKEN_PREFIX)
        self.mac = Client.objects.create(
            api_key=self.key,
            hostname="mac-mini-1",
            machine_id="m-1",
            token_id=secret.token_id,
            token_hash=secret.digest,
        )

    def test_it_asks_for_confirmation_first(self):
        self.client.force_login(self.alice)
        response = self.client.get(f"/api-keys/clients/{self.mac.pk}/delete/")
        self.assertContains(response, "Delete the client “mac-mini-1”?")
        self.assertTrue(Client.objects.filter(pk=self.mac.pk).exists())

    def test_it_deletes_the_client_and_keeps_the_key(self):
        self.client.force_login(self.alice)
        response = self.client.post(f"/api-keys/clients/{self.mac.pk}/delete/")
        self.assertRedirects(
            response, f"/api-keys/{self.key.pk}/clients/", fetch_redirect_response=False
        )
        self.assertFalse(Client.objects.exists())
        self.assertTrue(ApiKey.objects.filter(pk=self.key.pk).exists())

    def test_the_machine_may_register_again_after_its_client_is_deleted(self):
        _, secret = ApiKey.create("release machines")
        body = {"hostname": "mac-2", "machine_id": "m-2"}
        headers = {"Authorization": f"Bearer {secret}"}

        def register():
            return self.client.post(
                "/api/v1/clients", body, content_type="application/json", headers=headers
            )

        self.assertEqual(register().status_code, 201)
        self.assertEqual(register().status_code, 409)
        self.client.force_login(self.alice)
        self.client.post(f"/api-keys/clients/{Client.objects.get(machine_id='m-2').pk}/delete/")
        self.assertEqual(register().status_code, 201)

    def test_non_admins_may_not_delete_clients(self):
        self.client.force_login(self.bob)
        response = self.client.post(f"/api-keys/clients/{self.mac.pk}/delete/")
        self.assertEqual(response.status_code, 403)
        self.assertTrue(Client.objects.filter(pk=self.mac.pk).exists())

    def test_admins_see_a_delete_link_and_non_admins_do_not(self):
        self.client.force_login(self.alice)
        link = f'href="/api-keys/clients/{self.mac.pk}/delete/"'
        self.assertContains(self.client.get(f"/api-keys/{self.key.pk}/clients/"), link)
        self.client.force_login(self.bob)
        self.assertNotContains(self.client.get(f"/api-keys/{self.key.pk}/clients/"), link)
