"""What the guide's menu operations copy and show for an identity ("Menu Bar Operations"):
its common name, SHA-1, the codesign and productsign command lines, and the certificate.

One place for both faces of the client: ``signing-manager identity cn|sha1|codesign|productsign|
show`` prints these lines, and the window copies them (⌥⌘C, ⌥⌘S, ⌥⌘O, ⌥⌘P) and shows them
(⌥⌘E). The commands are this client's, which work on any OS; on macOS the window also offers
Apple's own form, as the guide shows it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

if TYPE_CHECKING:  # for annotations only: the service's module imports httpx, which is slow
    from signing_manager.service import RemoteIdentity


def codesign_command(identity: RemoteIdentity) -> str:
    return f'signing-manager codesign -f -s "{identity.sha1.upper()}"'


def productsign_command(identity: RemoteIdentity) -> str:
    return (
        f'signing-manager productsign --sign "{identity.sha1.upper()}" source.pkg destination.pkg'
    )


def apple_codesign_command(identity: RemoteIdentity) -> str:
    """The guide's own line, for Apple's codesign (macOS, with the certificate in a keychain)."""
    return f'codesign -fs "{identity.sha1.upper()}"'


def apple_productsign_command(identity: RemoteIdentity) -> str:
    return f'productsign --sign "{identity.sha1.upper()}" source.pkg destination.pkg'


def copied_line(identity: RemoteIdentity, what: str) -> str:
    """The line a menu item copies: ``cn``, ``sha1``, ``codesign`` or ``productsign``."""
    return {
        "cn": identity.common_name,
        "sha1": identity.sha1.upper(),
        "codesign": codesign_command(identity),
        "productsign": productsign_command(identity),
    }[what]


def summary_lines(identity: RemoteIdentity) -> list[str]:
    """Who the certificate names, its fingerprints, validity and key, and where the service
    keeps the key (unless the service is older than saying so)."""
    certificate = identity.certificate
    lines = [
        f"Common name: {identity.common_name}",
        f"Subject:     {certificate.subject.rfc4514_string()}",
        f"Issuer:      {certificate.issuer.rfc4514_string()}",
        f"SHA-1:       {identity.sha1.upper()}",
        f"SHA-256:     {identity.sha256.upper()}",
        f"Valid:       {certificate.not_valid_before_utc:%Y-%m-%d} to "
        f"{certificate.not_valid_after_utc:%Y-%m-%d}",
        f"Key:         {identity.key_type} {identity.key_size}",
    ]
    if identity.key_location:
        lines.append(f"Key kept in: {identity.key_location}")
    return lines


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def extension_lines(certificate: x509.Certificate) -> list[str]:
    """Each extension: its name (or OID), whether it is critical, and its value."""
    lines = []
    for extension in certificate.extensions:
        critical = " (critical)" if extension.critical else ""
        lines.append(f"{oid_name(extension.oid)}{critical}: {extension_value(extension.value)}")
    return lines


def oid_name(oid: x509.ObjectIdentifier) -> str:
    """The OID's name where cryptography knows one, else its dotted form (Apple's own)."""
    name = oid._name  # cryptography's only way to name an OID; "Unknown OID" when it has none
    return oid.dotted_string if name == "Unknown OID" else name


def extension_value(value: x509.ExtensionType) -> str:
    if isinstance(value, x509.ExtendedKeyUsage):
        return ", ".join(oid_name(usage) for usage in value)
    if isinstance(value, x509.UnrecognizedExtension):
        return value.value.hex()
    return str(value).removeprefix(f"<{type(value).__name__}(").removesuffix(")>")


def chain_lines(identity: RemoteIdentity) -> list[str]:
    """The completed chain the service sends, leaf first: each one's subject and SHA-256."""
    lines = []
    for depth, certificate in enumerate((identity.certificate, *identity.chain)):
        sha256 = certificate.fingerprint(hashes.SHA256()).hex().upper()
        lines.append(f"{depth}: {certificate.subject.rfc4514_string()}  SHA-256 {sha256}")
    return lines


def certificate_text(identity: RemoteIdentity) -> str:
    """Everything Show Certificate shows: summary, extensions, chain and the PEM."""
    sections = [
        "\n".join(summary_lines(identity)),
        "Extensions:\n" + "\n".join(f"  {line}" for line in extension_lines(identity.certificate)),
        "Chain:\n" + "\n".join(f"  {line}" for line in chain_lines(identity)),
        pem(identity.certificate),
    ]
    return "\n\n".join(sections)
