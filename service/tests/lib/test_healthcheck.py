"""The container's HEALTHCHECK against a tiny local server: HTTP, and HTTPS with a throwaway
self-signed certificate like the service's own."""

import http.server
import os
import ssl
import subprocess
import sys
import threading

import pytest
from cryptography.hazmat.primitives import serialization

from signing_service import healthcheck
from signing_service.tls import make_self_signed_certificate


class Handler(http.server.BaseHTTPRequestHandler):
    status = 200
    body = b"ok\n"
    seen: list[tuple[str, str | None]]

    def do_GET(self):
        self.seen.append((self.path, self.headers["Host"]))
        self.send_response(self.status)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def certificate_files(tmp_path_factory):
    certificate, key = make_self_signed_certificate(["localhost", "127.0.0.1"])
    directory = tmp_path_factory.mktemp("tls")
    (directory / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return directory / "cert.pem", directory / "key.pem"


@pytest.fixture
def serve(monkeypatch, certificate_files):
    """serve(tls, status, body): a server on a free loopback port that the check is pointed at;
    returns the (path, Host) pairs it was asked for."""
    servers = []

    def start(tls: bool, status: int = 200, body: bytes = b"ok\n"):
        seen = []
        handler = type("H", (Handler,), {"status": status, "body": body, "seen": seen})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*certificate_files)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        monkeypatch.setenv("SIGNING_SERVICE_HEALTHCHECK_PORT", str(server.server_address[1]))
        monkeypatch.setenv("SIGNING_SERVICE_BEHIND_PROXY", "false" if tls else "true")
        return seen

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_https_with_a_self_signed_certificate(serve):
    seen = serve(tls=True)
    healthy, line = healthcheck.check()
    assert healthy, line
    assert line.startswith("healthy: https://127.0.0.1:")
    assert seen == [("/healthz", "localhost")]


def test_plain_http_behind_a_proxy(serve):
    seen = serve(tls=False)
    assert healthcheck.check() == (True, f"healthy: http://127.0.0.1:{port()}/healthz answered ok")
    assert seen == [("/healthz", "localhost")]


def test_the_proxy_setting_may_come_from_a_file(serve, monkeypatch, tmp_path):
    serve(tls=False)
    monkeypatch.delenv("SIGNING_SERVICE_BEHIND_PROXY")
    (tmp_path / "proxy").write_text("yes\n")
    monkeypatch.setenv("SIGNING_SERVICE_BEHIND_PROXY_FILE", str(tmp_path / "proxy"))
    assert healthcheck.check()[0]


@pytest.mark.parametrize(
    ("status", "body", "said"),
    [(503, b"ok\n", "answered 503 'ok'"), (200, b"starting\n", "answered 200 'starting'")],
)
def test_anything_but_200_ok_is_unhealthy(serve, status, body, said):
    serve(tls=True, status=status, body=body)
    healthy, line = healthcheck.check()
    assert not healthy
    assert line.startswith("unhealthy: https://127.0.0.1:")
    assert line.endswith(said)


def test_https_to_a_plain_http_server_is_unhealthy(serve, monkeypatch):
    serve(tls=False)
    monkeypatch.setenv("SIGNING_SERVICE_BEHIND_PROXY", "false")
    healthy, line = healthcheck.check()
    assert not healthy
    assert line.startswith("unhealthy: https://")
    assert "\n" not in line


def test_nothing_listening_is_unhealthy(monkeypatch):
    monkeypatch.setenv("SIGNING_SERVICE_HEALTHCHECK_PORT", "1")  # privileged: nobody listens
    monkeypatch.delenv("SIGNING_SERVICE_BEHIND_PROXY", raising=False)
    healthy, line = healthcheck.check()
    assert not healthy
    assert line.startswith("unhealthy: https://127.0.0.1:1/healthz: ")


def test_a_bad_port_is_unhealthy(monkeypatch):
    monkeypatch.delenv("SIGNING_SERVICE_BEHIND_PROXY", raising=False)
    monkeypatch.setenv("SIGNING_SERVICE_HEALTHCHECK_PORT", "eighty")
    assert healthcheck.check() == (
        False,
        "unhealthy: bad configuration: invalid literal for int() with base 10: 'eighty'",
    )


def test_the_command_exits_0_or_1_with_one_line_and_never_imports_django(serve):
    serve(tls=True)
    program = (
        "import runpy, sys\n"
        "try:\n"
        "    runpy.run_module('signing_service.healthcheck', run_name='__main__')\n"
        "finally:\n"
        "    assert not [m for m in sys.modules if m.startswith('django')], 'Django imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("healthy: ")
    assert done.stdout.count("\n") == 1


def port() -> int:
    return int(os.environ["SIGNING_SERVICE_HEALTHCHECK_PORT"])
