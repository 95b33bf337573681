"""The ``timestamp`` filter: one format and one zone label for every moment a page shows."""

import datetime
from zoneinfo import ZoneInfo

from django.template import engines
from django.test import SimpleTestCase

from signing_service.template_filters import timestamp


class TimestampTestCase(SimpleTestCase):
    def test_it_writes_a_moment_in_utc_and_says_so(self):
        moment = datetime.datetime(2026, 3, 10, 12, 0, 5, tzinfo=datetime.UTC)
        self.assertEqual(timestamp(moment), "2026-03-10 12:00:05 UTC")

    def test_it_converts_other_zones_to_utc(self):
        moment = datetime.datetime(2026, 3, 10, 13, 0, 5, tzinfo=ZoneInfo("Europe/Paris"))
        self.assertEqual(timestamp(moment), "2026-03-10 12:00:05 UTC")

    def test_no_moment_is_empty_so_a_default_can_follow(self):
        self.assertEqual(timestamp(None), "")

    def test_every_template_has_it(self):
        template = engines["django"].from_string("{{ when|timestamp|default:'never' }}")
        self.assertEqual(template.render({"when": None}), "never")
