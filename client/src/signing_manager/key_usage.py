"""What a certificate may sign: its key usage and extended key usage (RFC 5280 4.2.1.3, 4.2.1.12).

Apple's tools sign code only with a certificate whose extended key usage includes Code Signing,
and installer packages only with one that includes Apple's Installer Package Signing usage
(Developer ID Installer, Mac Installer Distribution). A certificate without an extended key
usage extension is unrestricted (RFC 5280), as Apple's code-signing policy treats it; the key
usage, when present, must allow digital signatures.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

APPLE_INSTALLER_SIGNING = x509.ObjectIdentifier("1.2.840.113635.100.4.13")

EXTENDED_KEY_USAGE_NAMES = {
    ExtendedKeyUsageOID.CODE_SIGNING.dotted_string: "Code Signing",
    ExtendedKeyUsageOID.SERVER_AUTH.dotted_string: "TLS Web Server Authentication",
    ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string: "TLS Web Client Authentication",
    ExtendedKeyUsageOID.EMAIL_PROTECTION.dotted_string: "E-mail Protection",
    ExtendedKeyUsageOID.TIME_STAMPING.dotted_string: "Time Stamping",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE.dotted_string: "Any Extended Key Usage",
    APPLE_INSTALLER_SIGNING.dotted_string: "Apple Installer Package Signing",
    "1.2.840.113635.100.4.1": "Apple Code Signing (Development)",
}


def extended_key_usages(certificate: x509.Certificate) -> list[x509.ObjectIdentifier] | None:
    """The certificate's extended key usages; None when it has none (unrestricted)."""
    try:
        return list(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return None


def usage_names(usages: list[x509.ObjectIdentifier]) -> list[str]:
    return [EXTENDED_KEY_USAGE_NAMES.get(oid.dotted_string, oid.dotted_string) for oid in usages]


def signs_digitally(certificate: x509.Certificate) -> bool:
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return usage.digital_signature


def allows(certificate: x509.Certificate, purpose: x509.ObjectIdentifier) -> bool:
    """Whether the certificate may sign for ``purpose`` (an extended key usage)."""
    usages = extended_key_usages(certificate)
    permitted = usages is None or {purpose, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE} & set(
        usages
    )
    return signs_digitally(certificate) and bool(permitted)


def signs_code(certificate: x509.Certificate) -> bool:
    return allows(certificate, ExtendedKeyUsageOID.CODE_SIGNING)


def signs_installers(certificate: x509.Certificate) -> bool:
    return allows(certificate, APPLE_INSTALLER_SIGNING)


def usage_warning(certificate: x509.Certificate, name: str, installer: bool) -> str | None:
    """The warning for signing code (or, with ``installer``, a package) with a certificate
    whose usages do not allow it, naming it ``name``; None when they do."""
    if installer:
        if signs_installers(certificate):
            return None
        return (
            f"“{name}” lacks the installer-signing usage (1.2.840.113635.100.4.13); Installer "
            "may refuse the package."
        )
    if signs_code(certificate):
        return None
    return f"“{name}” lacks the code-signing usage; macOS may refuse code signed with it."


def code_signing_problem(certificate: x509.Certificate) -> str | None:
    """Why the certificate is fit neither for code nor for installer signing, or None."""
    if not signs_digitally(certificate):
        return "its key usage does not allow digital signatures"
    if signs_code(certificate) or signs_installers(certificate):
        return None
    names = ", ".join(usage_names(extended_key_usages(certificate) or []))
    return f"its extended key usage allows only {names}"
