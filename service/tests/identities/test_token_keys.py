"""Identities whose keys live in a PKCS#11 token (SoftHSM2): generated there with a CSR,
certified, imported or moved there; never extractable; and a token that goes away."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext

from signing_manager.algorithms import Algorithm, verify_digest
from signing_service.access.models import ApiKey
from signing_service.audit.models import AuditEvent
from signing_service.identities import hsm, token_keys
from signing_service.identities.models import Identity, PendingIdentity
from signing_service.identities.p12 import parse_p12
from signing_service.identities.signers import Pkcs11Signer
from signing_service.monitoring.readiness import failing_check
from signing_service.test import fake_ca, issue_for_request, make_client, make_identity

pytestmark = pytest.mark.django_db

SUBJECT = token_keys.Subject(
    common_name="Developer ID Application: Token Tests (ABCDE12345)",
    email="release@example.com",
    organization="Token Tests",
    country="US",
)


def pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def api_sign(client, token: str, sha1: str, algorithm: Algorithm, digest: bytes):
    return client.post(
        "/api/v1/sign",
        {
            "certificate": sha1,
            "algorithm": str(algorithm),
            "digest": base64.b64encode(digest).decode(),
        },
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )


@pytest.fixture
def client_token():
    api_key, _ = ApiKey.create("build machines")
    return make_client(api_key)[1]


@pytest.mark.parametrize(
    ("key_spec", "key_type", "key_size"),
    [("rsa2048", "RSA", 2048), ("ec-p256", "EC", 256), ("ec-p384", "EC", 384)],
)
def test_generate_csr_issue_attach_and_sign_every_algorithm(
    token_settings, client, client_token, tmp_path, key_spec, key_type, key_size
):
    pending = token_keys.generate_in_token(token_settings.label, key_spec, SUBJECT)
    assert (pending.key_type, pending.key_size) == (key_type, key_size)

    # The CSR is signed by the token's key: openssl checks it, and it carries the subject.
    csr_file = tmp_path / "request.csr"
    csr_file.write_text(pending.csr_pem())
    checked = subprocess.run(
        ["openssl", "req", "-in", str(csr_file), "-verify", "-noout", "-subject"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert "verify OK" in checked.stdout + checked.stderr
    assert "CN = Developer ID Application: Token Tests (ABCDE12345)" in checked.stdout
    assert "release@example.com" in checked.stdout
    assert pending.csr().public_key().key_size == key_size

    certificate = issue_for_request(pending.csr())
    identity = token_keys.attach_certificate(pending, pem(certificate) + pem(fake_ca()[0]))
    assert not PendingIdentity.objects.exists()
    assert identity.key_location == f"token:{token_settings.label}"
    assert bytes(identity.wrapped_data_key) == bytes(identity.encrypted_private_key) == b""
    assert identity.chain_reaches_root

    listed = client.get("/api/v1/certificates", headers={"Authorization": f"Bearer {client_token}"})
    (entry,) = listed.json()["certificates"]
    assert entry["key_location"] == f"token:{token_settings.label}"
    for algorithm in Algorithm:
        if algorithm.key_type != key_type:
            continue
        digest = hashlib.new(algorithm.hash_algorithm.name, b"a CodeDirectory").digest()
        response = api_sign(client, client_token, identity.sha1, algorithm, digest)
        assert response.status_code == 200, response.json()
        signature = base64.b64decode(response.json()["signature"])
        assert verify_digest(certificate.public_key(), algorithm, digest, signature), algorithm


def test_a_certificate_for_another_key_is_refused(token_settings):
    pending = token_keys.generate_in_token(token_settings.label, "ec-p256", SUBJECT)
    other = make_identity(key_kind="ec256")
    with pytest.raises(token_keys.TokenKeyError, match="for another key"):
        token_keys.attach_certificate(pending, pem(other.certificate))
    assert PendingIdentity.objects.filter(pk=pending.pk).exists()
    assert not Identity.objects.exists()


def test_a_certificate_not_for_code_signing_is_refused(token_settings):
    pending = token_keys.generate_in_token(token_settings.label, "ec-p256", SUBJECT)
    certificate = issue_for_request(pending.csr(), usages=[ExtendedKeyUsageOID.SERVER_AUTH])
    with pytest.raises(token_keys.TokenKeyError, match="not for code signing"):
        token_keys.attach_certificate(pending, pem(certificate))


@pytest.mark.parametrize("encoding", ["der", "p7b-der", "p7b-pem"])
def test_the_certificate_may_come_as_der_or_pkcs7(token_settings, tmp_path, encoding):
    pending = token_keys.generate_in_token(token_settings.label, "ec-p256", SUBJECT)
    certificate = issue_for_request(pending.csr())
    (tmp_path / "chain.pem").write_bytes(pem(certificate) + pem(fake_ca()[0]))
    if encoding == "der":
        data = certificate.public_bytes(serialization.Encoding.DER)
    else:
        form = "DER" if encoding == "p7b-der" else "PEM"
        data = subprocess.run(
            ["openssl", "crl2pkcs7", "-nocrl", "-certfile", str(tmp_path / "chain.pem"),
             "-outform", form],
            capture_output=True, check=True,
        ).stdout  # fmt: skip
    identity = token_keys.attach_certificate(pending, data)
    assert identity.certificate() == certificate


def test_a_pending_identity_is_neither_listed_nor_usable(token_settings, client, client_token):
    pending = token_keys.generate_in_token(token_settings.label, "ec-p256", SUBJECT)
    certificate = issue_for_request(pending.csr())  # issued, but not uploaded yet
    headers = {"Authorization": f"Bearer {client_token}"}
    assert client.get("/api/v1/certificates", headers=headers).json() == {"certificates": []}
    sha1 = certificate.fingerprint(hashes.SHA1()).hex()  # noqa: S303
    response = api_sign(client, client_token, sha1, Algorithm.ECDSA_SHA256, bytes(32))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_identity"


def token_private_key(label: str, key_id: bytes):
    pkcs11 = hsm.pkcs11_module()
    session = hsm.sessions().open(label)  # a session of its own, outside the service's
    return pkcs11, session, session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, id=key_id)


@pytest.mark.parametrize("key_spec", ["rsa2048", "ec-p256"])
def test_a_generated_key_cannot_leave_the_token(token_settings, key_spec):
    pending = token_keys.generate_in_token(token_settings.label, key_spec, SUBJECT)
    assert_not_extractable(token_settings.label, bytes.fromhex(pending.token_key_id))


def test_an_imported_key_cannot_leave_the_token_and_is_kept_nowhere_else(token_settings, caplog):
    made = make_identity(key_kind="rsa2048")
    parsed = parse_p12(made.p12, made.password)
    identity = Identity()
    token_keys.fill_identity(identity, parsed, token_settings.label)
    identity.save()
    assert_not_extractable(token_settings.label, identity.token_key_id_bytes)
    assert_no_key_bytes(identity, made.private_key, caplog.text)
    digest = hashlib.sha256(b"x").digest()
    signature = Pkcs11Signer.of(identity).sign_digest(digest, Algorithm.RSA_PSS_SHA256)
    assert verify_digest(made.certificate.public_key(), Algorithm.RSA_PSS_SHA256, digest, signature)


def ec_identity_in_token(label: str):
    """An EC identity imported from a .p12, its key then moved into the token; and the
    identity's files."""
    made = make_identity(key_kind="ec256")
    identity = Identity()
    identity.fill_from(parse_p12(made.p12, made.password))
    identity.save()
    token_keys.move_to_token(identity, label)
    return identity, made


