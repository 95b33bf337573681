"""The client wheel download: public, and exactly the wheel the main page offers, also through
an address that stays the same across versions."""

import tempfile
from pathlib import Path

from django.test import override_settings

from signing_service.client_wheel import client_wheel_name
from signing_service.test import BaseTestCase

WHEEL = client_wheel_name()
OLD_WHEEL = "signing_manager-0.0.1-py3-none-any.whl"
WHEEL_BYTES = b"PK\x03\x04 the signing-manager wheel"
SECRET_BYTES = b"master key material, never to be served"


class ClientDownloadTestCase(BaseTestCase):
    def setUp(self):
        self.data_dir = Path(self.enterContext(tempfile.TemporaryDirectory()))
        (self.data_dir / "master.key").write_bytes(SECRET_BYTES)
        (self.data_dir / "signing-service.sqlite3").write_bytes(SECRET_BYTES)
        self.wheel_dir = self.data_dir / "client"
        self.wheel_dir.mkdir()
        (self.wheel_dir / WHEEL).write_bytes(WHEEL_BYTES)
        self.enterContext(
            override_settings(DATA_DIR=self.data_dir, CLIENT_WHEEL_DIR=self.wheel_dir)
        )

    def download(self, path: str):
        response = self.client.get(path)
        content = b"".join(response.streaming_content) if response.streaming else response.content
        return response, content

    def test_anyone_may_download_the_wheel(self):
        response, content = self.download(f"/client/{WHEEL}")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(content, WHEEL_BYTES)
        self.assertEqual(response["Content-Disposition"], f'attachment; filename="{WHEEL}"')

    def test_signed_in_users_may_download_it_too(self):
        self.client.force_login(self.bob)
        response, content = self.download(f"/client/{WHEEL}")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(content, WHEEL_BYTES)

    def test_no_other_name_is_served(self):
        (self.wheel_dir / "notes.txt").write_bytes(SECRET_BYTES)
        for name in [
            "signing_manager-99.0.0-py3-none-any.whl",
            WHEEL.upper(),
            "notes.txt",
            "master.key",
            "signing-service.sqlite3",
            "signing_manager-*-py3-none-any.whl",
        ]:
            with self.subTest(name=name):
                response, content = self.download(f"/client/{name}")
                self.assertEqual(response.status_code, 404)
                self.assertNotIn(SECRET_BYTES, content)

    def test_no_path_leads_out_of_the_client_directory(self):
        for path in [
            "/client/..%2Fmaster.key",
            "/client/%2E%2E%2Fmaster.key",
            "/client/..%2F..%2Fetc%2Fpasswd",
            "/client/../master.key",
            "/client/..%5Cmaster.key",
            "/client/..\\master.key",
            "/client/%2Fetc%2Fpasswd",
            f"/client/{WHEEL}%2F..%2F..%2Fmaster.key",
            f"/client/{WHEEL}%00",
        ]:
            with self.subTest(path=path):
                response, content = self.download(path)
                self.assertEqual(response.status_code, 404)
                self.assertNotIn(SECRET_BYTES, content)

    def test_a_missing_wheel_is_404(self):
        (self.wheel_dir / WHEEL).unlink()
        response, _ = self.download(f"/client/{WHEEL}")
        self.assertEqual(response.status_code, 404)

    def test_a_missing_wheel_directory_is_404(self):
        with override_settings(CLIENT_WHEEL_DIR=self.data_dir / "nowhere"):
            response, _ = self.download(f"/client/{WHEEL}")
        self.assertEqual(response.status_code, 404)

    def test_the_link_on_the_main_page_downloads_the_wheel(self):
        self.client.force_login(self.alice)
        self.assertContains(self.client.get("/"), f'href="/client/{WHEEL}"')
        self.client.logout()
        _, content = self.download(f"/client/{WHEEL}")
        self.assertEqual(content, WHEEL_BYTES)

    def test_an_earlier_versions_wheel_is_not_served(self):
        (self.wheel_dir / OLD_WHEEL).write_bytes(b"PK\x03\x04 an earlier version")
        response, _ = self.download(f"/client/{OLD_WHEEL}")
        self.assertEqual(response.status_code, 404)

    def test_the_lasting_address_leads_to_the_versioned_one(self):
        (self.wheel_dir / OLD_WHEEL).write_bytes(b"PK\x03\x04 an earlier version")
        response = self.client.get("/client/signing-manager.whl")
        self.assertEqual(response.status_code, 302)
        self.assertEqual(response["Location"], f"/client/{WHEEL}")
        _, content = self.download(response["Location"])
        self.assertEqual(content, WHEEL_BYTES)

    def test_signed_in_users_follow_the_lasting_address_too(self):
        self.client.force_login(self.bob)
        self.assertRedirects(
            self.client.get("/client/signing-manager.whl"),
            f"/client/{WHEEL}",
            fetch_redirect_response=False,
        )

    def test_the_lasting_address_is_404_without_a_wheel(self):
        (self.wheel_dir / WHEEL).unlink()
        (self.wheel_dir / OLD_WHEEL).write_bytes(b"PK\x03\x04 an earlier version")
        self.assertEqual(self.client.get("/client/signing-manager.whl").status_code, 404)
