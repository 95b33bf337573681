"""The daily roll-up behind activity at a glance (``audit/rollup.py``): it counts what a live
count of the records would, rolls each complete day up once (also when two renders race for
it), reads today live, follows renames and deletions, and goes with the records it counts when
the retention purge deletes them."""

import datetime
import random
import threading
import unittest
from unittest import mock

from django.db import connection, connections
from django.test import TransactionTestCase

from signing_service.access.models import ApiKey
from signing_service.audit import activity, rollup
from signing_service.audit.models import (
    AuditEvent,
    DailyActivity,
    RequestType,
    RolledUpDay,
    Status,
)
from signing_service.audit.records import purge_expired
from signing_service.configuration.models import ServiceSettings
from signing_service.identities.models import Identity
from signing_service.test import BaseTestCase, make_client

# Noon: the window's days are complete and today is past the roll-up's settling time.
NOW = datetime.datetime(2026, 11, 30, 12, tzinfo=datetime.UTC)


def live_window(now: datetime.datetime, identity=None) -> activity.Window:
    """The same window read from the records alone, without the roll-up: the reference."""
    since = activity.window_start(now)
    return activity.Window(since, since, identity)


def generate_records(identities, clients, *, days: int, per_day: int, seed: int = 7) -> None:
    """Random signature records (successes and failures, of deleted clients and identities
    too) and other requests, spread over ``days`` days before ``NOW``."""
    rng = random.Random(seed)
    records = []
    for _ in range(days * per_day):
        identity = rng.choice([*identities, None])
        client = rng.choice([*clients, None])
        records.append(
            AuditEvent(
                created=NOW - datetime.timedelta(seconds=rng.randrange(days * 86400)),
                request_type=rng.choice([RequestType.SIGN] * 8 + [RequestType.INDEX]),
                status=rng.choice([Status.SUCCESS] * 5 + [Status.FAILURE]),
                identity=identity,
                client=client,
            )
        )
    AuditEvent.objects.bulk_create(records)


def sorted_counts(window: activity.Window) -> list[tuple]:
    rows = activity.daily_counts(window)
    return sorted((r["day"], r["identity"] or 0, r["status"], r["signatures"]) for r in rows)


class RollupFixture:
    """Two identities and three clients, made once per test class or test."""

    def make_parties(self) -> None:
        self.first, _ = BaseTestCase.store_identity(common_name="Developer ID: First")
        self.second, _ = BaseTestCase.store_identity(common_name="Developer ID: Second")
        api_key = ApiKey.objects.create(name="builds", token_id="rollup", secret_hash="x")
        self.clients = [make_client(api_key, f"mac-{n}")[0] for n in range(3)]

    def sign(self, count: int, created: datetime.datetime, identity=None) -> None:
        AuditEvent.objects.bulk_create(
            AuditEvent(
                created=created,
                request_type=RequestType.SIGN,
                status=Status.SUCCESS,
                identity=identity or self.first,
                client=self.clients[0],
            )
            for _ in range(count)
        )


