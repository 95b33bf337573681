from signing_service.access.models import ApiKey, Client
from signing_service.test import BaseTestCase, make_client


class KeyDeleteTestCase(BaseTestCase):
    def setUp(self):
        self.key, _ = ApiKey.create("build machines")
        self.other, _ = ApiKey.create("release machines")
        make_client(self.key, "mac-1")
        make_client(self.key, "mac-2")
        self.kept = make_client(self.other, "mac-3")[0]
        self.url = f"/api-keys/{self.key.pk}/delete/"

    def test_it_asks_for_confirmation_first(self):
        self.client.force_login(self.alice)
        response = self.client.get(self.url)
        self.assertContains(
            response, f"Delete the API key “build machines” <code>{self.key.display_id}</code>?"
        )
        self.assertContains(response, "Its 2 registered clients can no longer list or sign.")
        self.assertContains(response, '<form method="post">')
        self.assertTrue(ApiKey.objects.filter(pk=self.key.pk).exists())
        self.assertEqual(Client.objects.count(), 3)

    def test_it_deletes_the_key_and_its_clients(self):
        self.client.force_login(self.alice)
        response = self.client.post(self.url)
        self.assertRedirects(response, "/api-keys/", fetch_redirect_response=False)
        self.assertFalse(ApiKey.objects.filter(pk=self.key.pk).exists())
        self.assertFalse(Client.objects.filter(api_key_id=self.key.pk).exists())
        self.assertEqual(list(ApiKey.objects.all()), [self.other])
        self.assertEqual(list(Client.objects.all()), [self.kept])

    def test_it_says_what_it_deleted(self):
        self.client.force_login(self.alice)
        response = self.client.post(self.url, follow=True)
        self.assertContains(response, "Deleted the API key “build machines” and its clients.")

    def test_bob_may_not_delete_keys(self):
        self.client.force_login(self.bob)
        self.assertEqual(self.client.get(self.url).status_code, 403)
        self.assertEqual(self.client.post(self.url).status_code, 403)
        self.assertTrue(ApiKey.objects.filter(pk=self.key.pk).exists())
        self.assertEqual(Client.objects.count(), 3)

    def test_an_unknown_key_is_404(self):
        self.client.force_login(self.alice)
        self.assertEqual(self.client.get("/api-keys/99999/delete/").status_code, 404)
        self.assertEqual(self.client.post("/api-keys/99999/delete/").status_code, 404)
        self.assertEqual(ApiKey.objects.count(), 2)
