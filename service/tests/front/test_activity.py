"""Activity at a glance on the main page and an identity's page (issue 15): what the charts and
lists show matches the audit records, only for those who may read the audit, as well-formed SVG
with every name escaped, in the same few queries however many records there are."""

import datetime
import re
import xml.etree.ElementTree as ET

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from signing_service.access.models import ApiKey
from signing_service.audit import activity
from signing_service.audit.models import AuditEvent, RequestType, Status
from signing_service.identities.models import Identity
from signing_service.test import BaseTestCase, make_client

SVG = re.compile(r"<svg\b.*?</svg>", re.DOTALL)
HOSTILE = '<script>alert("x")</script>'


def svg_titles(page: str) -> list[str]:
    """The tooltips of every chart on the page, parsed as XML (which fails on malformed SVG)."""
    titles = []
    for svg in SVG.findall(page):
        tree = ET.fromstring(svg)  # noqa: S314 - the service's own page, not untrusted XML
        titles += [title.text for title in tree.iter("{http://www.w3.org/2000/svg}title")]
    return titles


class ActivityTestCase(BaseTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.first, _ = cls.store_identity(common_name="Developer ID Application: First (T1)")
        cls.second, _ = cls.store_identity(common_name="Developer ID Application: Second (T2)")
        cls.api_key = ApiKey.objects.create(name="builds", token_id="activity", secret_hash="x")
        cls.mini = make_client(cls.api_key, "mac-mini")[0]
        cls.studio = make_client(cls.api_key, "mac-studio")[0]

    def setUp(self):
        self.client.force_login(self.alice)
        self.since = activity.window_start(timezone.now())

    def day(self, offset: int) -> datetime.datetime:
        """Noon of the window's ``offset``-th day (0 the first, 29 today)."""
        return self.since + datetime.timedelta(days=offset, hours=12)

    def sign(self, count, created, *, identity=None, client=None, status=Status.SUCCESS, **fields):
        AuditEvent.objects.bulk_create(
            AuditEvent(
                created=created,
                request_type=RequestType.SIGN,
                status=status,
                identity=identity or self.first,
                identity_common_name=(identity or self.first).common_name,
                client=client or self.mini,
                client_hostname=(client or self.mini).hostname,
                **fields,
            )
            for _ in range(count)
        )

    def page(self, url: str = "/") -> str:
        response = self.client.get(url)
        self.assertEqual(response.status_code, 200)
        return response.content.decode()


class MainPageActivityTestCase(ActivityTestCase):
    def test_it_stacks_signatures_per_day_by_identity_with_the_failures_apart(self):
        self.sign(2, self.day(3))
        self.sign(1, self.day(3), identity=self.second)
        self.sign(1, self.day(3), status=Status.FAILURE, reason="identity_not_authorized")
        self.sign(4, self.day(29), identity=self.second)
        self.sign(5, self.since - datetime.timedelta(hours=1))  # the day before the window
        titles = svg_titles(self.page())
        third, today = (f"{self.day(n):%Y-%m-%d}" for n in (3, 29))
        self.assertEqual(
            sorted(t for t in titles if t.startswith(third)),
            [
                f"{third}, Developer ID Application: First (T1): 2",
                f"{third}, Developer ID Application: Second (T2): 1",
                f"{third}, failures: 1",
            ],
        )
        self.assertEqual(
            [t for t in titles if t.startswith(today)],
            [f"{today}, Developer ID Application: Second (T2): 4"],
        )
        self.assertEqual(
            sum(
                t.startswith(f"{self.since - datetime.timedelta(days=1):%Y-%m-%d}") for t in titles
            ),
            0,
        )
        self.assertIn("7 signatures since", self.page())

    def test_it_ranks_the_clients_by_their_successful_signatures(self):
        self.sign(2, self.day(1), client=self.mini)
        self.sign(3, self.day(2), client=self.studio)
        self.sign(4, self.day(2), client=self.mini, status=Status.FAILURE, reason="x")
        self.sign(9, self.since - datetime.timedelta(days=2), client=self.mini)
        bars = [t for t in svg_titles(self.page()) if t.startswith("mac-")]
        self.assertEqual(bars, ["mac-studio: 3", "mac-mini: 2"])

    def test_it_lists_the_identities_expiring_within_sixty_days_and_no_later(self):
        now = timezone.now()
        Identity.objects.filter(pk=self.first.pk).update(
            not_after=now + datetime.timedelta(days=59, hours=1)
        )
        Identity.objects.filter(pk=self.second.pk).update(
            not_after=now + datetime.timedelta(days=61)
        )
        expiring = self.page().split('id="expiring"')[1].split("</table>")[0]
        self.assertIn("First (T1)", expiring)
        self.assertIn("<td>59</td>", expiring)
        self.assertNotIn("Second (T2)", expiring)

    def test_it_lists_the_last_refusals_newest_first_with_their_reasons(self):
        AuditEvent.objects.create(
            created=self.day(5),
            request_type=RequestType.INDEX,
            status=Status.FAILURE,
            reason="bad_credentials",
            count=3,
            address="10.0.0.7",
        )
        self.sign(1, self.day(6), status=Status.FAILURE, reason="identity_not_authorized")
        self.sign(1, self.day(7))
        refusals = self.page().split('id="refusals"')[1].split("</table>")[0]
        self.assertLess(
            refusals.index("identity_not_authorized"),
            refusals.index("bad_credentials \N{MULTIPLICATION SIGN}3"),
        )
        self.assertIn("10.0.0.7", refusals)
        self.assertEqual(refusals.count("<tr>"), 3)  # the heading and two refusals

    def test_it_escapes_hostile_names_and_stays_well_formed_svg(self):
        Identity.objects.filter(pk=self.first.pk).update(common_name=HOSTILE)
        self.mini.hostname = '"><svg onload="alert(1)">'
        self.mini.save()
        self.sign(2, self.day(4))
        page = self.page()
        titles = svg_titles(page)
        self.assertIn(f"{self.day(4):%Y-%m-%d}, {HOSTILE}: 2", titles)
        self.assertIn('"><svg onload="alert(1)">: 2', titles)
        self.assertNotIn("<script>", page)
        self.assertNotIn("<svg onload", page)

    def test_it_makes_the_same_few_queries_however_many_records(self):
        def page_queries() -> int:
            with CaptureQueriesContext(connection) as queries:
                self.page()
            return len(queries)

        self.sign(1, self.day(1))
        self.page()  # rolls the window's complete days up, once (test_rollup.py)
        few = page_queries()
        for offset in range(30):
            self.sign(20, self.day(offset), client=(self.mini, self.studio)[offset % 2])
            self.sign(1, self.day(offset), identity=self.second, status=Status.FAILURE, reason="x")
        self.assertEqual(page_queries(), few)
        # Days rolled up, identities, days, top clients, their names, refusals.
        with self.assertNumQueries(6):
            activity.service_activity()

    def test_non_admins_do_not_see_it(self):
        self.sign(1, self.day(1))
        self.client.force_login(self.bob)
        with CaptureQueriesContext(connection) as queries:
            page = self.page()
        self.assertNotIn('id="activity"', page)
        self.assertFalse([q for q in queries if "audit_auditevent" in q["sql"]])


class IdentityPageActivityTestCase(ActivityTestCase):
    def url(self, identity) -> str:
        return f"/identities/{identity.pk}/"

    def test_it_shows_this_identitys_signatures_clients_and_refusals_only(self):
        self.sign(3, self.day(10), client=self.studio)
        self.sign(1, self.day(10), status=Status.FAILURE, reason="unsupported_algorithm")
        self.sign(6, self.day(10), identity=self.second, client=self.mini)
        self.sign(
            1, self.day(11), identity=self.second, status=Status.FAILURE, reason="other_reason"
        )
        page = self.page(self.url(self.first))
        day = f"{self.day(10):%Y-%m-%d}"
        self.assertEqual(
            [t for t in svg_titles(page) if t.startswith(day) or t.startswith("mac-")],
            [
                f"{day}, Developer ID Application: First (T1): 3",
                f"{day}, failures: 1",
                "mac-studio: 3",
            ],
        )
        self.assertIn("unsupported_algorithm", page)
        self.assertNotIn("other_reason", page)
        with self.assertNumQueries(5):  # days rolled up, days, top clients, their names, refusals
            activity.identity_activity(self.first)

    def test_it_warns_when_the_identity_expires_soon(self):
        Identity.objects.filter(pk=self.first.pk).update(
            not_after=timezone.now() + datetime.timedelta(days=20, hours=1)
        )
        self.assertIn("expires in 20 days", self.page(self.url(self.first)))
        self.assertNotIn('id="expiring"', self.page(self.url(self.second)))

    def test_non_admins_do_not_see_it(self):
        self.client.force_login(self.bob)
        self.assertNotIn('id="activity"', self.page(self.url(self.first)))
