"""Group commit: the audit records of a process's concurrent requests, written in one transaction.

A signature leaves only once its record is committed, and a commit is the dear part of a
record: a flush to disk (SQLite's ``synchronous=FULL``, PostgreSQL's WAL) and a turn at the
chain's lock (chain.py), which every writer of every process takes one after the other. So the
first request to arrive writes its records at once (the leader); requests arriving meanwhile
queue, and when it is done one of them writes everything queued in one transaction, and so on.
Under load each flush and each turn at the lock carries the records of several requests; alone,
a request waits for nobody.

All or nothing per group: if the transaction fails, every request in it gets the error and
releases nothing (fail closed), as it would have alone; so do the requests that queued while
it was tried, instead of trying again at once. A thread inside a transaction of its
own (registering a client writes the client and its record together) does not use this.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import DatabaseError


class Ticket:
    """One caller's records, and what became of them."""

    def __init__(self, events: list):
        self.events = events
        self.done = False
        self.error: BaseException | None = None


class GroupCommit:
    def __init__(self, write: Callable[[list], None]):
        self.write_group = write
        self.condition = threading.Condition()
        self.queue: list[Ticket] = []
        self.writing = False

    def write(self, events: list) -> None:
        """Return once ``events`` are committed (with others' perhaps); raise ``DatabaseError``
        if they are not."""
        ticket = Ticket(events)
        with self.condition:
            self.queue.append(ticket)
            while self.writing and not ticket.done:
                self.condition.wait()
            leading = not ticket.done  # nobody is writing: this thread writes what is queued
            if leading:
                group, self.queue, self.writing = self.queue, [], True
        if leading:
            self.lead(group)  # raises what the write raised
        elif ticket.error is not None:
            raise DatabaseError("The audit records were not written.") from ticket.error

    def lead(self, group: list[Ticket]) -> None:
        error: BaseException | None = None
        try:
            self.write_group([event for ticket in group for event in ticket.events])
        except BaseException as failure:
            error = failure  # whatever it is, nobody in the group may go on as if written
            raise
        finally:
            with self.condition:
                if error is not None:
                    # Those who queued meanwhile fail with it rather than wait out the same
                    # fault (a lock, a timeout) again: a request waits for one write at most.
                    group, self.queue = group + self.queue, []
                for ticket in group:
                    ticket.done, ticket.error = True, error
                self.writing = False
                self.condition.notify_all()
