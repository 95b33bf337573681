"""The client's log: ``SigningManager.log`` in the platform's log directory. Secrets never."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

from signing_manager.config import log_dir

LOG_NAME = "SigningManager.log"
SECRET = re.compile(r"\b(sm[kc])_[0-9a-f]{10}_[A-Za-z0-9_-]+")


class RedactSecrets(logging.Filter):
    """Defence in depth: no API key or client token reaches the log, even by mistake."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if SECRET.search(message):
            record.msg, record.args = SECRET.sub(r"\1_…redacted…", message), ()
        return True


def log_path() -> Path:
    return log_dir() / LOG_NAME


def set_up_logging(debug: bool, to_stderr: bool = False) -> None:
    """The log file, with debug lines when ``debug``; its lines on stderr too when
    ``to_stderr`` (``-d`` on the command line, not the saved setting)."""
    root = logging.getLogger("signing_manager")
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    root.handlers.clear()
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers: list[logging.Handler] = []
    try:
        log_path().parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path(), encoding="utf-8"))
    except OSError:
        pass  # a read-only home must not stop signing; the message then goes nowhere
    if to_stderr:
        handlers.append(logging.StreamHandler(sys.stderr))
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(RedactSecrets())
        root.addHandler(handler)
