"""The web pages of keys kept in a token: generate with a CSR, download it, upload the issued
certificate, import a .p12 into a token; and where each key lives, on the pages and the API."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.core.files.uploadedfile import SimpleUploadedFile

from signing_service.accounts.models import UserAgreement
from signing_service.identities.models import Identity, PendingIdentity
from signing_service.test import BaseTestCase, issue_for_request, make_identity, token_objects

pytestmark = pytest.mark.django_db


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


@pytest.fixture
def admin(client):
    user = BaseTestCase.make_user(
        "alice", is_admin=True, accepted_agreement=UserAgreement.current()
    )
    client.force_login(user)
    return client


def test_generate_download_the_csr_and_upload_the_certificate(token_settings, admin):
    listing = admin.get("/identities/")
    assert "Generate Key in Token" in listing.text
    response = admin.post(
        "/identities/generate/",
        {
            "token": token_settings.label,
            "key": "rsa2048",
            "common_name": "Developer ID Application: Web (ABCDE12345)",
            "email": "release@example.com",
            "country": "us",
        },
    )
    assert response.status_code == 302, response.content
    pending = PendingIdentity.objects.get()
    assert response["Location"] == f"/identities/pending/{pending.pk}/"
    page = admin.get(response["Location"]).text
    assert "Waiting for its certificate" in page
    assert "emailAddress=release@example.com,CN=Developer ID Application: Web" in page
    assert f"the PKCS#11 token “{token_settings.label}”" in page
    assert "(pending)" in admin.get("/identities/").text

    download = admin.get(f"/identities/pending/{pending.pk}/csr/")
    assert download["Content-Type"] == "application/pkcs10"
    csr = x509.load_pem_x509_csr(download.content)
    assert csr.is_signature_valid
    assert csr.public_key().key_size == 2048
    assert "C=US" in csr.subject.rfc4514_string()

    # A certificate for another key is refused and the key stays pending.
    other = make_identity().certificate.public_bytes(serialization.Encoding.PEM)
    refused = admin.post(
        f"/identities/pending/{pending.pk}/",
        {"certificate": SimpleUploadedFile("other.cer", other)},
    )
    assert refused.status_code == 200
    assert "for another key" in refused.text
    assert PendingIdentity.objects.exists()

    accepted = admin.post(
        f"/identities/pending/{pending.pk}/",
        {"certificate": SimpleUploadedFile("issued.cer", der(issue_for_request(csr)))},
    )
    assert accepted.status_code == 302, accepted.content
    identity = Identity.objects.get()
    assert accepted["Location"] == f"/identities/{identity.pk}/"
    detail = admin.get(accepted["Location"]).text
    assert f"the PKCS#11 token “{token_settings.label}” (non-extractable)" in detail
    assert not PendingIdentity.objects.exists()

    # The test-sign page signs through the token.
    signed = admin.post(
        f"/identities/{identity.pk}/sign/", {"text": "hello", "algorithm": "rsa-pss-sha256"}
    )
    assert "Verified with the certificate's public key" in signed.text


def test_import_a_p12_into_the_token(token_settings, admin):
    made = make_identity(key_kind="ec256")
    form = admin.get("/identities/import/").text
    assert f"The PKCS#11 token “{token_settings.label}”" in form
    response = admin.post(
        "/identities/import/",
        {
            "p12_file": SimpleUploadedFile("id.p12", made.p12),
            "password": made.password,
            "key_location": token_settings.label,
        },
    )
    assert response.status_code == 302, response.content
    identity = Identity.objects.get()
    assert identity.key_location == f"token:{token_settings.label}"
    assert bytes(identity.encrypted_private_key) == b""
    assert "Token “" in admin.get("/identities/").text


def test_without_tokens_the_pages_are_as_before(admin):
    assert "Generate Key in Token" not in admin.get("/identities/").text
    assert "key_location" not in admin.get("/identities/import/").text
    page = admin.get("/identities/generate/")
    assert "No PKCS#11 token is configured" in page.text
    assert admin.post("/identities/generate/", {"common_name": "x"}).status_code == 200
    assert not PendingIdentity.objects.exists()


def test_deleting_a_pending_key_destroys_it_in_the_token(token_settings, admin):
    admin.post(
        "/identities/generate/",
        {"token": token_settings.label, "key": "ec-p256", "common_name": "To be deleted"},
    )
    pending = PendingIdentity.objects.get()
    response = admin.post(f"/identities/pending/{pending.pk}/delete/")
    assert response.status_code == 302
    assert not PendingIdentity.objects.exists()
    assert token_objects(token_settings.label, pending.token_key_id) == []


def test_only_admins_generate_or_see_pending_keys(token_settings, client):
    from signing_service.identities import token_keys

    pending = token_keys.generate_in_token(
        token_settings.label, "ec-p256", token_keys.Subject(common_name="Admins only")
    )
    bob = BaseTestCase.make_user("bob", accepted_agreement=UserAgreement.current())
    client.force_login(bob)
    for path in (
        "/identities/generate/",
        f"/identities/pending/{pending.pk}/",
        f"/identities/pending/{pending.pk}/csr/",
        f"/identities/pending/{pending.pk}/delete/",
    ):
        assert client.get(path).status_code == 403, path
    assert client.post(f"/identities/pending/{pending.pk}/delete/").status_code == 403
    assert "Admins only" not in client.get("/identities/").text
    assert PendingIdentity.objects.filter(pk=pending.pk).exists()
