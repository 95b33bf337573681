"""Identities fit for their use: a certificate that is not for code signing is refused at import
with the reason, unless an admin overrides the check explicitly, which the identity page shows."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID
from django.core.files.uploadedfile import SimpleUploadedFile

from signing_service.identities.models import Identity
from signing_service.identities.p12 import P12Error, parse_p12
from signing_service.test import (
    P12_PASSWORD,
    BaseTestCase,
    cached_key,
    fake_ca,
    make_certificate,
    openssl_p12,
)

INSTALLER = x509.ObjectIdentifier("1.2.840.113635.100.4.13")


def p12_with(usages, name: str = "Usage Test (ABCDE12345)", index: int = 3) -> bytes:
    key = cached_key("rsa2048", index)
    return openssl_p12(make_certificate(key, name, usages=usages), key, P12_PASSWORD)


def without_digital_signature() -> bytes:
    """A code-signing EKU, but a key usage that allows only key encipherment."""
    key = cached_key("rsa2048", 4)
    ca, ca_key = fake_ca()
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name.from_rfc4514_string("CN=Encipherment only"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(5)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.KeyUsage(False, False, True, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    return openssl_p12(certificate, key, P12_PASSWORD)


@pytest.mark.parametrize(
    "usages",
    [[ExtendedKeyUsageOID.CODE_SIGNING], [INSTALLER], [ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE]],
    ids=["code signing", "Apple installer", "any usage"],
)
def test_code_and_installer_signing_certificates_are_imported(usages):
    assert not parse_p12(p12_with(usages), P12_PASSWORD).usage_check_overridden


def test_a_tls_server_certificate_is_refused_with_the_reason():
    with pytest.raises(P12Error) as refused:
        parse_p12(p12_with([ExtendedKeyUsageOID.SERVER_AUTH]), P12_PASSWORD)

    assert str(refused.value).startswith(
        "The certificate is not for code signing: its extended key usage allows only TLS Web "
        "Server Authentication. Import a code-signing identity"
    )


def test_a_key_usage_without_digital_signatures_is_refused():
    with pytest.raises(P12Error, match="its key usage does not allow digital signatures"):
        parse_p12(without_digital_signature(), P12_PASSWORD)


def test_the_override_imports_it_and_says_so():
    parsed = parse_p12(
        p12_with([ExtendedKeyUsageOID.SERVER_AUTH]), P12_PASSWORD, allow_any_usage=True
    )

    assert parsed.usage_check_overridden


class UsageImportTestCase(BaseTestCase):
    def setUp(self):
        self.client.force_login(self.alice)
        self.tls_only = p12_with([ExtendedKeyUsageOID.SERVER_AUTH], "www.example.com")

    def upload(self, **extra):
        data = {"p12_file": SimpleUploadedFile("id.p12", self.tls_only), "password": P12_PASSWORD}
        return self.client.post("/identities/import/", {**data, **extra})

    def test_the_import_page_refuses_it_and_stores_nothing(self):
        response = self.upload()

        self.assertContains(response, "The certificate is not for code signing")
        self.assertContains(response, "TLS Web Server Authentication")
        self.assertFalse(Identity.objects.exists())

    def test_an_admins_explicit_override_imports_it_and_the_page_says_so(self):
        response = self.upload(allow_any_usage="on")

        identity = Identity.objects.get()
        self.assertRedirects(response, f"/identities/{identity.pk}/")
        self.assertTrue(identity.usage_check_overridden)
        page = self.client.get(f"/identities/{identity.pk}/")
        self.assertContains(page, "imported with the usage check overridden")

    def test_a_code_signing_identity_carries_no_such_warning(self):
        identity, _ = self.store_identity()

        page = self.client.get(f"/identities/{identity.pk}/")

        self.assertFalse(identity.usage_check_overridden)
        self.assertNotContains(page, "usage check overridden")
