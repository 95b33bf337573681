"""XAR archives: the container of flat installer packages (.pkg).

Specified by xar's ``include/xar.h.in`` and its wiki; see ``reference/apple-signing-formats.md``
section 10. Layout:

    header   (big-endian)  magic "xar!" | header size u16 | version u16 |
                           TOC length compressed u64 | TOC length uncompressed u64 |
                           checksum algorithm u32 (0 none, 1 SHA-1, 2 MD5, 3 SHA-256, 4 SHA-512)
                           [+ anything up to "header size", kept as it is]
    TOC      zlib-compressed XML, right after the header
    heap     everything after the TOC; every <offset> in the TOC is relative to its start

The TOC's ``<checksum>`` names a heap range holding the hash of the compressed TOC bytes, which
is what signatures sign.

Only the header and the TOC are read into memory; the heap stays in its file (``Heap``) and is
read a range at a time, large ranges a chunk at a time, so that packages of any size take the
same memory.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import IntEnum
from typing import BinaryIO
from xml.etree import ElementTree

from signing_manager.codesign.files import read_chunks
from signing_manager.errors import SigningManagerError

MAGIC = b"xar!"
HEADER = struct.Struct(">4sHHQQI")
MAX_HEADER = 0xFFFF  # the most its 16-bit size field can say
MAX_TOC = 64 * 1024 * 1024
# A TOC nests one <file> per folder of the payload: real packages stay far below this.
MAX_TOC_DEPTH = 256


class XarError(SigningManagerError):
    """The file is not a XAR archive, or a damaged one."""


def inflate_toc(compressed: bytes, length: int) -> bytes:
    """The TOC's XML, inflated no further than its recorded ``length`` (at most ``MAX_TOC``):
    a few megabytes of zlib can hold gigabytes of XML."""
    inflater = zlib.decompressobj()
    try:
        xml = inflater.decompress(compressed, length + 1)
    except zlib.error:
        raise XarError("The XAR table of contents is damaged (not zlib data).") from None
    if len(xml) != length or not inflater.eof:
        raise XarError("The XAR table of contents does not have its recorded length.")
    return xml


def parse_toc(xml: bytes) -> ElementTree.Element:
    """The TOC's XML, parsed. xar writes no DOCTYPE, so none is read (its entities could
    expand without bound), nor elements nested deeper than ``MAX_TOC_DEPTH``, which Python's
    serializer and ``copy`` could not handle (they recurse)."""
    if b"<!DOCTYPE" in xml:
        raise XarError("The XAR table of contents declares a DOCTYPE, which xar never writes.")
    try:
        root = ElementTree.fromstring(xml)  # noqa: S314 - no DOCTYPE, so no entities
    except (ElementTree.ParseError, LookupError, ValueError) as error:
        # LookupError: an encoding that does not exist; ValueError: UTF-16 or UTF-32.
        raise XarError(f"The XAR table of contents is not valid XML: {error}.") from None
    if depth(root) > MAX_TOC_DEPTH:
        raise XarError(f"The XAR table of contents nests deeper than {MAX_TOC_DEPTH} levels.")
    return root


def depth(root: ElementTree.Element) -> int:
    deepest, level = 0, [root]
    while level:
        deepest += 1
        level = [child for element in level for child in element]
    return deepest


class ChecksumAlgorithm(IntEnum):
    NONE = 0
    SHA1 = 1
    MD5 = 2
    SHA256 = 3
    SHA512 = 4

    @classmethod
    def from_style(cls, style: str) -> ChecksumAlgorithm:
        names = {"none": 0, "sha1": 1, "md5": 2, "sha256": 3, "sha512": 4}
        try:
            return cls(names[style.lower()])
        except KeyError:
            raise XarError(f"Unknown TOC checksum style {style!r}.") from None

    def digest(self, data: bytes) -> bytes:
        if self is ChecksumAlgorithm.NONE:
            return b""
        return hashlib.new(self.name.lower(), data).digest()


@dataclass
class XarHeader:
    header_size: int
    version: int
    toc_compressed: int
    toc_uncompressed: int
    checksum_algorithm: int
    extra: bytes = b""

    @classmethod
    def parse(cls, data: bytes) -> XarHeader:
        if len(data) < HEADER.size or data[:4] != MAGIC:
            raise XarError("This is not a flat package (XAR archive): it lacks the xar! header.")
        _, size, version, compressed, uncompressed, algorithm = HEADER.unpack_from(data)
        if size < HEADER.size or size > len(data):
            raise XarError("The XAR header is damaged (impossible header size).")
        if version != 1:  # as xar and libarchive, which know no other
            raise XarError(f"The XAR header has version {version}; only version 1 exists.")
        return cls(size, version, compressed, uncompressed, algorithm, data[HEADER.size : size])

    def serialize(self) -> bytes:
        return (
            HEADER.pack(
                MAGIC,
                self.header_size,
                self.version,
                self.toc_compressed,
                self.toc_uncompressed,
                self.checksum_algorithm,
            )
            + self.extra
        )


class Heap:
    """The heap of an archive, left in the archive's file: ranges are read when asked for."""

    def __init__(self, source: BinaryIO, start: int, size: int):
        self.source = source
        self.start = start
        self.size = size

    def __len__(self) -> int:
        return self.size

    def chunks(self, offset: int, size: int) -> Iterator[bytes]:
        """The range's bytes, a chunk at a time (``offset`` counts from the heap's start)."""
        return read_chunks(self.source, self.start + offset, size)

    def read(self, offset: int, size: int) -> bytes:
        """The range's bytes, whole: for small ranges."""
        return b"".join(self.chunks(offset, size))


