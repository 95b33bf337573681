"""The Settings page: audit retention and the user agreement, for admins only."""

from signing_service.accounts.models import UserAgreement
from signing_service.configuration.models import ServiceSettings
from signing_service.test import BaseTestCase

NEW_TERMS = "New terms.\n\nSign only what the organisation ships."


class SettingsTestCase(BaseTestCase):
    def setUp(self):
        self.client.force_login(self.alice)
        self.agreement = UserAgreement.current()

    def save(self, retention="365", text=None):
        text = self.agreement.text if text is None else text
        data = {"audit_retention_days": retention, "agreement_text": text}
        return self.client.post("/settings/", data)

    def assert_agreement_unchanged(self):
        self.assertEqual(UserAgreement.current(), self.agreement)
        self.assertEqual(UserAgreement.objects.count(), 1)

    def test_it_shows_the_current_settings(self):
        ServiceSettings.objects.update_or_create(pk=1, defaults={"audit_retention_days": 90})
        response = self.client.get("/settings/")
        self.assertContains(response, "<h1>Settings</h1>")
        self.assertContains(response, 'name="audit_retention_days" value="90"')
        self.assertContains(response, "Sign only software that the organisation builds")

    def test_bob_may_not_open_it(self):
        self.client.force_login(self.bob)
        self.assertEqual(self.client.get("/settings/").status_code, 403)
        response = self.client.post(
            "/settings/", {"audit_retention_days": "1", "agreement_text": "x"}
        )
        self.assertEqual(response.status_code, 403)
        self.assertEqual(ServiceSettings.load().audit_retention_days, 365)
        self.assert_agreement_unchanged()

    def test_it_saves_the_retention_period(self):
        response = self.save(retention="30")
        self.assertRedirects(response, "/settings/", fetch_redirect_response=False)
        self.assertEqual(ServiceSettings.load().audit_retention_days, 30)
        self.assertEqual(ServiceSettings.objects.count(), 1)
        self.assertContains(self.client.get("/settings/"), "Settings saved.")

    def test_the_audit_page_shows_the_retention_period(self):
        self.save(retention="30")
        body = self.client.get("/audit/").content.decode()
        self.assertRegex(body, r"Records older than\s+30 days are purged")

    def test_it_refuses_a_retention_period_below_one_day(self):
        ServiceSettings.objects.update_or_create(pk=1, defaults={"audit_retention_days": 90})
        for retention in ["0", "-1", "-365", "36501", "", "ten", "1.5"]:
            with self.subTest(retention=retention):
                response = self.save(retention=retention, text=NEW_TERMS)
                self.assertEqual(response.status_code, 200)
                self.assertContains(response, 'role="alert"')
                self.assertEqual(ServiceSettings.load().audit_retention_days, 90)
                self.assert_agreement_unchanged()

    def test_the_browser_offers_the_days_the_server_accepts(self):
        response = self.client.get("/settings/")
        self.assertContains(response, 'min="1"')
        self.assertContains(response, 'max="36500"')
        self.assertNotContains(response, 'min="0"')

    def test_zero_days_is_explained(self):
        response = self.save(retention="0")
        self.assertContains(response, "Ensure this value is greater than or equal to 1.")

    def test_a_negative_period_is_explained(self):
        response = self.save(retention="-5")
        self.assertContains(response, "Ensure this value is greater than or equal to")

    def test_the_agreement_text_is_required(self):
        response = self.save(text="   ")
        self.assertContains(response, "This field is required.")
        self.assert_agreement_unchanged()

    def test_changing_the_agreement_makes_everyone_accept_again(self):
        self.save(text=NEW_TERMS)
        self.assertEqual(UserAgreement.objects.count(), 2)
        self.assertEqual(UserAgreement.current().text, NEW_TERMS)
        for user in [self.bob, self.alice]:
            with self.subTest(user=user.username):
                self.client.force_login(user)
                for path in ["/", "/api-keys/"]:
                    self.assertRedirects(
                        self.client.get(path),
                        "/accounts/agreement/",
                        fetch_redirect_response=False,
                    )
                self.assertContains(self.client.get("/accounts/agreement/"), "Sign only what the")

    def test_saving_the_same_agreement_changes_nothing_for_users(self):
        self.save(retention="30")
        self.assert_agreement_unchanged()
        self.client.force_login(self.bob)
        self.assertEqual(self.client.get("/").status_code, 200)

    def test_a_browser_s_line_endings_are_not_a_change(self):
        # Browsers submit a textarea's lines with CRLF, and may add or drop trailing space.
        self.save(text=self.agreement.text.replace("\n", "\r\n"))
        self.save(text=self.agreement.text.strip())
        self.save(text="  " + self.agreement.text + "\r\n\r\n")
        self.assert_agreement_unchanged()

    def test_a_new_agreement_is_stored_with_plain_line_endings(self):
        self.save(text=NEW_TERMS.replace("\n", "\r\n"))
        self.assertEqual(UserAgreement.current().text, NEW_TERMS)
        self.save(text=NEW_TERMS.replace("\n", "\r\n"))
        self.assertEqual(UserAgreement.objects.count(), 2)

    def test_it_says_users_must_accept_again(self):
        response = self.client.post(
            "/settings/", {"audit_retention_days": "365", "agreement_text": NEW_TERMS}, follow=True
        )
        self.assertContains(response, "Every user must accept the new agreement.")

    def test_it_needs_the_csrf_token(self):
        client = self.client_class(enforce_csrf_checks=True)
        client.force_login(self.alice)
        response = client.post("/settings/", {"audit_retention_days": "1", "agreement_text": "x"})
        self.assertEqual(response.status_code, 403)
        self.assertEqual(ServiceSettings.load().audit_retention_days, 365)
        self.assert_agreement_unchanged()
