"""Services of tests that run side by side: a port taken between choosing it and binding it."""

from __future__ import annotations

import socket
import urllib.request

from signing_service.test import RunningService


def test_a_service_whose_port_was_taken_starts_on_another(service_environment, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        service = RunningService(tmp_path / "data", dict(service_environment), port=port)
        try:
            service.start()
            assert service.port != port
            assert "Connection in use" in (tmp_path / f"data-{port}.log").read_text()
            with urllib.request.urlopen(
                service.url + "/api/v1/version", context=service.ssl_context(), timeout=10
            ) as response:
                assert response.status == 200
        finally:
            assert service.stop() == 0
