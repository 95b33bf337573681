"""The Audit page: admins only, newest first, 50 a page, filters."""

import datetime

from signing_service.access.models import ApiKey
from signing_service.audit.models import AuditEvent, RequestType, Status
from signing_service.identities.models import Identity
from signing_service.identities.p12 import parse_p12
from signing_service.test import BaseTestCase, make_client, make_identity

UTC = datetime.UTC
ROW = '<tr class="'


def store_identity() -> Identity:
    made = make_identity()
    identity = Identity()
    identity.fill_from(parse_p12(made.p12, made.password))
    identity.save()
    return identity


def make_events(count: int, start: datetime.datetime, **fields) -> list[AuditEvent]:
    """``count`` records a minute apart from ``start``, their messages numbered "event 000"..."""
    fields.setdefault("request_type", RequestType.INDEX)
    fields.setdefault("status", Status.SUCCESS)
    return AuditEvent.objects.bulk_create(
        AuditEvent(
            created=start + datetime.timedelta(minutes=n), message=f"event {n:03d}", **fields
        )
        for n in range(count)
    )


class AuditListAccessTestCase(BaseTestCase):
    def test_admins_may_read_the_audit_log(self):
        self.sign_in_unrecorded(self.alice)
        response = self.client.get("/audit/")
        self.assertContains(response, "<h1>Audit</h1>")
        self.assertContains(response, "No audit records.")

    def test_bob_may_not(self):
        self.client.force_login(self.bob)
        self.assertEqual(self.client.get("/audit/").status_code, 403)

    def test_anonymous_users_are_sent_to_sign_in(self):
        response = self.client.get("/audit/")
        self.assertRedirects(
            response, "/accounts/login/?next=/audit/", fetch_redirect_response=False
        )


class AuditListTestCase(BaseTestCase):
    def setUp(self):
        self.sign_in_unrecorded(self.alice)

    def test_it_lists_the_newest_first(self):
        now = datetime.datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
        for hours, name in [(3, "oldest"), (1, "newest"), (2, "middle")]:
            AuditEvent.objects.create(
                created=now - datetime.timedelta(hours=hours),
                request_type=RequestType.SIGN,
                status=Status.SUCCESS,
                api_key_name=f"key {name}",
            )
        body = self.client.get("/audit/").content.decode()
        positions = [body.index(f"key {name}") for name in ["newest", "middle", "oldest"]]
        self.assertEqual(positions, sorted(positions))
        self.assertIn('<td class="time">2026-03-10 11:00:00 UTC</td>', body)

    def test_it_shows_what_a_record_holds(self):
        AuditEvent.objects.create(
            request_type=RequestType.SIGN,
            status=Status.FAILURE,
            reason="identity_not_authorized",
            api_key_name="build machines",
            client_hostname="mac-mini-1",
            identity_common_name="Developer ID Application: Example (ABCDE12345)",
            algorithm="ecdsa-sha256",
            address="10.0.0.5",
        )
        response = self.client.get("/audit/")
        for text in [
            "identity_not_authorized",
            "build machines",
            "mac-mini-1",
            "Developer ID Application: Example (ABCDE12345)",
            "ecdsa-sha256",
            "10.0.0.5",
        ]:
            self.assertContains(response, text)

    def test_it_shows_50_records_a_page(self):
        make_events(120, datetime.datetime(2026, 3, 10, tzinfo=UTC))
        first = self.client.get("/audit/")
        self.assertContains(first, ROW, count=50)
        self.assertContains(first, "Page 1 of 3")
        self.assertContains(first, "event 119")
        self.assertContains(first, "event 070")
        self.assertNotContains(first, "event 069")
        self.assertContains(first, 'page=2">Older</a>')
        self.assertNotContains(first, ">Newer</a>")
        second = self.client.get("/audit/?page=2")
        self.assertContains(second, ROW, count=50)
        self.assertContains(second, "Page 2 of 3")
        self.assertContains(second, "event 069")
        self.assertContains(second, "event 020")
        last = self.client.get("/audit/?page=3")
        self.assertContains(last, ROW, count=20)
        self.assertContains(last, "Page 3 of 3")
        self.assertContains(last, "event 000")
        self.assertNotContains(last, ">Older</a>")

    def test_one_page_needs_no_pager(self):
        make_events(50, datetime.datetime(2026, 3, 10, tzinfo=UTC))
        response = self.client.get("/audit/")
        self.assertContains(response, ROW, count=50)
        self.assertNotContains(response, "Page 1 of")

    def test_page_links_keep_the_filters(self):
        start = datetime.datetime(2026, 3, 10, tzinfo=UTC)
        make_events(60, start, status=Status.FAILURE)
        make_events(30, start, status=Status.SUCCESS)
        response = self.client.get("/audit/?status=failure&request_type=index")
        self.assertContains(response, "Page 1 of 2")
        self.assertContains(response, 'href="?status=failure&amp;request_type=index&amp;page=2"')
        second = self.client.get("/audit/?status=failure&request_type=index&page=2")
        self.assertContains(second, ROW, count=10)
        self.assertContains(second, '<tr class="failure">', count=10)
        self.assertContains(second, 'href="?status=failure&amp;request_type=index&amp;page=1"')

    def test_a_page_number_out_of_range_shows_the_last_page_and_says_so(self):
        make_events(60, datetime.datetime(2026, 3, 10, tzinfo=UTC))
        response = self.client.get("/audit/?page=99")
        self.assertContains(response, "Page 2 of 2")
        self.assertContains(response, "There is no page 99; this is the last, page 2.")

    def test_a_page_that_is_no_number_shows_the_first_and_says_so(self):
        make_events(60, datetime.datetime(2026, 3, 10, tzinfo=UTC))
        response = self.client.get("/audit/?page=abc")
        self.assertContains(response, "Page 1 of 2")
        self.assertContains(response, "“abc” is not a page number; this is page 1.")


