"""Work off the window's thread: network calls and signing never block the UI.

A ``Task`` runs a function on a Python thread and hands its result, its error or its progress
to the window through Qt signals, which Qt delivers on the window's thread (the task object
lives there).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from signing_manager.errors import SigningManagerError

log = logging.getLogger(__name__)


class Task(QObject):
    succeeded = Signal(object)
    failed = Signal(object)  # the exception
    progressed = Signal(object)  # whatever the function reports

    def __init__(self, work: Callable[[Callable[[object], None]], object], parent=None):
        """``work`` is called with a function that reports progress; it returns the result."""
        super().__init__(parent)
        self.work = work
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self) -> Task:
        self.thread.start()
        return self

    def run(self) -> None:
        try:
            result = self.work(self.progressed.emit)
        except SigningManagerError as error:
            self.failed.emit(error)
        except Exception as error:
            log.exception("Unexpected error in the window's background work")
            self.failed.emit(error)
        else:
            self.succeeded.emit(result)
