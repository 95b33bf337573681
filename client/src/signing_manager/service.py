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
from signing_manager.config import (
    URL_ENV,
    Secrets,
    Settings,
    config_dir,
    key_label,
    unwritable,
)
from signing_manager.errors import (
    CertificateChanged,
    ConfigurationError,
    ConnectionFailed,
    ServiceRefused,
    SigningManagerError,
    one_line,
)

log = logging.getLogger(__name__)
PIN_FILE = "pinned-certificate.pem"
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# A 503 (the service's database or audit is unavailable: nothing was done) is asked again, with
# growing waits, for at most this long; every call of the API is safe to repeat (a digest
# signed twice is harmless, a registration not carried out left nothing behind).
RETRY_SECONDS_ENV = "SIGNING_MANAGER_RETRY_SECONDS"
# The service certificate's SHA-256, for a runner that keeps no pin between runs.
SERVICE_SHA256_ENV = "SIGNING_MANAGER_SERVICE_SHA256"
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
    # Where the service keeps the private key ("database" or "token:LABEL"); None from a
    # service older than the field.
    key_location: str | None = None

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
            key_location=data.get("key_location"),
        )


def presented_certificate(url: str) -> str:
    """The PEM certificate a server presents, fetched without trusting it (to pin or compare)."""
    parts = urlsplit(url)
    try:
        return ssl.get_server_certificate(
            (parts.hostname, parts.port or 443), timeout=TIMEOUT.connect
        )
    except OSError as error:
        raise unreachable(url, error) from None


def unreachable(url: str, error: BaseException) -> ConnectionFailed:
    """Why ``url`` could not be reached, in a sentence that says what to check."""
    causes = list(causes_of(error))
    text = " ".join(str(cause) for cause in causes)
    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port or 443}"
    if any(isinstance(cause, TimeoutError | httpx.TimeoutException) for cause in causes):
        return ConnectionFailed(
            f"{url} did not answer within {TIMEOUT.connect:g} s: check that the Signing Service "
            "runs there and that this machine can reach it (firewall, proxy)."
        )
    if any(isinstance(cause, ConnectionRefusedError) for cause in causes) or "refused" in text:
        return ConnectionFailed(
            f"Nothing answers at {where} (connection refused): check that the Signing Service "
            "runs there and that the URL's port is right."
        )
    if any(isinstance(cause, socket.gaierror) for cause in causes) or "known" in text:
        return ConnectionFailed(f"The host {parts.hostname} is unknown: check the URL {url}.")
    if "WRONG_VERSION_NUMBER" in text or "record layer failure" in text:
        return ConnectionFailed(
            f"{where} does not speak HTTPS (a plain-HTTP port?): use the https:// address the "
            "service's main page shows."
        )
    return ConnectionFailed(f"Cannot reach {url}: {one_line(text) or type(error).__name__}.")


