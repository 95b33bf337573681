import datetime

from signing_service.accounts.models import User
from signing_service.test import PASSWORD, BaseTestCase

TEMPORARY = "temporary passphrase 42"


class UserListTestCase(BaseTestCase):
    def test_it_lists_users_for_admins(self):
        self.client.force_login(self.alice)
        response = self.client.get("/accounts/users/")
        for name in ["alice", "bob", "charlie"]:
            self.assertContains(response, name)

    def test_it_refuses_non_admins(self):
        self.client.force_login(self.bob)
        response = self.client.get("/accounts/users/")
        self.assertContains(response, "Not allowed", status_code=403)


class UserAddTestCase(BaseTestCase):
    def setUp(self):
        self.client.force_login(self.alice)

    def add(self, **fields):
        data = {"username": "dora", "password1": TEMPORARY, "password2": TEMPORARY, **fields}
        return self.client.post("/accounts/users/add/", data)

    def test_it_adds_a_user_who_must_change_the_password(self):
        response = self.add()
        self.assertRedirects(response, "/accounts/users/", fetch_redirect_response=False)
        dora = User.objects.get(username="dora")
        self.assertFalse(dora.is_admin)
        self.assertTrue(dora.must_change_password)
        self.assertIsNone(dora.accepted_agreement)
        self.assertTrue(dora.check_password(TEMPORARY))

    def test_it_adds_an_admin(self):
        self.add(is_admin="on")
        self.assertTrue(User.objects.get(username="dora").is_admin)

    def test_it_refuses_a_taken_name_whatever_its_case(self):
        response = self.add(username="ALICE")
        self.assertContains(response, "already exists")
        self.assertEqual(User.objects.count(), 3)

    def test_it_refuses_weak_or_mismatched_passwords(self):
        for fields, message in [
            ({"password1": "short", "password2": "short"}, "too short"),
            ({"password2": "something else entirely"}, "The two passwords differ"),
            ({"password1": "change_password", "password2": "change_password"}, "default"),
        ]:
            with self.subTest(message):
                self.assertContains(self.add(**fields), message)
        self.assertFalse(User.objects.filter(username="dora").exists())

    def test_it_refuses_odd_user_names(self):
        response = self.add(username="<script>")
        self.assertContains(response, "letters, digits and @ . + - _ in a user name")
        self.assertFalse(User.objects.filter(username="<script>").exists())

    def test_it_needs_the_csrf_token(self):
        self.client.logout()
        client = self.client_class(enforce_csrf_checks=True)
        client.force_login(self.alice)
        response = client.post(
            "/accounts/users/add/",
            {"username": "dora", "password1": TEMPORARY, "password2": TEMPORARY},
        )
        self.assertEqual(response.status_code, 403)
        self.assertFalse(User.objects.filter(username="dora").exists())


class UserEditTestCase(BaseTestCase):
    def setUp(self):
        self.client.force_login(self.alice)

    def edit(self, user, **fields):
        data = {"username": user.username, "is_active": "on", **fields}
        return self.client.post(f"/accounts/users/{user.pk}/", data)

    def test_it_makes_a_user_an_admin(self):
        self.edit(self.bob, is_admin="on")
        self.bob.refresh_from_db()
        self.assertTrue(self.bob.is_admin)

    def test_it_renames_a_user(self):
        self.edit(self.bob, username="robert")
        self.bob.refresh_from_db()
        self.assertEqual(self.bob.username, "robert")

    def test_it_refuses_a_taken_name(self):
        self.assertContains(self.edit(self.bob, username="Alice"), "already exists")

    def test_the_form_explains_itself_in_our_words(self):
        response = self.client.get(f"/accounts/users/{self.bob.pk}/")
        self.assertContains(response, "Letters, digits and @ . + - _ only.")
        self.assertContains(response, "An inactive user cannot sign in")
        self.assertNotContains(response, "Designates whether")
        self.assertNotContains(response, "Required. 150 characters")

    def test_it_refuses_removing_ones_own_admin_role(self):
        response = self.edit(self.alice)
        self.assertContains(response, "cannot remove your own admin role")
        self.alice.refresh_from_db()
        self.assertTrue(self.alice.is_admin)

    def test_it_refuses_deactivating_oneself(self):
        response = self.client.post(
            f"/accounts/users/{self.alice.pk}/", {"username": "alice", "is_admin": "on"}
        )
        self.assertContains(response, "cannot deactivate your own account")

    def test_it_answers_404_for_an_unknown_user(self):
        self.assertEqual(self.client.get("/accounts/users/9999/").status_code, 404)


