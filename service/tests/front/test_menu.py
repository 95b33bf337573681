import re

from signing_service.access.models import ApiKey
from signing_service.test import BaseTestCase

CURRENT = re.compile(r'<a href="([^"]*)" aria-current="(page|true)">([^<]*)</a>')


class MenuTestCase(BaseTestCase):
    def setUp(self):
        self.identity, _ = self.store_identity()
        self.key, _ = ApiKey.create("build machines")

    def current_links(self, path: str) -> list[tuple[str, str, str]]:
        """The (href, aria-current, label) of each link the page's menu marks as current."""
        response = self.client.get(path)
        self.assertEqual(response.status_code, 200, path)
        header = response.content.decode().split("</header>")[0]
        return CURRENT.findall(header)

    def test_it_marks_the_link_of_the_page_shown(self):
        self.client.force_login(self.alice)
        for path, label in [
            ("/identities/", "Signing Certificates"),
            ("/api-keys/", "API Keys"),
            ("/audit/", "Audit"),
            ("/api/", "API"),
            ("/accounts/users/", "Users"),
            ("/settings/", "Settings"),
            ("/accounts/password/", "Password"),
        ]:
            with self.subTest(path):
                self.assertEqual(self.current_links(path), [(path, "page", label)])

    def test_it_marks_the_section_of_the_pages_below_a_link(self):
        self.client.force_login(self.alice)
        for path, section, label in [
            (f"/identities/{self.identity.pk}/", "/identities/", "Signing Certificates"),
            ("/certificate-authorities/", "/identities/", "Signing Certificates"),
            (f"/api-keys/{self.key.pk}/clients/", "/api-keys/", "API Keys"),
            ("/api-keys/clients/", "/api-keys/", "API Keys"),
            (f"/accounts/users/{self.bob.pk}/", "/accounts/users/", "Users"),
        ]:
            with self.subTest(path):
                self.assertEqual(self.current_links(path), [(section, "true", label)])

    def test_the_main_page_marks_no_link(self):
        self.client.force_login(self.alice)
        self.assertEqual(self.current_links("/"), [])

    def test_it_folds_the_menu_into_a_details_element(self):
        self.client.force_login(self.bob)
        response = self.client.get("/")
        self.assertContains(response, '<details class="menu">', count=1)
        self.assertContains(response, "<summary>Menu</summary>", count=1)
