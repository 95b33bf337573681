"""Putting text on the desktop's clipboard from the command line (``identity … --copy``).

Python has no clipboard of its own outside a GUI toolkit, so this uses the platform's command:
``pbcopy`` on macOS, ``clip`` on Windows, ``wl-copy`` under Wayland, ``xclip`` or ``xsel``
under X11. A machine with none of them (a CI runner, an SSH session) has no clipboard to use.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from signing_manager.errors import ConfigurationError

TIMEOUT_SECONDS = 5


def clipboard_command() -> list[str] | None:
    """The command that reads the clipboard's new content from its standard input, if any."""
    candidates = [["pbcopy"]] if sys.platform == "darwin" else []
    if sys.platform == "win32":
        candidates.append(["clip"])
    if os.environ.get("WAYLAND_DISPLAY"):
        candidates.append(["wl-copy"])
    if os.environ.get("DISPLAY"):
        candidates += [["xclip", "-selection", "clipboard"], ["xsel", "--clipboard", "--input"]]
    return next((command for command in candidates if shutil.which(command[0])), None)


def copy_to_clipboard(text: str) -> None:
    """Put ``text`` on the clipboard, or say in one sentence why it cannot be done here."""
    command = clipboard_command()
    if command is None:
        raise ConfigurationError(
            "There is no clipboard to copy to here (no pbcopy, clip, wl-copy, xclip or xsel "
            "for this session): copy the line printed above instead."
        )
    try:
        subprocess.run(
            command, input=text.encode(), check=True, timeout=TIMEOUT_SECONDS, capture_output=True
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise ConfigurationError(f"Copying with {command[0]} failed: {error}.") from None
