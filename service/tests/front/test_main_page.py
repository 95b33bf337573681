"""The main page's client set-up: the wheel this service serves and the two commands."""

import os
import tempfile
from pathlib import Path

from django.test import override_settings

from signing_service.test import BaseTestCase

WHEEL = "signing_manager-0.1.0-py3-none-any.whl"


class MainPageTestCase(BaseTestCase):
    def setUp(self):
        self.data_dir = Path(self.enterContext(tempfile.TemporaryDirectory()))
        self.wheel_dir = self.data_dir / "client"
        self.wheel_dir.mkdir()
        self.enterContext(
            override_settings(DATA_DIR=self.data_dir, CLIENT_WHEEL_DIR=self.wheel_dir)
        )
        self.client.force_login(self.bob)

    def put_wheel(self, name: str = WHEEL, age: int = 0) -> Path:
        path = self.wheel_dir / name
        path.write_bytes(b"PK\x03\x04 a wheel")
        if age:
            stamp = path.stat().st_mtime - age
            os.utime(path, (stamp, stamp))
        return path

    def put_certificate(self):
        (self.data_dir / "tls").mkdir()
        (self.data_dir / "tls" / "cert.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\n")

    def test_it_links_the_wheel_for_download(self):
        self.put_wheel()
        response = self.client.get("/")
        self.assertContains(
            response, f'<a class="button" href="/client/{WHEEL}">Download Signing Manager</a>'
        )

    def test_it_shows_the_install_command(self):
        self.put_wheel()
        response = self.client.get("/", secure=True)
        self.assertContains(
            response, f'value="pipx install https://testserver/client/{WHEEL}"', html=False
        )
        self.assertContains(response, 'data-copy="install-command"')

    def test_it_shows_the_configure_command(self):
        self.put_wheel()
        response = self.client.get("/", secure=True)
        self.assertContains(
            response, 'value="signing-manager -s -i https://testserver -a YOUR_API_KEY"'
        )
        self.assertContains(response, 'data-copy="configure-command"')

    @override_settings(PUBLIC_URL="https://signing.example.com")
    def test_the_commands_use_the_public_url(self):
        self.put_wheel()
        response = self.client.get("/")
        self.assertContains(
            response, f'value="pipx install https://signing.example.com/client/{WHEEL}"'
        )
        self.assertContains(
            response, 'value="signing-manager -s -i https://signing.example.com -a YOUR_API_KEY"'
        )

    def test_with_a_self_signed_certificate_the_commands_trust_it(self):
        self.put_wheel()
        self.put_certificate()
        response = self.client.get("/", secure=True)
        self.assertContains(
            response,
            f'value="pipx install https://testserver/client/{WHEEL}'
            " --pip-args='--cert signing-service.pem'\"",
        )
        self.assertContains(
            response, 'value="signing-manager -s -i https://testserver -a YOUR_API_KEY -u"'
        )
        self.assertContains(response, 'href="/client/signing-service.pem"')

    @override_settings(BEHIND_PROXY=True)
    def test_behind_a_proxy_the_certificate_is_not_offered(self):
        self.put_wheel()
        self.put_certificate()
        response = self.client.get("/", secure=True)
        self.assertContains(response, f'value="pipx install https://testserver/client/{WHEEL}"')
        self.assertNotContains(response, "signing-service.pem")
        self.assertNotContains(response, "YOUR_API_KEY -u")

    def test_it_offers_the_newest_wheel(self):
        self.put_wheel("signing_manager-0.1.0-py3-none-any.whl", age=3600)
        self.put_wheel("signing_manager-0.2.0-py3-none-any.whl")
        response = self.client.get("/")
        self.assertContains(response, 'href="/client/signing_manager-0.2.0-py3-none-any.whl"')
        self.assertNotContains(response, "signing_manager-0.1.0")

    def test_it_offers_no_other_file(self):
        self.put_wheel("signing_service-0.1.0-py3-none-any.whl")
        self.put_wheel("signing_manager-0.1.0.tar.gz")
        self.put_wheel("signing_manager-0.1.0-cp311-cp311-win_amd64.whl")
        response = self.client.get("/")
        self.assertNotContains(response, "Download Signing Manager")
        self.assertNotContains(response, "/client/signing_")

    def test_without_a_wheel_it_explains_how_to_build_one(self):
        response = self.client.get("/")
        self.assertContains(
            response, "No Signing Manager package has been put on this service yet."
        )
        self.assertContains(response, "uv build --wheel --package signing-manager")
        self.assertNotContains(response, "Download Signing Manager")
        self.assertNotContains(response, "pipx install")
        self.assertContains(response, 'href="/api-keys/"')

    def test_a_missing_wheel_directory_is_no_wheel(self):
        self.wheel_dir.rmdir()
        response = self.client.get("/")
        self.assertContains(
            response, "No Signing Manager package has been put on this service yet."
        )
