"""The live stream of the audit, for a SIEM's shipper (Splunk, Elastic, Loki …): with
``SIGNING_SERVICE_AUDIT_LOG=stdout`` or ``=/path/to/file``, every audit record is also written
as one line of JSON, the record as the hash chain encodes it with its ``sequence`` and ``hash``
(as in the JSON export).

The database stays the source of truth: a record is streamed only after its transaction
commits, so the stream never shows a record the database lacks, and a signature is never
released on the stream's account. Lines go through a queue to one writer thread per process,
so a slow or stuck reader never holds up a request; each process writes its records in the
order it committed them, and the ``sequence`` orders all (several workers and replicas
interleave). If a line cannot be written (disk full, file removed, reader gone) or the queue is
full (``QUEUE_SIZE`` lines behind), it is dropped and an error logged with its sequence number:
the record is in the database, ``audit export`` has it. A file that cannot be opened for
writing stops the service at start, naming it.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import sys
import threading

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from signing_service.audit import chain
from signing_service.audit.models import AuditEvent

log = logging.getLogger(__name__)

STDOUT = "stdout"
QUEUE_SIZE = 10_000
FLUSH_SECONDS = 5  # at exit, how long queued lines may take to be written


def check_destination(destination: str) -> None:
    """Refuse, at start, a stream file that cannot be written."""
    if destination in ("", STDOUT):
        return
    try:
        os.close(open_file(destination))
    except OSError as error:
        raise ImproperlyConfigured(
            f"SIGNING_SERVICE_AUDIT_LOG: cannot write to {destination}: {error.strerror}."
        ) from None


def open_file(path: str) -> int:
    # Appending: every process's lines land whole at the end, none overwrites another's.
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)


def line_of(event: AuditEvent) -> bytes:
    return json.dumps(chain.document(event)).encode() + b"\n"


class LiveStream:
    """Writes lines handed to it on its own thread, started in the process that first uses it
    (gunicorn forks its workers after loading the application)."""

    def __init__(self, destination: str):
        self.destination = destination
        self.lines: queue.Queue[tuple[int, bytes]] = queue.Queue(QUEUE_SIZE)
        self.started_in: int | None = None
        self.lock = threading.Lock()

    def publish(self, events: list[AuditEvent]) -> None:
        self.start()
        for event in events:
            try:
                self.lines.put_nowait((event.sequence, line_of(event)))
            except queue.Full:
                log.error("Audit stream: record %d dropped, the stream is behind.", event.sequence)

    def start(self) -> None:
        with self.lock:
            if self.started_in == os.getpid():
                return
            self.started_in = os.getpid()
            self.lines = queue.Queue(QUEUE_SIZE)  # a forked copy's lines are its parent's
            threading.Thread(target=self.write_lines, name="audit-stream", daemon=True).start()
            atexit.register(self.flush)

    def write_lines(self) -> None:
        descriptor = sys.stdout.fileno() if self.destination == STDOUT else None
        while True:
            sequence, line = self.lines.get()
            try:
                if descriptor is None:
                    descriptor = open_file(self.destination)
                os.write(descriptor, line)
            except OSError as error:
                log.error("Audit stream: record %d not written: %s.", sequence, error.strerror)
                if descriptor is not None and self.destination != STDOUT:
                    os.close(descriptor)  # open it again for the next line (rotated, say)
                    descriptor = None
            finally:
                self.lines.task_done()

    def flush(self) -> None:
        """Wait until the lines queued so far are written (bounded at exit)."""
        done = threading.Thread(target=self.lines.join, daemon=True)
        done.start()
        done.join(FLUSH_SECONDS)


_stream: LiveStream | None = None
_stream_lock = threading.Lock()


def current() -> LiveStream | None:
    """The stream configured by ``AUDIT_LOG`` (None: no stream)."""
    global _stream
    if not settings.AUDIT_LOG:
        return None
    with _stream_lock:
        if _stream is None or _stream.destination != settings.AUDIT_LOG:
            _stream = LiveStream(settings.AUDIT_LOG)
        return _stream


def after_commit(events: list[AuditEvent]) -> None:
    """Stream the records once the transaction writing them commits (never if it rolls back)."""
    stream = current()
    if stream is not None:
        transaction.on_commit(lambda: stream.publish(events))
