"""What the HTTP server alone allows: the most any Python sign endpoint could reach here.

Starts gunicorn as ``signing-service run`` does (gthread, a worker per core, 8 threads, a
listening socket per worker, HTTPS with a self-signed certificate, the access log on) with a
WSGI application of a few lines in place of the service, and drives it with sign_throughput.py's
loads (wrk, 32 keep-alive connections, the same bodies):

- ``empty``: reads the body and answers a constant JSON object: gunicorn, TLS and HTTP alone;
- ``sign``: parses the body, signs its digest with an RSA-2048 key held in memory and answers the
  signature: a sign endpoint with no authentication, no database and no audit;
- ``batch``: the same for sign_throughput.py's batch load (100 digests a request, a quarter of
  the connections).

Each rate is printed ÷ raw RSA-2048 on all cores, measured in the same run; beside
sign_throughput.py's figures for the service they show how much of the distance to issue 20's
targets the server itself takes, before the service does any of its work.

    .venv/bin/python bench/server_floor.py [--seconds 10] [--connections 32] [--threads 8]

Needs wrk (Debian package ``wrk``). Not a test: nothing here passes or fails on timing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sign_throughput import TARGETS, raw_rate, wrk

from signing_service.listeners import bind
from signing_service.test import free_port
from signing_service.tls import ensure_self_signed_certificate

APPLICATION = """
import base64
import json
import os

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, utils

with open(os.environ["SERVER_FLOOR_KEY"], "rb") as handle:
    KEY = serialization.load_pem_private_key(handle.read(), None)
PREHASHED = utils.Prehashed(hashes.SHA256())


def answer(start_response, body):
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


def read(environ):
    return environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))


def empty(environ, start_response):
    read(environ)
    return answer(start_response, b'{"signature": ""}')


def sign(environ, start_response):
    digest = base64.b64decode(json.loads(read(environ))["digest"])
    signature = base64.b64encode(KEY.sign(digest, padding.PKCS1v15(), PREHASHED)).decode()
    return answer(start_response, json.dumps({"signature": signature}).encode())


def batch(environ, start_response):
    digests = [base64.b64decode(item["digest"]) for item in json.loads(read(environ))["requests"]]
    signatures = [KEY.sign(digest, padding.PKCS1v15(), PREHASHED) for digest in digests]
    results = [{"signature": base64.b64encode(signature).decode()} for signature in signatures]
    return answer(start_response, json.dumps({"results": results}).encode())
"""

CONFIG = """
from signing_service.listeners import assign_socket as pre_fork, keep_own_socket as post_fork

bind = {bind!r}
workers = {workers}
worker_class = "gthread"
threads = {threads}
certfile = {certfile!r}
keyfile = {keyfile!r}
accesslog = "-"
control_socket_disable = True
"""

BATCH = 100
BODY = {"certificate": "0" * 40, "algorithm": "rsa-pkcs1v15-sha256",
        "digest": "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="}  # fmt: skip


@contextlib.contextmanager
def serving(folder: Path, application: str, threads: int):
    """gunicorn serving ``application`` (``empty``, ``sign``, ``batch``) on a free port; its URL."""
    workers = os.cpu_count() or 2
    port = free_port()
    listeners = bind("127.0.0.1", port, workers)
    certfile, keyfile = ensure_self_signed_certificate(folder / "tls", ["127.0.0.1"])
    config = folder / "gunicorn.conf.py"
    config.write_text(
        CONFIG.format(
            bind=[f"fd://{descriptor}" for descriptor in listeners],
            workers=workers,
            threads=threads,
            certfile=str(certfile),
            keyfile=str(keyfile),
        )
    )
    gunicorn = Path(sys.executable).parent / "gunicorn"
    server = subprocess.Popen(
        [str(gunicorn), "-c", str(config), "--chdir", str(folder), f"floor_app:{application}"],
        pass_fds=listeners,
        env={**os.environ, "SERVER_FLOOR_KEY": str(folder / "key.pem")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for descriptor in listeners:
        os.close(descriptor)
    try:
        url = f"https://127.0.0.1:{port}/api/v1/sign"
        wait_until_answering(url)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def wait_until_answering(url: str, seconds: float = 30) -> None:
    """Until gunicorn answers at ``url`` (its certificate is the run's own, so not checked)."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, data=b"{}", context=context, timeout=5).close()  # noqa: S310
            return
        except urllib.error.HTTPError:  # answered (the body is no sign request)
            return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"server_floor: gunicorn did not answer at {url}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=8)
    arguments = parser.parse_args()
    raw = raw_rate("rsa")
    print(f"machine: {os.cpu_count()} cores; {arguments.connections} connections; "
          f"{arguments.seconds}s each; raw RSA-2048 {raw:.0f}/s on all cores")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="server-floor-") as name:
        folder = Path(name)
        (folder / "floor_app.py").write_text(APPLICATION)
        key = rsa.generate_private_key(65537, 2048)
        (folder / "key.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        batch = {"requests": [BODY] * BATCH}
        loads = [
            ("empty", BODY, arguments.connections, 1, "single"),
            ("sign", BODY, arguments.connections, 1, "single"),
            ("batch", batch, max(2, arguments.connections // 4), BATCH, "batch"),
        ]
        for application, body, connections, per_request, target in loads:
            with serving(folder, application, arguments.threads) as url:
                wrk(url, "none", body, connections, 2)  # warm up
                result = wrk(url, "none", body, connections, arguments.seconds)
            rate = result["requests_per_s"] * per_request
            print(
                f"  {application:6s} {rate:7.0f} signatures/s   ÷ raw RSA-2048 = {rate / raw:.3f} "
                f"({target} target {TARGETS[target]})   p50 {result['p50_ms']:6.1f} ms"
                f"   p99 {result['p99_ms']:6.1f} ms   non-2xx {result['non_2xx']}"
                f"   socket errors {result['socket_errors']}"
            )


if __name__ == "__main__":
    main()
