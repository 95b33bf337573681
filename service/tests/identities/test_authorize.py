from signing_service.access.models import ApiKey
from signing_service.identities.models import Identity
from signing_service.test import BaseTestCase


class AuthorizeTestCase(BaseTestCase):
    def setUp(self):
        self.identity, _ = self.store_identity()
        self.release, _ = ApiKey.create("release machines")
        self.laptops, _ = ApiKey.create("laptops")
        self.client.force_login(self.alice)

    def authorize(self, **data):
        return self.client.post(f"/identities/{self.identity.pk}/authorize/", data)

    def test_all_keys_may_use_a_new_identity(self):
        for key in (self.release, self.laptops):
            self.assertIn(self.identity, Identity.objects.usable_by(key))

    def test_it_limits_the_identity_to_chosen_keys(self):
        response = self.authorize(authorize_all_keys="False", authorized_keys=[self.release.pk])
        self.assertRedirects(
            response, f"/identities/{self.identity.pk}/", fetch_redirect_response=False
        )
        self.assertIn(self.identity, Identity.objects.usable_by(self.release))
        self.assertNotIn(self.identity, Identity.objects.usable_by(self.laptops))

    def test_choosing_no_key_locks_everyone_out(self):
        self.authorize(authorize_all_keys="False")
        self.assertFalse(Identity.objects.usable_by(self.release).exists())

    def test_choosing_no_key_warns_that_nobody_may_use_it(self):
        url = f"/identities/{self.identity.pk}/authorize/"
        response = self.client.post(url, {"authorize_all_keys": "False"}, follow=True)
        self.assertContains(response, "Saved, but no API key may use")
        self.assertContains(response, 'class="message warning"')

    def test_under_all_keys_the_boxes_are_disabled(self):
        response = self.client.get(f"/identities/{self.identity.pk}/authorize/")
        self.assertContains(response, 'name="authorized_keys"', count=2)
        self.assertContains(response, 'name="authorized_keys" value', count=2)
        self.assertEqual(response.content.decode().count(" disabled"), 2)

    def test_under_chosen_keys_the_boxes_are_enabled(self):
        self.authorize(authorize_all_keys="False", authorized_keys=[self.release.pk])
        response = self.client.get(f"/identities/{self.identity.pk}/authorize/")
        self.assertNotContains(response, " disabled")

    def test_under_all_keys_ticked_boxes_are_ignored(self):
        self.authorize(authorize_all_keys="False", authorized_keys=[self.release.pk])
        self.authorize(authorize_all_keys="True", authorized_keys=[self.laptops.pk])
        self.identity.refresh_from_db()
        self.assertTrue(self.identity.authorize_all_keys)
        self.assertEqual(list(self.identity.authorized_keys.all()), [self.release])

    def test_each_box_shows_the_key_s_public_prefix(self):
        response = self.client.get(f"/identities/{self.identity.pk}/authorize/")
        self.assertContains(response, f"laptops ({self.laptops.display_id})")

    def test_it_opens_the_identity_to_all_keys_again(self):
        self.authorize(authorize_all_keys="False", authorized_keys=[self.release.pk])
        self.authorize(authorize_all_keys="True")
        self.assertIn(self.identity, Identity.objects.usable_by(self.laptops))

    def test_an_inactive_identity_is_usable_by_nobody(self):
        self.identity.is_active = False
        self.identity.save()
        self.assertFalse(Identity.objects.usable_by(self.release).exists())

    def test_it_refuses_an_unknown_key(self):
        response = self.authorize(authorize_all_keys="False", authorized_keys=[9999])
        self.assertContains(response, "Select a valid choice")
        self.identity.refresh_from_db()
        self.assertTrue(self.identity.authorize_all_keys)

    def test_non_admins_may_not_authorize(self):
        self.client.force_login(self.bob)
        response = self.authorize(authorize_all_keys="False")
        self.assertEqual(response.status_code, 403)
        self.identity.refresh_from_db()
        self.assertTrue(self.identity.authorize_all_keys)
