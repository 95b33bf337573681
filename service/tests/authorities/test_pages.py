"""The Certificate Authorities pages: uploading an issuer completes identities' chains at once,
deleting it takes it out again; bad files and duplicates change nothing."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from django.core.files.uploadedfile import SimpleUploadedFile

from signing_manager.apple_pki import apple_certificates
from signing_service.access.models import ApiKey
from signing_service.authorities.models import CertificateAuthority
from signing_service.identities.models import Identity
from signing_service.identities.p12 import parse_p12
from signing_service.test import (
    P12_PASSWORD,
    BaseTestCase,
    cached_key,
    fake_ca,
    make_certificate,
    make_client,
    make_intermediate_ca,
    openssl_p12,
)

PEM = serialization.Encoding.PEM


def leaf_only_identity() -> Identity:
    """What Keychain Access exports: the leaf (issued by an intermediate) and its key only."""
    key = cached_key("rsa2048", 1)
    leaf = make_certificate(
        key, "Developer ID Application: Keychain (ABCDE12345)", issuer=make_intermediate_ca()
    )
    identity = Identity()
    identity.fill_from(parse_p12(openssl_p12(leaf, key, P12_PASSWORD), P12_PASSWORD))
    identity.save()
    return identity


class AuthorityPagesTestCase(BaseTestCase):
    def setUp(self):
        self.identity = leaf_only_identity()
        self.intermediate, _ = make_intermediate_ca()
        self.root, _ = fake_ca()

    def upload(self, data: bytes, name: str = "ca.pem"):
        return self.client.post(
            "/certificate-authorities/upload/",
            {"certificate_file": SimpleUploadedFile(name, data)},
        )

    def chain_names(self) -> list[str]:
        self.identity.refresh_from_db()
        return [cert.subject.rfc4514_string() for cert in self.identity.chain_certificates()]

    def test_a_leaf_only_identity_warns_until_its_issuers_are_uploaded(self):
        self.client.force_login(self.alice)
        page = self.client.get(f"/identities/{self.identity.pk}/")
        self.assertContains(page, "does not reach a root certificate")
        self.assertContains(page, "no issuer of\n    “Developer ID Application: Keychain")
        self.assertContains(self.client.get("/identities/"), "(incomplete chain)")

        response = self.upload(self.intermediate.public_bytes(PEM))
        self.assertRedirects(response, "/certificate-authorities/")
        self.assertEqual(self.chain_names(), ["CN=Signing Manager Test Intermediate CA"])
        self.assertFalse(self.identity.chain_reaches_root)
        page = self.client.get(f"/identities/{self.identity.pk}/")
        self.assertContains(page, "no issuer of\n    “Signing Manager Test Intermediate CA”")

        self.upload(self.root.public_bytes(serialization.Encoding.DER), "root.cer")
        self.assertEqual(
            self.chain_names(),
            ["CN=Signing Manager Test Intermediate CA", "CN=Signing Manager Test CA"],
        )
        self.assertTrue(self.identity.chain_reaches_root)
        page = self.client.get(f"/identities/{self.identity.pk}/")
        self.assertNotContains(page, "does not reach a root")
        self.assertNotContains(self.client.get("/identities/"), "(incomplete chain)")

    def test_deleting_an_issuer_takes_it_out_of_the_chains(self):
        self.client.force_login(self.alice)
        self.upload(self.intermediate.public_bytes(PEM) + self.root.public_bytes(PEM))
        root = CertificateAuthority.objects.get(common_name="Signing Manager Test CA")

        self.assertContains(
            self.client.get(f"/certificate-authorities/{root.pk}/delete/"), "Delete"
        )
        response = self.client.post(f"/certificate-authorities/{root.pk}/delete/")

        self.assertRedirects(response, "/certificate-authorities/")
        self.assertEqual(self.chain_names(), ["CN=Signing Manager Test Intermediate CA"])
        self.assertFalse(self.identity.chain_reaches_root)

    def test_the_list_shows_uploaded_and_shipped_cas_with_fingerprints(self):
        self.client.force_login(self.bob)
        self.upload(self.intermediate.public_bytes(PEM))  # bob may not: nothing stored
        self.client.force_login(self.alice)
        self.upload(self.intermediate.public_bytes(PEM))
        self.client.force_login(self.bob)

        page = self.client.get("/certificate-authorities/")

        self.assertContains(page, "Signing Manager Test Intermediate CA")
        self.assertContains(page, CertificateAuthority.objects.get().sha256.upper())
        self.assertContains(page, "Developer ID Certification Authority")
        self.assertContains(
            page, "B0B1730ECBC7FF4505142C49F1295E6EDA6BCAED7E2C68C5BE91B5A11001F024"
        )
        self.assertNotContains(page, "/delete/")
        self.assertNotContains(page, "/upload/")

    def test_bad_files_duplicates_and_apples_own_cas_are_refused_and_change_nothing(self):
        self.client.force_login(self.alice)
        self.upload(self.intermediate.public_bytes(PEM))
        chain_before = self.chain_names()
        apple = apple_certificates()[0].public_bytes(PEM)
        cases = {
            "garbage": (b"garbage", "not an X.509 certificate"),
            "duplicate": (self.intermediate.public_bytes(PEM), "is already uploaded"),
            # The root is new, the intermediate is not: the root is not kept either.
            "half new": (
                self.root.public_bytes(PEM) + self.intermediate.public_bytes(PEM),
                "is already uploaded",
            ),
            "Apple's": (apple, "ships with the service"),
        }
        for case, (data, reason) in cases.items():
            with self.subTest(case):
                response = self.upload(data)
                self.assertEqual(response.status_code, 200)
                self.assertContains(response, reason)
                self.assertEqual(CertificateAuthority.objects.count(), 1)
                self.assertEqual(self.chain_names(), chain_before)

    def test_the_api_returns_the_completed_chain_leafs_issuer_first(self):
        self.client.force_login(self.alice)
        self.upload(self.root.public_bytes(PEM) + self.intermediate.public_bytes(PEM))
        _, token = make_client(ApiKey.create("build machines")[0])

        response = self.client.get(
            "/api/v1/certificates", headers={"Authorization": f"Bearer {token}"}
        )

        (listed,) = response.json()["certificates"]
        self.assertEqual(
            listed["chain"],
            [
                base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()
                for c in [self.intermediate, self.root]
            ],
        )
