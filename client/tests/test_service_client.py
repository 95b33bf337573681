"""The API client against a stand-in transport: parsing, registration, refusals, checks."""

import base64
import datetime
import hashlib
import json

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from signing_manager.algorithms import Algorithm, sign_digest
from signing_manager.config import Secrets, Settings
from signing_manager.errors import BadSignature, ConfigurationError, ServiceRefused
from signing_manager.remote_key import RemoteSigner
from signing_manager.service import ServiceClient

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
NOW = datetime.datetime.now(datetime.UTC)
CERT = (
    x509.CertificateBuilder()
    .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test identity")]))
    .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test identity")]))
    .public_key(KEY.public_key())
    .serial_number(1)
    .not_valid_before(NOW - datetime.timedelta(days=1))
    .not_valid_after(NOW + datetime.timedelta(days=1))
    .sign(KEY, hashes.SHA256())
)
DER = CERT.public_bytes(serialization.Encoding.DER)
LISTING = {
    "certificates": [
        {
            "sha1": CERT.fingerprint(hashes.SHA1()).hex(),  # noqa: S303
            "sha256": CERT.fingerprint(hashes.SHA256()).hex(),
            "common_name": "Test identity",
            "certificate": base64.b64encode(DER).decode(),
            "chain": [],
            "key_type": "RSA",
            "key_size": 2048,
            "not_after": CERT.not_valid_after_utc.isoformat(),
        }
    ]
}


class FakeService:
    """Answers like the service; ``tokens`` are the client tokens it knows."""

    def __init__(self, bad_signature: bool = False):
        self.tokens = set()
        self.registrations = 0
        self.bad_signature = bad_signature

    def __call__(self, request: httpx.Request) -> httpx.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if request.url.path == "/api/v1/clients":
            if token != "smk_key":
                return error(401, "bad_credentials", "The token is missing, malformed or unknown.")
            self.registrations += 1
            new_token = f"smc_token{self.registrations}"
            self.tokens.add(new_token)
            return httpx.Response(201, json={"client_id": 1, "client_token": new_token})
        if token not in self.tokens:
            return error(401, "bad_credentials", "The token is missing, malformed or unknown.")
        if request.url.path == "/api/v1/certificates":
            return httpx.Response(200, json=LISTING)
        body = json.loads(request.content)
        digest = base64.b64decode(body["digest"])
        if self.bad_signature:
            digest = bytes(len(digest))
        signature = sign_digest(KEY, Algorithm(body["algorithm"]), digest)
        return httpx.Response(200, json={"signature": base64.b64encode(signature).decode()})


def error(status, code, message):
    return httpx.Response(status, json={"error": {"code": code, "message": message}})


@pytest.fixture
def secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("SIGNING_MANAGER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("SIGNING_MANAGER_API_KEY", "smk_key")
    value = Secrets()
    value.keyring_available = False
    return value


def client_for(service, secrets) -> ServiceClient:
    settings = Settings(api_host="https://signing.example")
    return ServiceClient(settings, secrets, transport=httpx.MockTransport(service))


def test_it_registers_on_first_use_and_keeps_the_token(secrets):
    service = FakeService()
    identities = client_for(service, secrets).identities()
    assert [identity.common_name for identity in identities] == ["Test identity"]
    assert identities[0].certificate == CERT
    assert service.registrations == 1
    client_for(service, secrets).identities()
    assert service.registrations == 1  # the saved token was used
    assert oct(secrets.token_file().stat().st_mode & 0o777) == "0o600"


def test_it_registers_again_when_the_service_forgot_the_client(secrets):
    service = FakeService()
    client_for(service, secrets).identities()
    service.tokens.clear()  # an admin deleted the client
    assert client_for(service, secrets).identities()
    assert service.registrations == 2


def test_a_refusal_becomes_one_sentence_with_status_and_code(secrets, monkeypatch):
    monkeypatch.setenv("SIGNING_MANAGER_API_KEY", "smk_wrong")
    with pytest.raises(ServiceRefused, match="The service refused: The token is missing") as info:
        client_for(FakeService(), secrets).identities()
    assert (info.value.status, info.value.code) == (401, "bad_credentials")


def test_a_signature_that_does_not_verify_is_refused(secrets):
    client = client_for(FakeService(bad_signature=True), secrets)
    signer = RemoteSigner(client, client.identities()[0])
    with pytest.raises(BadSignature, match="does not verify"):
        signer.sign_digest(hashlib.sha256(b"x").digest(), Algorithm.RSA_PKCS1V15_SHA256)


def test_a_good_signature_is_passed_on(secrets):
    client = client_for(FakeService(), secrets)
    signer = RemoteSigner(client, client.identities()[0])
    digest = hashlib.sha256(b"x").digest()
    signature = signer.sign_digest(digest, Algorithm.RSA_PSS_SHA256)
    assert signer.check(digest, Algorithm.RSA_PSS_SHA256, signature) is None


def test_only_https_services_are_accepted(secrets):
    with pytest.raises(ConfigurationError, match="must start with https://"):
        ServiceClient(Settings(api_host="http://signing.example"), secrets)


def test_an_unconfigured_client_says_how_to_configure(secrets):
    with pytest.raises(ConfigurationError, match="signing-manager -s -i URL -a API_KEY"):
        ServiceClient(Settings(), secrets)


class UnavailableFirst(FakeService):
    """Answers 503 (with Retry-After) the first ``outages`` calls, then as the service."""

    def __init__(self, outages: int, retry_after: str = "5"):
        super().__init__()
        self.outages, self.retry_after, self.calls = outages, retry_after, 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.calls <= self.outages:
            response = error(503, "service_unavailable", "The service's database is unavailable.")
            response.headers["Retry-After"] = self.retry_after
            return response
        return super().__call__(request)


def test_a_503_is_asked_again_after_the_wait_the_service_asks_for(secrets, capsys):
    client = client_for(UnavailableFirst(outages=2), secrets)
    waits = []
    client.sleep = waits.append

    identities = client.identities()

    assert [identity.common_name for identity in identities] == ["Test identity"]
    assert waits == [5, 5]
    assert (
        capsys.readouterr().err.splitlines()
        == [
            "signing-manager: The service refused: The service's database is unavailable. "
            "Trying again in 5 s."
        ]
        * 2
    )


def test_waits_grow_without_retry_after_and_stop_at_the_budget(secrets, monkeypatch):
    monkeypatch.setenv("SIGNING_MANAGER_RETRY_SECONDS", "20")
    client = client_for(UnavailableFirst(outages=100, retry_after=""), secrets)
    waits = []
    client.sleep = waits.append

    with pytest.raises(ServiceRefused) as refused:
        client.identities()

    assert refused.value.status == 503
    assert waits == [1, 2, 4, 8]  # the next (15) would pass the 20 s budget


def test_other_refusals_and_a_zero_budget_are_not_asked_again(secrets, monkeypatch):
    monkeypatch.setenv("SIGNING_MANAGER_RETRY_SECONDS", "0")
    client = client_for(UnavailableFirst(outages=1), secrets)
    client.sleep = pytest.fail

    with pytest.raises(ServiceRefused):
        client.identities()
