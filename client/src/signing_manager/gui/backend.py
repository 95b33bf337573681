"""What the window asks of the Signing Service, through the CLI's own client.

The window calls these on a worker thread; tests hand the window another object of the same
shape (a service with local keys) to run without a network.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from signing_manager.cli import connect
from signing_manager.config import Secrets, Settings
from signing_manager.remote_key import RemoteSigner
from signing_manager.service import RemoteIdentity, ServiceClient, presented_certificate


class Backend:
    def identities(self, settings: Settings) -> list[RemoteIdentity]:
        service = connect(settings)
        try:
            return service.identities()
        finally:
            service.close()

    def presented_certificate(self, url: str) -> str:
        """The PEM certificate the service presents, not yet trusted (to ask about pinning)."""
        return presented_certificate(url)

    def pin(self, settings: Settings, pem: str) -> None:
        ServiceClient(settings, Secrets()).pin(pem)

    @contextmanager
    def signer(self, settings: Settings, identity: RemoteIdentity) -> Iterator[RemoteSigner]:
        """A signer for the identity, which checks every signature the service returns."""
        service = connect(settings)
        try:
            yield RemoteSigner(service, identity)
        finally:
            service.close()
