import base64
import datetime
import hashlib
from unittest import mock

from django.core.files.uploadedfile import SimpleUploadedFile

from signing_manager.algorithms import Algorithm, verify_digest
from signing_service.audit.models import AuditEvent, RequestType
from signing_service.test import BaseTestCase


class TestSignTestCase(BaseTestCase):
    def setUp(self):
        self.identity, self.made = self.store_identity()
        self.client.force_login(self.alice)

    def signature_in(self, response) -> bytes:
        body = response.content.decode()
        encoded = body.split('<pre id="signature">', 1)[1].split("</pre>", 1)[0]
        return base64.b64decode(encoded)

    def test_it_signs_text_and_shows_a_verified_signature(self):
        response = self.client.post(
            f"/identities/{self.identity.pk}/sign/",
            {"text": "hello", "algorithm": "rsa-pss-sha256"},
        )
        self.assertContains(response, "Verified with the certificate's public key")
        digest = hashlib.sha256(b"hello").digest()
        signature = self.signature_in(response)
        public_key = self.made.certificate.public_key()
        self.assertTrue(verify_digest(public_key, Algorithm.RSA_PSS_SHA256, digest, signature))

    def test_it_signs_an_uploaded_file(self):
        content = bytes(range(256)) * 100
        response = self.client.post(
            f"/identities/{self.identity.pk}/sign/",
            {"upload": SimpleUploadedFile("app.bin", content), "algorithm": "rsa-pkcs1v15-sha512"},
        )
        digest = hashlib.sha512(content).digest()
        signature = self.signature_in(response)
        public_key = self.made.certificate.public_key()
        self.assertTrue(verify_digest(public_key, Algorithm.RSA_PKCS1V15_SHA512, digest, signature))

    def test_it_audits_the_signature(self):
        self.client.post(
            f"/identities/{self.identity.pk}/sign/",
            {"text": "hello", "algorithm": "rsa-pss-sha256"},
        )
        event = AuditEvent.objects.get(request_type=RequestType.SIGN)
        self.assertEqual(
            (event.request_type, event.status, event.source), ("sign", "success", "web")
        )
        self.assertEqual(event.username, "alice")
        self.assertEqual(event.identity_sha1, self.identity.sha1)
        self.assertEqual(event.digest, hashlib.sha256(b"hello").hexdigest())

    def test_it_offers_only_the_algorithms_of_the_key_type(self):
        ec_identity, _ = self.store_identity(key_kind="ec256")
        response = self.client.get(f"/identities/{ec_identity.pk}/sign/")
        self.assertContains(response, "ecdsa-sha256")
        self.assertNotContains(response, "rsa-pss-sha256")
        response = self.client.post(
            f"/identities/{ec_identity.pk}/sign/", {"text": "x", "algorithm": "rsa-pss-sha256"}
        )
        self.assertContains(response, "Select a valid choice")
        self.assertFalse(AuditEvent.objects.filter(request_type=RequestType.SIGN).exists())

    def test_it_proposes_sha_256(self):
        ec_identity, _ = self.store_identity(key_kind="ec256")
        for identity, algorithm in [
            (self.identity, "rsa-pkcs1v15-sha256"),
            (ec_identity, "ecdsa-sha256"),
        ]:
            with self.subTest(algorithm=algorithm):
                response = self.client.get(f"/identities/{identity.pk}/sign/")
                self.assertContains(response, f'<option value="{algorithm}" selected>')

    def test_it_needs_something_to_sign(self):
        response = self.client.post(
            f"/identities/{self.identity.pk}/sign/", {"algorithm": "rsa-pss-sha256"}
        )
        self.assertContains(response, "Enter some text or choose a file to sign")

    def test_non_admins_may_not_test_sign(self):
        self.client.force_login(self.bob)
        response = self.client.post(
            f"/identities/{self.identity.pk}/sign/", {"text": "x", "algorithm": "rsa-pss-sha256"}
        )
        self.assertEqual(response.status_code, 403)
        self.assertFalse(AuditEvent.objects.filter(request_type=RequestType.SIGN).exists())


VIEW_CLOCK = "signing_service.identities.views.timezone"


class TestSignRefusalTestCase(BaseTestCase):
    """The page refuses what the client API refuses: an inactive identity, and one outside its
    certificate's validity (the page's clock is moved, not waited for; the session's stays)."""

    def setUp(self):
        self.identity, _ = self.store_identity()
        self.client.force_login(self.alice)

    def sign(self):
        return self.client.post(
            f"/identities/{self.identity.pk}/sign/",
            {"text": "hello", "algorithm": "rsa-pss-sha256"},
        )

    def assertRefused(self, response, sentence: str):
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, sentence)
        self.assertNotContains(response, 'id="signature"')
        self.assertFalse(AuditEvent.objects.filter(request_type=RequestType.SIGN).exists())

    def test_an_inactive_identity_is_refused(self):
        self.identity.is_active = False
        self.identity.save()

        self.assertRefused(self.sign(), "is inactive: switch it on to sign with it.")

    def test_an_expired_identity_is_refused_with_its_date(self):
        later = self.identity.not_after + datetime.timedelta(seconds=1)

        with mock.patch(VIEW_CLOCK, now=mock.Mock(return_value=later)):
            response = self.sign()

        self.assertRefused(response, f"expired on {self.identity.not_after:%Y-%m-%d %H:%M} UTC")

    def test_an_identity_not_yet_valid_is_refused(self):
        earlier = self.identity.not_before - datetime.timedelta(seconds=1)

        with mock.patch(VIEW_CLOCK, now=mock.Mock(return_value=earlier)):
            response = self.sign()

        self.assertRefused(response, "is valid only from")
