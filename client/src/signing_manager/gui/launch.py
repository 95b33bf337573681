"""Opening the window: ``signing-manager-gui``, and ``signing-manager`` without arguments where
a display is available. Importable without PySide6 (the ``gui`` extra), so that the CLI can ask
whether a window can open and say how to get one."""

from __future__ import annotations

import os
import sys

MISSING_QT = (
    "signing-manager: the window needs PySide6: install the client with its gui extra "
    "(pipx install './signing_manager-VERSION-py3-none-any.whl[gui]', the wheel the Signing "
    "Service offers; or pip install 'signing-manager[gui]')."
)


def qt_installed() -> bool:
    try:
        import PySide6  # noqa: F401 - only whether it imports
    except ImportError:
        return False
    return True


def display_available() -> bool:
    """A desktop to open a window on: macOS and Windows have one; elsewhere X11 or Wayland."""
    if sys.platform in ("darwin", "win32"):
        return True
    return any(os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY"))


def main(argv: list[str] | None = None) -> int:
    """``signing-manager-gui``: open the certificates window."""
    if not qt_installed():
        print(MISSING_QT, file=sys.stderr)
        return 1
    from signing_manager.gui.app import run

    return run(sys.argv if argv is None else ["signing-manager-gui", *argv])
