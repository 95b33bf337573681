"""Signing refuses an identity outside its certificate's validity: 403 ``expired_identity`` or
``not_yet_valid_identity`` with the date, audited. The clock is moved, not waited for."""

from __future__ import annotations

import base64
import datetime
import hashlib
from unittest import mock

from signing_service.access.models import ApiKey
from signing_service.audit.models import AuditEvent
from signing_service.identities.models import Identity
from signing_service.identities.p12 import parse_p12
from signing_service.test import (
    P12_PASSWORD,
    BaseTestCase,
    cached_key,
    make_certificate,
    make_client,
    openssl_p12,
)


def imported(**validity) -> Identity:
    key = cached_key("rsa2048", 5)
    certificate = make_certificate(key, "Developer ID Application: Short (ABCDE12345)", **validity)
    identity = Identity()
    identity.fill_from(parse_p12(openssl_p12(certificate, key, P12_PASSWORD), P12_PASSWORD))
    identity.save()
    return identity


class SignValidityTestCase(BaseTestCase):
    def setUp(self):
        _, self.token = make_client(ApiKey.create("build machines")[0])

    def sign(self, identity: Identity, batch: bool = False):
        item = {
            "certificate": identity.sha256,
            "algorithm": "rsa-pkcs1v15-sha256",
            "digest": base64.b64encode(hashlib.sha256(b"code").digest()).decode(),
        }
        return self.client.post(
            "/api/v1/sign/batch" if batch else "/api/v1/sign",
            {"requests": [item]} if batch else item,
            content_type="application/json",
            headers={"Authorization": f"Bearer {self.token}"},
        )

    def assertRefused(self, response, code: str, message: str):
        self.assertEqual(response.status_code, 403, response.content)
        self.assertEqual(response.json()["error"]["code"], code)
        self.assertIn(message, response.json()["error"]["message"])
        event = AuditEvent.objects.latest("id")
        self.assertEqual((event.status, event.reason), ("failure", code))

    def test_an_identity_that_expired_after_import_is_refused_with_its_date(self):
        identity = imported(valid_days=2)
        self.assertEqual(self.sign(identity).status_code, 200)
        later = identity.not_after + datetime.timedelta(minutes=1)

        with mock.patch("django.utils.timezone.now", return_value=later):
            response = self.sign(identity)
            batch = self.sign(identity, batch=True)

        self.assertRefused(
            response, "expired_identity", f"expired on {identity.not_after:%Y-%m-%d %H:%M} UTC"
        )
        self.assertEqual(batch.json()["results"][0]["error"]["code"], "expired_identity")

    def test_an_identity_not_yet_valid_is_refused_until_it_is(self):
        identity = imported(starts_in=datetime.timedelta(days=3))

        self.assertRefused(
            self.sign(identity),
            "not_yet_valid_identity",
            f"valid only from {identity.not_before:%Y-%m-%d %H:%M} UTC",
        )
        with mock.patch("django.utils.timezone.now", return_value=identity.not_before):
            self.assertEqual(self.sign(identity).status_code, 200)

    def test_the_codes_are_in_the_openapi_document(self):
        document = self.client.get("/api/v1/openapi.json").json()
        for path in ["/api/v1/sign", "/api/v1/sign/batch"]:
            description = document["paths"][path]["post"]["description"]
            self.assertIn("`expired_identity`", description)
            self.assertIn("`not_yet_valid_identity`", description)
