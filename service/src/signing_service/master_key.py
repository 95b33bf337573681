"""The service's master key: 32 random bytes that wrap every identity's data key.

It comes from ``SIGNING_SERVICE_MASTER_KEY`` (base64), from the file named by
``SIGNING_SERVICE_MASTER_KEY_FILE``, or from ``master.key`` in the data directory, which is
created (mode 0600) on first start. Losing it makes every stored private key unusable, so the
README tells operators to back it up apart from the database.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import os
import secrets
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.core.exceptions import ImproperlyConfigured

from signing_service.environment import env

KEY_SIZE = 32
FILE_NAME = "master.key"


def decode_master_key(text: str, source: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except binascii.Error:
        raise ImproperlyConfigured(f"The master key in {source} is not valid base64.") from None
    if len(key) != KEY_SIZE:
        raise ImproperlyConfigured(
            f"The master key in {source} must be {KEY_SIZE} bytes, not {len(key)}."
        )
    return key


def ensure_data_dir(data_dir: Path) -> None:
    """Create the data directory readable by the service's user alone."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)


def load_or_create_master_key(data_dir: Path) -> bytes:
    """The master key from the environment, or from the data directory (made on first use)."""
    supplied = env("MASTER_KEY")
    if supplied:
        return decode_master_key(supplied, "SIGNING_SERVICE_MASTER_KEY")
    ensure_data_dir(data_dir)
    path = data_dir / FILE_NAME
    if not path.exists():
        create_master_key_file(path)
    return decode_master_key(path.read_text(), str(path))


def create_master_key_file(path: Path) -> None:
    """Write a new key to a temporary file, then link it to ``path``: the file appears whole
    (a process starting at the same moment never reads it empty), and a key another process
    made first is never replaced (the link fails, and that key is the one read)."""
    text = base64.b64encode(secrets.token_bytes(KEY_SIZE)).decode() + "\n"
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # 0600
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)


def derive_key(master_key: bytes, purpose: str) -> bytes:
    """A key for one purpose, so the master key itself is used for nothing but deriving."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=None, info=purpose.encode())
    return hkdf.derive(master_key)


@functools.cache
def current_master_key() -> bytes:
    """The master key of this process's data directory (read once)."""
    from django.conf import settings

    return load_or_create_master_key(settings.DATA_DIR)
