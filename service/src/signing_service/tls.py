"""The self-signed TLS certificate the service presents until an operator supplies a real one.

An ECDSA P-256 key and a certificate whose subject alternative names cover every name in
``settings.HOSTNAMES`` (the host name, ``localhost``, ``127.0.0.1``, ``::1`` and any extra names).
Both live in ``<data dir>/tls/``; the key file is readable by the service's user alone.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=825)  # the longest validity browsers accept for a server cert


def subject_alternative_names(hostnames: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for name in hostnames:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            names.append(x509.DNSName(name))
    return names


def make_self_signed_certificate(
    hostnames: list[str],
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0][:64])])
    now = datetime.datetime.now(datetime.UTC)
    public_key = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(subject_alternative_names(hostnames)), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def ensure_self_signed_certificate(tls_dir: Path, hostnames: list[str]) -> tuple[Path, Path]:
    """Paths of the certificate and key in ``tls_dir``, made on first use and reused after."""
    cert_path, key_path = tls_dir / "cert.pem", tls_dir / "key.pem"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    tls_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    certificate, key = make_self_signed_certificate(hostnames)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_private_file(key_path, key_pem)
    write_private_file(cert_path, certificate.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return cert_path, key_path


def write_private_file(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write through a temporary file and rename, so a crash never leaves half a file."""
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def certificate_sha256(cert_path: Path) -> str:
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()