def test_move_to_token_removes_the_sealed_key(token_settings):
    identity, made = ec_identity_in_token(token_settings.label)
    identity.refresh_from_db()
    assert identity.key_location == f"token:{token_settings.label}"
    assert_no_key_bytes(identity, made.private_key, "")
    digest = hashlib.sha256(b"moved").digest()
    signature = Pkcs11Signer.of(identity).sign_digest(digest, Algorithm.ECDSA_SHA256)
    assert verify_digest(made.certificate.public_key(), Algorithm.ECDSA_SHA256, digest, signature)
    with pytest.raises(token_keys.TokenKeyError, match="in a token already"):
        token_keys.move_to_token(identity, token_settings.label)


def assert_not_extractable(label: str, key_id: bytes) -> None:
    """The token refuses to give the key out: its secret attributes, and wrapped."""
    pkcs11, session, key = token_private_key(label, key_id)
    attribute = pkcs11.Attribute
    assert key[attribute.SENSITIVE] is True
    assert key[attribute.EXTRACTABLE] is False
    secret = attribute.PRIVATE_EXPONENT if key.key_type == pkcs11.KeyType.RSA else attribute.VALUE
    with pytest.raises(pkcs11.exceptions.AttributeSensitive):
        key[secret]
    wrapping_key = session.generate_key(
        pkcs11.KeyType.AES, 256, template={attribute.WRAP: True, attribute.TOKEN: False}
    )
    with pytest.raises((pkcs11.exceptions.KeyUnextractable, pkcs11.exceptions.KeyNotWrappable)):
        wrapping_key.wrap_key(key, mechanism=pkcs11.Mechanism.AES_KEY_WRAP_PAD)


