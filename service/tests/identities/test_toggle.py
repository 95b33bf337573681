import datetime

from django.utils import timezone

from signing_service.audit.models import AuditEvent, RequestType, Status
from signing_service.test import BaseTestCase


class ToggleTestCase(BaseTestCase):
    def setUp(self):
        self.identity, _ = self.store_identity()

    def test_admins_and_non_admins_switch_identities_off_and_on(self):
        for person in (self.alice, self.bob):
            with self.subTest(person.username):
                self.client.force_login(person)
                self.client.post(f"/identities/{self.identity.pk}/toggle/")
                self.identity.refresh_from_db()
                self.assertFalse(self.identity.is_active)
                self.client.post(f"/identities/{self.identity.pk}/toggle/")
                self.identity.refresh_from_db()
                self.assertTrue(self.identity.is_active)

    def test_it_goes_back_to_the_page_it_came_from(self):
        self.client.force_login(self.bob)
        page = f"/identities/{self.identity.pk}/"
        response = self.client.post(f"/identities/{self.identity.pk}/toggle/", {"next": page})
        self.assertRedirects(response, page, fetch_redirect_response=False)

    def test_it_never_redirects_off_site(self):
        self.client.force_login(self.bob)
        response = self.client.post(
            f"/identities/{self.identity.pk}/toggle/", {"next": "https://evil.example/"}
        )
        self.assertRedirects(response, "/identities/", fetch_redirect_response=False)

    def test_it_needs_a_post(self):
        self.client.force_login(self.alice)
        self.assertEqual(
            self.client.get(f"/identities/{self.identity.pk}/toggle/").status_code, 405
        )
        self.identity.refresh_from_db()
        self.assertTrue(self.identity.is_active)

    def test_it_never_redirects_from_https_to_http(self):
        self.client.force_login(self.bob)
        response = self.client.post(
            f"/identities/{self.identity.pk}/toggle/",
            {"next": "http://testserver/identities/1/"},
            secure=True,
        )
        self.assertRedirects(response, "/identities/", fetch_redirect_response=False)


class SwitchLabelTestCase(BaseTestCase):
    """The pages show the state in a badge and a button named for what it does."""

    def setUp(self):
        self.identity, _ = self.store_identity()
        self.client.force_login(self.bob)

    def test_an_active_identity_offers_to_deactivate(self):
        for path in ("/identities/", f"/identities/{self.identity.pk}/"):
            with self.subTest(path):
                response = self.client.get(path)
                self.assertContains(response, '<span class="badge active">Active</span>', 1)
                self.assertContains(response, 'class="toggle">Deactivate</button>', 1)
                self.assertNotContains(response, ">Activate</button>")

    def test_an_inactive_identity_offers_to_activate_and_is_muted_in_the_list(self):
        self.identity.is_active = False
        self.identity.save()
        for path in ("/identities/", f"/identities/{self.identity.pk}/"):
            with self.subTest(path):
                response = self.client.get(path)
                self.assertContains(response, '<span class="badge inactive">Inactive</span>', 1)
                self.assertContains(response, 'class="toggle">Activate</button>', 1)
                self.assertNotContains(response, ">Deactivate</button>")
        self.assertContains(self.client.get("/identities/"), '<tr class="inactive">', 1)


class ToggleConfirmationTestCase(BaseTestCase):
    """An identity that signed in the last 24 hours is deactivated only after a page says so."""

    def setUp(self):
        self.identity, _ = self.store_identity()
        self.url = f"/identities/{self.identity.pk}/toggle/"
        self.detail = f"/identities/{self.identity.pk}/"

    def signed(self, hours_ago: float, count: int = 1, **fields):
        fields.setdefault("request_type", RequestType.SIGN)
        fields.setdefault("status", Status.SUCCESS)
        created = timezone.now() - datetime.timedelta(hours=hours_ago)
        for _ in range(count):
            AuditEvent.objects.create(identity=self.identity, created=created, **fields)

    def assert_active(self, expected: bool):
        self.identity.refresh_from_db()
        self.assertEqual(self.identity.is_active, expected)

    def test_it_asks_first_and_changes_nothing(self):
        self.signed(hours_ago=1, count=3)
        for person in (self.alice, self.bob):
            with self.subTest(person.username):
                self.client.force_login(person)
                response = self.client.post(self.url, {"next": self.detail})
                self.assertEqual(response.status_code, 200)
                name = self.identity.common_name
                self.assertContains(response, f"Deactivate the identity “{name}”?")
                self.assertContains(response, "It signed 3 times in the last 24 hours")
                self.assertContains(response, '<input type="hidden" name="confirmed" value="1">')
                self.assertContains(response, f'<a href="{self.detail}">Cancel</a>')
                self.assert_active(True)

    def test_one_signature_reads_once(self):
        self.signed(hours_ago=23)
        self.client.force_login(self.bob)
        self.assertContains(self.client.post(self.url), "It signed once in the last 24 hours")

    def test_the_confirmed_post_deactivates_and_goes_back(self):
        self.signed(hours_ago=1)
        for person in (self.alice, self.bob):
            with self.subTest(person.username):
                self.client.force_login(person)
                response = self.client.post(self.url, {"next": self.detail, "confirmed": "1"})
                self.assertRedirects(response, self.detail, fetch_redirect_response=False)
                self.assert_active(False)
                name = self.identity.common_name
                self.assertContains(self.client.get(self.detail), f"“{name}” is inactive.")
                self.identity.is_active = True
                self.identity.save()

    def test_older_failed_and_other_records_need_no_confirmation(self):
        self.signed(hours_ago=25)
        self.signed(hours_ago=1, status=Status.FAILURE)
        self.signed(hours_ago=1, request_type=RequestType.INDEX)
        other, _ = self.store_identity()
        AuditEvent.objects.create(
            identity=other, request_type=RequestType.SIGN, status=Status.SUCCESS
        )
        self.client.force_login(self.bob)
        response = self.client.post(self.url, {"next": self.detail})
        self.assertRedirects(response, self.detail, fetch_redirect_response=False)
        self.assert_active(False)

    def test_activating_needs_no_confirmation(self):
        self.signed(hours_ago=1)
        self.identity.is_active = False
        self.identity.save()
        self.client.force_login(self.bob)
        response = self.client.post(self.url)
        self.assertRedirects(response, "/identities/", fetch_redirect_response=False)
        self.assert_active(True)

    def test_cancel_never_leads_to_another_site(self):
        self.signed(hours_ago=1)
        self.client.force_login(self.bob)
        response = self.client.post(self.url, {"next": "https://evil.example/"})
        self.assertContains(response, '<a href="/identities/">Cancel</a>')
        self.assertNotContains(response, "evil.example")
