"""PKCS#11 tokens (hardware security modules) that hold identities' private keys.

A key kept in a token is generated or imported there as sensitive and non-extractable, and is
only ever asked to sign: its bytes never exist in this process. The module (the vendor's
``.so``), the tokens' labels and the user PIN come from the settings (README, "Keys in a
hardware security module"); python-pkcs11 talks to the module.

Each process keeps its own ``TokenSessions``: the module is initialised in the process that
uses it (a forked worker starts afresh, as PKCS#11 requires), and each token is logged in to
once, in a session that is kept and reused. python-pkcs11 initialises the module without
locking callbacks, which in PKCS#11 means the application calls it from one thread at a time
(SoftHSM2 then drops its own locks and crashes otherwise): so a process's calls take turns, and
the service's worker processes sign in parallel. After any error of the token the session is
dropped and the module initialised again, so a token that was unplugged or restarted is found
again when it returns. Every such failure is a ``TokenUnavailable``, which the API answers with
503 ``key_unavailable``.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    import pkcs11


class TokenUnavailable(Exception):
    """The token is absent, refuses, or fails; nothing was done with the key."""


def pkcs11_module():
    """python-pkcs11, imported only when tokens are configured (it is the ``hsm`` extra)."""
    try:
        import pkcs11
    except ImportError:
        raise ImproperlyConfigured(
            "SIGNING_SERVICE_PKCS11_MODULE is set but python-pkcs11 is not installed: install "
            "signing-service[hsm]."
        ) from None
    return pkcs11


def configured_tokens() -> list[str]:
    return list(settings.PKCS11_TOKENS) if settings.PKCS11_MODULE else []


class TokenSessions:
    """This process's session with each configured token, used by one thread at a time."""

    def __init__(self, module_path: str, pin: str):
        self.module_path = module_path
        self.pin = pin
        self.lock = threading.RLock()  # held while the module is called
        self.pid = os.getpid()
        self.library = None
        self.open_sessions: dict[str, pkcs11.Session] = {}

    def load(self):
        if self.library is None:
            self.library = pkcs11_module().lib(self.module_path)
        elif not self.library.initialized:
            self.library.initialize()
        return self.library

    def open(self, label: str) -> pkcs11.Session:
        """A new read-write session, logged in (the login is the token's, shared by every
        session of this process: a second one finds it done)."""
        pkcs11 = pkcs11_module()
        token = self.load().get_token(token_label=label)
        try:
            return token.open(rw=True, user_pin=self.pin)
        except pkcs11.exceptions.UserAlreadyLoggedIn:
            return token.open(rw=True)

    @contextlib.contextmanager
    def session(self, label: str) -> Iterator[pkcs11.Session]:
        """The session with the token labelled ``label``, this thread's alone while in use."""
        if label not in configured_tokens():
            raise TokenUnavailable(f"The token “{label}” is not configured in this service.")
        pkcs11 = pkcs11_module()
        with self.lock:
            if os.getpid() != self.pid:  # a forked worker: the parent's initialisation and
                self.pid = os.getpid()  # sessions are not this process's; start again
                self.reset()
            try:
                if label not in self.open_sessions:
                    self.open_sessions[label] = self.open(label)
                yield self.open_sessions[label]
            except pkcs11.exceptions.PKCS11Error as error:
                self.reset()
                raise unavailable(label, error) from None

    def reset(self) -> None:
        """Forget every session and initialise the module again at the next use."""
        with self.lock:
            self.open_sessions = {}
            if self.library is not None and os.getpid() == self.pid:
                with contextlib.suppress(Exception):  # a failing module may fail this too
                    self.library.finalize()

    def check(self, label: str) -> None:
        """Raise ``TokenUnavailable`` unless the token answers: the module still finds it by
        its label (a session of a token that went away may go on answering searches)."""
        with self.session(label):
            self.load().get_token(token_label=label)


def unavailable(label: str, error: Exception) -> TokenUnavailable:
    why = type(error).__name__ + (f": {error}" if str(error) else "")
    return TokenUnavailable(f"The token “{label}” is unavailable ({why}).")


_sessions: TokenSessions | None = None


def sessions() -> TokenSessions:
    """This process's sessions with the configured module."""
    global _sessions
    if _sessions is None or (_sessions.module_path, _sessions.pin) != (
        settings.PKCS11_MODULE,
        settings.PKCS11_PIN,
    ):
        _sessions = TokenSessions(settings.PKCS11_MODULE, settings.PKCS11_PIN)
    return _sessions


def check_tokens() -> None:
    """At start: refuse (``ImproperlyConfigured``, one sentence) a module that does not load, a
    configured token that is absent, or a PIN it refuses; then let go of the module, so that
    the workers forked after this initialise it themselves."""
    if not settings.PKCS11_MODULE:
        return
    if not settings.PKCS11_TOKENS:
        raise ImproperlyConfigured(
            "SIGNING_SERVICE_PKCS11_MODULE is set but SIGNING_SERVICE_PKCS11_TOKENS names no "
            "token label."
        )
    pkcs11 = pkcs11_module()
    try:
        library = pkcs11.lib(settings.PKCS11_MODULE)
    except pkcs11.exceptions.PKCS11Error as error:
        raise ImproperlyConfigured(
            f"The PKCS#11 module {settings.PKCS11_MODULE} (SIGNING_SERVICE_PKCS11_MODULE) cannot "
            f"be loaded: {error}"
        ) from None
    try:
        for label in settings.PKCS11_TOKENS:
            check_login(pkcs11, library, label)
    finally:
        with contextlib.suppress(pkcs11.exceptions.PKCS11Error):
            library.finalize()


def check_login(pkcs11, library, label: str) -> None:
    try:
        token = library.get_token(token_label=label)
    except pkcs11.exceptions.NoSuchToken:
        raise ImproperlyConfigured(
            f"No token labelled “{label}” (SIGNING_SERVICE_PKCS11_TOKENS) is present in "
            f"{settings.PKCS11_MODULE}."
        ) from None
    if not settings.PKCS11_PIN:
        raise ImproperlyConfigured(
            "Set the tokens' user PIN in SIGNING_SERVICE_PKCS11_PIN_FILE (or "
            "SIGNING_SERVICE_PKCS11_PIN)."
        )
    try:
        with token.open(user_pin=settings.PKCS11_PIN):
            pass
    except (
        pkcs11.exceptions.PinIncorrect,
        pkcs11.exceptions.PinLenRange,
        pkcs11.exceptions.PinLocked,
    ):
        raise ImproperlyConfigured(
            f"The token “{label}” refuses the PIN in SIGNING_SERVICE_PKCS11_PIN_FILE (or "
            "SIGNING_SERVICE_PKCS11_PIN)."
        ) from None
    except pkcs11.exceptions.PKCS11Error as error:
        raise ImproperlyConfigured(f"Cannot log in to the token “{label}”: {error!r}.") from None
