"""Decrypted private keys, kept in a worker's memory for a bounded time.

Opening a sealed key (two AES-GCM decryptions and parsing the DER) costs more than an RSA
signature, so a worker keeps the keys it opened for ``SIGNING_SERVICE_KEY_CACHE_SECONDS``
(default 300; 0 turns this off) from the moment it opened them (using a key does not make it
stay longer), as Vault's transit engine and every HSM keep theirs loaded. The trade-off
(README, "Security"): for that long, a worker's memory holds the plaintext key — which it
also does, more briefly, for every signature without the cache.

A cached key is never used for an identity that has changed: the sign path reads the
identities' version (``IdentityVersion``, increased in the transaction of every change to any
identity) in the query that reads the identity, and a cache that sees it move drops every key
at once; a key whose sealed form differs from the row's is opened again. A thread of each
worker drops keys that reached their time even when no request comes.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django.conf import settings

# How often the sweeping thread looks for keys that reached their time, at most.
SWEEP_SECONDS = 5.0


@dataclass
class CachedKey:
    sealed: bytes
    key: object
    expires: float


class KeyCache:
    def __init__(self, seconds: float):
        self.seconds = seconds
        self.lock = threading.Lock()
        self.keys: dict[int, CachedKey] = {}
        self.version: int | None = None
        self.sweeper: threading.Thread | None = None

    def private_key(self, identity, version: int | None):
        """The identity's private key, opened now or earlier while ``version`` (the identities'
        version read with ``identity``; None: unknown) was current."""
        if self.seconds <= 0 or version is None:
            return identity.private_key()
        sealed = bytes(identity.encrypted_private_key)
        with self.lock:
            if version != self.version:
                self.keys.clear()
                self.version = version
            cached = self.keys.get(identity.pk)
            if cached is not None and cached.sealed == sealed and cached.expires > time.monotonic():
                return cached.key
        key = identity.private_key()
        with self.lock:
            if version == self.version:
                self.keys[identity.pk] = CachedKey(sealed, key, time.monotonic() + self.seconds)
                self.start_sweeping()
        return key

    def drop_expired(self) -> int:
        """Drop the keys whose time is up; how many are left."""
        now = time.monotonic()
        with self.lock:
            for pk in [pk for pk, cached in self.keys.items() if cached.expires <= now]:
                del self.keys[pk]
            return len(self.keys)

    def clear(self) -> None:
        with self.lock:
            self.keys.clear()

    def start_sweeping(self) -> None:
        """(Under the lock.) A thread that drops keys as they expire and ends with the last;
        started again for the next key (also in a process forked after the last one ran)."""
        if self.sweeper is not None and self.sweeper.is_alive():
            return
        self.sweeper = threading.Thread(target=self.sweep, name="key-cache-sweeper", daemon=True)
        self.sweeper.start()

    def sweep(self) -> None:
        interval = min(SWEEP_SECONDS, self.seconds)
        while True:
            time.sleep(interval)
            if not self.drop_expired():
                with self.lock:
                    if not self.keys:  # none was added since: nothing left to sweep
                        self.sweeper = None
                        return


key_cache = KeyCache(settings.KEY_CACHE_SECONDS)
