"""The service's listening sockets: one per gunicorn worker, all on one address (``SO_REUSEPORT``).

gunicorn's workers otherwise share one listening socket, and the worker that wakes first accepts
every connection waiting on it: a build farm's pool of keep-alive connections, opened at once,
lands on one process while the others idle (bench/README.md, "Connections spread over the
workers"). With a socket for each worker the kernel spreads new connections over the sockets by
their addresses.

The main process binds the sockets before the workers fork and keeps them open, so the
connections queued on the socket of a worker that dies wait for the worker that replaces it
instead of being reset. It first makes sure that no other process listens on the address:
``SO_REUSEPORT`` alone would let a second service of the same user share the port silently
(only one started in the same instant, between the check and the binding, could still).

Only Linux spreads connections over sockets sharing a port; macOS and the BSDs give them all to
one socket, so there the workers share a single socket as gunicorn's do.
"""

from __future__ import annotations

import errno
import socket
import sys
from collections import Counter

from django.core.management.base import CommandError

BACKLOG = 2048  # gunicorn's default: connections the kernel queues for a socket
KERNEL_SPREADS_CONNECTIONS = sys.platform.startswith("linux")


def bind(host: str, port: int, workers: int) -> list[int]:
    """The file descriptors of the sockets listening on ``host:port`` for ``workers`` workers
    (one each where the kernel spreads connections over them); a ``CommandError`` naming the
    reason when the address cannot be used (another process listens on it, it is not this
    machine's, the port is privileged)."""
    count = workers if KERNEL_SPREADS_CONNECTIONS else 1
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        refuse_if_taken(family, host, port)
        for _ in range(count):
            sockets.append(listening_socket(family, host, port))
    except OSError as error:
        for sock in sockets:
            sock.close()
        raise CommandError(describe(error, host, port)) from None
    # gunicorn takes the descriptors over (and closes them when it has made its own copies).
    return [sock.detach() for sock in sockets]


def refuse_if_taken(family: int, host: str, port: int) -> None:
    """Bind the address without ``SO_REUSEPORT`` for a moment: it fails when any other socket
    listens there, whether or not that one allows sharing."""
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no owner
        probe.bind((host, port))


def listening_socket(family: int, host: str, port: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)  # at once, so that another service's check sees the port taken
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def describe(error: OSError, host: str, port: int) -> str:
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if error.errno == errno.EADDRINUSE:
        return (
            f"Cannot listen on {address}: the port is in use by another process (another "
            "Signing Service?). Stop it, or choose another port with --bind."
        )
    if error.errno == errno.EACCES:
        return f"Cannot listen on {address}: ports below 1024 need privileges; choose another."
    if error.errno == errno.EADDRNOTAVAIL:
        return f"Cannot listen on {address}: the address is not one of this machine's."
    return f"Cannot listen on {address}: {error.strerror or error}."


def assign_socket(arbiter, worker) -> None:
    """gunicorn's ``pre_fork`` hook, in the main process: the worker about to start gets the
    socket the fewest living workers accept on (the one of the worker it replaces)."""
    taken = Counter(getattr(living, "listener", None) for living in arbiter.WORKERS.values())
    worker.listener = min(range(len(arbiter.LISTENERS)), key=lambda index: taken[index])


def keep_own_socket(arbiter, worker) -> None:
    """gunicorn's ``post_fork`` hook, in the new worker: accept on its own socket only."""
    worker.sockets = [worker.sockets[worker.listener]]