def causes_of(error: BaseException):
    """The error and those it was raised from or during, innermost last."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def expected_sha256() -> str:
    """The service certificate's SHA-256 that ``SIGNING_MANAGER_SERVICE_SHA256`` names (hex,
    colons and spaces allowed, any case), or empty."""
    value = os.environ.get(SERVICE_SHA256_ENV, "")
    fingerprint = value.replace(":", "").replace(" ", "").lower()
    if value and (len(fingerprint) != 64 or not set(fingerprint) <= set("0123456789abcdef")):
        raise ConfigurationError(
            f"{SERVICE_SHA256_ENV} must be the service certificate's SHA-256 as its main page "
            "shows it (64 hex digits, colons allowed)."
        )
    return fingerprint


def pin_needed(settings: Settings) -> bool:
    """Whether the next connection pins the certificate the service presents (trust
    self-signed, nothing pinned yet), which the window asks about first."""
    pinned = settings.pinned_sha256 and (config_dir() / PIN_FILE).exists()
    return settings.trust_self_signed and not pinned and not expected_sha256()


def pinned_context(pem: str) -> ssl.SSLContext:
    """A context that trusts exactly this certificate, whatever name the URL uses."""
    context = ssl.create_default_context(cadata=pem)
    context.check_hostname = False
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


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
                "No service is configured: run `signing-manager -s -i URL -a API_KEY` first"
                + ("." if secrets.keyring_available else f", or set {URL_ENV}.")
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
        """Trust as configured: the certificate whose SHA-256 the environment names (a CI
        runner, which keeps no files between runs), the certificate pinned on first use
        (``-u``), or the system's CAs."""
        expected = expected_sha256()
        if expected:
            return pinned_context(self.presented_as_expected(expected))
        if not self.settings.trust_self_signed:
            return ssl.create_default_context()
        if pin_needed(self.settings):
            self.pin(presented_certificate(self.settings.api_host))
        return pinned_context((config_dir() / PIN_FILE).read_text())

    def presented_as_expected(self, expected: str) -> str:
        pem = presented_certificate(self.settings.api_host)
        presented = sha256_of_pem(pem)
        if presented != expected:
            raise CertificateChanged(
                f"The service presented a certificate with SHA-256 {colon_hex(presented)}, not "
                f"the {colon_hex(expected)} that {SERVICE_SHA256_ENV} names: if it was replaced "
                "on purpose, set the variable to the fingerprint its main page shows."
            )
        return pem

    def pin(self, pem: str) -> None:
        folder = config_dir()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / PIN_FILE).write_text(pem)
        except OSError as error:
            raise unwritable(folder, error) from None
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
                f"save the settings with -u to pin it (a CI runner: set {SERVICE_SHA256_ENV} "
                "to its fingerprint)."
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
            raise unreachable(self.settings.api_host, error) from None
        except httpx.HTTPError as error:
            raise unreachable(self.settings.api_host, error) from None
        log.debug("%s %s -> %s", method, path, response.status_code)
        if response.is_success:
            return response.json()
        raise refusal(response, self.settings.api_host)

    # --- API ------------------------------------------------------------------------------------

    def version(self) -> dict:
        return self.call("GET", "/version")

    def api_key(self) -> str:
        api_key = self.secrets.api_key()
        if not api_key:
            raise self.secrets.missing_api_key()
        return api_key

    def register(self, api_key: str, why: str) -> str:
        """Register this machine with ``api_key``; its new client token, saved under that key.
        ``why`` ends the line on stderr that says a registration happens."""
        print(
            f"signing-manager: registering this machine with the API key {key_label(api_key)}"
            f" ({why}).",
            file=sys.stderr,
        )
        body = {
            "hostname": socket.gethostname()[:255] or "unknown",
            "os": platform.platform()[:255],
            "client_version": __version__,
            "machine_id": self.settings.machine_id,
        }
        earlier = self.secrets.unbound_client_token()
        try:
            reply = self.call("POST", "/clients", api_key, body)
        except ServiceRefused as refused:
            if refused.code == "already_registered" and earlier:
                # An earlier version's token, of the registration the service still has.
                self.secrets.set_client_token(api_key, earlier)
                self.secrets.delete_unbound_client_token()
                return earlier
            raise self.key_refusal(refused, api_key) from None
        token = reply["client_token"]
        self.secrets.set_client_token(api_key, token)
        self.secrets.delete_unbound_client_token()
        log.info("Registered with API key %s as client %s", key_label(api_key), reply["client_id"])
        return token

    def key_refusal(self, refused: ServiceRefused, api_key: str) -> SigningManagerError:
        """A refused registration, in words that name the key and where it came from."""
        label, source = key_label(api_key), self.secrets.api_key_source()
        if refused.code == "bad_credentials":
            return ConfigurationError(
                f"The service does not accept the API key {label} from {source}: it is "
                "mistyped, deleted or of another service; set the right one "
                f"({self.secrets.how_to_set_api_key()})."
            )
        if refused.code == "inactive_key":
            return ServiceRefused(
                refused.status,
                refused.code,
                f"{refused} Ask an admin to switch it on, or set another key "
                f"({self.secrets.how_to_set_api_key()}).",
            )
        return refused

    def as_client(self, method: str, path: str, body=None) -> dict:
        """Call with this machine's client token for the API key in use: registering first
        when this key has none here, or again if the service no longer knows it (the client
        was deleted)."""
        api_key = self.api_key()
        token = self.secrets.client_token(api_key) or self.register(
            api_key, "its first use on this machine"
        )
        try:
            return self.call(method, path, token, body)
        except ServiceRefused as error:
            if error.status != 401:
                raise self.key_refusal(error, api_key) from None
            log.info("The service no longer knows this client; registering again.")
            self.secrets.delete_client_token(api_key)
            token = self.register(api_key, "the service no longer knows this machine's client")
            return self.call(method, path, token, body)

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


def refusal(response: httpx.Response, url: str) -> ServiceRefused:
    try:
        error = response.json()["error"]
        code, message = error["code"], error["message"]
    except (ValueError, KeyError, TypeError):
        code, message = "unexpected_answer", f"The service answered HTTP {response.status_code}."
        if response.status_code == 404:
            message = (
                f"{url} has no client API (HTTP 404): use the Signing Service's address as its "
                "main page shows it."
            )
    header = response.headers.get("Retry-After", "")
    return ServiceRefused(
        response.status_code,
        code,
        message if code == "unexpected_answer" else f"The service refused: {message}",
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
