"""Detached CMS signatures, checked by openssl, which we did not write."""

import datetime
import hashlib
import subprocess

import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from signing_manager.algorithms import Algorithm
from signing_manager.cms import detached_signature
from signing_manager.local_key import LocalSigner


def self_signed(key) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CMS test signer")])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


@pytest.mark.parametrize(
    ("key", "algorithm"),
    [
        (RSA_KEY, Algorithm.RSA_PKCS1V15_SHA256),
        (RSA_KEY, Algorithm.RSA_PKCS1V15_SHA512),
        (RSA_KEY, Algorithm.RSA_PSS_SHA256),
        (EC_KEY, Algorithm.ECDSA_SHA256),
        (EC_KEY, Algorithm.ECDSA_SHA384),
    ],
)
def test_openssl_verifies_the_detached_signature(tmp_path, key, algorithm):
    certificate = self_signed(key)
    content = b"any file content\n" * 100
    digest = hashlib.new(algorithm.hash_algorithm.name, content).digest()
    signature = detached_signature(LocalSigner(certificate, key), digest, algorithm)
    (tmp_path / "content").write_bytes(content)
    (tmp_path / "content.p7s").write_bytes(signature)
    (tmp_path / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    command = ["openssl", "cms", "-verify", "-binary", "-inform", "DER"]
    command += ["-in", str(tmp_path / "content.p7s"), "-content", str(tmp_path / "content")]
    command += ["-CAfile", str(tmp_path / "cert.pem"), "-purpose", "any", "-out", "/dev/null"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "Verification successful" in result.stderr
    (tmp_path / "content").write_bytes(content + b"tampered")
    assert subprocess.run(command, capture_output=True, check=False).returncode != 0


def test_it_carries_the_chain_and_the_extra_attributes():
    certificate = self_signed(RSA_KEY)
    issuer = self_signed(EC_KEY)
    signer = LocalSigner(certificate, RSA_KEY, chain=[issuer])
    extra = [{"type": "content_type", "values": ["data"]}]
    info = cms.ContentInfo.load(
        detached_signature(signer, bytes(32), Algorithm.RSA_PKCS1V15_SHA256, extra_attributes=extra)
    )
    signed_data = info["content"]
    assert len(signed_data["certificates"]) == 2
    attributes = signed_data["signer_infos"][0]["signed_attrs"]
    assert sorted(attribute["type"].native for attribute in attributes) == [
        "content_type",
        "content_type",
        "message_digest",
        "signing_time",
    ]
    assert signed_data["encap_content_info"]["content"].native is None  # detached


def test_the_certificates_are_stored_in_ders_order_as_apples_are():
    # A real Developer ID signature (reference addendum) stores intermediate, root, leaf: the
    # SET OF sorted by encoding. Verifiers find the signer by issuer and serial, not position.
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = self_signed(root_key)
    now = datetime.datetime.now(datetime.UTC)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Leaf")]))
        .issuer_name(root.subject)
        .public_key(RSA_KEY.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(root_key, hashes.SHA256())
    )
    der = [c.public_bytes(serialization.Encoding.DER) for c in (leaf, root)]
    signer = LocalSigner(leaf, RSA_KEY, chain=[root])

    signature = detached_signature(signer, hashlib.sha256(b"x").digest(), Algorithm.RSA_PSS_SHA256)

    stored = cms.ContentInfo.load(signature)["content"]["certificates"]
    assert [item.chosen.dump() for item in stored] == sorted(der)
    assert sorted(der) != der  # the leaf (an RSA key, longer) is not first
