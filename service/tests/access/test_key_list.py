from signing_service.access.models import ApiKey
from signing_service.test import BaseTestCase, make_client


class KeyListTestCase(BaseTestCase):
    def setUp(self):
        self.key, self.secret = ApiKey.create("build machines")
        self.other, self.other_secret = ApiKey.create("release machines")
        for number in range(3):
            make_client(self.key, f"mac-{number}")

    def test_it_lists_keys_with_their_client_counts(self):
        self.client.force_login(self.bob)
        response = self.client.get("/api-keys/")
        self.assertContains(response, "build machines")
        self.assertContains(response, "release machines")
        self.assertContains(response, f'href="/api-keys/{self.key.pk}/clients/">3 clients</a>')
        self.assertContains(response, f'href="/api-keys/{self.other.pk}/clients/">0 clients</a>')

    def test_it_shows_display_ids_never_secrets(self):
        self.client.force_login(self.alice)
        response = self.client.get("/api-keys/")
        self.assertContains(response, f"<code>smk_{self.key.token_id}_…</code>")
        self.assertContains(response, f"<code>smk_{self.other.token_id}_…</code>")
        for secret in [self.secret, self.other_secret]:
            self.assertNotContains(response, secret)
            self.assertNotContains(response, secret.split("_", 2)[2])
            self.assertNotContains(response, ApiKey.objects.get(token_id=secret[4:14]).secret_hash)

    def test_it_offers_create_and_delete_to_admins(self):
        self.client.force_login(self.alice)
        response = self.client.get("/api-keys/")
        self.assertContains(response, 'href="/api-keys/new/"')
        self.assertContains(response, f'href="/api-keys/{self.key.pk}/delete/"')

    def test_bob_sees_no_create_or_delete_button(self):
        self.client.force_login(self.bob)
        response = self.client.get("/api-keys/")
        self.assertNotContains(response, 'href="/api-keys/new/"')
        self.assertNotContains(response, "Create API key")
        self.assertNotContains(response, f'href="/api-keys/{self.key.pk}/delete/"')

    def test_bob_may_switch_keys(self):
        self.client.force_login(self.bob)
        response = self.client.get("/api-keys/")
        self.assertContains(response, f'action="/api-keys/{self.key.pk}/toggle/"')
        self.assertNotContains(response, "disabled title=")

    def test_it_shows_the_state_of_each_key(self):
        self.other.is_active = False
        self.other.save()
        self.client.force_login(self.bob)
        response = self.client.get("/api-keys/")
        self.assertContains(response, '<span class="badge active">Active</span>', count=1)
        self.assertContains(response, '<span class="badge inactive">Inactive</span>', count=1)
        # Each button says what it does, not the state it changes.
        self.assertContains(response, '<button type="submit" class="toggle">Deactivate</button>', 1)
        self.assertContains(response, '<button type="submit" class="toggle">Activate</button>', 1)
        self.assertContains(response, '<tr class="inactive">', count=1)

    def test_it_says_when_there_are_no_keys(self):
        ApiKey.objects.all().delete()
        self.client.force_login(self.bob)
        self.assertContains(self.client.get("/api-keys/"), "No API keys yet.")

    def test_it_needs_a_signed_in_user(self):
        response = self.client.get("/api-keys/")
        self.assertRedirects(
            response, "/accounts/login/?next=/api-keys/", fetch_redirect_response=False
        )
