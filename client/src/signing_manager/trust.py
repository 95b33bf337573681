"""Trust in a signature's certificate chain: does it end at an anchor trusted here?

The chain is completed from the certificates the signature carries and Apple's CA certificates
(``apple_pki``), link by link with checked signatures (``chains``). It is trusted when its root
is one of the anchors: Apple's roots shipped with the client, and any root given with
``--anchor FILE``. Every certificate must have been valid when the signature was made: at the
time of its RFC 3161 timestamp when it has one (Apple's certificates outlive no signature
otherwise), else now. The verdict is always stated, never skipped.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from signing_manager.apple_pki import apple_certificates, apple_roots
from signing_manager.chains import complete_chain
from signing_manager.cms import ASN1_ERRORS, common_name
from signing_manager.errors import ConfigurationError

# Files of roots to trust besides Apple's, separated like PATH: a company's own code-signing CA.
ANCHORS_ENV = "SIGNING_MANAGER_ANCHORS"


@dataclass(frozen=True)
class TrustVerdict:
    chain: tuple[x509.Certificate, ...]  # leaf first, as far as it could be completed
    complete: bool  # it ends at a root
    problem: str | None  # why it is not trusted; None when it is
    apple: bool = False  # trusted through one of Apple's roots


def judge(
    leaf: x509.Certificate,
    carried: Iterable[x509.Certificate],
    anchors: tuple[x509.Certificate, ...],
    at: datetime.datetime | None = None,
) -> TrustVerdict:
    """The verdict on ``leaf``'s chain, completed from ``carried`` and Apple's CAs, at the
    signature's time: its timestamp's (``at``), or now when it has none."""
    at = at or datetime.datetime.now(datetime.UTC)
    completed = complete_chain(leaf, [*carried, *apple_certificates(), *anchors])
    chain = (leaf, *completed.issuers)
    if not completed.complete:
        problem = (
            f"the certificate chain stops at “{common_name(chain[-1])}”, whose issuer is not "
            "known, so it cannot be trusted"
        )
        return TrustVerdict(chain, False, problem)
    root = chain[-1]
    if root not in anchors:
        problem = (
            f"the certificate chain ends at “{common_name(root)}”, which is not a trusted "
            "anchor (Apple's roots, or a root given with --anchor FILE or SIGNING_MANAGER_ANCHORS)"
        )
        return TrustVerdict(chain, True, problem)
    for certificate in chain:
        if not certificate.not_valid_before_utc <= at <= certificate.not_valid_after_utc:
            problem = (
                f"“{common_name(certificate)}” was not valid at {at:%Y-%m-%d %H:%M} UTC, when "
                "the signature was made"
            )
            return TrustVerdict(chain, True, problem)
    return TrustVerdict(chain, True, None, apple=root in apple_roots())


def load_anchors(paths: list[str] | None) -> tuple[x509.Certificate, ...]:
    """Apple's roots, and the certificates (PEM or DER) in the ``--anchor`` files and in those
    ``SIGNING_MANAGER_ANCHORS`` lists (as a Mac trusts roots added to its System keychain)."""
    anchors = list(apple_roots())
    listed = [item for item in os.environ.get(ANCHORS_ENV, "").split(os.pathsep) if item]
    for path in [*listed, *(paths or ())]:
        try:
            data = Path(path).read_bytes()
        except OSError as error:
            raise ConfigurationError(f"Cannot read the anchor {path}: {error.strerror}.") from None
        try:
            if data.lstrip().startswith(b"-----BEGIN"):
                anchors += x509.load_pem_x509_certificates(data)
            else:
                anchors.append(x509.load_der_x509_certificate(data))
        except ASN1_ERRORS:
            raise ConfigurationError(
                f"The anchor {path} is not a certificate (PEM or DER)."
            ) from None
    return tuple(anchors)
