"""Logging filters that keep an outage from flooding the log (settings.LOGGING uses them).

While the database is down every request fails the same way; a full traceback for each
(~9 KB) would fill a disk in hours. Each failure still gets its one line; a traceback is kept
for the first of each distinct error in a minute.
"""

from __future__ import annotations

import logging
import threading
import time

TRACEBACK_INTERVAL_SECONDS = 60.0


class OneTracebackPerMinute(logging.Filter):
    """Drops a record's traceback when the same error (type and first line) already had one
    in the last minute; the line then names the error, so it still says what went wrong."""

    def __init__(self, interval: float = TRACEBACK_INTERVAL_SECONDS, clock=time.monotonic):
        super().__init__()
        self.interval = interval
        self.clock = clock
        self.shown: dict[tuple[str, str], float] = {}
        self.lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is None:
            return True
        text = str(error).strip()
        first = text.splitlines()[0] if text else ""
        key = (type(error).__qualname__, first)
        now = self.clock()
        with self.lock:
            last = self.shown.get(key)
            if last is None or now - last >= self.interval:
                self.forget_older_than(now - self.interval)
                self.shown[key] = now
                return True
        line = record.getMessage()
        named = type(error).__name__ if first in line else f"{type(error).__name__}: {first}"
        record.msg, record.args = f"{line} [{named.rstrip(': ')}]", None
        record.exc_info = record.exc_text = None
        return True

    def forget_older_than(self, moment: float) -> None:
        """Drop errors last shown before ``moment``: a long-running process meets many
        distinct errors (messages carry ids and values), and must not keep them all."""
        for key in [key for key, shown in self.shown.items() if shown < moment]:
            del self.shown[key]


class SkipServiceUnavailable(logging.Filter):
    """For ``django.request``: a 503 is answered by code that logged why (the API's database
    handler, the 503 page), so Django's second line about it is left out."""

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "status_code", None) != 503