def discard(_: object) -> None:
    """Where chunks and counts go that nobody wants."""


# The checksum styles of file data that xar writes and hashlib knows.
DATA_CHECKSUM_STYLES = ("sha1", "md5", "sha256", "sha512")
Span = tuple[int, int]  # a range of the heap: offset and size


@dataclass
class XarArchive:
    """A XAR archive: its header and TOC (parsed), read into memory, and its heap, left in its
    file."""

    header: XarHeader
    toc_compressed: bytes
    toc: ElementTree.Element
    heap: Heap

    @classmethod
    def parse(cls, data: bytes) -> XarArchive:
        """The archive in ``data``."""
        return cls.load(io.BytesIO(data))

    @classmethod
    def load(cls, source: BinaryIO) -> XarArchive:
        """The archive in a seekable binary file, which must stay open while it is used."""
        source.seek(0)
        header = XarHeader.parse(source.read(MAX_HEADER))
        start, end = header.header_size, header.header_size + header.toc_compressed
        if header.toc_compressed > MAX_TOC or header.toc_uncompressed > MAX_TOC:
            raise XarError("The XAR table of contents is impossibly large.")
        length = source.seek(0, io.SEEK_END)
        if end > length:
            raise XarError("The package is truncated: its table of contents is cut short.")
        source.seek(start)
        compressed = source.read(header.toc_compressed)
        root = parse_toc(inflate_toc(compressed, header.toc_uncompressed))
        toc = root.find("toc")
        if root.tag != "xar" or toc is None:
            raise XarError("The XAR table of contents has no <xar><toc>.")
        return cls(header, compressed, root, Heap(source, end, length - end))

    @property
    def toc_element(self) -> ElementTree.Element:
        return self.toc.find("toc")

    def heap_span(self, element: ElementTree.Element) -> Span:
        """The offset and size in the heap an element's <offset> and <length> (file data: the
        archived length; its <size> is the extracted size) or <size> (checksum, signatures)
        name, checked."""
        try:
            offset = int(element.findtext("offset", "-1"))
            size = int(element.findtext("length") or element.findtext("size") or "-1")
        except ValueError:
            raise XarError(
                "The XAR table of contents holds an offset that is not a number."
            ) from None
        if offset < 0 or size < 0 or offset + size > len(self.heap):
            raise XarError("The package is truncated: a range in its heap lies past the end.")
        return offset, size

    def heap_range(self, element: ElementTree.Element) -> bytes:
        """The bytes of a small range (a checksum, a signature), read whole."""
        return self.heap.read(*self.heap_span(element))

    def checksum(self) -> tuple[ChecksumAlgorithm, bytes]:
        """The TOC checksum algorithm and the stored checksum; refused if they disagree."""
        element = self.toc_element.find("checksum")
        if element is None:
            raise XarError("The package has no TOC checksum.")
        algorithm = ChecksumAlgorithm.from_style(element.get("style", ""))
        if algorithm != self.header.checksum_algorithm:
            raise XarError("The XAR header and TOC disagree on the checksum algorithm.")
        return algorithm, self.heap_range(element)

    def check_toc_checksum(self) -> bytes:
        """The stored checksum, once it matches the compressed TOC (else ``XarError``)."""
        algorithm, stored = self.checksum()
        if algorithm.digest(self.toc_compressed) != stored:
            raise XarError("The TOC checksum does not match: the package was altered.")
        return stored

    def file_checksums(self) -> dict[Span, dict[str, set[str]]]:
        """The archived-checksums the TOC records for files' data (<data> and <ea>), by heap
        range and style. Entries may share a range (hard links), but ranges that overlap
        otherwise are refused, so that checking costs one read of the heap at most."""
        expected: dict[Span, dict[str, set[str]]] = {}
        for element in self.toc_element.iter():
            checksum = element.find("archived-checksum")
            if element.tag not in ("data", "ea") or checksum is None:
                continue
            style = checksum.get("style", "").lower()
            if style in DATA_CHECKSUM_STYLES:
                styles = expected.setdefault(self.heap_span(element), {})
                styles.setdefault(style, set()).add((checksum.text or "").strip().lower())
        check_no_overlap(set(expected))
        return expected

    def check_file_data(
        self,
        spans: Iterable[Span] | None = None,
        *,
        copy_to: Callable[[bytes], object] = discard,
        advance: Callable[[int], object] = discard,
    ) -> None:
        """Each file's stored bytes against the archived-checksum the TOC records (else
        ``XarError``), reading the heap a chunk at a time; ``advance`` is told how many bytes
        each chunk held.

        With ``spans``, those ranges are read, in that order, and each chunk also goes to
        ``copy_to``: a signed copy is written in the same pass that checks its input. Ranges
        without a checksum are copied unchecked."""
        expected = self.file_checksums()
        for offset, size in sorted(expected) if spans is None else spans:
            styles = expected.get((offset, size), {})
            hashes = {style: hashlib.new(style) for style in styles}
            for chunk in self.heap.chunks(offset, size):
                for running in hashes.values():
                    running.update(chunk)
                copy_to(chunk)
                advance(len(chunk))
            if any({hashes[style].hexdigest()} != styles[style] for style in styles):
                raise XarError("A file's data does not match its checksum: it was altered.")


def check_no_overlap(spans: set[tuple[int, int]]) -> None:
    end = 0
    for offset, size in sorted(spans):
        if size and offset < end:
            raise XarError("Two files' data overlap in the package's heap: it is malformed.")
        end = max(end, offset + size)


def toc_bytes(root: ElementTree.Element) -> bytes:
    xml = ElementTree.tostring(root, encoding="unicode")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + xml.encode()
