"""The Qt application around the certificates window: logging as the settings say, the
window shown, and Preferences or a refresh at once (``CertificatesWindow.start``)."""

from __future__ import annotations

import logging

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from signing_manager import __version__
from signing_manager.config import Settings
from signing_manager.errors import SigningManagerError
from signing_manager.gui.window import CertificatesWindow
from signing_manager.logs import set_up_logging

log = logging.getLogger(__name__)


def run(argv: list[str]) -> int:
    app = QApplication.instance() or QApplication(argv)
    app.setApplicationName("Signing Manager")
    app.setApplicationVersion(__version__)
    try:
        debug = Settings.load().debug
    except SigningManagerError:
        debug = False  # the window says what is wrong with the settings
    set_up_logging(debug)
    log.info("Started: the window (signing-manager %s)", __version__)
    window = CertificatesWindow()
    window.show()
    QTimer.singleShot(0, window.start)
    status = app.exec()
    log.info("Finished: the window")
    return status
