"""Reading what the ops commands are given: files of bounded size, and passwords from a
file's first line or typed at a terminal."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

from django.core.management.base import CommandError


def read_password(password_file: str | None, prompt: str, confirm: bool = False) -> str:
    """The first line of ``password_file`` (which may be empty), else typed at the terminal
    (twice when ``confirm``). Never echoed, never an argument on the command line."""
    if password_file:
        try:
            lines = Path(password_file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read the password file {password_file}: {exc}") from None
        return lines[0] if lines else ""
    if not sys.stdin.isatty():
        raise CommandError("Give --password-file, or run in a terminal to type the password.")
    password = getpass.getpass(prompt)
    if confirm and password != getpass.getpass("Again: "):
        raise CommandError("The two passwords differ.")
    return password


def read_file(path: Path, max_size: int, too_large: str) -> bytes:
    """The bytes of ``path``, refused in one sentence when it is larger than ``max_size``
    (``too_large`` says what is expected instead) or cannot be read."""
    try:
        if path.stat().st_size > max_size:
            raise CommandError(f"{path} is larger than {too_large}.")
        return path.read_bytes()
    except OSError as exc:
        raise CommandError(f"Cannot read {path}: {exc.strerror}.") from None
