"""Apple's public certificate authorities, shipped with the client (and used by the service).

Apple publishes its root and intermediate CA certificates on its "Certificate Authority" page.
Its tools embed leaf + intermediate + root in every signature, so a service that holds only a
Keychain-exported leaf completes the chain from these, and a verifier judges trust against the
roots. Each file is pinned here by SHA-256: a file that does not match is refused, because a
wrong "Apple" root in the bundle would make any signature look trusted.

Shipped: the roots, and the intermediates that issue Developer ID, Apple Development,
Apple Distribution and Mac App Store certificates and had not expired when this list was made.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources

from cryptography import x509

# file name → SHA-256 of its DER bytes, as Apple's CA page lists them.
APPLE_CERTIFICATES = {
    "AppleIncRootCertificate.cer": (
        "b0b1730ecbc7ff4505142c49f1295e6eda6bcaed7e2c68c5be91b5a11001f024"
    ),
    "AppleRootCA-G2.cer": "c2b9b042dd57830e7d117dac55ac8ae19407d38e41d88f3215bc3a890444a050",
    "AppleRootCA-G3.cer": "63343abfb89a6a03ebb57e9b3f5fa7be7c4f5c756f3017b3a8c488c3653e9179",
    "AppleWWDRCAG2.cer": "9ed4b3b88c6a339cf1387895bda9ca6ea31a6b5ce9edf7511845923b0c8ac94c",
    "AppleWWDRCAG3.cer": "dcf21878c77f4198e4b4614f03d696d89c66c66008d4244e1b99161aac91601f",
    "AppleWWDRCAG4.cer": "ea4757885538dd8cb59ff4556f676087d83c85e70902c122e42c0808b5bce14c",
    "AppleWWDRCAG5.cer": "53fd008278e5a595fe1e908ae9c5e5675f26243264a5a6438c023e3ce2870760",
    "AppleWWDRCAG6.cer": "bdd4ed6e74691f0c2bfd01be0296197af1379e0418e2d300efa9c3bef642ca30",
    "DeveloperIDCA.cer": "7afc9d01a62f03a2de9637936d4afe68090d2de18d03f29c88cfb0b1ba63587f",
    "DeveloperIDG2CA.cer": "f16cd3c54c7f83cea4bf1a3e6a0819c8aaa8e4a1528fd144715f350643d2df3a",
}


class ApplePkiError(RuntimeError):
    """A shipped Apple certificate is missing or is not the one pinned: the install is damaged."""


@functools.cache
def apple_certificates() -> tuple[x509.Certificate, ...]:
    """Every shipped Apple CA certificate, each checked against its pinned fingerprint."""
    folder = resources.files("signing_manager") / "apple_ca"
    certificates = []
    for name, expected in APPLE_CERTIFICATES.items():
        try:
            data = (folder / name).read_bytes()
        except OSError:
            raise ApplePkiError(f"Apple's CA certificate {name} is missing: reinstall.") from None
        if hashlib.sha256(data).hexdigest() != expected:
            raise ApplePkiError(f"Apple's CA certificate {name} is not the published one.")
        certificates.append(x509.load_der_x509_certificate(data))
    return tuple(certificates)


def apple_roots() -> tuple[x509.Certificate, ...]:
    """Apple's self-signed roots: the anchors a verifier trusts by default."""
    return tuple(cert for cert in apple_certificates() if cert.subject == cert.issuer)
