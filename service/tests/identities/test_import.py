from django.core.files.uploadedfile import SimpleUploadedFile

from signing_service.identities.models import Identity
from signing_service.test import (
    BaseTestCase,
    cached_key,
    make_certificate,
    make_identity,
    openssl_p12,
    unprotected_p12,
)


class ImportTestCase(BaseTestCase):
    def setUp(self):
        self.client.force_login(self.alice)

    def upload(self, data: bytes, password: str, name: str = "identity.p12"):
        return self.client.post(
            "/identities/import/",
            {"p12_file": SimpleUploadedFile(name, data), "password": password},
        )

    def test_it_imports_every_encoding_and_key_kind(self):
        for encoding in ["aes", "legacy", "3des"]:
            for key_kind in ["rsa2048", "rsa4096", "ec256"]:
                with self.subTest(encoding=encoding, key_kind=key_kind):
                    made = make_identity(encoding=encoding, key_kind=key_kind)
                    response = self.upload(made.p12, made.password)
                    identity = Identity.objects.get(sha1=made.sha1)
                    self.assertRedirects(
                        response, f"/identities/{identity.pk}/", fetch_redirect_response=False
                    )
                    self.assertEqual(identity.common_name, made.common_name)
                    self.assertEqual(identity.certificate(), made.certificate)
                    self.assertEqual(identity.chain_certificates(), [made.ca_certificate])

    def test_it_stores_the_facts_and_a_key_that_signs(self):
        made = make_identity(key_kind="ec256")
        self.upload(made.p12, made.password)
        identity = Identity.objects.get()
        self.assertEqual(identity.key_type, "EC")
        self.assertEqual(identity.key_size, 256)
        self.assertEqual(identity.not_after, made.certificate.not_valid_after_utc)
        self.assertEqual(len(identity.sha256), 64)
        self.assertTrue(identity.is_active)
        self.assertTrue(identity.authorize_all_keys)
        self.assertEqual(
            identity.private_key().private_numbers(), made.private_key.private_numbers()
        )

    def test_it_imports_empty_and_non_ascii_passwords(self):
        for password in ["", "pässwörd ✓ 鍵"]:
            with self.subTest(password=password):
                made = make_identity(password=password)
                self.upload(made.p12, password)
                self.assertTrue(Identity.objects.filter(sha1=made.sha1).exists())

    def assert_refused(self, data: bytes, password: str, message: str):
        before = list(Identity.objects.values_list("sha256", "updated"))
        response = self.upload(data, password)
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, message)
        self.assertEqual(list(Identity.objects.values_list("sha256", "updated")), before)

    def test_it_refuses_bad_input_and_changes_nothing(self):
        made = make_identity()
        stranger_key = cached_key("rsa2048", 50)  # shared by no test identity
        cases = {
            "wrong password": (made.p12, "not the password", "The password is wrong"),
            "truncated": (made.p12[:700], made.password, "truncated or corrupt"),
            "corrupt": (b"\x30\x82" + b"\xff" * 300, made.password, "truncated or corrupt"),
            "PEM": (made.pem() + made.key_pem(), "", "This is a PEM file, not a .p12"),
            "not a p12": (b"%PDF-1.7 not a key", "", "not a .p12 (PKCS#12) file"),
            "no key": (
                openssl_p12(made.certificate, None, "pw", include_key=False),
                "pw",
                "holds a certificate but no private key",
            ),
            "key of another certificate": (
                unprotected_p12(made.certificate, stranger_key),
                "",
                "does not belong to any of its certificates",
            ),
        }
        for case, (data, password, message) in cases.items():
            with self.subTest(case):
                self.assert_refused(data, password, message)

    def test_it_refuses_an_empty_file(self):
        response = self.upload(b"", "")
        self.assertContains(response, "The submitted file is empty")
        self.assertFalse(Identity.objects.exists())

    def test_it_refuses_a_file_over_10_mib_before_parsing(self):
        self.assert_refused(b"\x30" * (10 * 1024 * 1024 + 1), "", "larger than 10 MiB")

    def test_it_refuses_an_expired_certificate_naming_the_date(self):
        made = make_identity(expired=True)
        expiry = made.certificate.not_valid_after_utc
        self.assert_refused(made.p12, made.password, f"expired on {expiry:%Y-%m-%d %H:%M} UTC")

    def test_it_refuses_a_duplicate(self):
        made = make_identity()
        self.upload(made.p12, made.password)
        again = openssl_p12(made.certificate, made.private_key, "other", "3des")
        self.assert_refused(again, "other", f"already imported as “{made.common_name}”")
        self.assertEqual(Identity.objects.count(), 1)

    def test_it_refuses_a_mismatched_key_even_when_the_file_is_otherwise_fine(self):
        certificate = make_certificate(cached_key("ec256", 1), "EC identity")
        data = unprotected_p12(certificate, cached_key("ec256", 2))
        self.assert_refused(data, "", "does not belong")

    def test_non_admins_may_not_import(self):
        self.client.force_login(self.bob)
        made = make_identity()
        self.assertEqual(self.upload(made.p12, made.password).status_code, 403)
        self.assertFalse(Identity.objects.exists())

    def test_the_password_is_never_shown_back(self):
        made = make_identity()
        response = self.upload(made.p12, "a secret wrong password")
        self.assertNotContains(response, "a secret wrong password")
