"""Behind a real reverse proxy (issue 18 item 2): Debian's nginx terminates TLS on loopback and
forwards to ``signing-service run --http``. The client address the audit and login throttling
use is the one nginx saw, whatever ``X-Forwarded-For`` a caller forges, so an attacker's failed
sign-ins lock a user out from the attacker's address only.

Loopback has many addresses: the build machine connects from 127.0.0.2, the attacker from
127.0.0.3, and nginx from 127.0.0.1 (the service's one trusted proxy).
"""

from __future__ import annotations

import datetime
import json
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from signing_service.test import RunningService, free_port
from signing_service.tls import ensure_self_signed_certificate

pytestmark = pytest.mark.e2e

BUILD_MACHINE, ATTACKER, FORGED = "127.0.0.2", "127.0.0.3", "198.51.100.66"
FAILURE_LIMIT = 5  # the service's default SIGNING_SERVICE_LOGIN_FAILURE_LIMIT
NGINX_CONF = """
daemon off;
user root root;
pid {folder}/nginx.pid;
error_log {folder}/error.log;
worker_processes 1;
events {{}}
http {{
  access_log off;
  client_body_temp_path {folder}/body;
  proxy_temp_path {folder}/proxy;
  fastcgi_temp_path {folder}/fastcgi;
  uwsgi_temp_path {folder}/uwsgi;
  scgi_temp_path {folder}/scgi;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {folder}/cert.pem;
    ssl_certificate_key {folder}/key.pem;
    location / {{
      proxy_pass http://127.0.0.1:{upstream};
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto https;
    }}
  }}
}}
"""


class Nginx:
    """nginx in the foreground with its own configuration, TLS on a free loopback port."""

    def __init__(self, folder: Path, upstream: int):
        self.folder, self.port = folder, free_port()
        folder.mkdir(parents=True)
        ensure_self_signed_certificate(folder, ["127.0.0.1"])  # the service's own kind
        config = NGINX_CONF.format(folder=folder, port=self.port, upstream=upstream)
        (folder / "nginx.conf").write_text(config)
        self.process = subprocess.Popen(
            [shutil.which("nginx") or "/usr/sbin/nginx", "-p", str(folder), "-c", "nginx.conf"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"nginx did not start: {(folder / 'error.log').read_text()}")

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.folder / "cert.pem"))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


@pytest.fixture
def proxied(tmp_path, service_environment):
    """The service with --http behind nginx; (service, nginx)."""
    environment = {**service_environment, "SIGNING_SERVICE_TRUSTED_PROXIES": "127.0.0.1"}
    service = RunningService(tmp_path / "data", environment, http=True).start()
    nginx = Nginx(tmp_path / "nginx", service.port)
    yield service, nginx
    nginx.stop()
    service.stop()


def from_address(user, nginx: Nginx, address: str):
    """Make a WebUser's requests leave from ``address`` (a loopback address of its own)."""
    user.client.close()
    user.client = httpx.Client(
        base_url=nginx.url,
        transport=httpx.HTTPTransport(local_address=address, verify=nginx.ssl_context()),
        follow_redirects=False,
        timeout=30,
    )
    return user


def test_the_audit_records_the_address_nginx_saw_not_a_forged_one(proxied, tmp_path):
    service, nginx = proxied
    key = service.manage("apikey", "create", "build machines").stdout.strip()
    with httpx.Client(
        base_url=nginx.url + "/api/v1",
        transport=httpx.HTTPTransport(local_address=BUILD_MACHINE, verify=nginx.ssl_context()),
    ) as api:
        registered = api.post(
            "/clients",
            json={"hostname": "build-1", "machine_id": "m-1"},
            headers={"Authorization": f"Bearer {key}", "X-Forwarded-For": FORGED},
        )
        listed = api.get(
            "/certificates",
            headers={"Authorization": f"Bearer {registered.json()['client_token']}"},
        )

    assert registered.status_code == 201, registered.text
    assert listed.status_code == 200, listed.text
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    exported = service.manage("audit", "export", "--from", today, "--to", today, "--format", "json")
    rows = json.loads(exported.stdout)["records"]
    client_requests = [row for row in rows if row["request_type"] != "admin"]
    assert [row["address"] for row in client_requests] == [BUILD_MACHINE, BUILD_MACHINE]


def test_an_attackers_failed_sign_ins_lock_out_only_the_attackers_address(
    proxied, new_web_user, new_password
):
    service, nginx = proxied
    admin = from_address(new_web_user(nginx), nginx, BUILD_MACHINE)
    password = new_password()
    admin.set_up_account(admin.DEFAULT_USERNAME, admin.DEFAULT_PASSWORD, password)
    attacker = from_address(new_web_user(nginx), nginx, ATTACKER)

    for attempt in range(FAILURE_LIMIT + 1):
        attacker.login(
            admin.DEFAULT_USERNAME, f"guess {attempt}", headers={"X-Forwarded-For": FORGED}
        )
    locked = attacker.login(admin.DEFAULT_USERNAME, password)
    colleague = from_address(new_web_user(nginx), nginx, BUILD_MACHINE)
    signed_in = colleague.login(admin.DEFAULT_USERNAME, password)

    assert locked.status_code == 429  # the attacker's address is locked, even with the password
    assert signed_in.status_code == 302, colleague.page_text(signed_in)
    assert colleague.get("/").status_code == 200

    # The audit has one record per attempt, from the address nginx saw, never the forged one.
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    exported = service.manage("audit", "export", "--from", today, "--to", today, "--format", "json")
    rows = json.loads(exported.stdout)["records"]
    attacks = [row["action"] for row in rows if row["address"] == ATTACKER]
    assert attacks == ["user.sign_in_failed"] * (FAILURE_LIMIT - 1) + ["user.locked_out"] * 3
    assert not [row for row in rows if row["address"] == FORGED]
    assert [row["address"] for row in rows if row["action"] == "user.sign_in"][-1] == BUILD_MACHINE
