"""Client settings: a JSON file in the platform's config directory, secrets in the OS keyring.

Non-secret settings (service URL, trust and debug flags, the pinned server certificate's
SHA-256, this machine's id) live in ``<config dir>/config.json``. The API key and the client
tokens live in the keyring under the service name ``signing-manager``. Where no keyring backend
exists (headless CI), ``SIGNING_MANAGER_API_KEY`` and ``SIGNING_MANAGER_URL`` stand in for the
key and URL, and the client tokens (each only lists and signs for this one machine, and an admin
can switch it off) are kept in ``<config dir>/client-tokens/``, readable by the user alone, as
``gh`` and ``docker`` do without a keyring. The variable, when set, wins over the keyring.

A client token belongs to the API key it was registered with: it is kept under that key's
``key_id`` (a hash, never the key), so another key finds no token and registers afresh, and a
key used before finds its own again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
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
        """The saved settings (defaults where none are saved); a file that is not what
        ``save`` writes is refused in a sentence that says how to mend it."""
        path = config_dir() / "config.json"
        mend = "fix it, or delete it and save the settings again with -s"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, NotADirectoryError):
            data = {}  # nothing saved yet
        except OSError as error:
            raise ConfigurationError(
                f"Cannot read the settings in {path}: {error.strerror}."
            ) from None
        except ValueError as error:
            raise ConfigurationError(
                f"The settings in {path} are not valid JSON ({error}): {mend}."
            ) from None
        if not isinstance(data, dict):
            raise ConfigurationError(f"The settings in {path} are not a JSON object: {mend}.")
        values, defaults = {}, cls()
        for field in dataclasses.fields(cls):
            if field.name not in data:
                continue
            value, kind = data[field.name], type(getattr(defaults, field.name))
            if type(value) is not kind:
                raise ConfigurationError(
                    f"The setting “{field.name}” in {path} must be a JSON "
                    f"{JSON_TYPE_NAMES[kind]}: {mend}."
                )
            values[field.name] = value
        settings = cls(**values)
        if os.environ.get(URL_ENV):
            settings.api_host = service_url(os.environ[URL_ENV])
        return settings

    def save(self) -> None:
        """Write through a temporary file and rename, so a crash never leaves half a file."""
        folder = config_dir()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            temporary = folder / "config.json.tmp"
            temporary.write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")
            os.replace(temporary, folder / "config.json")
        except OSError as error:
            raise unwritable(folder, error) from None


JSON_TYPE_NAMES = {str: "string", bool: "true or false"}


def unwritable(folder: Path, error: OSError) -> ConfigurationError:
    return ConfigurationError(
        f"Cannot write the settings in {folder}: {error.strerror}; make it writable, or set "
        "SIGNING_MANAGER_CONFIG_DIR to a folder you can write."
    )


def service_url(value: str) -> str:
    """The service's base URL as typed or pasted: spaces and trailing slashes off, and the
    API's own path (``/api/v1``), which the client adds itself."""
    url = value.strip().rstrip("/")
    for suffix in ("/api/v1", "/api"):
        url = url.removesuffix(suffix)
    return url


def key_id(api_key: str) -> str:
    """What a client token is filed under: 16 hex digits of the key's SHA-256, which name the
    key without revealing it."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


def key_label(api_key: str) -> str:
    """How messages name an API key: its public part (``smk_<id>…``), never its secret; a
    value of another form is not shown at all."""
    parts = api_key.split("_", 2)
    if len(parts) == 3 and parts[0] == "smk" and len(parts[1]) == 10:
        return f"{parts[0]}_{parts[1]}…"
    return "(not of the form smk_…)"


class Secrets:
    """The API key and the client tokens: the OS keyring, or the fallbacks above."""

    def __init__(self):
        self.keyring_available = not isinstance(
            keyring.get_keyring(), keyring.backends.fail.Keyring
        )

    # --- the API key ----------------------------------------------------------------------------

    def api_key(self) -> str | None:
        return os.environ.get(API_KEY_ENV) or self.keyring_get("api_key")

    def api_key_source(self) -> str:
        """Where the API key in use comes from, for ``-p`` and messages."""
        if os.environ.get(API_KEY_ENV):
            return API_KEY_ENV
        return "the keyring" if self.keyring_get("api_key") else ""

    def set_api_key(self, value: str) -> None:
        if not self.keyring_available:
            raise ConfigurationError(
                "No keyring is available on this machine to keep the API key: set the "
                f"environment variable {API_KEY_ENV} (and {URL_ENV}) instead."
            )
        self.keyring_set("api_key", value)

    def how_to_set_api_key(self) -> str:
        """How to set the API key on this machine, as the end of a sentence."""
        if self.keyring_available:
            return "`signing-manager -s -i URL -a API_KEY` keeps it in the keyring"
        return f"this machine has no keyring: set the environment variable {API_KEY_ENV}"

    def missing_api_key(self) -> ConfigurationError:
        """The refusal when no API key is set."""
        return ConfigurationError(f"No API key is set ({self.how_to_set_api_key()}).")

    # --- client tokens, one per API key ---------------------------------------------------------

    def client_token(self, api_key: str) -> str | None:
        name = f"client_token.{key_id(api_key)}"
        if self.keyring_available:
            return self.keyring_get(name)
        return read_token_file(self.token_dir() / key_id(api_key))

    def set_client_token(self, api_key: str, token: str) -> None:
        if self.keyring_available:
            self.keyring_set(f"client_token.{key_id(api_key)}", token)
        else:
            write_private_file(self.token_dir() / key_id(api_key), token + "\n")

    def delete_client_token(self, api_key: str) -> None:
        (self.token_dir() / key_id(api_key)).unlink(missing_ok=True)
        self.keyring_delete(f"client_token.{key_id(api_key)}")

    def unbound_client_token(self) -> str | None:
        """A token saved by an earlier version, which did not note the key it belongs to."""
        if self.keyring_available:
            return self.keyring_get("client_token")
        return read_token_file(config_dir() / "client-token")

    def delete_unbound_client_token(self) -> None:
        (config_dir() / "client-token").unlink(missing_ok=True)
        self.keyring_delete("client_token")

    @staticmethod
    def token_dir() -> Path:
        return config_dir() / "client-tokens"

    # --- the keyring ----------------------------------------------------------------------------

    def keyring_get(self, name: str) -> str | None:
        if not self.keyring_available:
            return None
        try:
            return keyring.get_password(KEYRING_SERVICE, name)
        except keyring.errors.KeyringError as error:
            raise ConfigurationError(f"The keyring cannot be read: {error}.") from None

    def keyring_set(self, name: str, value: str) -> None:
        try:
            keyring.set_password(KEYRING_SERVICE, name, value)
        except keyring.errors.KeyringError as error:
            what = "API key" if name == "api_key" else "client token"
            raise ConfigurationError(f"The keyring cannot store the {what}: {error}.") from None

    def keyring_delete(self, name: str) -> None:
        if self.keyring_available:
            with contextlib.suppress(keyring.errors.PasswordDeleteError):
                keyring.delete_password(KEYRING_SERVICE, name)


def read_token_file(path: Path) -> str | None:
    """A client token kept in a file where there is no keyring; None when there is none."""
    return (path.read_text().strip() or None) if path.exists() else None


def write_private_file(path: Path, content: str) -> None:
    """Write a file only the user may read (0600, in a 0700 folder), through a temporary file
    and a rename, so a crash never leaves half of it."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(content)
        os.replace(temporary, path)
    except OSError as error:
        raise unwritable(path.parent, error) from None
