from signing_service.access.models import ApiKey
from signing_service.test import BaseTestCase


class DetailTestCase(BaseTestCase):
    def setUp(self):
        self.identity, self.made = self.store_identity(installer=True)

    def test_it_shows_names_fingerprints_and_certificate_content(self):
        self.client.force_login(self.bob)
        response = self.client.get(f"/identities/{self.identity.pk}/")
        facts = self.identity.facts()
        self.assertContains(response, self.made.common_name)
        self.assertContains(response, facts.sha1.upper())
        self.assertContains(response, facts.sha256.upper())
        self.assertContains(response, "-----BEGIN CERTIFICATE-----")
        self.assertContains(response, "Signing Manager Test CA")  # issuer and chain
        self.assertContains(response, "Code Signing")
        self.assertContains(response, "Apple Installer Package Signing")
        self.assertContains(response, "ABCDE12345")  # the team identifier
        self.assertContains(response, "RSA 2048 bits")

    def test_it_never_shows_the_private_key(self):
        self.client.force_login(self.alice)
        body = self.client.get(f"/identities/{self.identity.pk}/").content
        self.assertNotIn(b"PRIVATE KEY", body)
        self.assertNotIn(self.made.key_pem().split(b"\n")[1], body)

    def test_admins_get_every_button(self):
        self.client.force_login(self.alice)
        response = self.client.get(f"/identities/{self.identity.pk}/")
        for action in ["sign", "authorize", "edit", "delete"]:
            self.assertContains(response, f'href="/identities/{self.identity.pk}/{action}/"')
        self.assertContains(response, 'href="/identities/"')  # Back

    def test_non_admins_get_back_and_the_switch_only(self):
        self.client.force_login(self.bob)
        response = self.client.get(f"/identities/{self.identity.pk}/")
        for action in ["sign", "authorize", "edit", "delete"]:
            self.assertNotContains(response, f'href="/identities/{self.identity.pk}/{action}/"')
        self.assertContains(response, f'action="/identities/{self.identity.pk}/toggle/"')

    def test_it_lists_the_authorized_keys(self):
        key, _ = ApiKey.create("release machines")
        self.identity.authorize_all_keys = False
        self.identity.save()
        self.identity.authorized_keys.add(key)
        self.client.force_login(self.bob)
        self.assertContains(self.client.get(f"/identities/{self.identity.pk}/"), "release machines")

    def test_it_answers_404_for_an_unknown_identity(self):
        self.client.force_login(self.alice)
        self.assertEqual(self.client.get("/identities/9999/").status_code, 404)


class ListTestCase(BaseTestCase):
    def test_it_lists_identities_with_sha1_and_state(self):
        identity, _ = self.store_identity()
        self.client.force_login(self.bob)
        response = self.client.get("/identities/")
        self.assertContains(response, identity.common_name)
        self.assertContains(response, identity.sha1.upper())
        self.assertContains(response, "All API keys")
        self.assertNotContains(response, "Import Signing Certificate")

    def test_it_offers_the_import_to_admins(self):
        self.client.force_login(self.alice)
        response = self.client.get("/identities/")
        self.assertContains(response, "No signing certificates yet")
        self.assertContains(response, 'href="/identities/import/"')
