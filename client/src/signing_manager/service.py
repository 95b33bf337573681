"""The Signing Service's client API v1 (DESIGN.md, "Client API v1") as Python calls.

``ServiceClient`` registers this machine on first use (transparently, with the API key), lists
the identities it may use and asks for signatures. TLS is verified normally; with
"trust self-signed" the service's certificate is pinned on first use, like SSH, and any other
certificate presented later is refused.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import logging
import os
import platform
import socket
import ssl
import sys
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from cryptography import x509

from signing_manager import __version__
from signing_manager.algorithms import Algorithm
from signing_manager.config import Secrets, Settings, config_dir
from signing_manager.errors import (
    CertificateChanged,
    ConfigurationError,
    ConnectionFailed,
    ServiceRefused,
)

log = logging.getLogger(__name__)
PIN_FILE = "pinned-certificate.pem"
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# A 503 (the service's database or audit is unavailable: nothing was done) is asked again, with
# growing waits, for at most this long; every call of the API is safe to repeat (a digest
# signed twice is harmless, a registration not carried out left nothing behind).
RETRY_SECONDS_ENV = "SIGNING_MANAGER_RETRY_SECONDS"
DEFAULT_RETRY_SECONDS = 60
MAX_WAIT_SECONDS = 15


@dataclass(frozen=True)
class RemoteIdentity:
    """An identity the service offers this client: its certificate, never its key."""

    sha1: str
    sha256: str
    common_name: str
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    key_type: str
    key_size: int
    not_after: datetime.datetime

    @classmethod
    def from_json(cls, data: dict) -> RemoteIdentity:
        return cls(
            sha1=data["sha1"],
            sha256=data["sha256"],
            common_name=data["common_name"],
            certificate=x509.load_der_x509_certificate(base64.b64decode(data["certificate"])),
            chain=tuple(x509.load_der_x509_certificate(base64.b64decode(c)) for c in data["chain"]),
            key_type=data["key_type"],
            key_size=int(data["key_size"]),
            not_after=datetime.datetime.fromisoformat(data["not_after"]),
        )


def presented_certificate(url: str) -> str:
    """The PEM certificate a server presents, fetched without trusting it (to pin or compare)."""
    parts = urlsplit(url)
    try:
        return ssl.get_server_certificate((parts.hostname, parts.port or 443), timeout=10)
    except OSError as error:
        raise ConnectionFailed(f"Cannot reach {url}: {error}.") from None


def colon_hex(fingerprint: str) -> str:
    """``AB:CD:…``: how the service shows its TLS certificate's fingerprint (API page), and
    how openssl does, so that a person can compare them by eye."""
    return bytes.fromhex(fingerprint).hex(":").upper()


def sha256_of_pem(pem: str) -> str:
    der = ssl.PEM_cert_to_DER_cert(pem)
    return hashlib.sha256(der).hexdigest()


class ServiceClient:
    def __init__(self, settings: Settings, secrets: Secrets, transport=None):
        if not settings.api_host:
            raise ConfigurationError(
                "No service is configured: run `signing-manager -s -i URL -a API_KEY` first."
            )
        if urlsplit(settings.api_host).scheme != "https":
            raise ConfigurationError(
                f"The service URL must start with https://, not {settings.api_host}."
            )
        self.settings = settings
        self.secrets = secrets
        self._transport = transport
        self._http: httpx.Client | None = None
        self.sleep = time.sleep  # tests wait without waiting

    # --- TLS ------------------------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        if not self.settings.trust_self_signed:
            return ssl.create_default_context()
        pin_path = config_dir() / PIN_FILE
        if not self.settings.pinned_sha256 or not pin_path.exists():
            self.pin(presented_certificate(self.settings.api_host))
        context = ssl.create_default_context(cadata=pin_path.read_text())
        # The pinned certificate itself is the trust anchor, whatever name the URL uses.
        context.check_hostname = False
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        return context

    def pin(self, pem: str) -> None:
        folder = config_dir()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / PIN_FILE).write_text(pem)
        self.settings.pinned_sha256 = sha256_of_pem(pem)
        self.settings.save()
        log.info("Pinned the service's certificate, SHA-256 %s", self.settings.pinned_sha256)
        # On standard error, so `-r --json` stays pure JSON on standard output.
        print(
            f"Trusting the service's certificate, SHA-256 {colon_hex(self.settings.pinned_sha256)}",
            file=sys.stderr,
        )

    def certificate_error(self, error: Exception) -> ConnectionFailed:
        if not self.settings.trust_self_signed:
            return ConnectionFailed(
                f"The service's certificate is not trusted ({error}). If it is self-signed, "
                "save the settings with -u to pin it."
            )
        presented = sha256_of_pem(presented_certificate(self.settings.api_host))
        return CertificateChanged(
            f"The service presented a certificate with SHA-256 {colon_hex(presented)}, not the "
            f"pinned {colon_hex(self.settings.pinned_sha256)}. If it was replaced on purpose, "
            "trust the new one "
            "with `signing-manager -s -i URL -a API_KEY -u`."
        )

    # --- HTTP -----------------------------------------------------------------------------------

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(
                base_url=self.settings.api_host,
                verify=self.ssl_context(),
                timeout=TIMEOUT,
                transport=self._transport,
                headers={"User-Agent": f"signing-manager/{__version__}"},
            )
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def call(self, method: str, path: str, token: str | None = None, body=None) -> dict:
        """The answer's JSON; a 503 is asked again (saying so on stderr) within the budget."""
        budget = retry_budget()
        waited, attempt = 0.0, 0
        while True:
            try:
                return self.call_once(method, path, token, body)
            except ServiceRefused as refused:
                wait = min(refused.retry_after or 2**attempt, MAX_WAIT_SECONDS)
                if refused.status != 503 or waited + wait > budget:
                    raise
                reason, code = str(refused), refused.code
            print(f"signing-manager: {reason} Trying again in {wait:g} s.", file=sys.stderr)
            log.warning("%s %s: %s; trying again in %s s", method, path, code, wait)
            self.sleep(wait)
            waited, attempt = waited + wait, attempt + 1

    def call_once(self, method: str, path: str, token: str | None, body) -> dict:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        log.debug("%s %s", method, path)
        try:
            response = self.http.request(method, "/api/v1" + path, json=body, headers=headers)
        except httpx.ConnectError as error:
            if isinstance(error.__context__, ssl.SSLCertVerificationError) or "CERTIFICATE" in str(
                error
            ):
                raise self.certificate_error(error) from None
            raise ConnectionFailed(f"Cannot reach {self.settings.api_host}: {error}.") from None
        except httpx.HTTPError as error:
            raise ConnectionFailed(f"Cannot reach {self.settings.api_host}: {error}.") from None
        log.debug("%s %s -> %s", method, path, response.status_code)
        if response.is_success:
            return response.json()
        raise refusal(response)

    # --- API ------------------------------------------------------------------------------------

    def version(self) -> dict:
        return self.call("GET", "/version")

    def register(self) -> str:
        api_key = self.secrets.get("api_key")
        if not api_key:
            raise ConfigurationError(
                "No API key is configured: run `signing-manager -s -i URL -a API_KEY`."
            )
        body = {
            "hostname": socket.gethostname()[:255] or "unknown",
            "os": platform.platform()[:255],
            "client_version": __version__,
            "machine_id": self.settings.machine_id,
        }
        reply = self.call("POST", "/clients", api_key, body)
        self.secrets.set("client_token", reply["client_token"])
        log.info("Registered with the service as client %s", reply["client_id"])
        return reply["client_token"]

    def as_client(self, method: str, path: str, body=None) -> dict:
        """Call with the client token, registering first if there is none, or again if the
        service no longer knows it (the client was deleted)."""
        token = self.secrets.get("client_token") or self.register()
        try:
            return self.call(method, path, token, body)
        except ServiceRefused as error:
            if error.status != 401:
                raise
            log.info("The service no longer knows this client; registering again.")
            self.secrets.delete("client_token")
            return self.call(method, path, self.register(), body)

    def identities(self) -> list[RemoteIdentity]:
        reply = self.as_client("GET", "/certificates")
        return [RemoteIdentity.from_json(item) for item in reply["certificates"]]

    def sign(self, fingerprint: str, algorithm: Algorithm, digest: bytes) -> bytes:
        body = {
            "certificate": fingerprint,
            "algorithm": str(algorithm),
            "digest": base64.b64encode(digest).decode(),
        }
        return base64.b64decode(self.as_client("POST", "/sign", body)["signature"])

    def sign_batch(
        self, requests: list[tuple[str, Algorithm, bytes]]
    ) -> list[bytes | ServiceRefused]:
        """One round trip for up to 1,000 digests; each result is a signature or a refusal
        (status 0: the refusal of that one item)."""
        body = {
            "requests": [
                {
                    "certificate": fingerprint,
                    "algorithm": str(algorithm),
                    "digest": base64.b64encode(digest).decode(),
                }
                for fingerprint, algorithm, digest in requests
            ]
        }
        results = self.as_client("POST", "/sign/batch", body)["results"]
        return [
            base64.b64decode(item["signature"])
            if "signature" in item
            else ServiceRefused(0, item["error"]["code"], item["error"]["message"])
            for item in results
        ]


def refusal(response: httpx.Response) -> ServiceRefused:
    try:
        error = response.json()["error"]
        code, message = error["code"], error["message"]
    except (ValueError, KeyError, TypeError):
        code, message = "unexpected_answer", f"The service answered HTTP {response.status_code}."
    header = response.headers.get("Retry-After", "")
    return ServiceRefused(
        response.status_code,
        code,
        f"The service refused: {message}",
        retry_after=int(header) if header.isdigit() else None,
    )


def retry_budget() -> float:
    """How long 503 answers are asked again: SIGNING_MANAGER_RETRY_SECONDS (0: never)."""
    value = os.environ.get(RETRY_SECONDS_ENV, "")
    try:
        return max(float(value), 0.0) if value else DEFAULT_RETRY_SECONDS
    except ValueError:
        raise ConfigurationError(
            f"{RETRY_SECONDS_ENV} must be a number of seconds, not “{value}”."
        ) from None