class AuditFilterTestCase(BaseTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.build, _ = ApiKey.create("build machines")
        cls.release, _ = ApiKey.create("release machines")
        cls.mac = make_client(cls.build, "mac-mini-1")[0]
        cls.linux = make_client(cls.release, "ci-runner-7")[0]
        cls.app = store_identity()
        cls.installer = store_identity()

        def event(marker, day, request_type, status, key=None, client=None, identity=None):
            AuditEvent.objects.create(
                created=datetime.datetime(2026, 3, day, 12, tzinfo=UTC),
                request_type=request_type,
                status=status,
                api_key=key,
                client=client,
                identity=identity,
                message=f"marker-{marker}",
            )

        event("a", 10, RequestType.INDEX, Status.SUCCESS, cls.build, cls.mac)
        event("b", 11, RequestType.SIGN, Status.FAILURE, cls.release, cls.linux, cls.app)
        event("c", 12, RequestType.SIGN, Status.SUCCESS, cls.build, cls.mac, cls.installer)
        event("d", 13, RequestType.REGISTER, Status.SUCCESS, cls.release, cls.linux)

    def setUp(self):
        self.client.force_login(self.alice)

    def assert_shows(self, query: str, expected: str):
        response = self.client.get("/audit/?" + query)
        self.assertEqual(response.status_code, 200)
        for marker in "abcd":
            if marker in expected:
                self.assertContains(response, f"marker-{marker}", msg_prefix=query)
            else:
                self.assertNotContains(response, f"marker-{marker}", msg_prefix=query)

    def test_without_filters_it_shows_everything(self):
        self.assert_shows("", "abcd")

    def test_by_type(self):
        self.assert_shows("request_type=sign", "bc")
        self.assert_shows("request_type=index", "a")
        self.assert_shows("request_type=register", "d")

    def test_by_status(self):
        self.assert_shows("status=failure", "b")
        self.assert_shows("status=success", "acd")

    def test_by_api_key(self):
        self.assert_shows(f"api_key={self.build.pk}", "ac")
        self.assert_shows(f"api_key={self.release.pk}", "bd")

    def test_by_client(self):
        self.assert_shows(f"client={self.mac.pk}", "ac")
        self.assert_shows(f"client={self.linux.pk}", "bd")

    def test_by_identity(self):
        self.assert_shows(f"identity={self.app.pk}", "b")
        self.assert_shows(f"identity={self.installer.pk}", "c")

    def test_by_dates_both_included(self):
        self.assert_shows("date_from=2026-03-12", "cd")
        self.assert_shows("date_to=2026-03-11", "ab")
        self.assert_shows("date_from=2026-03-11&date_to=2026-03-12", "bc")
        self.assert_shows("date_from=2026-03-11&date_to=2026-03-11", "b")
        self.assert_shows("date_from=2026-03-14", "")

    def test_filters_combine(self):
        self.assert_shows(f"request_type=sign&api_key={self.build.pk}", "c")
        self.assert_shows(f"status=success&client={self.linux.pk}", "d")
        self.assert_shows("request_type=sign&status=success&date_to=2026-03-11", "")

    def test_empty_filters_filter_nothing(self):
        self.assert_shows("request_type=&status=&api_key=&client=&identity=&date_from=", "abcd")

    def test_no_match_says_so(self):
        response = self.client.get("/audit/?date_from=2027-01-01")
        self.assertContains(response, "No audit records match these filters.")

    def test_the_filters_offer_the_keys_clients_and_identities(self):
        response = self.client.get("/audit/")
        for name in ["build machines", "release machines", "mac-mini-1", "ci-runner-7"]:
            self.assertContains(response, name)
        self.assertContains(response, f'<option value="{self.app.pk}">')

    def test_invalid_filter_values_do_not_break_the_page(self):
        for query in [
            "request_type=bogus",
            "status=%00",
            "status=success%00",
            "api_key=abc",
            "api_key=-1",
            "api_key=99999",
            "api_key=99999999999999999999",
            "client=1e5",
            "client=%00",
            "identity=1.5",
            "identity=99999999999999999999999999",
            "date_from=not-a-date",
            "date_to=2026-02-30",
            "date_from=99999-01-01",
            "date_to=0000-00-00",
            "page=abc",
            "page=-1",
            "page=99999999999999999999",
            "request_type=sign&request_type=index",
        ]:
            with self.subTest(query=query):
                response = self.client.get("/audit/?" + query)
                self.assertEqual(response.status_code, 200)

    def test_invalid_filter_values_are_explained(self):
        response = self.client.get("/audit/?request_type=bogus&date_from=not-a-date")
        self.assertContains(response, "Select a valid choice.")
        self.assertContains(response, "Enter a valid date.")

    def test_an_unknown_api_key_is_explained_and_not_applied(self):
        response = self.client.get("/audit/?api_key=9999")
        self.assertContains(
            response,
            "API key: There is no such API key; it may have been deleted. "
            "This filter is not applied.",
        )
        self.assert_shows("api_key=9999", "abcd")

    def test_from_after_to_is_explained_and_neither_date_applied(self):
        response = self.client.get("/audit/?date_from=2026-03-12&date_to=2026-03-11")
        self.assertContains(
            response, "The start date is after the end date. Neither date is applied."
        )
        self.assert_shows("date_from=2026-03-12&date_to=2026-03-11&status=success", "acd")

    def test_the_key_filter_shows_each_key_s_public_prefix(self):
        response = self.client.get("/audit/")
        self.assertContains(response, f"build machines ({self.build.display_id})</option>")

    def test_the_valid_filters_still_apply_beside_an_invalid_one(self):
        self.assert_shows("status=failure&date_from=not-a-date", "b")


class AuditFilterSummaryTestCase(BaseTestCase):
    """One line above the table says which filters apply."""

    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.build, _ = ApiKey.create("build machines")
        cls.mac = make_client(cls.build, "mac-mini-1")[0]
        cls.app = store_identity()

    def setUp(self):
        self.client.force_login(self.alice)

    def assert_summary(self, query: str, expected: str):
        response = self.client.get("/audit/?" + query)
        self.assertContains(response, f'<p class="filter-summary">{expected}</p>', 1, html=False)

    def test_without_filters_it_shows_all_records(self):
        for query in ["", "request_type=&status=&api_key=&client=&identity=&date_from=", "page=1"]:
            with self.subTest(query=query):
                self.assert_summary(query, "Showing all records")

    def test_it_names_each_filter(self):
        clear = ' — <a href="/audit/">Clear filters</a>'
        for query, shown in [
            ("request_type=sign&status=failure", "sign, failure"),
            ("request_type=approve", "approve client"),
            (
                f"api_key={self.build.pk}",
                f"API key “build machines” ({self.build.display_id})",
            ),
            (f"client={self.mac.pk}&identity={self.app.pk}", "client “mac-mini-1”, identity “"),
            ("date_from=2026-03-01&date_to=2026-03-10", "2026-03-01 to 2026-03-10"),
            ("date_from=2026-03-01", "from 2026-03-01"),
            ("date_to=2026-03-10", "to 2026-03-10"),
        ]:
            with self.subTest(query=query):
                response = self.client.get("/audit/?" + query)
                self.assertContains(response, f'<p class="filter-summary">Showing: {shown}')
                self.assertContains(response, clear, 1)

    def test_it_combines_filters_in_the_form_s_order(self):
        query = (
            f"date_from=2026-03-01&date_to=2026-03-10&api_key={self.build.pk}"
            "&status=failure&request_type=sign"
        )
        expected = (
            f"Showing: sign, failure, API key “build machines” ({self.build.display_id}), "
            '2026-03-01 to 2026-03-10 — <a href="/audit/">Clear filters</a>'
        )
        self.assert_summary(query, expected)

    def test_it_leaves_out_invalid_values(self):
        self.assert_summary("status=bogus&api_key=9999", "Showing all records")
        self.assert_summary(
            "status=failure&date_from=2026-03-12&date_to=2026-03-11",
            'Showing: failure — <a href="/audit/">Clear filters</a>',
        )


class AdminRecordsTestCase(BaseTestCase):
    """Admin records on the Audit page: found by type and by action, shown with their changes."""

    def setUp(self):
        self.sign_in_unrecorded(self.alice)
        self.identity = store_identity()
        for marker, action, changes in [
            ("a", "identity.toggle", {"is_active": [True, False]}),
            ("b", "user.sign_in_failed", {}),
            ("c", "audit.export", {"from": "2026-03-01", "to": "2026-03-31", "format": "csv"}),
        ]:
            AuditEvent.objects.create(
                request_type=RequestType.ADMIN,
                status=Status.SUCCESS,
                source="web",
                username="alice",
                identity=self.identity if action == "identity.toggle" else None,
                action=action,
                changes=changes,
                message=f"marker-{marker}",
            )
        AuditEvent.objects.create(
            request_type=RequestType.SIGN, status=Status.SUCCESS, message="marker-d"
        )

    def shows(self, query: str) -> str:
        body = self.client.get("/audit/?" + query).content.decode()
        return "".join(marker for marker in "abcd" if f"marker-{marker}" in body)

    def test_by_type_and_by_action(self):
        self.assertEqual(self.shows("request_type=admin"), "abc")
        self.assertEqual(self.shows("action=identity.toggle"), "a")
        self.assertEqual(self.shows("action=audit.export&request_type=admin"), "c")
        self.assertEqual(self.shows(f"identity={self.identity.pk}"), "a")
        self.assertEqual(self.shows("request_type=sign"), "d")

    def test_the_summary_names_the_action(self):
        response = self.client.get("/audit/?action=identity.toggle")
        self.assertContains(response, "Showing: identity.toggle")

    def test_an_unknown_action_is_explained_and_not_applied(self):
        response = self.client.get("/audit/?action=identity.steal")
        self.assertContains(response, "Admin action: Select a valid choice.")
        self.assertEqual(self.shows("action=identity.steal"), "abcd")

    def test_it_shows_the_action_and_the_changes_readably(self):
        response = self.client.get("/audit/?request_type=admin")
        self.assertContains(response, "<code>identity.toggle</code>")
        self.assertContains(response, "is_active: true → false")
        self.assertContains(response, "from: 2026-03-01")
        self.assertContains(response, '<span class="tag">web</span>')
