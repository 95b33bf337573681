"""Reading an identity (certificate, private key, chain) from a PKCS#12 (.p12 / .pfx) file.

PKCS#12 is specified in RFC 7292: a ``PFX`` holding an authenticated safe of bags, the key bag
usually encrypted (AES-256-CBC with PBKDF2 by current OpenSSL; RC2-40 or 3DES with a SHA-1 MAC by
older tools and macOS Keychain exports). asn1crypto checks the outer structure first, so a file
that is not PKCS#12 at all, or is cut short, gets its own message; cryptography then decrypts.
Every failure is a ``P12Error`` whose message tells the user what to do.
"""

from __future__ import annotations

import contextlib
import datetime
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

from asn1crypto import pkcs12 as asn1_pkcs12
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from signing_manager.algorithms import AlgorithmError, key_type_of
from signing_manager.cms import ASN1_ERRORS
from signing_manager.key_usage import code_signing_problem

MAX_SIZE = 10 * 1024 * 1024
# Key derivations a file may ask for (MAC, key, certificates): OpenSSL and Keychain Access
# write 2,048, other tools up to a few hundred thousand. The count is the file's to choose, and
# 2**31 - 1 keeps a worker busy for minutes before the password is even checked.
MAX_ITERATIONS = 1_000_000


class P12Error(ValueError):
    """The file cannot be imported; the message says why."""


