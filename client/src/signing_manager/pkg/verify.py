"""Checking a flat package's signature, and describing it as ``pkgutil --check-signature`` does.

Checks (reference section 10.5): the TOC checksum against the compressed TOC; the RSA
``<signature>`` over the checksum with the leaf certificate of its KeyInfo; the CMS
``<x-signature>`` (padding trimmed): messageDigest = hash of the checksum bytes, and the signer's
signature over the signed attributes. Trust in the chain is then judged (``trust.py``) against
Apple's roots and the anchors given, and stated in Apple's words: "signed by a developer
certificate issued by Apple for distribution" for Developer ID Installer, "signed by untrusted
certificate" (with the reason) when the chain does not end at a trusted anchor.

File data is hashed from the package's file a chunk at a time (``XarArchive.check_file_data``),
so checking takes the same memory whatever the package's size.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from collections.abc import Callable
from dataclasses import dataclass, field

from asn1crypto import cms
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes

from signing_manager.algorithms import Algorithm, verify_digest
from signing_manager.cms import (
    common_name,
    first_attribute_values,
    verify_signer_info,
    verify_timestamp,
)
from signing_manager.pkg.xar import XarArchive, XarError, discard
from signing_manager.trust import TrustVerdict, judge

XMLDSIG = "{http://www.w3.org/2000/09/xmldsig#}"
# Apple's marker extension on a Developer ID Installer certificate.
DEVELOPER_ID_INSTALLER = x509.ObjectIdentifier("1.2.840.113635.100.6.1.14")


@dataclass
class SignatureCheck:
    signed: bool = False
    problems: list[str] = field(default_factory=list)
    certificates: list[x509.Certificate] = field(default_factory=list)
    signing_time: datetime.datetime | None = None
    timestamp: datetime.datetime | None = None
    trust: TrustVerdict | None = None  # judged once the signature holds

    @property
    def valid(self) -> bool:
        return self.signed and not self.problems


def judge_trust(result: SignatureCheck, anchors: tuple[x509.Certificate, ...]) -> None:
    """Judge the chain of a package whose signature holds."""
    if result.valid and result.certificates:
        result.trust = judge(result.certificates[0], result.certificates, anchors, result.timestamp)


def status_text(result: SignatureCheck) -> str:
    """Apple's status line for a package whose signature holds."""
    trust = result.trust
    if trust is None or trust.problem:
        return "signed by untrusted certificate"
    if not trust.apple:
        return "signed by a certificate trusted through an anchor given with --anchor"
    leaf = {extension.oid for extension in trust.chain[0].extensions}
    if DEVELOPER_ID_INSTALLER in leaf:
        return "signed by a developer certificate issued by Apple for distribution"
    return "signed by a certificate trusted by macOS"


def embedded_certificates(element) -> list[x509.Certificate]:
    texts = [node.text or "" for node in element.iter() if node.tag.endswith("X509Certificate")]
    try:
        return [x509.load_der_x509_certificate(base64.b64decode(text)) for text in texts]
    except (ValueError, binascii.Error):
        raise XarError("A certificate embedded in the signature is damaged.") from None


def check_package(data: bytes) -> SignatureCheck:
    """``check_archive`` for a package held in memory."""
    return check_archive(XarArchive.parse(data))


def check_archive(
    archive: XarArchive, advance: Callable[[int], object] = discard
) -> SignatureCheck:
    """What holds of the package's signatures and data; ``advance`` is told how many bytes of
    file data each chunk hashed held."""
    result = SignatureCheck()
    try:
        checksum = archive.check_toc_checksum()
    except XarError as error:
        result.problems.append(str(error))
        return result
    toc = archive.toc_element
    rsa_element, cms_element = toc.find("signature"), toc.find("x-signature")
    # The signatures over the TOC first: file data is worth hashing only under a TOC that holds.
    if rsa_element is not None or cms_element is not None:
        result.signed = True
    if rsa_element is not None:
        result.certificates = embedded_certificates(rsa_element)
        check_rsa(archive, rsa_element, checksum, result)
    if cms_element is not None:
        check_cms(archive.heap_range(cms_element), checksum, result)
    if not result.problems:
        try:
            archive.check_file_data(advance=advance)
        except XarError as error:
            result.problems.append(str(error))
    return result


