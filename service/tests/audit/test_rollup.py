"""The daily roll-up behind activity at a glance (``audit/rollup.py``): it counts what a live
count of the records would, rolls each complete day up once (also when two renders race for
it), reads today live, follows renames and deletions, and goes with the records it counts when
the retention purge deletes them."""

import datetime
import random
import subprocess
import sys
from unittest import mock

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
    too) and other requests, spread over ``days`` days before ``NOW``, written oldest first as
    the service writes them (the chain's order, which the purge follows)."""
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
    AuditEvent.objects.bulk_create(sorted(records, key=lambda record: record.created))


def sorted_counts(window: activity.Window) -> list[tuple]:
    rows = activity.daily_counts(window)
    return sorted((r["day"], r["identity"] or 0, r["status"], r["signatures"]) for r in rows)


class RollupTestCase(BaseTestCase):
    def setUp(self):
        self.first, _ = self.store_identity(common_name="Developer ID: First")
        self.second, _ = self.store_identity(common_name="Developer ID: Second")
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


# Run as ``python RACE_SCRIPT DATA_DIR setup|race NAME|check`` on the suite's database engine: a
# file, not the in-memory test database, so two processes wait for each other's writes as the
# service's workers do.
RACE_SCRIPT = """
import datetime, pathlib, sys, time
from unittest import mock

import django

django.setup()
from django.core.management import call_command

from signing_service.audit import activity, rollup
from signing_service.audit.models import AuditEvent, DailyActivity, RequestType, RolledUpDay

NOW = datetime.datetime.fromisoformat(sys.argv[1])
folder, step = pathlib.Path(sys.argv[2]), sys.argv[3]
if step == "setup":
    call_command("migrate", verbosity=0)
    AuditEvent.objects.bulk_create(
        AuditEvent(created=NOW - datetime.timedelta(days=days), request_type=RequestType.SIGN,
                   status="success")
        for days in range(1, 30) for _ in range(days)
    )
elif step == "race":
    day_counts = rollup.day_counts

    def counts_then_wait(day):
        counts = day_counts(day)
        (folder / f"{day}-{sys.argv[4]}").touch()
        deadline = time.monotonic() + 30
        while len(list(folder.glob(f"{day}-*"))) < 2:  # both hold the counts; now both claim
            assert time.monotonic() < deadline, "the other process never came"
            time.sleep(0.005)
        return counts

    with mock.patch.object(rollup, "day_counts", counts_then_wait):
        print(activity.service_activity(NOW).signatures)
else:
    counts = DailyActivity.objects.values_list("signatures", flat=True)
    print(RolledUpDay.objects.count(), sum(counts))
"""


def test_concurrent_first_renders_do_not_count_a_day_twice(tmp_path, service_environment):
    """Two processes render the first page at once, both aggregating every day before either
    claims it: each day is stored once, and both show the right total."""
    script = tmp_path / "race.py"
    script.write_text(RACE_SCRIPT)
    env = {
        **service_environment,
        "SIGNING_SERVICE_DATA_DIR": str(tmp_path / "data"),
        "DJANGO_SETTINGS_MODULE": "signing_service.settings",
    }

    def command(*args: str) -> list[str]:
        return [sys.executable, str(script), NOW.isoformat(), str(tmp_path), *args]

    subprocess.run(command("setup"), env=env, check=True, timeout=120)
    racers = [
        subprocess.Popen(command("race", name), env=env, stdout=subprocess.PIPE, text=True)
        for name in ("a", "b")
    ]
    outputs = [racer.communicate(timeout=120)[0] for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0]
    expected = sum(range(1, 30))
    assert outputs == [f"{expected}\n"] * 2
    assert len(list(tmp_path.glob("*-b"))) == 29  # every day raced
    check = subprocess.run(command("check"), env=env, check=True, capture_output=True, text=True)
    assert check.stdout == f"29 {expected}\n"
