"""Signing a flat package: what ``productsign`` does, with the key kept in the service.

Procedure (reference section 10.3): drop old signatures from the TOC; point the checksum at
heap offset 0 (SHA-1, 20 bytes); reserve the RSA signature (modulus size) and the CMS signature
(a trial CMS plus slack) right after it; move every file's data to follow, in order, byte for
byte; compress the TOC; its SHA-1 is the checksum that both signatures sign:

* ``<signature style="RSA">``: PKCS#1 v1.5 over DigestInfo(SHA-1, checksum) — the scheme of
  the xar tool and of scripts that pkgutil accepts.
* ``<x-signature style="CMS">``: a detached SignedData whose content is the checksum bytes
  (messageDigest = SHA-256(checksum)), with the certificate chain.

Both digests go to the service in one batch; each signature is checked before writing.

The signed package is written as a stream, in one pass over its input: the header and the new
TOC (whose offsets are known before any data is read), zeros where the checksum and the
signatures go, then every file's data, checked against its archived-checksum. From file to
file, the data is copied on a second thread (in the kernel on Linux) while the first reads and
hashes it; in memory, it is written a chunk at a time as it is checked. Only then are the
signatures asked for, and written over the zeros.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO
from xml.etree import ElementTree

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from signing_manager.algorithms import Algorithm
from signing_manager.cms import DetachedSignature
from signing_manager.codesign import files
from signing_manager.errors import SigningManagerError
from signing_manager.pkg.xar import (
    ChecksumAlgorithm,
    Span,
    XarArchive,
    XarHeader,
    discard,
    toc_bytes,
)
from signing_manager.timestamp import TIMESTAMP_RESERVE

CHECKSUM_SIZE = 20
CMS_SLACK = 1024
XMLDSIG = "http://www.w3.org/2000/09/xmldsig#"
SIGNATURE_TAGS = ("signature", "x-signature")


class AlreadySigned(SigningManagerError):
    pass


def is_signed(archive: XarArchive) -> bool:
    return any(archive.toc_element.find(tag) is not None for tag in SIGNATURE_TAGS)


def key_info(certificates) -> ElementTree.Element:
    info = ElementTree.Element("KeyInfo", {"xmlns": XMLDSIG})
    data = ElementTree.SubElement(info, "X509Data")
    for certificate in certificates:
        element = ElementTree.SubElement(data, "X509Certificate")
        der = certificate.public_bytes(serialization.Encoding.DER)
        element.text = base64.b64encode(der).decode()
    return info


def range_element(tag: str, offset: int, size: int, **attributes) -> ElementTree.Element:
    element = ElementTree.Element(tag, attributes)
    ElementTree.SubElement(element, "offset").text = str(offset)
    ElementTree.SubElement(element, "size").text = str(size)
    return element


def data_elements(toc: ElementTree.Element) -> list[ElementTree.Element]:
    """Every element whose heap range moves with the data: file <data> and extended <ea>."""
    return [
        element
        for element in toc.iter()
        if element.tag in ("data", "ea") and element.find("offset") is not None
    ]


@dataclass
class Layout:
    rsa_size: int
    cms_size: int

    @property
    def data_start(self) -> int:
        return CHECKSUM_SIZE + self.rsa_size + self.cms_size


def relocate(archive: XarArchive, toc: ElementTree.Element, start: int) -> list[Span]:
    """Point every data range at consecutive offsets from ``start``; the old ranges, in the
    order their data follows in the new heap."""
    moved: dict[Span, int] = {}
    position = start
    elements = data_elements(toc)
    spans = {id(element): archive.heap_span(element) for element in elements}
    for element in sorted(elements, key=lambda e: int(e.findtext("offset"))):
        old = spans[id(element)]
        if old not in moved:  # ranges shared by several entries are stored once
            moved[old] = position
            position += old[1]
        element.find("offset").text = str(moved[old])
    return list(moved)


def signed_toc(
    archive: XarArchive, certificates, layout: Layout
) -> tuple[ElementTree.Element, list[Span]]:
    """The TOC of the signed package, and the old ranges of the data it holds, in order."""
    root = copy.deepcopy(archive.toc)
    toc = root.find("toc")
    for tag in (*SIGNATURE_TAGS, "checksum"):
        for element in toc.findall(tag):
            toc.remove(element)
    ranges = (
        range_element("checksum", 0, CHECKSUM_SIZE, style="sha1"),
        range_element("signature", CHECKSUM_SIZE, layout.rsa_size, style="RSA"),
        range_element("x-signature", CHECKSUM_SIZE + layout.rsa_size, layout.cms_size, style="CMS"),
    )
    for position, element in enumerate(ranges):
        if element.tag != "checksum":
            element.append(key_info(certificates))
        toc.insert(position, element)
    return root, relocate(archive, toc, layout.data_start)


def write_signed_package(
    archive: XarArchive,
    signer,
    output: BinaryIO,
    timestamp_url: str | None,
    advance: Callable[[int], object],
) -> None:
    """Write the signed package to ``output``: header, TOC, the data checked as it is copied,
    then the checksum and the signatures in the space reserved for them."""
    certificates = [signer.certificate, *signer.chain]
    layout = plan(signer, timestamped=bool(timestamp_url))
    root, spans = signed_toc(archive, certificates, layout)
    xml = toc_bytes(root)
    compressed = zlib.compress(xml, 9)
    checksum = hashlib.sha1(compressed).digest()  # noqa: S324 - the format's checksum
    header = XarHeader(
        header_size=archive.header.header_size,
        version=archive.header.version,
        toc_compressed=len(compressed),
        toc_uncompressed=len(xml),
        checksum_algorithm=ChecksumAlgorithm.SHA1,
        extra=archive.header.extra,
    )
    output.write(header.serialize() + compressed)
    reserved = output.tell()
    output.write(bytes(layout.data_start))
    # Never sign over a package that was damaged already: it would not verify.
    copy_checked_data(archive, spans, output, advance)
    rsa_signature, cms = sign_checksum(signer, checksum, timestamp_url)
    if len(rsa_signature) != layout.rsa_size or len(cms) > layout.cms_size:
        raise SigningManagerError("The signatures do not fit the space reserved for them.")
    output.seek(reserved)
    output.write(checksum + rsa_signature + cms + bytes(layout.cms_size - len(cms)))


def copy_checked_data(
    archive: XarArchive, spans: list[Span], output: BinaryIO, advance: Callable[[int], object]
) -> None:
    """The data of ``spans`` written at ``output``'s position, one after the other, each
    checked against its checksum: copied on a second thread between two files, else written
    as it is read."""
    source, target = files.descriptor(archive.heap.source), files.descriptor(output)
    if source is None or target is None or not files.CAN_COPY_RANGES:
        archive.check_file_data(spans, copy_to=output.write, advance=advance)
        return
    output.flush()  # what the buffer holds goes before the copy
    ranges, position = [], output.tell()
    for offset, size in spans:
        ranges.append((archive.heap.start + offset, position, size))
        position += size
    with files.copying(source, target, ranges):
        archive.check_file_data(spans, advance=advance)
    output.seek(position)


def sign_checksum(signer, checksum: bytes, timestamp_url: str | None) -> tuple[bytes, bytes]:
    """The RSA signature and the CMS of a TOC checksum, from one batch of remote signing."""
    cms = DetachedSignature(
        signer, hashlib.sha256(checksum).digest(), Algorithm.RSA_PKCS1V15_SHA256
    )
    rsa_signature, cms_signature = signer.sign_digests(
        [(checksum, Algorithm.RSA_PKCS1V15_SHA1), (cms.digest_to_sign, cms.algorithm)]
    )
    return rsa_signature, cms.finish(cms_signature, timestamp_url)


def plan(signer, timestamped: bool) -> Layout:
    """Space for the signatures: the modulus size, and a trial CMS with a dummy signature."""
    rsa_size = signer.certificate.public_key().key_size // 8
    trial = DetachedSignature(signer, bytes(32), Algorithm.RSA_PKCS1V15_SHA256)
    slack = CMS_SLACK + (TIMESTAMP_RESERVE if timestamped else 0)
    return Layout(rsa_size=rsa_size, cms_size=len(trial.finish(bytes(rsa_size))) + slack)


def sign_archive(
    archive: XarArchive,
    signer,
    output: BinaryIO,
    *,
    force: bool = False,
    timestamp_url: str | None = None,
    advance: Callable[[int], object] = discard,
) -> None:
    """Write a signed copy of the package ``archive`` to ``output`` (a new, seekable file; the
    input is never changed), with an RFC 3161 timestamp on the CMS signature when
    ``timestamp_url`` names a TSA. ``advance`` is told how many bytes of data each chunk
    copied held. On an error, what was written to ``output`` is to be thrown away."""
    if not isinstance(signer.certificate.public_key(), rsa.RSAPublicKey):
        raise SigningManagerError("Installer packages are signed with RSA identities only.")
    if is_signed(archive) and not force:
        raise AlreadySigned("The package is already signed; use --force to replace the signature.")
    if archive.header.checksum_algorithm != ChecksumAlgorithm.NONE:
        archive.check_toc_checksum()
    write_signed_package(archive, signer, output, timestamp_url, advance)


def sign_package(
    data: bytes, signer, *, force: bool = False, timestamp_url: str | None = None
) -> bytes:
    """``sign_archive`` for a package held in memory: the signed package, as bytes."""
    output = io.BytesIO()
    sign_archive(XarArchive.parse(data), signer, output, force=force, timestamp_url=timestamp_url)
    return output.getvalue()
