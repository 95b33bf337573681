from django.test import TestCase, override_settings

from signing_service.accounts.bootstrap import create_default_admin
from signing_service.accounts.models import User
from signing_service.test import PASSWORD, BaseTestCase


class LoginTestCase(BaseTestCase):
    def test_it_signs_in_and_goes_to_the_main_page(self):
        response = self.client.post(
            "/accounts/login/", {"username": "alice", "password": PASSWORD}, follow=True
        )
        self.assertRedirects(response, "/")
        self.assertContains(response, "Service URL")

    def test_it_refuses_a_wrong_password(self):
        response = self.client.post("/accounts/login/", {"username": "alice", "password": "nope"})
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "Please enter a correct username and password")
        self.assertNotIn("_auth_user_id", self.client.session)

    def test_it_refuses_a_deactivated_user(self):
        response = self.client.post(
            "/accounts/login/", {"username": "charlie", "password": PASSWORD}
        )
        self.assertContains(response, "Please enter a correct username and password")
        self.assertNotIn("_auth_user_id", self.client.session)

    def test_it_hashes_passwords_with_argon2id(self):
        self.assertTrue(self.alice.password.startswith("argon2$argon2id$"))

    def test_it_sends_anonymous_visitors_to_the_login_page(self):
        for path in ["/", "/accounts/users/", "/api/", "/identities/", "/accounts/password/"]:
            response = self.client.get(path)
            self.assertRedirects(
                response, f"/accounts/login/?next={path}", fetch_redirect_response=False
            )

    def test_logout_needs_a_post_and_ends_the_session(self):
        self.client.force_login(self.alice)
        self.assertEqual(self.client.get("/accounts/logout/").status_code, 405)
        self.client.post("/accounts/logout/")
        self.assertRedirects(
            self.client.get("/"), "/accounts/login/?next=/", fetch_redirect_response=False
        )

    def test_the_login_page_says_one_has_signed_out(self):
        self.client.force_login(self.alice)
        response = self.client.post("/accounts/logout/", follow=True)
        self.assertRedirects(response, "/accounts/login/")
        self.assertContains(response, "You have been signed out.")


@override_settings(AXES_FAILURE_LIMIT=3)
class LoginThrottlingTestCase(BaseTestCase):
    def fail_login(self):
        return self.client.post("/accounts/login/", {"username": "alice", "password": "wrong"})

    def test_it_locks_out_after_repeated_failures_even_with_the_right_password(self):
        for _ in range(3):
            self.fail_login()
        response = self.client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
        self.assertEqual(response.status_code, 429)
        self.assertContains(response, "Too many failed sign-ins", status_code=429)
        self.assertNotIn("_auth_user_id", self.client.session)

    def test_a_forwarded_for_header_does_not_get_around_the_lockout(self):
        for number in range(3):
            self.client.post(
                "/accounts/login/",
                {"username": "alice", "password": "wrong"},
                headers={"X-Forwarded-For": f"203.0.113.{number}"},
            )
        response = self.fail_login()
        self.assertEqual(response.status_code, 429)

    def test_it_counts_failures_per_user_name(self):
        for _ in range(3):
            self.fail_login()
        response = self.client.post("/accounts/login/", {"username": "bob", "password": PASSWORD})
        self.assertEqual(response.status_code, 302)


class DefaultAdminTestCase(TestCase):
    def test_first_start_creates_the_guides_default_admin(self):
        admin = create_default_admin()
        self.assertEqual(admin.username, "admin")
        self.assertTrue(admin.is_admin)
        self.assertTrue(admin.must_change_password)
        self.assertTrue(admin.check_password("change_password"))

    def test_it_creates_no_default_admin_once_users_exist(self):
        User.objects.create_user("someone", password=PASSWORD)
        self.assertIsNone(create_default_admin())
        self.assertFalse(User.objects.filter(username="admin").exists())
