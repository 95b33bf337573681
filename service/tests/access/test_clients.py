"""The clients of one API key, all clients, and the clients' on/off switch."""

import datetime

from signing_service.access.models import ApiKey, Client
from signing_service.test import BaseTestCase, make_client


class ClientPagesTestCase(BaseTestCase):
    def setUp(self):
        self.key, _ = ApiKey.create("build machines")
        self.other, _ = ApiKey.create("release machines")
        self.mac = make_client(
            self.key,
            "mac-mini-1",
            os="macOS 15.1 arm64",
            client_version="0.1.0",
            address="10.0.0.5",
        )[0]
        self.linux = make_client(
            self.key, "ci-runner-7", os="Debian 12 x86_64", client_version="0.1.1"
        )[0]
        self.windows = make_client(
            self.other, "win-build-3", os="Windows 11", client_version="0.0.9"
        )[0]


class KeyClientsTestCase(ClientPagesTestCase):
    def test_it_lists_the_clients_of_the_key(self):
        self.client.force_login(self.bob)
        response = self.client.get(f"/api-keys/{self.key.pk}/clients/")
        self.assertContains(response, "Clients of “build machines”")
        for text in ["mac-mini-1", "macOS 15.1 arm64", "0.1.0", "10.0.0.5"]:
            self.assertContains(response, text)
        for text in ["ci-runner-7", "Debian 12 x86_64", "0.1.1"]:
            self.assertContains(response, text)
        self.assertContains(response, "never")  # not seen since it registered

    def test_it_lists_no_client_of_another_key(self):
        self.client.force_login(self.bob)
        response = self.client.get(f"/api-keys/{self.key.pk}/clients/")
        self.assertNotContains(response, "win-build-3")
        self.assertNotContains(response, "Windows 11")

    def test_it_says_when_no_client_registered(self):
        empty, _ = ApiKey.create("spare")
        self.client.force_login(self.bob)
        response = self.client.get(f"/api-keys/{empty.pk}/clients/")
        self.assertContains(response, "No client has registered with this API key yet.")

    def test_an_unknown_key_is_404(self):
        self.client.force_login(self.alice)
        self.assertEqual(self.client.get("/api-keys/99999/clients/").status_code, 404)

    def test_it_escapes_client_supplied_names(self):
        make_client(self.key, "<script>alert(1)</script>", os="<b>os</b>")
        self.client.force_login(self.bob)
        response = self.client.get(f"/api-keys/{self.key.pk}/clients/")
        self.assertNotContains(response, "<script>alert(1)</script>")
        self.assertNotContains(response, "<b>os</b>")
        self.assertContains(response, "&lt;script&gt;alert(1)&lt;/script&gt;")


class AllClientsTestCase(ClientPagesTestCase):
    def test_it_lists_every_client_with_its_key(self):
        self.client.force_login(self.bob)
        response = self.client.get("/api-keys/clients/")
        self.assertContains(response, "All clients")
        for text in [
            "mac-mini-1", "macOS 15.1 arm64", "0.1.0",
            "ci-runner-7", "Debian 12 x86_64", "0.1.1",
            "win-build-3", "Windows 11", "0.0.9",
            "build machines", "release machines",
        ]:  # fmt: skip
            self.assertContains(response, text)

    def test_it_shows_each_client_s_key_with_its_public_prefix(self):
        self.client.force_login(self.bob)
        response = self.client.get("/api-keys/clients/")
        self.assertContains(response, f"build machines <code>{self.key.display_id}</code>")

    def test_first_and_last_seen_say_their_time_zone(self):
        Client.objects.filter(pk=self.mac.pk).update(
            first_seen=datetime.datetime(2026, 3, 10, 12, 0, 5, tzinfo=datetime.UTC),
            last_seen=datetime.datetime(2026, 3, 11, 8, 30, 0, tzinfo=datetime.UTC),
        )
        self.client.force_login(self.bob)
        response = self.client.get("/api-keys/clients/")
        self.assertContains(response, '<td class="time">2026-03-10 12:00:05 UTC</td>')
        self.assertContains(response, '<td class="time">2026-03-11 08:30:00 UTC</td>')

    def test_it_marks_clients_whose_key_is_inactive(self):
        self.other.is_active = False
        self.other.save()
        self.client.force_login(self.bob)
        response = self.client.get("/api-keys/clients/")
        self.assertContains(
            response, f'{self.other.display_id}</code> <span class="tag">key inactive</span>'
        )
        self.assertContains(response, "key inactive", count=1)

    def test_it_links_each_client_switch(self):
        self.client.force_login(self.bob)
        response = self.client.get("/api-keys/clients/")
        for client in [self.mac, self.linux, self.windows]:
            self.assertContains(response, f'action="/api-keys/clients/{client.pk}/toggle/"')

    def test_it_is_linked_from_the_key_list(self):
        self.client.force_login(self.bob)
        self.assertContains(self.client.get("/api-keys/"), 'href="/api-keys/clients/"')


class ClientToggleTestCase(ClientPagesTestCase):
    def url(self, client: Client) -> str:
        return f"/api-keys/clients/{client.pk}/toggle/"

    def test_bob_may_switch_a_client(self):
        self.client.force_login(self.bob)
        response = self.client.post(self.url(self.mac), follow=True)
        self.assertContains(response, "Client “mac-mini-1” is inactive.")
        self.mac.refresh_from_db()
        self.assertFalse(self.mac.is_active)
        self.client.post(self.url(self.mac))
        self.mac.refresh_from_db()
        self.assertTrue(self.mac.is_active)

    def test_it_switches_only_that_client(self):
        self.client.force_login(self.alice)
        response = self.client.post(self.url(self.mac))
        self.assertRedirects(response, "/api-keys/clients/", fetch_redirect_response=False)
        for client, active in [(self.mac, False), (self.linux, True), (self.windows, True)]:
            client.refresh_from_db()
            self.assertEqual(client.is_active, active, client.hostname)
        self.key.refresh_from_db()
        self.assertTrue(self.key.is_active)

    def test_it_needs_a_post(self):
        self.client.force_login(self.bob)
        self.assertEqual(self.client.get(self.url(self.mac)).status_code, 405)
        self.mac.refresh_from_db()
        self.assertTrue(self.mac.is_active)

    def test_it_goes_back_to_the_key_s_clients(self):
        self.client.force_login(self.bob)
        next_page = f"/api-keys/{self.key.pk}/clients/"
        response = self.client.post(self.url(self.mac), {"next": next_page})
        self.assertRedirects(response, next_page, fetch_redirect_response=False)

    def test_it_never_goes_back_to_another_site(self):
        self.client.force_login(self.bob)
        for next_page in ["https://evil.example/", "//evil.example/", "///evil.example/"]:
            with self.subTest(next=next_page):
                response = self.client.post(self.url(self.mac), {"next": next_page})
                self.assertRedirects(response, "/api-keys/clients/", fetch_redirect_response=False)

    def test_an_unknown_client_is_404(self):
        self.client.force_login(self.bob)
        self.assertEqual(self.client.post("/api-keys/clients/99999/toggle/").status_code, 404)