def assert_no_key_bytes(identity: Identity, private_key, log_text: str) -> None:
    """Neither the record nor the log holds the key (its secret number, in any byte order)."""
    numbers = private_key.private_numbers()
    secret = numbers.d if isinstance(private_key, rsa.RSAPrivateKey) else numbers.private_value
    width = (secret.bit_length() + 7) // 8
    needles = [secret.to_bytes(width, "big"), secret.to_bytes(width, "little")]
    stored = Identity.objects.filter(pk=identity.pk).values().get()
    blob = b"".join(bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
                    for value in stored.values())  # fmt: skip
    for needle in needles:
        assert needle not in blob
        assert needle.hex() not in blob.decode(errors="replace")
        assert needle.hex() not in log_text
    assert isinstance(private_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)


def test_a_removed_token_gives_503_audited_then_recovers(token_settings, client, client_token):
    identity, _ = ec_identity_in_token(token_settings.label)
    digest = hashlib.sha256(b"while the token is away").digest()
    assert (
        api_sign(client, client_token, identity.sha1, Algorithm.ECDSA_SHA256, digest).status_code
        == 200
    )

    with token_settings.removed():
        response = api_sign(client, client_token, identity.sha1, Algorithm.ECDSA_SHA256, digest)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "key_unavailable"
        assert response["Retry-After"]
        assert failing_check() == "tokens"
    failure = AuditEvent.objects.filter(identity=identity).latest("pk")
    assert (failure.status, failure.reason) == ("failure", "key_unavailable")
    assert token_settings.label in failure.message

    response = api_sign(client, client_token, identity.sha1, Algorithm.ECDSA_SHA256, digest)
    assert response.status_code == 200, response.json()
    assert failing_check() is None


def test_concurrent_signatures_from_threads(token_settings):
    key = ec.generate_private_key(ec.SECP256R1())
    key_id = token_keys.create_in_token(key, token_settings.label, make_identity().certificate)
    signer = Pkcs11Signer(token_settings.label, key_id)
    seen_threads = set()

    def sign(number: int) -> bool:
        seen_threads.add(threading.get_ident())
        digest = hashlib.sha256(str(number).encode()).digest()
        signature = signer.sign_digest(digest, Algorithm.ECDSA_SHA256)
        return verify_digest(key.public_key(), Algorithm.ECDSA_SHA256, digest, signature)

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(sign, range(200)))
    assert len(seen_threads) > 1


def test_start_refuses_a_wrong_pin_a_missing_token_or_module(token_settings, settings):
    hsm.check_tokens()  # the right settings pass
    settings.PKCS11_PIN = "not-the-pin"
    with pytest.raises(ImproperlyConfigured, match="refuses the PIN"):
        hsm.check_tokens()
    settings.PKCS11_PIN = token_settings.pin
    settings.PKCS11_TOKENS = ["no-such-token"]
    with pytest.raises(ImproperlyConfigured, match="No token labelled “no-such-token”"):
        hsm.check_tokens()
    settings.PKCS11_MODULE = "/nonexistent/libpkcs11.so"
    with pytest.raises(ImproperlyConfigured, match="cannot be loaded"):
        hsm.check_tokens()


def test_one_logged_in_session_is_kept_and_replaced_after_a_token_error(token_settings):
    key = ec.generate_private_key(ec.SECP256R1())
    key_id = token_keys.create_in_token(key, token_settings.label, make_identity().certificate)
    signer = Pkcs11Signer(token_settings.label, key_id)
    signer.sign_digest(bytes(32), Algorithm.ECDSA_SHA256)
    first = hsm.sessions().open_sessions[token_settings.label]
    signer.sign_digest(bytes(32), Algorithm.ECDSA_SHA256)
    assert hsm.sessions().open_sessions[token_settings.label] is first

    with token_settings.removed(), pytest.raises(hsm.TokenUnavailable):
        signer.sign_digest(bytes(32), Algorithm.ECDSA_SHA256)
    assert token_settings.label not in hsm.sessions().open_sessions
    signer.sign_digest(bytes(32), Algorithm.ECDSA_SHA256)
    assert hsm.sessions().open_sessions[token_settings.label] is not first


def test_signing_with_a_token_key_reads_no_certificate(token_settings, client, client_token):
    """The sign path loads an identity without its certificate; a token's signer reads it only
    when asked (it once parsed it, after one more query, for every request)."""
    identity, _ = ec_identity_in_token(token_settings.label)
    digest = hashlib.sha256(b"no certificate needed").digest()
    with CaptureQueriesContext(connection) as queries:
        response = api_sign(client, client_token, identity.sha1, Algorithm.ECDSA_SHA256, digest)
    assert response.status_code == 200, response.json()
    assert not [query for query in queries if "certificate_der" in query["sql"]]
    signature = base64.b64decode(response.json()["signature"])
    assert verify_digest(
        identity.certificate().public_key(), Algorithm.ECDSA_SHA256, digest, signature
    )
    signer = Pkcs11Signer.of(Identity.objects.get(pk=identity.pk))
    assert signer.certificate() == identity.certificate()
