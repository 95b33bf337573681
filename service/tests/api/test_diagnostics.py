"""The API reference page's check of an API key or client token: can it list and sign?"""

from signing_service.access import tokens
from signing_service.access.models import ApiKey
from signing_service.identities.models import Identity
from signing_service.identities.p12 import parse_p12
from signing_service.test import BaseTestCase, make_client, make_identity

NOT_OURS = "This is not an API key or client token of this service"


def store_identity(**fields) -> Identity:
    made = make_identity()
    identity = Identity(**fields)
    identity.fill_from(parse_p12(made.p12, made.password))
    identity.save()
    return identity


class DiagnosticsTestCase(BaseTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.identity = store_identity()
        cls.other_identity = store_identity()

    def setUp(self):
        self.key, self.secret = ApiKey.create("build machines")
        self.client.force_login(self.bob)

    def check(self, secret: str):
        response = self.client.post("/api/", {"secret": secret})
        self.assertEqual(response.status_code, 200)
        self.assertNotContains(response, secret.strip())
        if "_" in secret:
            self.assertNotContains(response, secret.strip().split("_", 2)[-1])
        return response

    def test_a_usable_key_can_list_and_sign(self):
        response = self.check(self.secret)
        self.assertContains(response, "API key of <strong>build machines</strong>")
        self.assertContains(response, "it can list and sign.")
        self.assertContains(response, self.identity.common_name)
        self.assertContains(response, self.other_identity.common_name)
        self.assertNotContains(response, "it cannot sign")

    def test_it_lists_only_the_identities_the_key_may_use(self):
        Identity.objects.filter(pk=self.other_identity.pk).update(is_active=False)
        chosen = store_identity(authorize_all_keys=False)
        elsewhere = store_identity(authorize_all_keys=False)
        chosen.authorized_keys.set([self.key])
        response = self.check(self.secret)
        self.assertContains(response, "it can list and sign.")
        self.assertContains(response, self.identity.common_name)
        self.assertContains(response, chosen.common_name)
        self.assertNotContains(response, self.other_identity.common_name)
        self.assertNotContains(response, elsewhere.common_name)

    def test_an_inactive_key_cannot_sign(self):
        self.key.is_active = False
        self.key.save()
        response = self.check(self.secret)
        self.assertContains(response, "it cannot sign.")
        self.assertContains(response, "The API key “build machines” is inactive.")
        self.assertNotContains(response, "it can list and sign")

    def test_a_key_with_no_authorized_identity_cannot_sign(self):
        Identity.objects.update(authorize_all_keys=False)
        response = self.check(self.secret)
        self.assertContains(response, "it cannot sign.")
        self.assertContains(response, "No active identity is authorized for this API key.")

    def test_a_key_whose_identities_are_all_inactive_cannot_sign(self):
        Identity.objects.update(is_active=False)
        response = self.check(self.secret)
        self.assertContains(response, "No active identity is authorized for this API key.")
        self.assertNotContains(response, self.identity.common_name)

    def test_a_client_token_works_too(self):
        _, token = make_client(self.key, "mac-mini-1")
        response = self.check(token)
        self.assertContains(
            response, "Client token of <strong>build machines / mac-mini-1</strong>"
        )
        self.assertContains(response, "it can list and sign.")
        self.assertContains(response, self.identity.common_name)

    def test_an_inactive_client_cannot_sign(self):
        _, token = make_client(self.key, "mac-mini-1", is_active=False)
        response = self.check(token)
        self.assertContains(response, "it cannot sign.")
        self.assertContains(response, "The client “mac-mini-1” is inactive.")
        self.assertNotContains(response, "is inactive.</li><li>")  # the key is fine

    def test_a_client_of_an_inactive_key_cannot_sign(self):
        _, token = make_client(self.key, "mac-mini-1")
        self.key.is_active = False
        self.key.save()
        response = self.check(token)
        self.assertContains(response, "it cannot sign.")
        self.assertContains(response, "The API key “build machines” is inactive.")

    def test_every_problem_is_named(self):
        _, token = make_client(self.key, "mac-mini-1", is_active=False)
        self.key.is_active = False
        self.key.save()
        Identity.objects.update(is_active=False)
        response = self.check(token)
        self.assertContains(response, "The API key “build machines” is inactive.")
        self.assertContains(response, "The client “mac-mini-1” is inactive.")
        self.assertContains(response, "No active identity is authorized for this API key.")

    def test_garbage_is_not_a_key_of_this_service(self):
        for secret in ["hello", "Bearer something", "sk-live-1234567890", "smk", "smk-abc"]:
            with self.subTest(secret=secret):
                response = self.check(secret)
                self.assertContains(response, NOT_OURS + ".")

    def test_an_unknown_key_is_not_a_key_of_this_service(self):
        for secret in [
            tokens.new_secret(tokens.API_KEY_PREFIX).value,
            f"smk_{self.key.token_id}_{'A' * 43}",
            f"smk_{self.key.token_id}",
            "smk_short_random",
        ]:
            with self.subTest(secret=secret):
                response = self.check(secret)
                self.assertContains(response, NOT_OURS + " (no such API key).")
                self.assertNotContains(response, "build machines</strong>")

    def test_an_unknown_client_token_is_not_a_token_of_this_service(self):
        _, token = make_client(self.key, "mac-mini-1")
        for secret in [
            tokens.new_secret(tokens.CLIENT_TOKEN_PREFIX).value,
            token[:-1] + ("A" if token[-1] != "A" else "B"),
            "smc_short_random",
        ]:
            with self.subTest(secret=secret):
                response = self.check(secret)
                self.assertContains(response, NOT_OURS + " (no such client token).")

    def test_surrounding_spaces_are_ignored(self):
        response = self.check(f"  {self.secret}\n")
        self.assertContains(response, "it can list and sign.")

    def test_the_secret_is_never_echoed_back(self):
        response = self.check(self.secret)
        self.assertContains(response, 'name="secret"')
        self.assertNotContains(response, 'value="smk_')
        self.assertNotContains(response, self.key.token_id)

    def test_admins_may_check_too(self):
        self.client.force_login(self.alice)
        self.assertContains(self.check(self.secret), "it can list and sign.")

    def test_an_empty_check_shows_no_result(self):
        for data in [{"secret": ""}, {"secret": "   "}, {}]:
            with self.subTest(data=data):
                response = self.client.post("/api/", data)
                self.assertEqual(response.status_code, 200)
                self.assertNotContains(response, 'class="check-result"')
        self.assertNotContains(self.client.get("/api/"), 'class="check-result"')

    def test_the_result_page_is_not_cached(self):
        response = self.check(self.secret)
        self.assertIn("no-store", response["Cache-Control"])

    def test_it_needs_the_csrf_token(self):
        client = self.client_class(enforce_csrf_checks=True)
        client.force_login(self.bob)
        response = client.post("/api/", {"secret": self.secret})
        self.assertEqual(response.status_code, 403)
        self.assertNotContains(response, "build machines", status_code=403)