class UserToggleTestCase(BaseTestCase):
    def test_it_deactivates_and_reactivates_a_user(self):
        self.client.force_login(self.alice)
        self.client.post(f"/accounts/users/{self.bob.pk}/toggle/")
        self.bob.refresh_from_db()
        self.assertFalse(self.bob.is_active)
        self.client.post(f"/accounts/users/{self.bob.pk}/toggle/")
        self.bob.refresh_from_db()
        self.assertTrue(self.bob.is_active)

    def test_a_deactivated_user_is_signed_out_at_once(self):
        bob_client = self.client_class()
        bob_client.force_login(self.bob)
        self.client.force_login(self.alice)
        self.client.post(f"/accounts/users/{self.bob.pk}/toggle/")
        response = bob_client.get("/")
        self.assertRedirects(response, "/accounts/login/?next=/", fetch_redirect_response=False)

    def test_it_refuses_deactivating_oneself(self):
        self.client.force_login(self.alice)
        response = self.client.post(f"/accounts/users/{self.alice.pk}/toggle/", follow=True)
        self.assertContains(response, "cannot deactivate your own account")
        self.alice.refresh_from_db()
        self.assertTrue(self.alice.is_active)

    def test_it_needs_a_post(self):
        self.client.force_login(self.alice)
        self.assertEqual(self.client.get(f"/accounts/users/{self.bob.pk}/toggle/").status_code, 405)


class UserDeleteTestCase(BaseTestCase):
    def setUp(self):
        self.client.force_login(self.alice)

    def test_it_asks_for_confirmation_first(self):
        response = self.client.get(f"/accounts/users/{self.bob.pk}/delete/")
        self.assertContains(response, "Delete user bob?")
        self.assertTrue(User.objects.filter(pk=self.bob.pk).exists())

    def test_it_deletes_a_user(self):
        self.client.post(f"/accounts/users/{self.bob.pk}/delete/")
        self.assertFalse(User.objects.filter(pk=self.bob.pk).exists())

    def test_it_refuses_deleting_oneself(self):
        response = self.client.post(f"/accounts/users/{self.alice.pk}/delete/")
        self.assertContains(response, "cannot delete your own account")
        self.assertTrue(User.objects.filter(pk=self.alice.pk).exists())

    def test_another_admin_may_delete_an_admin(self):
        other_admin = self.make_user("frank", is_admin=True)
        self.client.post(f"/accounts/users/{other_admin.pk}/delete/")
        self.assertFalse(User.objects.filter(pk=other_admin.pk).exists())


class UserResetPasswordTestCase(BaseTestCase):
    def test_it_sets_a_temporary_password_and_forces_a_change(self):
        bob_client = self.client_class()
        bob_client.force_login(self.bob)
        self.client.force_login(self.alice)
        response = self.client.post(
            f"/accounts/users/{self.bob.pk}/password/",
            {"password1": TEMPORARY, "password2": TEMPORARY},
        )
        self.assertRedirects(response, "/accounts/users/", fetch_redirect_response=False)
        self.bob.refresh_from_db()
        self.assertTrue(self.bob.must_change_password)
        self.assertTrue(self.bob.check_password(TEMPORARY))
        self.assertFalse(self.bob.check_password(PASSWORD))
        # Bob's open session ended with the old password.
        self.assertRedirects(
            bob_client.get("/"), "/accounts/login/?next=/", fetch_redirect_response=False
        )

    def test_it_refuses_a_weak_temporary_password(self):
        self.client.force_login(self.alice)
        response = self.client.post(
            f"/accounts/users/{self.bob.pk}/password/", {"password1": "bob", "password2": "bob"}
        )
        self.assertContains(response, "too short")
        self.bob.refresh_from_db()
        self.assertTrue(self.bob.check_password(PASSWORD))


class UserListTimesTestCase(BaseTestCase):
    def test_the_last_sign_in_is_written_as_every_other_moment(self):
        User.objects.filter(pk=self.bob.pk).update(
            last_login=datetime.datetime(2026, 3, 10, 12, 0, 5, tzinfo=datetime.UTC)
        )
        self.client.force_login(self.alice)
        response = self.client.get("/accounts/users/")
        self.assertContains(response, "2026-03-10 12:00:05 UTC")
