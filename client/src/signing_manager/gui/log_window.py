"""Show Log (⌘L / Ctrl+L): SigningManager.log, followed as it grows (the guide opens it in
Console; this is the window's own, on every OS).

The file is polled: new bytes are appended as they arrive, and a file that got shorter
(replaced, or emptied) is read again from its start.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QFontDatabase, QTextCursor
from PySide6.QtWidgets import QLabel, QPlainTextEdit, QVBoxLayout, QWidget

POLL_MILLISECONDS = 500
SHOWN_BYTES = 1 << 20  # the end of a long log is what matters


class LogWindow(QWidget):
    def __init__(self, path: Path, parent=None):
        super().__init__(parent)
        self.setObjectName("log-window")
        self.setWindowTitle("SigningManager.log")
        self.path = path
        self.position = 0
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(str(path)))
        layout.addWidget(self.text)
        self.resize(900, 500)
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.follow)
        self.timer.start(POLL_MILLISECONDS)
        self.follow()

    def follow(self) -> None:
        """Append what the log gained since the last look."""
        try:
            size = self.path.stat().st_size
        except OSError:
            return  # not written yet
        if size < self.position:
            self.text.clear()
            self.position = 0
        if size == self.position:
            return
        start = max(self.position, size - SHOWN_BYTES)
        with self.path.open("rb") as log:
            log.seek(start)
            new = log.read(size - start)
        self.position = size
        self.text.moveCursor(QTextCursor.MoveOperation.End)
        self.text.insertPlainText(new.decode("utf-8", "replace"))
        self.text.moveCursor(QTextCursor.MoveOperation.End)
