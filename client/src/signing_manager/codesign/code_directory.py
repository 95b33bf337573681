"""The CodeDirectory: hashes of every code page and of the signature's other parts.

Specified by xnu ``osfmk/kern/cs_blobs.h`` (``CS_CodeDirectory``; reference section 4). A
big-endian blob, magic 0xFADE0C02::

    0x00 magic, length, version, flags, hashOffset, identOffset, nSpecialSlots, nCodeSlots,
    0x20 codeLimit, hashSize u8, hashType u8, platform u8, pageSize u8 (log2), spare2,
    0x2C scatterOffset (0x20100+), teamOffset (0x20200+), spare3, codeLimit64 u64 (0x20300+),
    0x40 execSegBase u64, execSegLimit u64, execSegFlags u64 (0x20400+),
    0x58 runtime, preEncryptOffset (0x20500+), 0x60 linkage fields (0x20600+)

then the identifier and team ID (NUL-terminated), the special-slot hashes (slot *n* at
``hashOffset - n * hashSize``) and the code-slot hashes, one per page of ``[0, codeLimit)``, the
last page hashed short. The cdhash is the CD's own hash truncated to 20 bytes.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag

from signing_manager.codesign.blobs import BlobMagic, MalformedSignature, read_blob

CDHASH_SIZE = 20
EXEC_SEGMENT_VERSION = 0x20400
RUNTIME_VERSION = 0x20500
HEADER_SIZES = {0x20000: 44, 0x20100: 48, 0x20200: 52, 0x20300: 64, 0x20400: 88, 0x20500: 96}


class HashType(IntEnum):
    SHA1 = 1
    SHA256 = 2
    SHA256_TRUNCATED = 3
    SHA384 = 4

    @property
    def hash_name(self) -> str:
        return {1: "sha1", 2: "sha256", 3: "sha256", 4: "sha384"}[self]

    @property
    def size(self) -> int:
        return {1: 20, 2: 32, 3: 20, 4: 48}[self]

    @property
    def rank(self) -> int:
        """The kernel's preference when a signature carries several CDs (xnu ``hash_rank``)."""
        return {1: 1, 3: 2, 2: 3, 4: 4}[self]

    def digest(self, data) -> bytes:
        return hashlib.new(self.hash_name, data).digest()[: self.size]


class CodeDirectoryFlag(IntFlag):
    HOST = 0x1
    ADHOC = 0x2
    FORCE_HARD = 0x100
    FORCE_KILL = 0x200
    FORCE_EXPIRATION = 0x400
    RESTRICT = 0x800
    ENFORCEMENT = 0x1000
    LIBRARY_VALIDATION = 0x2000
    RUNTIME = 0x10000
    LINKER_SIGNED = 0x20000


def hash_pages(pieces, limit: int, page_size: int, hash_type: HashType) -> list[bytes]:
    """One hash per page of the first ``limit`` bytes of the pieces' concatenation (the last
    page short), as the CD stores them. Pages within one piece are hashed in place; the hot
    loop is the plain one-call-per-page loop, as fast as hashlib goes."""
    constructor = getattr(hashlib, hash_type.hash_name)
    digests: list[bytes] = []
    carried = bytearray()  # the start of a page that straddles two pieces
    remaining = limit
    for piece in pieces:
        view = memoryview(piece)[:remaining]
        remaining -= len(view)
        if carried:
            taken = page_size - len(carried)
            carried += view[:taken]
            view = view[taken:]
            if len(carried) < page_size:
                continue
            digests.append(constructor(carried).digest())
            carried = bytearray()
        whole = len(view) - len(view) % page_size
        digests += [constructor(view[start : start + page_size]).digest()
                    for start in range(0, whole, page_size)]  # fmt: skip
        carried += view[whole:]
    if carried:
        digests.append(constructor(carried).digest())
    if hash_type.size != constructor().digest_size:
        digests = [digest[: hash_type.size] for digest in digests]
    return digests


def page_hashes(image, code_limit: int, page_size: int, hash_type: HashType) -> list[bytes]:
    """One hash per page of ``image[:code_limit]`` (the last page short)."""
    return hash_pages([image], code_limit, page_size, hash_type)


