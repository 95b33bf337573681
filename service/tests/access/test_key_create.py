import re
import tempfile
from pathlib import Path
from unittest import mock

from django.test import override_settings

from signing_service import views
from signing_service.access.models import ApiKey
from signing_service.client_wheel import client_wheel_name
from signing_service.test import BaseTestCase, copyable_value
from signing_service.tls import ensure_self_signed_certificate

SECRET = re.compile(r"smk_[0-9a-f]{10}_[A-Za-z0-9_-]{43}")


class KeyCreateTestCase(BaseTestCase):
    def setUp(self):
        self.client.force_login(self.alice)

    def create(self, name="build machines"):
        """The answer to the form: the "API key created" page, or the form with its errors."""
        return self.client.post("/api-keys/new/", {"name": name}, follow=True)

    def secret_in(self, response) -> str:
        found = SECRET.findall(response.content.decode())
        self.assertTrue(found, "the page shows no API key")
        self.assertEqual(len(set(found)), 1)
        return found[0]

    def test_it_shows_the_form(self):
        response = self.client.get("/api-keys/new/")
        self.assertContains(response, 'name="name"')
        self.assertContains(response, "Create API key")

    def test_it_creates_a_key_and_shows_its_secret(self):
        response = self.create()
        self.assertEqual(response.status_code, 200)
        secret = self.secret_in(response)
        key = ApiKey.objects.get()
        self.assertEqual(key.name, "build machines")
        self.assertEqual(key.created_by, self.alice)
        self.assertTrue(key.is_active)
        self.assertEqual(ApiKey.find(secret), key)
        self.assertContains(response, f'value="{secret}"')

    def test_the_form_redirects_to_the_created_page(self):
        response = self.client.post("/api-keys/new/", {"name": "build machines"})
        key = ApiKey.objects.get()
        self.assertRedirects(response, f"/api-keys/{key.pk}/created/")

    def test_reloading_the_created_page_makes_no_key_and_shows_no_secret(self):
        secret = self.secret_in(self.create())
        key = ApiKey.objects.get()
        response = self.client.get(f"/api-keys/{key.pk}/created/")
        self.assertEqual(response.status_code, 200)
        self.assertNotContains(response, secret.split("_", 2)[2])
        self.assertNotContains(response, 'id="client-setup"')
        self.assertContains(response, "was shown once, when it was")
        self.assertEqual(ApiKey.objects.count(), 1)

    def test_the_secret_waits_only_for_its_own_key(self):
        self.client.post("/api-keys/new/", {"name": "one"})
        other = ApiKey.create("two")[0]
        response = self.client.get(f"/api-keys/{other.pk}/created/")
        self.assertNotRegex(response.content.decode(), SECRET)
        response = self.client.get(f"/api-keys/{ApiKey.objects.get(name='one').pk}/created/")
        self.secret_in(response)

    def test_the_page_with_the_secret_is_not_cacheable(self):
        response = self.create()
        cache_control = response["Cache-Control"]
        self.assertIn("no-store", cache_control)
        self.assertIn("no-cache", cache_control)
        self.assertIn("private", cache_control)

    def test_the_secret_is_never_shown_again(self):
        secret = self.secret_in(self.create())
        key = ApiKey.objects.get()
        random_part = secret.split("_", 2)[2]
        for path in [
            "/",
            "/api-keys/",
            "/api-keys/new/",
            f"/api-keys/{key.pk}/clients/",
            "/api-keys/clients/",
            f"/api-keys/{key.pk}/delete/",
            "/api/",
        ]:
            with self.subTest(path=path):
                response = self.client.get(path)
                self.assertEqual(response.status_code, 200)
                self.assertNotContains(response, random_part)

    def test_each_creation_makes_a_new_key(self):
        first = self.secret_in(self.create("one"))
        second = self.secret_in(self.create("two"))
        self.assertNotEqual(first, second)
        self.assertEqual(ApiKey.objects.count(), 2)

    def test_a_name_taken_in_any_case_is_refused(self):
        self.create("Build Machines")
        response = self.create("build machines")
        self.assertContains(response, "An API key named “Build Machines” exists already")
        self.assertNotRegex(response.content.decode(), SECRET)
        self.assertEqual(ApiKey.objects.count(), 1)

    def test_the_name_is_required(self):
        for name in ["", "   "]:
            with self.subTest(name=name):
                response = self.create(name)
                self.assertContains(response, "This field is required.")
                self.assertNotRegex(response.content.decode(), SECRET)
        self.assertFalse(ApiKey.objects.exists())

    def test_the_name_is_limited_to_100_characters(self):
        response = self.create("x" * 101)
        self.assertContains(response, "The name has 101 characters; use at most 100 characters.")
        self.assertFalse(ApiKey.objects.exists())

    def test_the_browser_does_not_cut_a_long_name(self):
        # maxlength would cut a pasted name without a word; the server says what is wrong.
        response = self.client.get("/api-keys/new/")
        self.assertNotContains(response, "maxlength")

    def test_the_name_is_escaped(self):
        response = self.create("<b>bold</b>")
        self.assertContains(response, "&lt;b&gt;bold&lt;/b&gt;")
        self.assertNotContains(response, "<b>bold</b>")

    def test_bob_may_not_create_keys(self):
        self.client.force_login(self.bob)
        self.assertEqual(self.client.get("/api-keys/new/").status_code, 403)
        self.assertEqual(self.create().status_code, 403)
        self.assertFalse(ApiKey.objects.exists())

    def test_it_needs_the_csrf_token(self):
        client = self.client_class(enforce_csrf_checks=True)
        client.force_login(self.alice)
        response = client.post("/api-keys/new/", {"name": "build machines"})
        self.assertEqual(response.status_code, 403)
        self.assertFalse(ApiKey.objects.exists())


