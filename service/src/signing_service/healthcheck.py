"""``python -m signing_service.healthcheck``: the container's HEALTHCHECK.

Asks this machine's service for ``/healthz`` and exits 0 when it answers 200 "ok", 1 otherwise,
printing one line either way. It runs every 30 seconds, so it imports nothing of Django and only
the standard library.

The port is ``SIGNING_SERVICE_HEALTHCHECK_PORT`` (default 8443). The request goes to 127.0.0.1
over HTTPS without checking the certificate: it is the service's own, often self-signed, and the
connection never leaves the machine. With ``SIGNING_SERVICE_BEHIND_PROXY`` true the service
speaks plain HTTP, and so does this. ``Host: localhost`` is a name the service always accepts
unless ``SIGNING_SERVICE_ALLOWED_HOSTS`` replaces the defaults.
"""

from __future__ import annotations

import http.client
import os
import ssl
import sys

TIMEOUT_SECONDS = 4  # below the HEALTHCHECK's --timeout, so we say why rather than get killed


def setting(name: str) -> str:
    """``SIGNING_SERVICE_<name>``, or the content of the file ``..._FILE`` names."""
    value = os.environ.get(f"SIGNING_SERVICE_{name}")
    if value is None and os.environ.get(f"SIGNING_SERVICE_{name}_FILE"):
        with open(os.environ[f"SIGNING_SERVICE_{name}_FILE"], encoding="utf-8") as handle:
            value = handle.read()
    return (value or "").strip()


def check() -> tuple[bool, str]:
    """Whether the service is alive, and one line saying what was found."""
    try:
        port = int(setting("HEALTHCHECK_PORT") or 8443)
        behind_proxy = setting("BEHIND_PROXY").lower() in {"1", "true", "yes", "on"}
    except (ValueError, OSError) as error:
        return False, f"unhealthy: bad configuration: {error}"
    if behind_proxy:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_SECONDS)
        url = f"http://127.0.0.1:{port}/healthz"
    else:
        # No certificate check: it is the service's own, often self-signed, over loopback.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=TIMEOUT_SECONDS, context=context
        )
        url = f"https://127.0.0.1:{port}/healthz"
    try:
        connection.request("GET", "/healthz", headers={"Host": "localhost"})
        response = connection.getresponse()
        body = response.read(100).decode("utf-8", "replace").strip()
    except (OSError, http.client.HTTPException) as error:
        return False, f"unhealthy: {url}: {error or type(error).__name__}"
    finally:
        connection.close()
    if response.status == 200 and body == "ok":
        return True, f"healthy: {url} answered ok"
    return False, f"unhealthy: {url} answered {response.status} {body[:60]!r}"


def main() -> None:
    healthy, line = check()
    print(line)
    sys.exit(0 if healthy else 1)


if __name__ == "__main__":
    main()
