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
from signing_manager.config import Secrets, Settings, key_id, write_private_file
from signing_manager.errors import BadSignature, ConfigurationError, ServiceRefused
from signing_manager.remote_key import RemoteSigner
from signing_manager.service import RemoteIdentity, ServiceClient

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KEY_1 = "smk_1111111111_" + "a" * 43
KEY_2 = "smk_2222222222_" + "b" * 43
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
    """Answers like the service: ``keys`` are the API keys it accepts, ``clients`` the
    registrations (key, machine id) with their client tokens."""

    def __init__(self, bad_signature: bool = False, keys=(KEY_1, KEY_2)):
        self.keys = set(keys)
        self.clients: dict[tuple[str, str], str] = {}
        self.registrations: list[str] = []  # the key of each registration
        self.bad_signature = bad_signature

    @property
    def tokens(self) -> set[str]:
        return set(self.clients.values())

    def forget_clients(self) -> None:
        self.clients.clear()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if request.url.path == "/api/v1/clients":
            return self.register(token, json.loads(request.content)["machine_id"])
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

    def register(self, api_key: str, machine_id: str) -> httpx.Response:
        if api_key not in self.keys:
            return error(401, "bad_credentials", "The token is missing, malformed or unknown.")
        if (api_key, machine_id) in self.clients:
            return error(409, "already_registered", "This machine is already registered.")
        self.registrations.append(api_key)
        token = f"smc_{len(self.registrations):010d}_token"
        self.clients[api_key, machine_id] = token
        reply = {"client_id": len(self.registrations), "client_token": token}
        return httpx.Response(201, json=reply)


def error(status, code, message):
    return httpx.Response(status, json={"error": {"code": code, "message": message}})


@pytest.fixture
def secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("SIGNING_MANAGER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("SIGNING_MANAGER_API_KEY", KEY_1)
    value = Secrets()
    value.keyring_available = False
    return value


SETTINGS = Settings(api_host="https://signing.example")


def client_for(service, secrets) -> ServiceClient:
    return ServiceClient(SETTINGS, secrets, transport=httpx.MockTransport(service))


def test_it_registers_on_first_use_and_keeps_the_token_under_its_key(secrets, capsys):
    service = FakeService()
    identities = client_for(service, secrets).identities()
    assert [identity.common_name for identity in identities] == ["Test identity"]
    assert identities[0].certificate == CERT
    assert service.registrations == [KEY_1]
    assert capsys.readouterr().err == (
        "signing-manager: registering this machine with the API key smk_1111111111… "
        "(its first use on this machine).\n"
    )
    client_for(service, secrets).identities()
    assert service.registrations == [KEY_1]  # the saved token was used
    token_file = secrets.token_dir() / key_id(KEY_1)
    assert token_file.read_text() == "smc_0000000001_token\n"
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"
    assert oct(token_file.parent.stat().st_mode & 0o777) == "0o700"
    assert KEY_1 not in "".join(p.name for p in token_file.parent.iterdir())


def test_another_key_registers_afresh_and_the_first_finds_its_token_again(secrets, monkeypatch):
    service = FakeService()
    client_for(service, secrets).identities()
    monkeypatch.setenv("SIGNING_MANAGER_API_KEY", KEY_2)
    client_for(service, secrets).identities()
    assert service.registrations == [KEY_1, KEY_2]
    monkeypatch.setenv("SIGNING_MANAGER_API_KEY", KEY_1)
    client_for(service, secrets).identities()
    assert service.registrations == [KEY_1, KEY_2]


def test_it_registers_again_when_the_service_forgot_the_client(secrets, capsys):
    service = FakeService()
    client_for(service, secrets).identities()
    service.forget_clients()  # an admin deleted the client
    assert client_for(service, secrets).identities()
    assert service.registrations == [KEY_1, KEY_1]
    assert capsys.readouterr().err.splitlines()[-1] == (
        "signing-manager: registering this machine with the API key smk_1111111111… "
        "(the service no longer knows this machine's client)."
    )


def test_without_a_key_a_saved_token_is_not_used(secrets, monkeypatch):
    service = FakeService()
    client_for(service, secrets).identities()
    monkeypatch.delenv("SIGNING_MANAGER_API_KEY")
    with pytest.raises(ConfigurationError) as refused:
        client_for(service, secrets).identities()
    assert str(refused.value) == (
        "No API key is set (this machine has no keyring: set the environment variable "
        "SIGNING_MANAGER_API_KEY)."
    )


def test_a_key_the_service_does_not_know_is_named_with_its_source(secrets, monkeypatch):
    unknown = "smk_9999999999_" + "s" * 43
    monkeypatch.setenv("SIGNING_MANAGER_API_KEY", unknown)
    with pytest.raises(ConfigurationError) as refused:
        client_for(FakeService(), secrets).identities()
    assert str(refused.value) == (
        "The service does not accept the API key smk_9999999999… from SIGNING_MANAGER_API_KEY: "
        "it is mistyped, deleted or of another service; set the right one (this machine has no "
        "keyring: set the environment variable SIGNING_MANAGER_API_KEY)."
    )
    assert "s" * 43 not in str(refused.value)


def test_a_key_of_another_form_is_not_shown(secrets, monkeypatch):
    monkeypatch.setenv("SIGNING_MANAGER_API_KEY", "hunter2")
    with pytest.raises(ConfigurationError, match=r"API key \(not of the form smk_…\)") as refused:
        client_for(FakeService(), secrets).identities()
    assert "hunter2" not in str(refused.value)


def test_a_token_of_an_earlier_version_is_kept_when_the_service_has_its_client(secrets):
    service = FakeService()
    service.clients[KEY_1, SETTINGS.machine_id] = "smc_earlier000_token"
    write_private_file(secrets.token_dir().parent / "client-token", "smc_earlier000_token\n")
    client_for(service, secrets).identities()
    assert service.registrations == []
    assert secrets.client_token(KEY_1) == "smc_earlier000_token"
    assert secrets.unbound_client_token() is None


def test_a_token_of_an_earlier_version_gives_way_to_a_new_registration(secrets):
    service = FakeService()
    write_private_file(secrets.token_dir().parent / "client-token", "smc_otherkey00_token\n")
    client_for(service, secrets).identities()
    assert service.registrations == [KEY_1]
    assert secrets.unbound_client_token() is None


def test_a_refusal_becomes_one_sentence_with_status_and_code(secrets):
    service = FakeService()
    client_for(service, secrets).identities()
    service.clients[KEY_1, SETTINGS.machine_id] = "smc_replaced0_token"  # 401, then 409
    with pytest.raises(ServiceRefused, match="The service refused: This machine is") as info:
        client_for(service, secrets).identities()
    assert (info.value.status, info.value.code) == (409, "already_registered")


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
        capsys.readouterr().err.splitlines()[1:]  # after the line saying it registers
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


def test_where_the_key_lives_is_read_when_the_service_says_it():
    older = RemoteIdentity.from_json(LISTING["certificates"][0])
    assert older.key_location is None  # a service from before the field
    newer = RemoteIdentity.from_json({**LISTING["certificates"][0], "key_location": "token:hsm1"})
    assert newer.key_location == "token:hsm1"