@dataclass
class CodeDirectory:
    identifier: str
    hash_type: HashType
    code_limit: int
    page_size: int  # bytes; a power of two
    code_hashes: list[bytes]
    special_hashes: dict[int, bytes] = field(default_factory=dict)  # slot number -> hash
    flags: int = 0
    version: int = EXEC_SEGMENT_VERSION
    team_id: str | None = None
    platform: int = 0
    exec_segment_base: int = 0
    exec_segment_limit: int = 0
    exec_segment_flags: int = 0
    runtime: int = 0
    raw: bytes | None = None  # the bytes it was parsed from, which a verifier must hash as is

    @property
    def special_slot_count(self) -> int:
        return max(self.special_hashes, default=0)

    def serialize(self) -> bytes:
        if self.raw is not None:
            return self.raw
        fixed = HEADER_SIZES[self.version]
        identifier = self.identifier.encode() + b"\0"
        team = self.team_id.encode() + b"\0" if self.team_id else b""
        size = self.hash_type.size
        hash_offset = fixed + len(identifier) + len(team) + self.special_slot_count * size
        length = hash_offset + len(self.code_hashes) * size
        header = struct.pack(
            ">IIIIIIIIIBBBBIIIIQQQQ",
            BlobMagic.CODE_DIRECTORY, length, self.version, self.flags, hash_offset, fixed,
            self.special_slot_count, len(self.code_hashes), min(self.code_limit, 0xFFFFFFFF),
            size, self.hash_type, self.platform, self.page_size.bit_length() - 1, 0, 0,
            fixed + len(identifier) if team else 0, 0,
            self.code_limit if self.code_limit > 0xFFFFFFFF else 0,
            self.exec_segment_base, self.exec_segment_limit, self.exec_segment_flags,
        )  # fmt: skip
        if self.version >= RUNTIME_VERSION:
            header += struct.pack(">II", self.runtime, 0)
        specials = b"".join(
            self.special_hashes.get(slot, bytes(size))
            for slot in range(self.special_slot_count, 0, -1)
        )
        return header[:fixed] + identifier + team + specials + b"".join(self.code_hashes)

    def digest(self) -> bytes:
        """The CD's full hash with its own algorithm (CMS attribute 1.2.840.113635.100.9.2)."""
        return hashlib.new(self.hash_type.hash_name, self.serialize()).digest()

    def cdhash(self) -> bytes:
        return self.digest()[:CDHASH_SIZE]

    @classmethod
    def parse(cls, data: bytes) -> CodeDirectory:
        magic, raw = read_blob(data)
        if magic != BlobMagic.CODE_DIRECTORY or len(raw) < 44:
            raise MalformedSignature("A CodeDirectory is malformed.")
        (_, length, version, flags, hash_offset, ident_offset, n_special, n_code, code_limit,
         hash_size, hash_type, platform, page_shift) = struct.unpack_from(">9I4B", raw)  # fmt: skip
        try:
            kind = HashType(hash_type)
        except ValueError:
            raise MalformedSignature(f"Unknown CodeDirectory hash type {hash_type}.") from None
        if hash_size != kind.size or hash_offset + n_code * hash_size > length:
            raise MalformedSignature("The CodeDirectory's hashes run past its end.")
        if n_special * hash_size > hash_offset:
            raise MalformedSignature("The CodeDirectory's special slots overlap its header.")
        fields = dict.fromkeys(("team", "limit64", "base", "limit", "exec_flags", "runtime"), 0)
        if version >= 0x20200 and len(raw) >= 52:
            fields["team"] = struct.unpack_from(">I", raw, 0x30)[0]
        if version >= 0x20300 and len(raw) >= 64:
            fields["limit64"] = struct.unpack_from(">Q", raw, 0x38)[0]
        if version >= EXEC_SEGMENT_VERSION and len(raw) >= 88:
            fields["base"], fields["limit"], fields["exec_flags"] = struct.unpack_from(
                ">QQQ", raw, 0x40
            )
        if version >= RUNTIME_VERSION and len(raw) >= 96:
            fields["runtime"] = struct.unpack_from(">I", raw, 0x58)[0]
        specials = {
            slot: raw[hash_offset - slot * hash_size : hash_offset - (slot - 1) * hash_size]
            for slot in range(1, n_special + 1)
        }
        return cls(
            identifier=read_cstring(raw, ident_offset),
            hash_type=kind,
            code_limit=fields["limit64"] or code_limit,
            page_size=1 << page_shift if page_shift else 0,
            code_hashes=[
                raw[start : start + hash_size]
                for start in range(hash_offset, hash_offset + n_code * hash_size, hash_size)
            ],
            special_hashes=specials,
            flags=flags,
            version=version,
            team_id=read_cstring(raw, fields["team"]) if fields["team"] else None,
            platform=platform,
            exec_segment_base=fields["base"],
            exec_segment_limit=fields["limit"],
            exec_segment_flags=fields["exec_flags"],
            runtime=fields["runtime"],
            raw=raw,
        )


def directory_flags(data: bytes) -> int:
    """A CodeDirectory's flags, read without parsing its page hashes: a big file's CD holds
    tens of thousands, which signing it again would copy only to learn how it was signed."""
    magic, raw = read_blob(data)
    if magic != BlobMagic.CODE_DIRECTORY or len(raw) < 44:
        raise MalformedSignature("A CodeDirectory is malformed.")
    return struct.unpack_from(">I", raw, 12)[0]


def read_cstring(data: bytes, offset: int) -> str:
    end = data.find(b"\0", offset)
    if offset <= 0 or offset >= len(data) or end < 0:
        raise MalformedSignature("A CodeDirectory string lies outside the CodeDirectory.")
    return data[offset:end].decode("utf-8", "replace")
