"""Code-signing blobs and the embedded-signature SuperBlob (xnu ``osfmk/kern/cs_blobs.h``).

Every blob is ``magic u32, length u32`` (big-endian; the length counts the 8-byte header) and a
payload. A SuperBlob is a blob whose payload is ``count u32`` and ``count`` index entries
``{type u32, offset u32}`` (offsets from the SuperBlob's start), followed by the blobs, which we
write in ascending slot order as rcodesign does. The embedded signature of a Mach-O slice is the
SuperBlob 0xFADE0CC0; its Requirements set (0xFADE0C01) is one too.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from signing_manager.errors import SigningManagerError


class MalformedSignature(SigningManagerError):
    """A code signature's bytes do not parse."""


class BlobMagic(IntEnum):
    REQUIREMENT = 0xFADE0C00
    REQUIREMENTS = 0xFADE0C01
    CODE_DIRECTORY = 0xFADE0C02
    EMBEDDED_SIGNATURE = 0xFADE0CC0
    DETACHED_SIGNATURE = 0xFADE0CC1
    BLOB_WRAPPER = 0xFADE0B01
    ENTITLEMENTS = 0xFADE7171
    ENTITLEMENTS_DER = 0xFADE7172


class Slot(IntEnum):
    """BlobIndex types; the special slots a CodeDirectory hashes are their negatives."""

    CODE_DIRECTORY = 0
    INFO_PLIST = 1
    REQUIREMENTS = 2
    RESOURCES = 3
    APPLICATION = 4
    ENTITLEMENTS = 5
    REP_SPECIFIC = 6
    ENTITLEMENTS_DER = 7
    ALTERNATE_CODE_DIRECTORY = 0x1000
    SIGNATURE = 0x10000


def blob(magic: int, payload: bytes) -> bytes:
    return struct.pack(">II", magic, 8 + len(payload)) + payload


def read_blob(data: bytes, offset: int = 0) -> tuple[int, bytes]:
    """``(magic, whole blob bytes)`` of the blob at ``offset``."""
    if offset < 0 or offset + 8 > len(data):
        raise MalformedSignature("A code-signing blob lies outside the signature.")
    magic, length = struct.unpack_from(">II", data, offset)
    if length < 8 or offset + length > len(data):
        raise MalformedSignature(f"A code-signing blob (magic {magic:#x}) has a bad length.")
    return magic, data[offset : offset + length]


def blob_payload(data: bytes, magic: int) -> bytes:
    """The payload of one whole blob, which must have this magic."""
    found, whole = read_blob(data)
    if found != magic:
        raise MalformedSignature(f"Expected blob magic {magic:#x}, found {found:#x}.")
    return whole[8:]


@dataclass
class SuperBlob:
    magic: int
    entries: dict[int, bytes]  # slot type -> whole blob bytes

    def serialize(self) -> bytes:
        slots = sorted(self.entries)
        position = 12 + 8 * len(slots)
        index = b""
        for slot in slots:
            index += struct.pack(">II", slot, position)
            position += len(self.entries[slot])
        body = struct.pack(">I", len(slots)) + index + b"".join(self.entries[s] for s in slots)
        return blob(self.magic, body)

    @classmethod
    def parse(cls, data: bytes, magic: int | None = None) -> SuperBlob:
        found, whole = read_blob(data)
        if magic is not None and found != magic:
            raise MalformedSignature(f"Expected a SuperBlob {magic:#x}, found magic {found:#x}.")
        if len(whole) < 12:
            raise MalformedSignature("A SuperBlob is too short for its count.")
        (count,) = struct.unpack_from(">I", whole, 8)
        if 12 + 8 * count > len(whole):
            raise MalformedSignature("A SuperBlob's index runs past its end.")
        entries = {}
        for number in range(count):
            slot, offset = struct.unpack_from(">II", whole, 12 + 8 * number)
            if offset < 12 + 8 * count:
                raise MalformedSignature("A SuperBlob entry points into its own index.")
            entries[slot] = read_blob(whole, offset)[1]
        return cls(found, entries)
