"""The API reference page: version information and the locally served API documents."""

import datetime
import platform
import re
import sqlite3
import tempfile
from pathlib import Path

import django
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.db import connection
from django.test import override_settings

import signing_service
from signing_service.test import BaseTestCase

EXTERNAL = re.compile(r"cdn|unpkg|jsdelivr|cloudflare|googleapis|https?://|(src|href)=\"//", re.I)


def self_signed_certificate() -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "signing.example.com")])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


class ReferencePageTestCase(BaseTestCase):
    def test_every_user_may_open_it(self):
        for user in [self.alice, self.bob]:
            with self.subTest(user=user.username):
                self.client.force_login(user)
                response = self.client.get("/api/")
                self.assertContains(response, "<h1>API Reference</h1>")

    def test_the_nav_links_it_for_bob(self):
        self.client.force_login(self.bob)
        self.assertContains(self.client.get("/"), 'href="/api/"')

    def test_anonymous_users_are_sent_to_sign_in(self):
        response = self.client.get("/api/")
        self.assertRedirects(response, "/accounts/login/?next=/api/", fetch_redirect_response=False)

    def test_it_shows_the_versions(self):
        self.client.force_login(self.bob)
        response = self.client.get("/api/")
        for label, value in [
            ("Service version", signing_service.__version__),
            ("API version", "1"),
            ("Python", platform.python_version()),
            ("Django", django.get_version()),
        ]:
            self.assertContains(response, f'<th scope="row">{label}</th><td>{value}</td>')

    def test_it_shows_the_database_engine_and_version(self):
        self.client.force_login(self.bob)
        body = self.client.get("/api/").content.decode()
        if connection.vendor == "sqlite":
            expected = f"SQLite {sqlite3.sqlite_version}</td>"
        else:
            self.assertEqual(connection.vendor, "postgresql")
            expected = f"PostgreSQL {connection.pg_version // 10000}."
        self.assertIn(f'<th scope="row">Database</th><td>{expected}', body)

    def test_it_links_to_the_api_documents(self):
        self.client.force_login(self.bob)
        response = self.client.get("/api/")
        self.assertContains(response, 'href="/api/v1/docs"')
        self.assertContains(response, 'href="/api/v1/openapi.json"')
        self.assertContains(response, "<code>http://testserver/api/v1/</code>")

    def test_it_shows_the_certificate_fingerprint_a_client_pins(self):
        certificate = self_signed_certificate()
        with tempfile.TemporaryDirectory() as directory:
            (Path(directory) / "tls").mkdir()
            pem = certificate.public_bytes(serialization.Encoding.PEM)
            (Path(directory) / "tls" / "cert.pem").write_bytes(pem)
            self.client.force_login(self.bob)
            with override_settings(DATA_DIR=Path(directory)):
                response = self.client.get("/api/")
        fingerprint = certificate.fingerprint(hashes.SHA256()).hex(":").upper()
        self.assertContains(response, fingerprint)

    def test_it_shows_how_the_request_reached_the_service(self):
        self.client.force_login(self.bob)
        response = self.client.get(
            "/api/", HTTP_X_FORWARDED_FOR="203.0.113.7", REMOTE_ADDR="10.0.0.9"
        )
        self.assertContains(response, "<td>203.0.113.7</td>")
        self.assertContains(response, "<td>10.0.0.9</td>")
        self.assertContains(response, '<th scope="row">X-Forwarded-Proto</th><td>(none)</td>')


class ApiDocumentsTestCase(BaseTestCase):
    def test_the_openapi_document_is_served(self):
        response = self.client.get("/api/v1/openapi.json")
        self.assertEqual(response.status_code, 200)
        document = response.json()
        self.assertEqual(document["info"]["version"], "1")
        self.assertIn("/api/v1/version", document["paths"])

    def test_the_interactive_reference_is_served_from_our_own_static_files(self):
        self.client.force_login(self.bob)
        response = self.client.get("/api/v1/docs")
        self.assertEqual(response.status_code, 200)
        body = response.content.decode()
        self.assertIn('<script src="/static/ninja/swagger-ui-bundle.js"></script>', body)
        self.assertIn('href="/static/ninja/swagger-ui.css"', body)
        self.assertIn("/api/v1/openapi.json", body)
        self.assertNotRegex(body, EXTERNAL)
        for source in re.findall(r'(?:src|href)="([^"]+)"', body):
            with self.subTest(source=source):
                self.assertTrue(source.startswith("/static/ninja/"), source)

    def test_the_reference_s_assets_are_served(self):
        for path in ["/static/ninja/swagger-ui-bundle.js", "/static/ninja/swagger-ui.css"]:
            with self.subTest(path=path):
                response = self.client.get(path)
                self.assertEqual(response.status_code, 200)
                self.assertGreater(len(b"".join(response.streaming_content)), 1000)

    def test_the_interactive_reference_runs_no_inline_script(self):
        body = self.client.get("/api/v1/docs").content.decode()
        for script in re.findall(r"<script([^>]*)>(.*?)</script>", body, re.S):
            attributes, code = script
            with self.subTest(script=attributes):
                self.assertTrue(
                    "src=" in attributes or 'type="application/json"' in attributes, attributes
                )
                if "src=" in attributes:
                    self.assertEqual(code.strip(), "")
