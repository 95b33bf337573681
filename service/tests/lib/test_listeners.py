"""The service's listening sockets (signing_service.listeners): one per worker on one port, a
taken port refused, and each new worker given the socket no living worker accepts on."""

from __future__ import annotations

import contextlib
import select
import socket
from types import SimpleNamespace

import pytest
from django.core.management.base import CommandError

from signing_service import listeners
from signing_service.listeners import assign_socket, bind, keep_own_socket
from signing_service.test import free_port


@contextlib.contextmanager
def bound(count: int, host: str = "127.0.0.1", port: int = 0):
    port = port or free_port()
    sockets = [socket.socket(fileno=descriptor) for descriptor in bind(host, port, count)]
    try:
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def test_each_worker_gets_a_listening_socket_of_its_own_on_the_one_port():
    port = free_port()
    with bound(3, port=port) as sockets:
        assert [sock.getsockname() for sock in sockets] == [("127.0.0.1", port)] * 3
        assert len({sock.fileno() for sock in sockets}) == 3
        for sock in sockets:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
            assert sock.get_inheritable()  # the workers fork with it


def test_where_the_kernel_does_not_spread_connections_the_workers_share_one_socket(
    monkeypatch,
):
    monkeypatch.setattr(listeners, "KERNEL_SPREADS_CONNECTIONS", False)
    with bound(3) as sockets:
        assert len(sockets) == 1


def test_a_connection_to_the_port_is_queued_on_one_of_the_sockets():
    with bound(2) as sockets, socket.create_connection(sockets[0].getsockname(), timeout=5):
        readable, _, _ = select.select(sockets, [], [], 5)
        assert len(readable) == 1
        readable[0].accept()[0].close()


def test_an_ipv6_address_is_bound_as_ipv6():
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    with bound(2, host="::1") as sockets:
        assert {sock.family for sock in sockets} == {socket.AF_INET6}


@pytest.mark.parametrize("shares", [False, True], ids=["plain", "sharing-SO_REUSEPORT"])
def test_a_port_another_process_listens_on_is_refused(shares):
    """Also when the other listener allows sharing, as another Signing Service's sockets do:
    SO_REUSEPORT alone would let this one join it."""
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, int(shares))
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(CommandError, match=f"127.0.0.1:{port}: the port is in use by another"):
            bind("127.0.0.1", port, 2)


def test_the_sockets_of_a_running_service_refuse_a_second_one():
    with bound(2) as sockets:
        host, port = sockets[0].getsockname()
        with pytest.raises(CommandError, match="in use by another process"):
            bind(host, port, 2)


def test_an_address_of_another_machine_is_named():
    with pytest.raises(CommandError, match=r"192\.0\.2\.1:8443: the address is not one of this"):
        bind("192.0.2.1", 8443, 2)  # TEST-NET-1: no machine's; bind() sends nothing


def test_the_port_is_free_again_after_a_refused_start():
    port = free_port()
    with socket.socket() as other:
        other.bind(("127.0.0.1", port))
        other.listen()
        with pytest.raises(CommandError):
            bind("127.0.0.1", port, 2)
    with bound(2, port=port) as sockets:
        assert len(sockets) == 2


def arbiter(listeners: int, living: list[int]) -> SimpleNamespace:
    workers = {pid: SimpleNamespace(listener=slot) for pid, slot in enumerate(living, 100)}
    return SimpleNamespace(LISTENERS=[f"socket {n}" for n in range(listeners)], WORKERS=workers)


@pytest.mark.parametrize(
    ("living", "given"),
    [
        ([], 0),  # the first worker
        ([0], 1),
        ([1], 0),  # worker 0 died: its successor takes its socket
        ([0, 1], 0),  # more workers than sockets (gunicorn's TTIN): the least used is shared
        ([0, 1, 0], 1),
    ],
)
def test_a_new_worker_gets_the_socket_fewest_living_workers_accept_on(living, given):
    server, worker = arbiter(2, living), SimpleNamespace()
    assign_socket(server, worker)
    assert worker.listener == given


def test_a_forked_worker_accepts_on_its_own_socket_only():
    server = arbiter(3, [])
    worker = SimpleNamespace(listener=2, sockets=list(server.LISTENERS))
    keep_own_socket(server, worker)
    assert worker.sockets == ["socket 2"]
