"""What ``run`` does for the client download as it starts (``views.provide_client_wheel``): the
installed client's wheel in the client directory, or one warning and a main page saying why."""

import tempfile
import zipfile
from pathlib import Path
from unittest import mock

from django.test import override_settings

from signing_service import views
from signing_service.client_wheel import client_wheel_name
from signing_service.test import BaseTestCase

WHEEL = client_wheel_name()


class WheelAtStartTestCase(BaseTestCase):
    def setUp(self):
        self.data_dir = Path(self.enterContext(tempfile.TemporaryDirectory()))
        self.wheel_dir = self.data_dir / "client"
        self.enterContext(
            override_settings(DATA_DIR=self.data_dir, CLIENT_WHEEL_DIR=self.wheel_dir)
        )
        self.enterContext(mock.patch.object(views, "wheel_problem", ""))

    def make_unwritable(self) -> Path:
        """A client directory the service cannot make: a file is where its parent should be
        (the tests run as root, whom permissions do not stop)."""
        (self.data_dir / "blocked").write_text("a file, not a folder")
        return self.data_dir / "blocked" / "client"

    def test_it_puts_the_installed_clients_wheel_in_the_client_directory(self):
        with self.assertLogs("signing_service", "INFO") as logs:
            views.provide_client_wheel()
        wheel = self.wheel_dir / WHEEL
        self.assertTrue(zipfile.is_zipfile(wheel))
        self.assertEqual(logs.output, [f"INFO:signing_service:Signing Manager download {wheel}"])
        self.client.force_login(self.bob)
        self.assertContains(self.client.get("/"), f'href="/client/{WHEEL}"')
        self.client.logout()
        response = self.client.get(f"/client/{WHEEL}")
        self.assertEqual(b"".join(response.streaming_content), wheel.read_bytes())

    def test_a_wheel_already_there_is_served_as_it_is(self):
        # As in the container image: pip built it into a folder the service may not write.
        self.wheel_dir.mkdir()
        (self.wheel_dir / WHEEL).write_bytes(b"PK\x03\x04 the image's wheel")
        views.provide_client_wheel()
        self.assertEqual((self.wheel_dir / WHEEL).read_bytes(), b"PK\x03\x04 the image's wheel")
        response = self.client.get(f"/client/{WHEEL}")
        self.assertEqual(b"".join(response.streaming_content), b"PK\x03\x04 the image's wheel")

    def test_a_directory_it_cannot_write_costs_one_warning_and_the_page_says_why(self):
        blocked = self.make_unwritable()
        with override_settings(CLIENT_WHEEL_DIR=blocked):
            with self.assertLogs("signing_service", "INFO") as logs:
                views.provide_client_wheel()
            self.client.force_login(self.bob)
            response = self.client.get("/")
            latest = self.client.get("/client/signing-manager.whl")
        problem = f"the service could not write {WHEEL} to {blocked} (Not a directory)"
        self.assertEqual(
            logs.output, [f"WARNING:signing_service:No Signing Manager download: {problem}."]
        )
        self.assertContains(
            response,
            f"No Signing Manager package is available to download: {problem} when it started. "
            "Make that directory writable for the service, or set "
            "SIGNING_SERVICE_CLIENT_WHEEL_DIR to one that is, and restart the service.",
        )
        self.assertNotContains(response, "Download Signing Manager")
        self.assertEqual(latest.status_code, 404)

    def test_a_later_start_that_succeeds_forgets_the_problem(self):
        with (
            override_settings(CLIENT_WHEEL_DIR=self.make_unwritable()),
            self.assertLogs("signing_service", "WARNING"),
        ):
            views.provide_client_wheel()
        views.provide_client_wheel()
        self.assertEqual(views.wheel_problem, "")
        self.client.force_login(self.bob)
        response = self.client.get("/")
        self.assertContains(response, "Download Signing Manager")
        self.assertNotContains(response, "could not write")
