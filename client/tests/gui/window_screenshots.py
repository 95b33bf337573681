"""Run by ``test_window_screenshots.py`` under Xvfb (not a test itself): the real window on X11
(Qt's xcb platform), with the settings, key and pin of the CLI machine whose environment it
gets, refreshed from the real service, the first row selected, then captured from the X
screen itself at each size asked.

    python window_screenshots.py FOLDER WIDTHxHEIGHT...

Writes FOLDER/window-WIDTHxHEIGHT.png for each; exits 1 with the reason when the window
lists nothing within the time allowed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication

from signing_manager.gui.window import CertificatesWindow

WAIT_SECONDS = 60


def settle(seconds: float, until=lambda: False) -> None:
    """Run the event loop for ``seconds``, or until ``until()`` holds. (An event loop that a
    timer ends, not processEvents in a loop: called that often, PySide6 6.12 loses count of
    its references to None and Python aborts.)"""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not until():
        loop = QEventLoop()
        QTimer.singleShot(50, loop.quit)
        loop.exec()


def main(folder: Path, sizes: list[str]) -> int:
    app = QApplication(sys.argv[:1])  # noqa: F841 - kept alive while the window is
    window = CertificatesWindow(apple_forms=False)
    window.move(0, 0)
    window.show()
    window.start()
    settle(WAIT_SECONDS, lambda: window.model.rowCount() > 0)
    if window.model.rowCount() == 0:
        print(f"Nothing listed: {window.refresh_label.toolTip()}", file=sys.stderr)
        return 1
    window.table.selectRow(0)
    folder.mkdir(parents=True, exist_ok=True)
    for size in sizes:
        width, height = (int(part) for part in size.split("x"))
        window.resize(width, height)
        settle(1.0)  # laid out and painted on the X server
        frame = window.frameGeometry()
        picture = window.screen().grabWindow(0, frame.x(), frame.y(), width, height)
        picture.save(str(folder / f"window-{size}.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2:]))
