"""Errors of the Signing Manager client.

SigningManagerError              every error the CLI reports as one sentence
├── ConfigurationError           settings missing or invalid; no API key
├── ConnectionFailed             the service cannot be reached
│   └── CertificateChanged       the pinned server certificate is not the one presented
├── ServiceRefused               the service answered with an error (status, code)
├── IdentityNotFound             no identity matches the SHA-1 or common name
│   └── AmbiguousIdentity        several identities match a common name
└── BadSignature                 a signature from the service does not verify
"""

from __future__ import annotations

import re

# What would break a message's one line, or the terminal it is shown on: C0 and C1 controls
# (a newline in a file name) and Unicode's line and paragraph separators.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class SigningManagerError(Exception):
    """Base of the client's errors; the message is one sentence a user can act on."""


class ConfigurationError(SigningManagerError):
    pass


class ConnectionFailed(SigningManagerError):
    pass


class CertificateChanged(ConnectionFailed):
    pass


class ServiceRefused(SigningManagerError):
    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after = retry_after  # seconds, when the service said when to ask again


class IdentityNotFound(SigningManagerError):
    pass


class AmbiguousIdentity(IdentityNotFound):
    pass


class BadSignature(SigningManagerError):
    pass


def one_line(text: object) -> str:
    """``text`` as one printable line: control characters escaped (``\\n``), and the bytes of
    an undecodable file name shown as ``\\xff`` instead of failing the print."""
    text = str(text).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode(), text)