class KeyCreatedClientSetupTestCase(BaseTestCase):
    """The page with the new key shows the main page's client set-up, with that key in it."""

    def setUp(self):
        self.data_dir = Path(self.enterContext(tempfile.TemporaryDirectory()))
        self.wheel_dir = self.data_dir / "client"
        self.wheel_dir.mkdir()
        (self.wheel_dir / client_wheel_name()).write_bytes(b"PK\x03\x04 a wheel")
        self.enterContext(
            override_settings(DATA_DIR=self.data_dir, CLIENT_WHEEL_DIR=self.wheel_dir)
        )
        self.enterContext(mock.patch.object(views, "wheel_problem", ""))
        self.client.force_login(self.alice)

    def created_page(self) -> tuple[str, str]:
        """The "API key created" page of a new key, and the key."""
        created = self.client.post("/api-keys/new/", {"name": "build machines"}, secure=True)
        response = self.client.get(created["Location"], secure=True)
        self.assertEqual(response.status_code, 200)
        page = response.content.decode()
        return page, copyable_value(page, "api-key-secret")

    def test_the_configure_command_holds_the_new_key(self):
        page, secret = self.created_page()
        self.assertRegex(secret, SECRET)
        self.assertEqual(
            copyable_value(page, "configure-command"),
            f"signing-manager -s -i https://testserver -a {secret}",
        )
        self.assertIn(f"<code>SIGNING_MANAGER_API_KEY={secret}</code>", page)
        self.assertNotIn("YOUR_API_KEY", page)

    def test_against_a_self_signed_service_the_commands_trust_it(self):
        ensure_self_signed_certificate(self.data_dir / "tls", ["localhost"])
        page, secret = self.created_page()
        self.assertEqual(
            copyable_value(page, "configure-command"),
            f"signing-manager -s -i https://testserver -a {secret} -u",
        )
        self.assertTrue(
            copyable_value(page, "install-command").startswith(
                "curl --cacert signing-service.pem --remote-name https://testserver/client/"
            )
        )
        self.assertIn('id="certificate-command"', page)

    def test_it_offers_the_download_as_the_main_page_does(self):
        page, _ = self.created_page()
        self.assertIn(f'href="/client/{client_wheel_name()}">Download Signing Manager</a>', page)
        self.assertIn('<section class="card" id="client-setup">', page)

    def test_without_a_wheel_it_still_shows_how_to_configure(self):
        (self.wheel_dir / client_wheel_name()).unlink()
        page, secret = self.created_page()
        self.assertIn("No Signing Manager package is available to download", page)
        self.assertNotIn('id="install-command"', page)
        self.assertIn(f"-a {secret}", copyable_value(page, "configure-command"))


class NonPrintableNameTestCase(BaseTestCase):
    def test_a_name_with_a_tab_is_refused(self):
        self.client.force_login(self.alice)
        response = self.client.post("/api-keys/new/", {"name": "build\tmachines"})
        self.assertContains(response, "Use printable characters only")
        self.assertFalse(ApiKey.objects.exists())
