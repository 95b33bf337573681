"""Who may list and sign: every combination of the three switches and the authorization choice.

From the guide (DESIGN.md, "API keys and clients"): an inactive key registers no new clients and
none of its clients may list or sign; an inactive client alone may not list or sign; an inactive
identity is offered to and usable by nobody; an identity authorized for chosen keys only is
offered to and usable by those keys only.
"""

import base64
import hashlib
import itertools

from signing_manager.algorithms import Algorithm, verify_digest
from signing_service.access.models import ApiKey, Client
from signing_service.audit.models import AuditEvent
from signing_service.identities.models import Identity
from signing_service.test import BaseTestCase, make_client

ALL_KEYS, THIS_KEY, ANOTHER_KEY = "all keys", "this key chosen", "another key chosen"
DIGEST = hashlib.sha256(b"matrix").digest()


def expected_sign_outcome(
    key_active: bool, client_active: bool, identity_active: bool, authorized: str
) -> tuple[int, str | None, str | None]:
    """What the guide says signing answers (status, code) and the audit records (reason),
    written as a table rather than as the code's checks. An identity this client may not use
    reads as one that does not exist; the audit says why (issue 18)."""
    if not key_active:
        return 403, "inactive_key", "inactive_key"
    if not client_active:
        return 403, "inactive_client", "inactive_client"
    if not identity_active:
        return 404, "unknown_identity", "inactive_identity"
    if authorized == ANOTHER_KEY:
        return 404, "unknown_identity", "unauthorized_identity"
    return 200, None, None


def expected_listing(
    key_active: bool, client_active: bool, identity_active: bool, authorized: str
) -> tuple[int, bool]:
    """The listing's status and whether the identity is in it."""
    if not key_active or not client_active:
        return 403, False
    return 200, identity_active and authorized in (ALL_KEYS, THIS_KEY)


class ActivityMatrixTestCase(BaseTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.identity, cls.made = cls.store_identity()
        cls.key, _ = ApiKey.create("build machines")
        cls.other_key, _ = ApiKey.create("release machines")
        cls.machine, cls.token = make_client(cls.key, "mac-mini-1")

    def arrange(self, key_active, client_active, identity_active, authorized):
        ApiKey.objects.filter(pk=self.key.pk).update(is_active=key_active)
        Client.objects.filter(pk=self.machine.pk).update(is_active=client_active)
        identity = Identity.objects.get(pk=self.identity.pk)
        identity.is_active = identity_active
        identity.authorize_all_keys = authorized == ALL_KEYS
        identity.save()
        chosen = {ALL_KEYS: [], THIS_KEY: [self.key], ANOTHER_KEY: [self.other_key]}
        identity.authorized_keys.set(chosen[authorized])

    def call(self, method: str, path: str, body=None):
        return getattr(self.client, method)(
            path,
            body,
            content_type="application/json",
            headers={"Authorization": f"Bearer {self.token}"},
        )

    def test_listing_and_signing_follow_the_guide_in_every_combination(self):
        combinations = itertools.product(
            [True, False], [True, False], [True, False], [ALL_KEYS, THIS_KEY, ANOTHER_KEY]
        )
        for combination in combinations:
            key_active, client_active, identity_active, authorized = combination
            with self.subTest(
                key_active=key_active,
                client_active=client_active,
                identity_active=identity_active,
                authorized=authorized,
            ):
                self.arrange(*combination)
                AuditEvent.objects.all().delete()

                status, listed = expected_listing(*combination)
                response = self.call("get", "/api/v1/certificates")
                self.assertEqual(response.status_code, status, response.content)
                if status == 200:
                    sha1s = [item["sha1"] for item in response.json()["certificates"]]
                    self.assertEqual(sha1s, [self.identity.sha1] if listed else [])

                status, code, reason = expected_sign_outcome(*combination)
                response = self.call(
                    "post",
                    "/api/v1/sign",
                    {
                        "certificate": self.identity.sha1,
                        "algorithm": "rsa-pkcs1v15-sha256",
                        "digest": base64.b64encode(DIGEST).decode(),
                    },
                )
                self.assertEqual(response.status_code, status, response.content)
                body = response.json()
                if code is None:
                    signature = base64.b64decode(body["signature"])
                    self.assertTrue(
                        verify_digest(
                            self.made.certificate.public_key(),
                            Algorithm.RSA_PKCS1V15_SHA256,
                            DIGEST,
                            signature,
                        )
                    )
                else:
                    self.assertEqual(
                        body, {"error": {"code": code, "message": body["error"]["message"]}}
                    )

                # One record for the listing and one for the digest, each with its outcome.
                events = list(AuditEvent.objects.order_by("id"))
                self.assertEqual(
                    [(e.request_type, e.status) for e in events],
                    [
                        (
                            "index",
                            "success" if expected_listing(*combination)[0] == 200 else "failure",
                        ),
                        ("sign", "success" if code is None else "failure"),
                    ],
                )
                self.assertEqual(events[1].reason, reason or "")

    def test_a_listed_identity_is_always_one_the_client_can_sign_with(self):
        for combination in itertools.product(
            [True], [True], [True, False], [ALL_KEYS, THIS_KEY, ANOTHER_KEY]
        ):
            with self.subTest(combination=combination):
                self.arrange(*combination)
                listed = self.call("get", "/api/v1/certificates").json()["certificates"]
                response = self.call(
                    "post",
                    "/api/v1/sign",
                    {
                        "certificate": self.identity.sha256,
                        "algorithm": "rsa-pss-sha256",
                        "digest": base64.b64encode(DIGEST).decode(),
                    },
                )
                self.assertEqual(bool(listed), response.status_code == 200)
