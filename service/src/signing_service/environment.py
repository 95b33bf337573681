"""Reading configuration from the environment (12-factor), with ``*_FILE`` variants for secrets.

Every variable read here is documented in the README's "Configuration" section.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

PREFIX = "SIGNING_SERVICE_"


def env(name: str, default: str = "") -> str:
    """The value of ``SIGNING_SERVICE_<name>``, or of the file named by ``..._FILE``."""
    value = os.environ.get(PREFIX + name)
    if value is not None:
        return value
    file_name = os.environ.get(PREFIX + name + "_FILE")
    if file_name:
        try:
            return Path(file_name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ImproperlyConfigured(
                f"Cannot read {PREFIX}{name}_FILE ({file_name}): {exc.strerror}."
            ) from exc
    return default


def env_bool(name: str, default: bool = False) -> bool:
    value = env(name, "").strip().lower()
    if not value:
        return default
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{PREFIX}{name} must be true or false, not {value!r}.")


def env_int(name: str, default: int, minimum: int | None = None) -> int:
    value = env(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(
            f"{PREFIX}{name} must be a whole number, not {value!r}."
        ) from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{PREFIX}{name} must be at least {minimum}, not {number}.")
    return number


def env_list(name: str) -> list[str]:
    return [item.strip() for item in env(name, "").split(",") if item.strip()]
