import ipaddress
import os
import stat

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from signing_service.tls import ensure_self_signed_certificate

HOSTNAMES = ["build-host", "localhost", "127.0.0.1", "::1"]


def test_it_covers_every_host_name_and_address(tmp_path):
    cert_path, _ = ensure_self_signed_certificate(tmp_path / "tls", HOSTNAMES)
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["build-host", "localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_the_key_is_private_and_both_are_reused(tmp_path):
    cert_path, key_path = ensure_self_signed_certificate(tmp_path / "tls", HOSTNAMES)
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    before = cert_path.read_bytes(), key_path.read_bytes()
    ensure_self_signed_certificate(tmp_path / "tls", ["other-host"])
    assert (cert_path.read_bytes(), key_path.read_bytes()) == before
