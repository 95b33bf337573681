from signing_service.accounts.models import User
from signing_service.test import PASSWORD, BaseTestCase

NEW_PASSWORD = "a quite different passphrase"


class ForcedPasswordChangeTestCase(BaseTestCase):
    def setUp(self):
        self.newcomer = self.make_user(
            "dora", password="change_password", must_change_password=True
        )
        self.client.force_login(self.newcomer)

    def change(self, new_password, old_password="change_password"):
        return self.client.post(
            "/accounts/password/",
            {
                "old_password": old_password,
                "new_password1": new_password,
                "new_password2": new_password,
            },
        )

    def test_every_page_redirects_to_the_password_change(self):
        for path in ["/", "/accounts/users/", "/api/", "/identities/", "/accounts/agreement/"]:
            response = self.client.get(path)
            self.assertRedirects(response, "/accounts/password/", fetch_redirect_response=False)

    def test_it_says_why_the_password_must_change(self):
        self.assertContains(self.client.get("/accounts/password/"), "Choose a new password")

    def test_it_refuses_the_default_password(self):
        response = self.change("change_password", old_password="change_password")
        self.assertContains(response, "default password everyone knows")
        self.newcomer.refresh_from_db()
        self.assertTrue(self.newcomer.must_change_password)

    def test_it_refuses_weak_passwords(self):
        for weak, message in [
            ("short", "too short"),
            ("password1234", "too common"),
            ("483920174625", "entirely numeric"),
        ]:
            with self.subTest(weak):
                self.assertContains(self.change(weak), message)
        self.newcomer.refresh_from_db()
        self.assertTrue(self.newcomer.check_password("change_password"))

    def test_it_refuses_a_wrong_current_password(self):
        response = self.change(NEW_PASSWORD, old_password="not the password")
        self.assertContains(response, "Your old password was entered incorrectly")

    def test_it_changes_the_password_then_asks_for_the_agreement(self):
        self.newcomer.accepted_agreement = None
        self.newcomer.save()
        response = self.change(NEW_PASSWORD)
        self.assertRedirects(response, "/", fetch_redirect_response=False)
        self.newcomer.refresh_from_db()
        self.assertFalse(self.newcomer.must_change_password)
        self.assertTrue(self.newcomer.check_password(NEW_PASSWORD))
        # Still signed in (the session follows the new password), and sent on to the agreement.
        self.assertRedirects(
            self.client.get("/"), "/accounts/agreement/", fetch_redirect_response=False
        )


class VoluntaryPasswordChangeTestCase(BaseTestCase):
    def test_it_refuses_keeping_the_same_password(self):
        self.client.force_login(self.bob)
        response = self.client.post(
            "/accounts/password/",
            {"old_password": PASSWORD, "new_password1": PASSWORD, "new_password2": PASSWORD},
        )
        self.assertContains(response, "must differ from the current one")

    def test_it_changes_the_password(self):
        self.client.force_login(self.bob)
        self.client.post(
            "/accounts/password/",
            {
                "old_password": PASSWORD,
                "new_password1": NEW_PASSWORD,
                "new_password2": NEW_PASSWORD,
            },
        )
        self.assertTrue(User.objects.get(username="bob").check_password(NEW_PASSWORD))
