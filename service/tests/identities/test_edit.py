from django.core.files.uploadedfile import SimpleUploadedFile

from signing_service.access.models import ApiKey
from signing_service.identities.models import Identity
from signing_service.test import BaseTestCase, make_identity


class EditTestCase(BaseTestCase):
    def setUp(self):
        self.identity, self.made = self.store_identity()
        self.key, _ = ApiKey.create("release machines")
        self.identity.authorize_all_keys = False
        self.identity.is_active = False
        self.identity.save()
        self.identity.authorized_keys.add(self.key)
        self.client.force_login(self.alice)

    def replace(self, data: bytes, password: str):
        return self.client.post(
            f"/identities/{self.identity.pk}/edit/",
            {"p12_file": SimpleUploadedFile("new.p12", data), "password": password},
        )

    def test_it_replaces_certificate_and_key_and_keeps_authorizations_and_state(self):
        renewed = make_identity(key_kind="ec256", encoding="3des")
        response = self.replace(renewed.p12, renewed.password)
        self.assertRedirects(
            response, f"/identities/{self.identity.pk}/", fetch_redirect_response=False
        )
        self.identity.refresh_from_db()
        self.assertEqual(self.identity.sha1, renewed.sha1)
        self.assertEqual(self.identity.key_type, "EC")
        self.assertEqual(
            self.identity.private_key().private_numbers(), renewed.private_key.private_numbers()
        )
        self.assertFalse(self.identity.is_active)
        self.assertFalse(self.identity.authorize_all_keys)
        self.assertEqual(list(self.identity.authorized_keys.all()), [self.key])
        self.assertEqual(Identity.objects.count(), 1)

    def test_bad_input_changes_nothing(self):
        renewed = make_identity()
        response = self.replace(renewed.p12, "wrong")
        self.assertContains(response, "The password is wrong")
        self.identity.refresh_from_db()
        self.assertEqual(self.identity.sha1, self.made.sha1)

    def test_it_refuses_the_identity_of_another_record(self):
        other, other_made = self.store_identity()
        response = self.replace(other_made.p12, other_made.password)
        self.assertContains(response, f"already imported as “{other.common_name}”")
        self.identity.refresh_from_db()
        self.assertEqual(self.identity.sha1, self.made.sha1)

    def test_it_accepts_the_same_identity_again(self):
        response = self.replace(self.made.p12, self.made.password)
        self.assertEqual(response.status_code, 302)

    def test_non_admins_may_not_edit(self):
        self.client.force_login(self.bob)
        renewed = make_identity()
        self.assertEqual(self.replace(renewed.p12, renewed.password).status_code, 403)
        self.identity.refresh_from_db()
        self.assertEqual(self.identity.sha1, self.made.sha1)
