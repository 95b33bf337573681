"""Universal ("fat") Mach-O files: several thin slices behind one big-endian header.

Specified by Apple's ``mach-o/fat.h`` (reference section 2.1): ``magic u32`` (0xCAFEBABE, or
0xCAFEBABF for 64-bit offsets), ``nfat_arch u32``, then per slice ``fat_arch`` {cputype,
cpusubtype, offset, size, align (log2)} of 20 bytes (``fat_arch_64``: u64 offset and size plus a
reserved u32, 32 bytes). No signature covers this header, so signing rebuilds it around the
signed slices; like rcodesign we start the first slice at 16 KiB and align every slice to 2^14.
Java class files share the 0xCAFEBABE magic; their "count" is a version number far above any
real slice count.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from signing_manager.codesign.macho import MalformedMachO, round_up

MAX_SLICES = 30
SLICE_ALIGNMENT = 14
MAX_ALIGNMENT = 15  # lipo's MAXSECTALIGN


class FatMagic(IntEnum):
    FAT_MAGIC = 0xCAFEBABE
    FAT_MAGIC_64 = 0xCAFEBABF


@dataclass(frozen=True)
class Slice:
    cputype: int
    cpusubtype: int
    data: bytes
    align: int = SLICE_ALIGNMENT


def is_universal(data: bytes) -> bool:
    if len(data) < 8:
        return False
    magic, count = struct.unpack_from(">II", data)
    return magic in (FatMagic.FAT_MAGIC, FatMagic.FAT_MAGIC_64) and 0 < count <= MAX_SLICES


def parse_universal(data: bytes) -> list[Slice]:
    """The slices of a universal file, each checked to lie inside the file."""
    if not is_universal(data):
        raise MalformedMachO("Not a universal Mach-O file.")
    magic, count = struct.unpack_from(">II", data)
    wide = magic == FatMagic.FAT_MAGIC_64
    entry_layout, entry_size = (">IIQQII", 32) if wide else (">IIIII", 20)
    if 8 + count * entry_size > len(data):
        raise MalformedMachO("The universal header runs past the end of the file.")
    slices = []
    for number in range(count):
        fields = struct.unpack_from(entry_layout, data, 8 + number * entry_size)
        cputype, cpusubtype, offset, size, align = fields[:5]
        if align > MAX_ALIGNMENT:
            raise MalformedMachO(
                f"Slice {number + 1} of the universal file asks for an alignment of 2^{align}."
            )
        if offset < 8 + count * entry_size or offset + size > len(data):
            raise MalformedMachO(
                f"Slice {number + 1} of the universal file lies outside the file "
                f"(offset {offset}, size {size}, file size {len(data)})."
            )
        slices.append(Slice(cputype, cpusubtype, data[offset : offset + size], align))
    return slices


def fat_header(slices: list[tuple[Slice, int]]) -> tuple[bytes, list[int]]:
    """The header for slices of the given sizes, and where each slice starts (32-bit header
    unless offsets need 64 bits)."""
    offsets, position = [], 1 << SLICE_ALIGNMENT
    for piece, size in slices:
        position = round_up(position, 1 << piece.align)
        offsets.append(position)
        position += size
    wide = position > 0xFFFFFFFF
    header = struct.pack(">II", FatMagic.FAT_MAGIC_64 if wide else FatMagic.FAT_MAGIC, len(slices))
    for (piece, size), offset in zip(slices, offsets, strict=True):
        fields = (piece.cputype, piece.cpusubtype, offset, size, piece.align)
        header += struct.pack(">IIQQII", *fields, 0) if wide else struct.pack(">IIIII", *fields)
    return header, offsets


def universal_chunks(images: list[tuple[Slice, list]]) -> list:
    """A universal file as buffers: each slice's metadata with its new content (buffers)."""
    sized = [(piece, sum(len(chunk) for chunk in chunks)) for piece, chunks in images]
    header, offsets = fat_header(sized)
    output, position = [header], len(header)
    for (_, chunks), (_, size), offset in zip(images, sized, offsets, strict=True):
        output.append(bytes(offset - position))
        output += chunks
        position = offset + size
    return output


def build_universal(slices: list[Slice]) -> bytes:
    """A universal file holding ``slices`` in order."""
    return b"".join(universal_chunks([(piece, [piece.data]) for piece in slices]))