@dataclass(frozen=True)
class ParsedIdentity:
    certificate: x509.Certificate
    private_key: object
    chain: list[x509.Certificate]
    usage_check_overridden: bool = False

    @property
    def sha256(self) -> str:
        return self.certificate.fingerprint(hashes.SHA256()).hex()

    @property
    def key_type(self) -> str:
        return key_type_of(self.private_key)

    @property
    def key_size(self) -> int:
        return self.private_key.key_size

    def private_key_der(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def check_structure(data: bytes) -> None:
    if not data:
        raise P12Error("The file is empty.")
    if len(data) > MAX_SIZE:
        raise P12Error("The file is larger than 10 MiB; a .p12 identity is a few kilobytes.")
    if data.lstrip().startswith(b"-----BEGIN"):
        raise P12Error(
            "This is a PEM file, not a .p12. Export the identity (certificate and private key) "
            "as a .p12 file, e.g. from Keychain Access or with `openssl pkcs12 -export`."
        )
    try:
        pfx = asn1_pkcs12.Pfx.load(data, strict=True)
        pfx["version"].native  # noqa: B018 - reading the fields is what checks them
        pfx.authenticated_safe  # noqa: B018
    except TypeError:  # asn1crypto, when the authenticated safe holds no content at all
        raise P12Error("This is not a .p12 (PKCS#12) file, or it is corrupt.") from None
    except ValueError as error:
        # A DER SEQUENCE that runs out is a .p12 cut short; anything else is not a .p12.
        if data[0] == 0x30 and "Insufficient data" in str(error):
            raise P12Error("The file is truncated or corrupt: it ends too early.") from None
        raise P12Error("This is not a .p12 (PKCS#12) file, or it is corrupt.") from None
    check_work_factor(pfx)


def check_work_factor(pfx: asn1_pkcs12.Pfx) -> None:
    """Refuse iteration counts above ``MAX_ITERATIONS`` before any key is derived."""
    try:
        counts = list(iteration_counts(pfx))
    except P12Error:
        raise
    except ASN1_ERRORS:
        raise P12Error("This is not a .p12 (PKCS#12) file, or it is corrupt.") from None
    for what, count in counts:
        if count > MAX_ITERATIONS:
            raise P12Error(
                f"The file asks for {count:,} iterations to derive its {what} key; more than "
                f"{MAX_ITERATIONS:,} is refused (real exports use far fewer)."
            )


def iteration_counts(pfx: asn1_pkcs12.Pfx) -> Iterator[tuple[str, int]]:
    """What each key derivation the file asks for would cost: its MAC's, its encrypted
    certificates', its private key's (those readable without the password)."""
    if pfx["mac_data"].native is not None:
        yield "MAC", pfx["mac_data"]["iterations"].native
    for content in pfx.authenticated_safe:
        kind = content["content_type"].native
        if kind == "encrypted_data":
            encrypted = content["content"]["encrypted_content_info"]
            algorithm = encrypted["content_encryption_algorithm"]
            yield "certificates'", kdf_iterations(algorithm, "certificates'")
        elif kind == "data":
            for bag in asn1_pkcs12.SafeContents.load(content["content"].native):
                if bag["bag_id"].native == "pkcs8_shrouded_key_bag":
                    algorithm = bag["bag_value"]["encryption_algorithm"]
                    yield "private", kdf_iterations(algorithm, "private key's")


def kdf_iterations(algorithm, whose: str) -> int:
    try:
        return algorithm.kdf_iterations
    except ValueError:
        raise P12Error(
            f"The {whose} encryption ({algorithm['algorithm'].dotted}) is not supported; export "
            "the identity again with AES-256 or 3DES."
        ) from None


def parse_p12(
    data: bytes,
    password: str,
    now: datetime.datetime | None = None,
    allow_any_usage: bool = False,
) -> ParsedIdentity:
    """The identity in ``data``, decrypted with ``password`` (UTF-8; may be empty). A
    certificate not for code signing is refused unless ``allow_any_usage`` (an admin's
    explicit override, which the identity then records)."""
    check_structure(data)
    with cryptography_warnings_judged():
        try:
            loaded = pkcs12.load_pkcs12(data, password.encode("utf-8"))
        except x509.InvalidVersion as error:  # certificates are parsed while loading
            raise P12Error(f"A certificate in the file is malformed: {error}.") from None
        except ValueError:
            raise P12Error("The password is wrong (or the file was altered).") from None
        check_contents(loaded)
        certificate, chain = certificates_of(loaded)
    check_key_matches(certificate, loaded.key)
    check_validity(certificate, now or datetime.datetime.now(datetime.UTC))
    check_chain(certificate, chain)
    problem = code_signing_problem(certificate)
    if problem and not allow_any_usage:
        raise P12Error(
            f"The certificate is not for code signing: {problem}. Import a code-signing "
            "identity (Developer ID Application or Installer, Apple Development or "
            "Distribution), or override this check if you must."
        )
    return ParsedIdentity(
        certificate=certificate,
        private_key=loaded.key,
        chain=chain,
        usage_check_overridden=bool(problem),
    )


# What cryptography warns about while reading a file, and what the import makes of it. Left
# alone, each would be a line on stderr: noise in the logs and in the ops CLI's output.
HARMLESS_WARNINGS = (
    "PKCS#12 bundle could not be parsed as DER",  # BER, which some tools write
    "Attribute's length must be",  # a name longer than X.520's bounds, as Apple's can be
)
REFUSED_WARNINGS = {
    "serial number which wasn't positive": "A certificate in the file has a serial number that "
    "is not positive, which RFC 5280 forbids.",  # and cryptography will refuse
}


@contextlib.contextmanager
def cryptography_warnings_judged() -> Iterator[None]:
    """Turn cryptography's warnings into verdicts: harmless ones are dropped, forbidden
    constructions refused (``P12Error``), others passed on. ``catch_warnings`` is not
    thread-safe: at worst another thread's warning is hidden or shown twice."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for warning in caught:
        message = str(warning.message)
        for fragment, verdict in REFUSED_WARNINGS.items():
            if fragment in message:
                raise P12Error(verdict)
        if not message.startswith(HARMLESS_WARNINGS):
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )


def certificates_of(
    loaded: pkcs12.PKCS12KeyAndCertificates,
) -> tuple[x509.Certificate, list[x509.Certificate]]:
    """The identity's certificate and the file's others, each read in full now: cryptography
    parses names, extensions and keys when first asked, and a damaged certificate must be
    refused at import, not on a page that shows it later."""
    try:
        certificate = loaded.cert.certificate
        others = [extra.certificate for extra in loaded.additional_certs]
        for each in [certificate, *others]:
            each.subject, each.issuer, each.public_key()
            list(each.extensions)
        return certificate, [other for other in others if other != certificate]
    except (*ASN1_ERRORS, x509.DuplicateExtension, x509.InvalidVersion) as error:
        raise P12Error(f"A certificate in the file is malformed: {error}.") from None


def check_contents(loaded: pkcs12.PKCS12KeyAndCertificates) -> None:
    has_certificates = loaded.cert is not None or bool(loaded.additional_certs)
    if loaded.key is None:
        if not has_certificates:
            raise P12Error("The file holds neither a certificate nor a private key.")
        raise P12Error(
            "The file holds a certificate but no private key. Export the identity with its "
            "private key."
        )
    if loaded.cert is None:
        if has_certificates:
            # OpenSSL pairs the key with the certificate it belongs to; none did.
            raise P12Error(
                "The private key in the file does not belong to any of its certificates."
            )
        raise P12Error("The file holds a private key but no certificate.")


def check_key_matches(certificate: x509.Certificate, private_key) -> None:
    try:
        key_type_of(private_key)
    except AlgorithmError as error:
        raise P12Error(f"{error} Use an RSA or EC (ECDSA) identity.") from None

    def spki(key) -> bytes:
        return key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    if spki(private_key.public_key()) != spki(certificate.public_key()):
        raise P12Error("The private key in the file does not belong to its certificate.")


def check_chain(certificate: x509.Certificate, chain: list[x509.Certificate]) -> None:
    """Every link the file supplies holds: a certificate whose issuer the file also holds
    carries that issuer's valid signature (an altered leaf, or a stand-in CA, is refused)."""
    by_subject: dict[x509.Name, list[x509.Certificate]] = {}
    for candidate in chain:
        by_subject.setdefault(candidate.subject, []).append(candidate)
    for subject in [certificate, *chain]:
        issuers = by_subject.get(subject.issuer, [])
        if subject.issuer == subject.subject or not issuers:
            continue  # a root, or an issuer the file does not hold: no link to check here
        if not any(directly_issued(subject, issuer) for issuer in issuers):
            raise P12Error(
                f"The certificate {describe(subject)} is not signed by {describe(issuers[0])}, "
                "which the file holds as its issuer: the chain is broken or was altered."
            )


def directly_issued(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    """False only for a signature that does not verify: a link in an algorithm cryptography
    cannot check is not held against the file (names already match)."""
    try:
        certificate.verify_directly_issued_by(issuer)
    except InvalidSignature:
        return False
    except (ValueError, TypeError):
        pass  # an algorithm cryptography cannot check: no verdict against the file
    return True


def describe(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return f"'{names[0].value}'" if names else f"'{certificate.subject.rfc4514_string()}'"


def check_validity(certificate: x509.Certificate, now: datetime.datetime) -> None:
    expiry = certificate.not_valid_after_utc
    if expiry < now:
        raise P12Error(
            f"The certificate expired on {expiry:%Y-%m-%d %H:%M} UTC; import a current one."
        )