def check_rsa(archive: XarArchive, element, checksum: bytes, result: SignatureCheck) -> None:
    if not result.certificates:
        result.problems.append("The RSA signature carries no certificate.")
        return
    signature = archive.heap_range(element)
    try:
        leaf = result.certificates[0].public_key()
        valid = verify_digest(leaf, Algorithm.RSA_PKCS1V15_SHA1, checksum, signature)
    except (ValueError, UnsupportedAlgorithm):  # AlgorithmError: a key of another kind
        result.problems.append("The RSA signature's certificate holds no RSA key.")
        return
    if not valid:
        result.problems.append("The RSA signature does not verify with its certificate.")


def check_cms(blob: bytes, checksum: bytes, result: SignatureCheck) -> None:
    try:
        signed_data = cms.ContentInfo.load(blob, strict=False)["content"]  # zero-padded blob
        signer_info = signed_data["signer_infos"][0]
    except (ValueError, KeyError, IndexError, TypeError):
        result.problems.append("The CMS signature is damaged.")
        return
    problem, signer = verify_signer_info(signed_data, signer_info, checksum)
    if problem:
        result.problems.append(f"The CMS signature {problem}.")
        return
    if result.certificates and signer != result.certificates[0]:
        result.problems.append("The RSA and CMS signatures were made by different certificates.")
    attributes = first_attribute_values(signer_info)
    if "signing_time" in attributes:
        result.signing_time = attributes["signing_time"].native
    check_timestamp(signer_info, result)


def check_timestamp(signer_info, result: SignatureCheck) -> None:
    problem, time = verify_timestamp(signer_info)
    if problem:
        result.problems.append(problem)
    result.timestamp = time


def fingerprint_lines(certificate: x509.Certificate, algorithm) -> list[str]:
    digest = certificate.fingerprint(algorithm).hex().upper()
    pairs = [digest[i : i + 2] for i in range(0, len(digest), 2)]
    return [" ".join(pairs[i : i + 16]) for i in range(0, len(pairs), 16)]


def describe(name: str, result: SignatureCheck) -> str:
    """What ``pkgutil --check-signature`` prints, for our checks."""
    lines = [f'Package "{name}":']
    if result.problems:
        lines.append("   Status: invalid signature")
        lines += [f"   Problem: {problem}" for problem in result.problems]
    elif not result.signed:
        lines.append("   Status: no signature")
    else:
        lines.append(f"   Status: {status_text(result)}")
        if result.trust is not None and result.trust.problem:
            lines.append(f"   Trust: {result.trust.problem}")
    if result.timestamp:
        lines.append(f"   Signed with a timestamp on: {result.timestamp:%Y-%m-%d %H:%M:%S %z}")
    elif result.signing_time:
        lines.append(f"   Signing time: {result.signing_time:%Y-%m-%d %H:%M:%S %z}")
    if result.certificates:
        lines.append("   Certificate Chain:")
        for number, certificate in enumerate(result.certificates, 1):
            lines.append(f"    {number}. {common_name(certificate)}")
            lines.append(f"       Expires: {certificate.not_valid_after_utc:%Y-%m-%d %H:%M:%S %z}")
            lines.append("       SHA256 Fingerprint:")
            lines += [
                f"           {line}" for line in fingerprint_lines(certificate, hashes.SHA256())
            ]
            sha1 = fingerprint_lines(certificate, hashes.SHA1())  # noqa: S303
            lines.append(f"       SHA1 Fingerprint: {' '.join(sha1)}")
            lines.append("       " + "-" * 72)
    return "\n".join(lines) + "\n"