class RollupTestCase(RollupFixture, BaseTestCase):
    def setUp(self):
        self.make_parties()

    def test_the_roll_up_counts_what_a_live_count_of_the_records_does(self):
        generate_records([self.first, self.second], self.clients, days=40, per_day=25)
        rolled_up = activity.Window.rolled_up(NOW)
        self.assertEqual(rolled_up.live_since, rollup.midnight(NOW.date()))
        self.assertEqual(RolledUpDay.objects.count(), activity.WINDOW_DAYS - 1)
        in_roll_up = sum(DailyActivity.objects.values_list("signatures", flat=True))
        self.assertEqual(
            in_roll_up,
            AuditEvent.objects.filter(
                request_type=RequestType.SIGN,
                created__gte=rolled_up.since,
                created__lt=rolled_up.live_since,
            ).count(),
        )
        self.assertGreater(in_roll_up, 500)
        self.assertEqual(sorted_counts(rolled_up), sorted_counts(live_window(NOW)))
        self.assertEqual(activity.top_clients(rolled_up), activity.top_clients(live_window(NOW)))
        for identity in (self.first, self.second):
            self.assertEqual(
                sorted_counts(activity.Window.rolled_up(NOW, identity)),
                sorted_counts(live_window(NOW, identity)),
            )
            self.assertEqual(
                activity.top_clients(activity.Window.rolled_up(NOW, identity)),
                activity.top_clients(live_window(NOW, identity)),
            )

    def test_a_later_render_rolls_up_only_the_days_not_yet_rolled_up(self):
        generate_records([self.first], self.clients, days=32, per_day=5)
        activity.service_activity(NOW)
        with mock.patch.object(rollup, "day_counts", wraps=rollup.day_counts) as counted:
            activity.service_activity(NOW)
            self.assertEqual(counted.call_args_list, [])
            activity.service_activity(NOW + datetime.timedelta(days=1))
            activity.identity_activity(self.first, NOW + datetime.timedelta(days=1))
        self.assertEqual(counted.call_args_list, [mock.call(NOW.date())])

    def test_a_day_rolled_up_by_another_render_meanwhile_is_kept_not_doubled(self):
        yesterday = NOW - datetime.timedelta(days=1)
        self.sign(4, yesterday)
        day_counts = rollup.day_counts
        raced = []

        def another_render_first(day):
            counts = day_counts(day)
            if day == yesterday.date() and not raced:
                raced.append(day)
                rollup.roll_up_day(day)  # another worker, between this one's count and claim
            return counts

        with mock.patch.object(rollup, "day_counts", side_effect=another_render_first):
            self.assertEqual(activity.service_activity(NOW).signatures, 4)
        self.assertEqual(DailyActivity.objects.get().signatures, 4)

    def test_todays_records_appear_at_once_and_yesterdays_until_it_settles(self):
        activity.service_activity(NOW)
        self.sign(3, NOW - datetime.timedelta(hours=1))
        self.assertEqual(activity.service_activity(NOW).signatures, 3)
        self.sign(2, NOW + datetime.timedelta(hours=11, minutes=59))
        just_after_midnight = NOW + datetime.timedelta(hours=12, minutes=1)
        self.assertEqual(activity.service_activity(just_after_midnight).signatures, 5)
        self.assertFalse(RolledUpDay.objects.filter(day=NOW.date()).exists())
        settled = NOW + datetime.timedelta(hours=12) + rollup.SETTLE
        self.assertEqual(activity.service_activity(settled).signatures, 5)
        self.assertTrue(RolledUpDay.objects.filter(day=NOW.date()).exists())

    def test_renamed_and_deleted_identities_and_clients_read_as_they_do_live(self):
        self.sign(4, NOW - datetime.timedelta(days=2))
        self.sign(3, NOW - datetime.timedelta(days=2), identity=self.second)
        activity.service_activity(NOW)
        Identity.objects.filter(pk=self.first.pk).update(common_name="Developer ID: Renamed")
        self.second.delete()
        self.clients[0].delete()
        result = activity.service_activity(NOW)
        day = (NOW - datetime.timedelta(days=2)).date()
        segments = dict(result.days)[day]
        self.assertEqual(
            [(s.label, s.count) for s in segments],
            [("Developer ID: Renamed", 4), (activity.DELETED_IDENTITY, 3)],
        )
        self.assertEqual(result.top_clients, [])
        self.assertEqual(
            sorted_counts(activity.Window.rolled_up(NOW)), sorted_counts(live_window(NOW))
        )

    def test_the_purge_takes_the_roll_ups_of_the_days_it_purged_from(self):
        generate_records([self.first, self.second], self.clients, days=30, per_day=20)
        activity.service_activity(NOW)
        ServiceSettings.objects.update_or_create(pk=1, defaults={"audit_retention_days": 10})
        cutoff = NOW - datetime.timedelta(days=10)
        self.assertGreater(purge_expired(NOW), 0)
        self.assertFalse(RolledUpDay.objects.filter(day__lte=cutoff.date()).exists())
        self.assertFalse(DailyActivity.objects.filter(day__lte=cutoff.date()).exists())
        self.assertEqual(RolledUpDay.objects.count(), 9)  # the complete days after the cutoff's
        # The next render rolls the cutoff's day up again from the records left, and shows
        # nothing for the days before it: what the audit still holds.
        self.assertEqual(
            sorted_counts(activity.Window.rolled_up(NOW)), sorted_counts(live_window(NOW))
        )
        days = dict(activity.service_activity(NOW).days)
        self.assertEqual(days[(cutoff - datetime.timedelta(days=1)).date()], [])
        self.assertTrue(days[cutoff.date()])


@unittest.skipIf(
    connection.vendor == "sqlite",
    "the in-memory SQLite test database (shared cache) fails a second writer at once instead of "
    "making it wait as a database file does; the race runs on PostgreSQL, and the claim's "
    "logic on both in test_a_day_rolled_up_by_another_render_meanwhile_is_kept_not_doubled",
)
class ConcurrentRollupTestCase(RollupFixture, TransactionTestCase):
    """Two first renders at once, each on its own connection, both aggregating every day before
    either claims it: each day is stored once."""

    def setUp(self):
        self.make_parties()

    def test_concurrent_first_renders_do_not_count_a_day_twice(self):
        for offset in range(1, 30):
            self.sign(offset, NOW - datetime.timedelta(days=offset))
        aggregated = threading.Barrier(2, timeout=30)
        day_counts = rollup.day_counts

        def counts_then_wait(day):
            counts = day_counts(day)
            aggregated.wait()  # both renders hold the day's counts before either claims it
            return counts

        results, errors = [], []

        def render():
            try:
                results.append(activity.service_activity(NOW).signatures)
            except Exception as error:  # reported by the assertion below
                errors.append(error)
            finally:
                connections.close_all()

        with mock.patch.object(rollup, "day_counts", counts_then_wait):
            threads = [threading.Thread(target=render) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
        self.assertEqual(errors, [])
        expected = sum(range(1, 30))
        self.assertEqual(results, [expected, expected])
        self.assertEqual(RolledUpDay.objects.count(), 29)
        self.assertEqual(sum(DailyActivity.objects.values_list("signatures", flat=True)), expected)
        self.assertEqual(activity.service_activity(NOW).signatures, expected)
