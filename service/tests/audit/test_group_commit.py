"""Group commit: concurrent requests' records share a transaction, and every one of them learns
whether it was written."""

import fcntl
import threading
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

import pytest
from django.conf import settings
from django.db import DatabaseError, connection
from django.test import SimpleTestCase, TransactionTestCase

from signing_service.audit import chain, records
from signing_service.audit.group_commit import GroupCommit
from signing_service.audit.models import AuditEvent, RequestType, Status


class SlowWriter:
    """A write that holds the first group until released, so others queue behind it."""

    def __init__(self, failure: BaseException | None = None):
        self.groups: list[list] = []
        self.first_started = threading.Event()
        self.release = threading.Event()
        self.failure = failure  # of the groups after the first
        self.failure_of_first: BaseException | None = None

    def __call__(self, events: list) -> None:
        self.groups.append(list(events))
        if len(self.groups) == 1:
            self.first_started.set()
            assert self.release.wait(10)
            if self.failure_of_first is not None:
                raise self.failure_of_first
        elif self.failure is not None:
            raise self.failure


def queue_behind_first(writer: SlowWriter, others: int) -> tuple[ThreadPoolExecutor, list]:
    """Start one write that blocks, then ``others`` that must wait for it; their futures."""
    group = GroupCommit(writer)
    pool = ThreadPoolExecutor(others + 1)
    futures = [pool.submit(group.write, ["first"])]
    assert writer.first_started.wait(10)
    futures += [pool.submit(group.write, [f"record {n}"]) for n in range(others)]
    while len(group.queue) < others:  # every other write is queued
        threading.Event().wait(0.01)
    return pool, futures


class GroupCommitTestCase(SimpleTestCase):
    def test_a_lone_write_is_written_at_once_alone(self):
        writer = SlowWriter()
        writer.release.set()
        GroupCommit(writer).write(["only"])
        self.assertEqual(writer.groups, [["only"]])

    def test_writes_that_arrive_during_a_commit_share_the_next_one(self):
        writer = SlowWriter()
        pool, futures = queue_behind_first(writer, others=5)
        self.assertEqual(len(writer.groups), 1)  # nobody returned while the first is written
        self.assertFalse(any(future.done() for future in futures))
        writer.release.set()
        for future in futures:
            future.result(10)
        pool.shutdown()
        self.assertEqual(writer.groups[0], ["first"])
        self.assertEqual(sorted(writer.groups[1]), sorted(f"record {n}" for n in range(5)))
        self.assertEqual(len(writer.groups), 2)

    def test_a_failed_commit_fails_every_write_in_its_group(self):
        writer = SlowWriter(failure=DatabaseError("disk full"))
        pool, futures = queue_behind_first(writer, others=3)
        writer.release.set()
        futures[0].result(10)  # the first group was written
        for future in futures[1:]:
            with self.assertRaises(DatabaseError):
                future.result(10)
        pool.shutdown()

    def test_writes_queued_during_a_failed_commit_fail_with_it(self):
        writer = SlowWriter()
        pool, futures = queue_behind_first(writer, others=3)
        writer.failure_of_first = DatabaseError("lock timeout")
        writer.release.set()
        for future in futures:
            with self.assertRaises(DatabaseError):
                future.result(10)
        pool.shutdown()
        self.assertEqual(len(writer.groups), 1)  # nobody tried the same write again

    def test_any_failure_of_the_writer_fails_the_group_closed(self):
        writer = SlowWriter(failure=RuntimeError("a bug in the writer"))
        pool, futures = queue_behind_first(writer, others=3)
        writer.release.set()
        outcomes = []
        for future in futures[1:]:
            try:
                future.result(10)
                outcomes.append("returned")
            except RuntimeError:
                outcomes.append("the writer's error")  # the one that wrote the group
            except DatabaseError:
                outcomes.append("not written")
        pool.shutdown()
        self.assertEqual(sorted(outcomes), ["not written", "not written", "the writer's error"])

    def test_the_next_group_is_written_after_a_failed_one(self):
        failures = iter([DatabaseError("once")])

        def write(events):
            if failure := next(failures, None):
                raise failure

        group = GroupCommit(write)
        with self.assertRaises(DatabaseError):
            group.write(["a"])
        group.write(["b"])  # not stuck "writing"


@pytest.mark.database
class ConcurrentRecordsTestCase(TransactionTestCase):
    def setUp(self):
        # The test database is SQLite's shared in-memory one, whose readers fail at once
        # ("table is locked") while another thread writes: no checkpoint or purge reads here.
        for throttle in (records.checkpoint_throttle, records.purge_throttle):
            patcher = mock.patch.object(throttle, "due", return_value=False)
            patcher.start()
            self.addCleanup(patcher.stop)

    def test_records_written_from_many_threads_form_one_gapless_chain(self):
        def write_some(thread: int) -> None:
            try:
                for n in range(25):
                    records.record(RequestType.SIGN, Status.SUCCESS, message=f"{thread}/{n}")
            finally:
                connection.close()

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(write_some, range(8)))
        events = list(AuditEvent.objects.order_by("sequence"))
        self.assertEqual([event.sequence for event in events], list(range(1, 201)))
        self.assertEqual(len({event.message for event in events}), 200)
        previous = chain.GENESIS_HASH
        for event in events:
            self.assertEqual(event.hash, chain.next_hash(previous, chain.fields_of(event)))
            previous = event.hash


class WritersTakeTurnsTestCase(TransactionTestCase):
    """On SQLite the processes' group commits wait for each other at a lock file, which wakes
    the next at once (SQLite's own lock is polled with sleeps)."""

    def test_a_group_commit_waits_while_another_process_writes(self):
        if connection.vendor != "sqlite":
            self.skipTest("PostgreSQL's writers queue at the chain's advisory lock")
        event = records.build(RequestType.SIGN, Status.SUCCESS)
        with open(settings.DATA_DIR / "audit-writer.lock", "a") as held:
            fcntl.flock(held, fcntl.LOCK_EX)  # as another process's group commit would
            writer = threading.Thread(target=self.write_closing, args=([event],))
            writer.start()
            writer.join(0.5)
            self.assertTrue(writer.is_alive())
            self.assertFalse(AuditEvent.objects.exists())
            fcntl.flock(held, fcntl.LOCK_UN)
        writer.join(10)
        self.assertFalse(writer.is_alive())
        self.assertEqual(AuditEvent.objects.count(), 1)

    @staticmethod
    def write_closing(events):
        try:
            records.write_group(events)
        finally:
            connection.close()
