"""The main page's client set-up (``_client_setup.html``): the wheel this service offers, how to
get its certificate, and the install and configure commands."""

import tempfile
from pathlib import Path
from unittest import mock

from django.test import override_settings

from signing_service import views
from signing_service.client_wheel import client_wheel_name
from signing_service.test import BaseTestCase, copyable_value
from signing_service.tls import certificate_sha256, ensure_self_signed_certificate

WHEEL = client_wheel_name()
OLD_WHEEL = "signing_manager-0.0.1-py3-none-any.whl"


class MainPageTestCase(BaseTestCase):
    def setUp(self):
        self.data_dir = Path(self.enterContext(tempfile.TemporaryDirectory()))
        self.wheel_dir = self.data_dir / "client"
        self.wheel_dir.mkdir()
        self.enterContext(
            override_settings(DATA_DIR=self.data_dir, CLIENT_WHEEL_DIR=self.wheel_dir)
        )
        self.enterContext(mock.patch.object(views, "wheel_problem", ""))
        self.client.force_login(self.bob)

    def put_wheel(self, name: str = WHEEL) -> Path:
        path = self.wheel_dir / name
        path.write_bytes(b"PK\x03\x04 a wheel")
        return path

    def put_certificate(self) -> str:
        """The service's self-signed certificate, as ``run`` makes it; its SHA-256."""
        cert_path, _ = ensure_self_signed_certificate(self.data_dir / "tls", ["localhost"])
        return certificate_sha256(cert_path)

    def main_page(self, **options) -> str:
        response = self.client.get("/", **options)
        self.assertEqual(response.status_code, 200)
        return response.content.decode()

    def test_it_links_the_wheel_for_download(self):
        self.put_wheel()
        self.assertContains(
            self.client.get("/"),
            f'<a class="button" href="/client/{WHEEL}">Download Signing Manager</a>',
        )

    def test_it_links_the_address_that_stays_the_same_across_versions(self):
        self.put_wheel()
        response = self.client.get("/", secure=True)
        self.assertContains(
            response,
            '<a href="/client/signing-manager.whl">https://testserver/client/signing-manager.whl</a>',
        )

    def test_it_shows_the_install_command_with_the_versioned_address(self):
        self.put_wheel()
        page = self.main_page(secure=True)
        self.assertEqual(
            copyable_value(page, "install-command"),
            f"pipx install https://testserver/client/{WHEEL}",
        )
        self.assertIn('data-copy="install-command"', page)

    def test_it_shows_the_configure_command_with_a_placeholder_key(self):
        self.put_wheel()
        page = self.main_page(secure=True)
        self.assertEqual(
            copyable_value(page, "configure-command"),
            "signing-manager -s -i https://testserver -a YOUR_API_KEY",
        )
        self.assertIn('data-copy="configure-command"', page)
        self.assertIn('<a href="/api-keys/">API Keys</a> page, in place of YOUR_API_KEY', page)

    @override_settings(PUBLIC_URL="https://signing.example.com")
    def test_the_commands_use_the_public_url(self):
        self.put_wheel()
        page = self.main_page()
        self.assertEqual(
            copyable_value(page, "install-command"),
            f"pipx install https://signing.example.com/client/{WHEEL}",
        )
        self.assertEqual(
            copyable_value(page, "configure-command"),
            "signing-manager -s -i https://signing.example.com -a YOUR_API_KEY",
        )

    def test_with_a_self_signed_certificate_the_commands_trust_it(self):
        self.put_wheel()
        fingerprint = self.put_certificate()
        page = self.main_page(secure=True)
        self.assertEqual(
            copyable_value(page, "certificate-command"),
            "curl --insecure --output signing-service.pem "
            "https://testserver/client/signing-service.pem",
        )
        self.assertIn('href="/client/signing-service.pem"', page)
        self.assertIn(f'<code class="fingerprint">{fingerprint}</code>', page)
        self.assertIn("openssl x509 -noout -fingerprint -sha256 -in signing-service.pem", page)
        self.assertEqual(
            copyable_value(page, "install-command"),
            "curl --cacert signing-service.pem --remote-name "
            f"https://testserver/client/{WHEEL} && pipx install ./{WHEEL}",
        )
        self.assertEqual(
            copyable_value(page, "configure-command"),
            "signing-manager -s -i https://testserver -a YOUR_API_KEY -u",
        )

    def test_without_a_self_signed_certificate_none_is_mentioned(self):
        self.put_wheel()
        page = self.main_page(secure=True)
        self.assertNotIn("signing-service.pem", page)
        self.assertNotIn('id="certificate-command"', page)
        self.assertNotIn("-u", copyable_value(page, "configure-command"))

    @override_settings(BEHIND_PROXY=True)
    def test_behind_a_proxy_the_certificate_is_not_offered(self):
        self.put_wheel()
        self.put_certificate()
        page = self.main_page(secure=True)
        self.assertEqual(
            copyable_value(page, "install-command"),
            f"pipx install https://testserver/client/{WHEEL}",
        )
        self.assertNotIn("signing-service.pem", page)
        self.assertNotIn("YOUR_API_KEY -u", page)

    def test_it_tells_a_ci_runner_without_a_keyring_what_to_set(self):
        self.put_wheel()
        page = self.main_page(secure=True)
        self.assertIn("<code>SIGNING_MANAGER_URL=https://testserver</code>", page)
        self.assertIn("<code>SIGNING_MANAGER_API_KEY=YOUR_API_KEY</code>", page)
        self.assertNotIn("$SIGNING_MANAGER_API_KEY", page)

    def test_a_ci_runner_is_told_the_self_signed_certificate_s_fingerprint(self):
        self.put_wheel()
        self.put_certificate()
        page = self.main_page(secure=True)
        fingerprint = certificate_sha256(self.data_dir / "tls" / "cert.pem")
        self.assertIn(f"<code>SIGNING_MANAGER_SERVICE_SHA256={fingerprint}</code>", page)

    def test_an_earlier_versions_wheel_is_not_offered(self):
        self.put_wheel(OLD_WHEEL)
        page = self.main_page()
        self.assertNotIn("Download Signing Manager", page)
        self.assertNotIn(OLD_WHEEL, page)
        self.assertIn(f"{self.wheel_dir} holds no {WHEEL}.", page)

    def test_beside_an_earlier_versions_wheel_the_installed_one_is_offered(self):
        self.put_wheel(OLD_WHEEL)
        self.put_wheel()
        page = self.main_page()
        self.assertIn(f'href="/client/{WHEEL}"', page)
        self.assertNotIn(OLD_WHEEL, page)

    def test_it_offers_no_other_file(self):
        self.put_wheel("signing_service-0.1.0-py3-none-any.whl")
        self.put_wheel("signing_manager-0.1.0.tar.gz")
        self.put_wheel("signing_manager-0.1.0-cp311-cp311-win_amd64.whl")
        page = self.main_page()
        self.assertNotIn("Download Signing Manager", page)
        self.assertNotIn("/client/signing_", page)

    def test_without_a_wheel_it_says_why_and_still_shows_how_to_configure(self):
        page = self.main_page(secure=True)
        self.assertIn(
            '<p class="notice">No Signing Manager package is available to download: '
            f"{self.wheel_dir} holds no {WHEEL}. The service puts it there when it starts: "
            "restart the service.</p>",
            page,
        )
        self.assertNotIn("Download Signing Manager", page)
        self.assertNotIn('id="install-command"', page)
        self.assertNotIn("uv build", page)
        self.assertEqual(
            copyable_value(page, "configure-command"),
            "signing-manager -s -i https://testserver -a YOUR_API_KEY",
        )

    def test_a_missing_wheel_directory_is_no_wheel(self):
        self.wheel_dir.rmdir()
        self.assertIn("No Signing Manager package is available to download", self.main_page())
