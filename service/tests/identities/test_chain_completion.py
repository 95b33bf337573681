"""An identity's chain is completed at import from its .p12's certificates, then Apple's CAs
shipped with the service, then uploaded CAs; existing identities are completed on upgrade."""

from __future__ import annotations

import base64
import importlib
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.apps import apps

from signing_service.identities.models import Identity
from signing_service.identities.p12 import parse_p12
from signing_service.test import (
    P12_PASSWORD,
    BaseTestCase,
    cached_key,
    fake_ca,
    make_certificate,
    make_intermediate_ca,
    openssl_p12,
)

APPLE_LEAVES = Path(__file__).parents[3] / "client" / "tests" / "data" / "apple-leaves"


def encoded(certificate: x509.Certificate) -> str:
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()


def common_names(identity: Identity) -> list[str]:
    return [
        cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
        for cert in identity.chain_certificates()
    ]


def apple_issued(name: str) -> Identity:
    """A record holding a real Apple-issued leaf as a Keychain export brings it: leaf only."""
    leaf = x509.load_der_x509_certificate((APPLE_LEAVES / name).read_bytes())
    return Identity(certificate_der=leaf.public_bytes(serialization.Encoding.DER))


class ChainCompletionTestCase(BaseTestCase):
    def test_real_apple_leaves_are_completed_to_apple_root_ca(self):
        for name in [
            "apple-signed-developer-id-application.cer",
            "apple-signed-developer-id-installer.cer",
        ]:
            with self.subTest(name):
                identity = apple_issued(name)
                identity.complete_chain()
                self.assertEqual(
                    common_names(identity),
                    ["Developer ID Certification Authority", "Apple Root CA"],
                )
                self.assertTrue(identity.chain_reaches_root)

    def test_the_p12s_own_certificates_come_first_and_are_kept_apart(self):
        intermediate, key = make_intermediate_ca()
        leaf_key = cached_key("rsa2048", 2)
        leaf = make_certificate(
            leaf_key, "Developer ID Application: X (A)", issuer=(intermediate, key)
        )
        p12 = openssl_p12(leaf, leaf_key, P12_PASSWORD, chain=[intermediate, fake_ca()[0]])
        identity = Identity()

        identity.fill_from(parse_p12(p12, P12_PASSWORD))

        self.assertEqual(identity.chain, [encoded(intermediate), encoded(fake_ca()[0])])
        self.assertEqual(len(identity.supplied_chain), 2)
        self.assertTrue(identity.chain_reaches_root)

    def test_certificates_of_the_p12_off_the_path_are_not_sent(self):
        stranger, _ = make_intermediate_ca("Unrelated CA", index=95)
        leaf_key = cached_key("rsa2048", 2)
        leaf = make_certificate(leaf_key, "Developer ID Application: X (A)")
        p12 = openssl_p12(leaf, leaf_key, P12_PASSWORD, chain=[stranger, fake_ca()[0]])
        identity = Identity()

        identity.fill_from(parse_p12(p12, P12_PASSWORD))

        self.assertEqual(identity.chain, [encoded(fake_ca()[0])])

    def test_the_upgrade_completes_identities_imported_before_chains_were(self):
        # Before, `chain` held the .p12's certificates as they were, and nothing else.
        identity = apple_issued("apple-signed-developer-id-application.cer")
        identity.common_name, identity.sha1, identity.sha256 = "old", "1" * 40, "2" * 64
        identity.key_type, identity.key_size = "RSA", 2048
        identity.not_before = identity.not_after = identity.certificate().not_valid_after_utc
        identity.wrapped_data_key = identity.encrypted_private_key = b"x"
        identity.chain = []
        identity.save()
        migration = importlib.import_module(
            "signing_service.identities.migrations.0002_completed_chains"
        )

        migration.complete_existing_chains(apps, None)

        identity.refresh_from_db()
        self.assertEqual(identity.supplied_chain, [])
        self.assertEqual(
            common_names(identity), ["Developer ID Certification Authority", "Apple Root CA"]
        )
        self.assertTrue(identity.chain_reaches_root)
