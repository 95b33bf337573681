from signing_service.accounts.models import UserAgreement
from signing_service.test import BaseTestCase


class AgreementTestCase(BaseTestCase):
    def setUp(self):
        self.newcomer = self.make_user("erin", accepted_agreement=None)
        self.client.force_login(self.newcomer)

    def test_every_page_redirects_to_the_agreement_until_accepted(self):
        for path in ["/", "/accounts/users/", "/api/", "/api-keys/", "/client/"]:
            response = self.client.get(path)
            self.assertRedirects(response, "/accounts/agreement/", fetch_redirect_response=False)

    def test_it_shows_the_current_agreement(self):
        response = self.client.get("/accounts/agreement/")
        self.assertContains(response, "User Agreement")
        self.assertContains(response, "audit log")
        self.assertContains(response, "Accept")

    def test_accepting_opens_the_service(self):
        response = self.client.post("/accounts/agreement/", {"accept": "1"})
        self.assertRedirects(response, "/", fetch_redirect_response=False)
        self.assertEqual(self.client.get("/").status_code, 200)

    def test_declining_signs_out(self):
        response = self.client.post("/accounts/agreement/", {"decline": "1"})
        self.assertRedirects(response, "/accounts/login/", fetch_redirect_response=False)
        self.assertNotIn("_auth_user_id", self.client.session)

    def test_a_new_agreement_must_be_accepted_again(self):
        self.client.force_login(self.alice)
        self.assertEqual(self.client.get("/").status_code, 200)
        UserAgreement.objects.create(text="New terms.")
        self.assertRedirects(
            self.client.get("/"), "/accounts/agreement/", fetch_redirect_response=False
        )

    def test_logout_stays_reachable(self):
        response = self.client.post("/accounts/logout/")
        self.assertRedirects(response, "/accounts/login/", fetch_redirect_response=False)
