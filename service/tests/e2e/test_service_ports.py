"""The service's port, on the real service: a port another process took is refused (and the
tests' services start on another), and connections opened at once are spread over the workers,
also after a worker is replaced."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from signing_service.test import PORT_TAKEN, RunningService

WORKERS = 2
CONNECTIONS = 32  # a build farm's pool; all kept open while their owners are counted


def test_a_service_whose_port_was_taken_starts_on_another(service_environment, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        service = RunningService(tmp_path / "data", dict(service_environment), port=port)
        try:
            service.start()
            assert service.port != port
            assert PORT_TAKEN in (tmp_path / f"data-{port}.log").read_text()
            with urllib.request.urlopen(
                service.url + "/api/v1/version", context=service.ssl_context(), timeout=10
            ) as response:
                assert response.status == 200
        finally:
            assert service.stop() == 0


def test_a_second_service_on_a_running_services_port_is_refused(running_service, tmp_path):
    """SO_REUSEPORT would let it share the port, the two answering in turn."""
    second = RunningService(
        tmp_path / "second", dict(running_service.env), port=running_service.port, keep_port=True
    )
    second.spawn()
    assert second.process.wait(timeout=60) == 1
    assert f"127.0.0.1:{running_service.port}: {PORT_TAKEN}" in second.log()


@pytest.fixture
def two_workers(service_environment, tmp_path) -> Iterator[RunningService]:
    environment = {**service_environment, "SIGNING_SERVICE_WORKERS": str(WORKERS)}
    service = RunningService(tmp_path / "data", environment).start()
    # The service answers once one worker does; gunicorn may still be forking the other.
    deadline = time.monotonic() + 60
    while len(service.worker_pids()) < WORKERS:
        assert time.monotonic() < deadline, "gunicorn did not start its workers in time"
        time.sleep(0.1)
    yield service
    assert service.stop() == 0


def test_the_service_listens_with_a_socket_for_each_worker(two_workers):
    assert listening_sockets(two_workers.port) == WORKERS


def test_connections_opened_at_once_are_spread_over_the_workers(two_workers):
    """With one shared socket, the worker that wakes first accepts all of them (bench/README)."""
    owners = connection_owners_at_once(two_workers)
    assert sum(owners.values()) == CONNECTIONS
    assert sorted(owners) == two_workers.worker_pids()
    assert min(owners.values()) >= CONNECTIONS // 8  # even the kernel's hash is rarely so uneven


def test_a_replaced_worker_accepts_on_the_socket_of_the_one_it_replaces(two_workers):
    """A socket nobody accepts on would hold the connections the kernel queues on it until
    they time out."""
    first, second = two_workers.worker_pids()
    os.kill(first, signal.SIGKILL)
    successor = wait_for_successor(two_workers, gone=first, stayed=second)
    owners = connection_owners_at_once(two_workers)
    assert sum(owners.values()) == CONNECTIONS
    assert sorted(owners) == sorted([second, successor])


def wait_for_successor(service: RunningService, gone: int, stayed: int, seconds: float = 90) -> int:
    """The worker gunicorn started in place of ``gone``, once a connection has reached it (on a
    busy machine it may take a while to accept; meanwhile the kernel queues its connections)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pids = service.worker_pids()
        if len(pids) == WORKERS and gone not in pids:
            (successor,) = set(pids) - {stayed}
            connection = answered_connection(service)
            try:
                owners = established_owners(service, [connection.sock.getsockname()[1]])
            finally:
                connection.close()
            if successor in owners:
                return successor
        time.sleep(0.1)
    raise AssertionError("gunicorn's new worker accepted no connection in time")


def connection_owners_at_once(service: RunningService) -> Counter[int]:
    """Open CONNECTIONS keep-alive connections at once, each answered once; which worker holds
    each of them while all are open."""
    with ThreadPoolExecutor(CONNECTIONS) as pool:
        connections = list(pool.map(lambda _: answered_connection(service), range(CONNECTIONS)))
    try:
        return established_owners(service, [conn.sock.getsockname()[1] for conn in connections])
    finally:
        for connection in connections:
            connection.close()


def answered_connection(service: RunningService) -> http.client.HTTPSConnection:
    connection = http.client.HTTPSConnection(
        "127.0.0.1", service.port, context=service.ssl_context(), timeout=30
    )
    connection.request("GET", "/api/v1/version")
    response = connection.getresponse()
    response.read()
    assert response.status == 200
    return connection


def established_owners(service: RunningService, client_ports: list[int]) -> Counter[int]:
    """For each worker, how many of the connections from ``client_ports`` it holds (the
    kernel's socket table, /proc/net/tcp, and the workers' descriptors)."""
    inodes = {
        row["inode"]
        for row in tcp_sockets()
        if row["state"] == ESTABLISHED
        and row["local_port"] == service.port
        and row["remote_port"] in client_ports
    }
    owners: Counter[int] = Counter()
    for pid in service.worker_pids():
        held = {os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()}
        owners[pid] = sum(f"socket:[{inode}]" in held for inode in inodes)
    return +owners  # workers holding none are left out


def listening_sockets(port: int) -> int:
    return sum(row["state"] == LISTEN and row["local_port"] == port for row in tcp_sockets())


ESTABLISHED, LISTEN = "01", "0A"  # states in /proc/net/tcp (include/net/tcp_states.h)


def tcp_sockets() -> list[dict]:
    rows = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        rows.append({
            "local_port": int(fields[1].rsplit(":", 1)[1], 16),
            "remote_port": int(fields[2].rsplit(":", 1)[1], 16),
            "state": fields[3],
            "inode": fields[9],
        })  # fmt: skip
    return rows
