"""The service's self-signed certificate, which clients download to trust the service."""

import tempfile
from pathlib import Path

from django.test import override_settings

from signing_service.test import BaseTestCase

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


class ServiceCertificateTestCase(BaseTestCase):
    def setUp(self):
        self.data_dir = Path(self.enterContext(tempfile.TemporaryDirectory()))
        self.enterContext(override_settings(DATA_DIR=self.data_dir))

    def put_certificate(self):
        (self.data_dir / "tls").mkdir()
        (self.data_dir / "tls" / "cert.pem").write_bytes(PEM)
        (self.data_dir / "tls" / "key.pem").write_bytes(b"-----BEGIN PRIVATE KEY-----\n")

    def test_anyone_may_download_it(self):
        self.put_certificate()
        response = self.client.get("/client/signing-service.pem")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(b"".join(response.streaming_content), PEM)
        self.assertEqual(
            response["Content-Disposition"], 'attachment; filename="signing-service.pem"'
        )
        self.assertEqual(response["Content-Type"], "application/x-pem-file")

    def test_it_is_404_without_a_self_signed_certificate(self):
        response = self.client.get("/client/signing-service.pem")
        self.assertEqual(response.status_code, 404)

    def test_the_private_key_is_never_served(self):
        self.put_certificate()
        for path in ["/client/key.pem", "/client/..%2Ftls%2Fkey.pem", "/client/cert.pem"]:
            with self.subTest(path=path):
                response = self.client.get(path)
                self.assertEqual(response.status_code, 404)
                self.assertNotIn(b"PRIVATE KEY", response.content)
