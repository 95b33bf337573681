from signing_service.test import BaseTestCase


class ToggleTestCase(BaseTestCase):
    def setUp(self):
        self.identity, _ = self.store_identity()

    def test_admins_and_non_admins_switch_identities_off_and_on(self):
        for person in (self.alice, self.bob):
            with self.subTest(person.username):
                self.client.force_login(person)
                self.client.post(f"/identities/{self.identity.pk}/toggle/")
                self.identity.refresh_from_db()
                self.assertFalse(self.identity.is_active)
                self.client.post(f"/identities/{self.identity.pk}/toggle/")
                self.identity.refresh_from_db()
                self.assertTrue(self.identity.is_active)

    def test_it_goes_back_to_the_page_it_came_from(self):
        self.client.force_login(self.bob)
        page = f"/identities/{self.identity.pk}/"
        response = self.client.post(f"/identities/{self.identity.pk}/toggle/", {"next": page})
        self.assertRedirects(response, page, fetch_redirect_response=False)

    def test_it_never_redirects_off_site(self):
        self.client.force_login(self.bob)
        response = self.client.post(
            f"/identities/{self.identity.pk}/toggle/", {"next": "https://evil.example/"}
        )
        self.assertRedirects(response, "/identities/", fetch_redirect_response=False)

    def test_it_needs_a_post(self):
        self.client.force_login(self.alice)
        self.assertEqual(
            self.client.get(f"/identities/{self.identity.pk}/toggle/").status_code, 405
        )
        self.identity.refresh_from_db()
        self.assertTrue(self.identity.is_active)

    def test_it_never_redirects_from_https_to_http(self):
        self.client.force_login(self.bob)
        response = self.client.post(
            f"/identities/{self.identity.pk}/toggle/",
            {"next": "http://testserver/identities/1/"},
            secure=True,
        )
        self.assertRedirects(response, "/identities/", fetch_redirect_response=False)


class SwitchLabelTestCase(BaseTestCase):
    """The pages show the state in a badge and a button named for what it does."""

    def setUp(self):
        self.identity, _ = self.store_identity()
        self.client.force_login(self.bob)

    def test_an_active_identity_offers_to_deactivate(self):
        for path in ("/identities/", f"/identities/{self.identity.pk}/"):
            with self.subTest(path):
                response = self.client.get(path)
                self.assertContains(response, '<span class="badge active">Active</span>', 1)
                self.assertContains(response, 'class="toggle">Deactivate</button>', 1)
                self.assertNotContains(response, ">Activate</button>")

    def test_an_inactive_identity_offers_to_activate_and_is_muted_in_the_list(self):
        self.identity.is_active = False
        self.identity.save()
        for path in ("/identities/", f"/identities/{self.identity.pk}/"):
            with self.subTest(path):
                response = self.client.get(path)
                self.assertContains(response, '<span class="badge inactive">Inactive</span>', 1)
                self.assertContains(response, 'class="toggle">Activate</button>', 1)
                self.assertNotContains(response, ">Deactivate</button>")
        self.assertContains(self.client.get("/identities/"), '<tr class="inactive">', 1)
