from signing_service.access.models import ApiKey
from signing_service.test import BaseTestCase, make_client


class KeyToggleTestCase(BaseTestCase):
    def setUp(self):
        self.key, _ = ApiKey.create("build machines")
        self.url = f"/api-keys/{self.key.pk}/toggle/"

    def assert_active(self, expected: bool):
        self.key.refresh_from_db()
        self.assertEqual(self.key.is_active, expected)

    def test_it_deactivates_and_reactivates_a_key(self):
        self.client.force_login(self.alice)
        response = self.client.post(self.url)
        self.assertRedirects(response, "/api-keys/", fetch_redirect_response=False)
        self.assert_active(False)
        self.client.post(self.url)
        self.assert_active(True)

    def test_bob_may_switch_a_key(self):
        self.client.force_login(self.bob)
        response = self.client.post(self.url, follow=True)
        self.assertContains(response, f"“build machines ({self.key.display_id})” is inactive.")
        self.assert_active(False)
        response = self.client.post(self.url, follow=True)
        self.assertContains(response, f"“build machines ({self.key.display_id})” is active.")
        self.assert_active(True)

    def test_the_message_names_the_api_key_as_such(self):
        self.client.force_login(self.bob)
        response = self.client.post(self.url, follow=True)
        self.assertContains(response, f"API key “build machines ({self.key.display_id})”")

    def test_it_switches_only_that_key(self):
        other, _ = ApiKey.create("release machines")
        self.client.force_login(self.bob)
        self.client.post(self.url)
        other.refresh_from_db()
        self.assertTrue(other.is_active)
        self.assert_active(False)

    def test_it_needs_a_post(self):
        for user in [self.alice, self.bob]:
            with self.subTest(user=user.username):
                self.client.force_login(user)
                self.assertEqual(self.client.get(self.url).status_code, 405)
                self.assert_active(True)

    def test_it_goes_back_to_the_page_it_came_from(self):
        self.client.force_login(self.bob)
        next_page = f"/api-keys/{self.key.pk}/clients/"
        response = self.client.post(self.url, {"next": next_page})
        self.assertRedirects(response, next_page, fetch_redirect_response=False)

    def test_it_never_goes_back_to_another_site(self):
        self.client.force_login(self.bob)
        for next_page in [
            "https://evil.example/",
            "//evil.example/",
            "http://evil.example/api-keys/",
            "https:evil.example",
            "javascript:alert(1)",
            "\\\\evil.example\\",
            "/\\evil.example",
        ]:
            with self.subTest(next=next_page):
                response = self.client.post(self.url, {"next": next_page})
                self.assertRedirects(response, "/api-keys/", fetch_redirect_response=False)

    def test_an_unknown_key_is_404(self):
        self.client.force_login(self.bob)
        self.assertEqual(self.client.post("/api-keys/99999/toggle/").status_code, 404)

    def test_anonymous_users_may_not_switch_a_key(self):
        response = self.client.post(self.url)
        self.assertEqual(response.status_code, 302)
        self.assertTrue(response["Location"].startswith("/accounts/login/"))
        self.assert_active(True)


class KeyToggleConfirmationTestCase(BaseTestCase):
    """A key with clients is deactivated only after a page says what stops."""

    def setUp(self):
        self.key, _ = ApiKey.create("build machines")
        make_client(self.key, "mac-mini-1")
        make_client(self.key, "mac-mini-2")
        self.url = f"/api-keys/{self.key.pk}/toggle/"
        self.next_page = f"/api-keys/{self.key.pk}/clients/"

    def assert_active(self, expected: bool):
        self.key.refresh_from_db()
        self.assertEqual(self.key.is_active, expected)

    def test_it_asks_first_and_changes_nothing(self):
        for user in [self.alice, self.bob]:
            with self.subTest(user=user.username):
                self.client.force_login(user)
                response = self.client.post(self.url, {"next": self.next_page})
                self.assertEqual(response.status_code, 200)
                self.assertContains(
                    response, f"Deactivate the API key “build machines ({self.key.display_id})”?"
                )
                self.assertContains(response, "2 clients will not be able to list or sign")
                self.assertContains(response, '<input type="hidden" name="confirmed" value="1">')
                self.assertContains(response, '<button type="submit" class="danger">Deactivate')
                self.assertContains(response, f'<a href="{self.next_page}">Cancel</a>')
                self.assertNotContains(response, "is inactive.")
                self.assert_active(True)

    def test_one_client_is_counted_as_one(self):
        self.key.clients.last().delete()
        self.client.force_login(self.bob)
        response = self.client.post(self.url)
        self.assertContains(response, "1 client will not be able to list or sign")

    def test_the_confirmed_post_deactivates_and_goes_back(self):
        for user in [self.alice, self.bob]:
            with self.subTest(user=user.username):
                self.client.force_login(user)
                response = self.client.post(self.url, {"next": self.next_page, "confirmed": "1"})
                self.assertRedirects(response, self.next_page, fetch_redirect_response=False)
                self.assert_active(False)
                response = self.client.get(self.next_page)
                self.assertContains(response, "” is inactive.")
                self.key.is_active = True
                self.key.save()

    def test_a_second_confirmed_post_leaves_it_inactive(self):
        self.client.force_login(self.bob)
        self.client.post(self.url, {"confirmed": "1"})
        self.client.post(self.url, {"confirmed": "1"})
        self.assert_active(False)

    def test_activating_needs_no_confirmation(self):
        self.key.is_active = False
        self.key.save()
        self.client.force_login(self.bob)
        response = self.client.post(self.url)
        self.assertRedirects(response, "/api-keys/", fetch_redirect_response=False)
        self.assert_active(True)

    def test_cancel_never_leads_to_another_site(self):
        self.client.force_login(self.bob)
        for next_page in ["https://evil.example/", "//evil.example/", "javascript:alert(1)"]:
            with self.subTest(next=next_page):
                response = self.client.post(self.url, {"next": next_page})
                self.assertContains(response, '<a href="/api-keys/">Cancel</a>')
                self.assertContains(
                    response, '<input type="hidden" name="next" value="/api-keys/">'
                )
                self.assertNotContains(response, "evil.example")
                self.assertNotContains(response, "javascript:")

    def test_the_confirmed_post_never_goes_to_another_site(self):
        self.client.force_login(self.bob)
        response = self.client.post(self.url, {"next": "//evil.example/", "confirmed": "1"})
        self.assertRedirects(response, "/api-keys/", fetch_redirect_response=False)
        self.assert_active(False)
