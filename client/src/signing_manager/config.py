"""Client settings: a JSON file in the platform's config directory, secrets in the OS keyring.

Non-secret settings (service URL, trust and debug flags, the pinned server certificate's
SHA-256, this machine's id) live in ``<config dir>/config.json``. The API key and the client
token live in the keyring under the service name ``signing-manager``. Where no keyring backend
exists (headless CI), ``SIGNING_MANAGER_API_KEY`` and ``SIGNING_MANAGER_URL`` stand in for the
key and URL, and the client token (which only lists and signs for this one machine, and which an
admin can switch off) is kept in ``<config dir>/client-token``, readable by the user alone, as
``gh`` and ``docker`` do without a keyring.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import uuid
from pathlib import Path

import keyring
import keyring.errors
import platformdirs

from signing_manager.errors import ConfigurationError

KEYRING_SERVICE = "signing-manager"
API_KEY_ENV = "SIGNING_MANAGER_API_KEY"
URL_ENV = "SIGNING_MANAGER_URL"


def config_dir() -> Path:
    return Path(
        os.environ.get("SIGNING_MANAGER_CONFIG_DIR")
        or platformdirs.user_config_dir("signing-manager")
    )


def log_dir() -> Path:
    return Path(
        os.environ.get("SIGNING_MANAGER_LOG_DIR") or platformdirs.user_log_dir("signing-manager")
    )


@dataclasses.dataclass
class Settings:
    api_host: str = ""
    trust_self_signed: bool = False
    debug: bool = False
    pinned_sha256: str = ""
    machine_id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex)

    @classmethod
    def load(cls) -> Settings:
        path = config_dir() / "config.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            data = {}
        except (OSError, ValueError) as error:
            raise ConfigurationError(f"Cannot read the settings in {path}: {error}.") from None
        known = {field.name for field in dataclasses.fields(cls)}
        settings = cls(**{key: value for key, value in data.items() if key in known})
        if os.environ.get(URL_ENV):
            settings.api_host = os.environ[URL_ENV].rstrip("/")
        return settings

    def save(self) -> None:
        """Write through a temporary file and rename, so a crash never leaves half a file."""
        folder = config_dir()
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / "config.json.tmp"
        temporary.write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")
        os.replace(temporary, folder / "config.json")


class Secrets:
    """The API key and client token: the OS keyring, or the fallbacks above where there is none."""

    def __init__(self):
        self.keyring_available = not isinstance(
            keyring.get_keyring(), keyring.backends.fail.Keyring
        )

    @staticmethod
    def token_file() -> Path:
        return config_dir() / "client-token"

    def get(self, name: str) -> str | None:
        if name == "api_key" and os.environ.get(API_KEY_ENV):
            return os.environ[API_KEY_ENV]
        if not self.keyring_available:
            if name == "client_token" and self.token_file().exists():
                return self.token_file().read_text().strip() or None
            return None
        try:
            return keyring.get_password(KEYRING_SERVICE, name)
        except keyring.errors.KeyringError as error:
            raise ConfigurationError(f"The keyring cannot be read: {error}.") from None

    def set(self, name: str, value: str) -> None:
        if not self.keyring_available:
            if name == "api_key":
                raise ConfigurationError(
                    "No keyring is available on this machine to keep the API key: set the "
                    f"environment variable {API_KEY_ENV} (and {URL_ENV}) instead."
                )
            self.write_token_file(value)
            return
        try:
            keyring.set_password(KEYRING_SERVICE, name, value)
        except keyring.errors.KeyringError as error:
            raise ConfigurationError(f"The keyring cannot store the {name}: {error}.") from None

    def write_token_file(self, value: str) -> None:
        path = self.token_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(value + "\n")
        os.replace(temporary, path)

    def delete(self, name: str) -> None:
        if name == "client_token":
            self.token_file().unlink(missing_ok=True)
        if self.keyring_available:
            with contextlib.suppress(keyring.errors.PasswordDeleteError):
                keyring.delete_password(KEYRING_SERVICE, name)
