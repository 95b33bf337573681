"""Universal ("fat") Mach-O files: parsing and rebuilding the fat header (checked with
llvm-lipo), and refusing damaged headers with MalformedMachO only."""

from __future__ import annotations

import itertools
import struct

import pytest

from signing_manager.codesign.macho import CpuType, MachO, MalformedMachO
from signing_manager.codesign.signing import SigningOptions, sign_macho
from signing_manager.codesign.universal import (
    FatMagic,
    Slice,
    build_universal,
    is_universal,
    parse_universal,
)

UNIVERSAL = [
    "universal-exe",
    "universal-dylib",
    "universal2",
    "universal2-adhoc-sha1",
    "universal2-execute",
    "cms",
]


def fat_arches(data: bytes) -> list[tuple[int, int, int, int, int]]:
    """(cputype, cpusubtype, offset, size, align) of each 32-bit fat_arch, read by hand."""
    magic, count = struct.unpack_from(">II", data)
    assert magic == FatMagic.FAT_MAGIC
    return [struct.unpack_from(">IIIII", data, 8 + 20 * n) for n in range(count)]


def with_arch_field(data: bytes, number: int, field: int, value: int) -> bytes:
    """``data`` with field ``field`` (0 cputype … 4 align) of fat_arch ``number`` replaced."""
    image = bytearray(data)
    struct.pack_into(">I", image, 8 + 20 * number + 4 * field, value)
    return bytes(image)


def fat64(slices: list[bytes], cputypes: list[int]) -> bytes:
    """A FAT_MAGIC_64 file holding ``slices``, each at a 16 KiB boundary."""
    header = struct.pack(">II", FatMagic.FAT_MAGIC_64, len(slices))
    offsets, position = [], 0x4000
    for piece in slices:
        offsets.append(position)
        position = -(-(position + len(piece)) // 0x4000) * 0x4000
    for piece, cputype, offset in zip(slices, cputypes, offsets, strict=True):
        header += struct.pack(">IIQQII", cputype, 0, offset, len(piece), 14, 0)
    output = bytearray(header)
    for piece, offset in zip(slices, offsets, strict=True):
        output += bytes(offset - len(output)) + piece
    return bytes(output)


# --- parsing and rebuilding -----------------------------------------------------------------


@pytest.mark.parametrize("name", UNIVERSAL)
def test_it_reads_every_slice_where_the_fat_header_says(name, machos):
    data = machos.bytes(name)
    assert is_universal(data)
    slices = parse_universal(data)
    arches = fat_arches(data)
    assert [(s.cputype, s.cpusubtype, s.align) for s in slices] == [
        (cputype, subtype, align) for cputype, subtype, _, _, align in arches
    ]
    assert [s.data for s in slices] == [data[o : o + n] for _, _, o, n, _ in arches]
    assert [MachO.parse(s.data).cputype for s in slices] == [s.cputype for s in slices]


@pytest.mark.parametrize("name", UNIVERSAL)
def test_rebuilding_a_universal_file_keeps_every_slice_byte_for_byte(name, machos):
    original = parse_universal(machos.bytes(name))
    rebuilt = build_universal(original)
    again = parse_universal(rebuilt)
    assert again == original
    arches = fat_arches(rebuilt)
    assert arches[0][2] == 0x4000  # the first slice starts at 16 KiB, as rcodesign does
    for (_, _, offset, size, align), piece in zip(arches, original, strict=True):
        assert offset % (1 << align) == 0
        assert size == len(piece.data)
    assert all(a[2] + a[3] <= b[2] for a, b in itertools.pairwise(arches))
    assert len(rebuilt) == arches[-1][2] + arches[-1][3]


@pytest.mark.parametrize("name", UNIVERSAL)
def test_llvm_lipo_accepts_a_rebuilt_universal_file(name, machos, toolchain, tmp_path):
    path = tmp_path / name
    path.write_bytes(build_universal(parse_universal(machos.bytes(name))))
    info = toolchain.run(toolchain.lipo, "-info", str(path)).stdout
    assert "Architectures in the fat file" in info
    assert info.split(":")[-1].split() == ["x86_64", "arm64"]
    toolchain.run(toolchain.lipo, str(path), "-verify_arch", "x86_64", "arm64")
    thin = tmp_path / f"{name}.arm64"
    toolchain.run(toolchain.lipo, str(path), "-thin", "arm64", "-output", str(thin))
    assert thin.read_bytes() == parse_universal(machos.bytes(name))[1].data


def test_llvm_lipo_accepts_a_signed_universal_file(machos, toolchain, tmp_path):
    signed = sign_macho(machos.bytes("universal-exe"), None, SigningOptions(identifier="x"))
    path = tmp_path / "signed"
    path.write_bytes(signed)
    toolchain.run(toolchain.lipo, str(path), "-verify_arch", "x86_64", "arm64")
    for number, architecture in enumerate(("x86_64", "arm64")):
        thin = tmp_path / architecture
        toolchain.run(toolchain.lipo, str(path), "-thin", architecture, "-output", str(thin))
        assert thin.read_bytes() == parse_universal(signed)[number].data


def test_a_single_slice_universal_file_round_trips(machos):
    piece = Slice(CpuType.ARM64, 0, machos.bytes("arm64-exe"))
    rebuilt = build_universal([piece])
    assert parse_universal(rebuilt) == [piece]
    assert fat_arches(rebuilt) == [(CpuType.ARM64, 0, 0x4000, len(piece.data), 14)]


def test_it_reads_a_64_bit_fat_header(machos):
    slices = [machos.bytes("x86_64-exe"), machos.bytes("arm64-exe")]
    data = fat64(slices, [CpuType.X86_64, CpuType.ARM64])
    assert is_universal(data)
    assert [s.data for s in parse_universal(data)] == slices
    assert [s.cputype for s in parse_universal(data)] == [CpuType.X86_64, CpuType.ARM64]


# --- what is not universal, and damaged headers ---------------------------------------------


JAVA_CLASS = bytes.fromhex("cafebabe00000041") + bytes.fromhex("000a0007") + bytes(200)
NOT_UNIVERSAL = {
    "empty": b"",
    "magic only": bytes.fromhex("cafebabe"),
    "java class (major version 65)": JAVA_CLASS,
    "java class (version 45.3)": bytes.fromhex("cafebabe0003002d") + bytes(200),
    "no slices": bytes.fromhex("cafebabe00000000") + bytes(64),
    "thin mach-o": bytes.fromhex("cffaedfe0c000001") + bytes(64),
}


@pytest.mark.parametrize("data", NOT_UNIVERSAL.values(), ids=NOT_UNIVERSAL.keys())
def test_what_is_not_universal_is_refused_with_malformed_macho(data):
    assert not is_universal(data)
    with pytest.raises(MalformedMachO, match="Not a universal Mach-O file"):
        parse_universal(data)


def test_a_java_class_file_is_not_taken_for_a_universal_file_when_signing():
    with pytest.raises(MalformedMachO, match="Not a Mach-O file"):
        sign_macho(JAVA_CLASS, None, SigningOptions(identifier="x"))


@pytest.mark.parametrize(
    ("number", "field", "value"),
    [
        pytest.param(1, 2, "file size", id="second slice starts at the end of the file"),
        pytest.param(0, 2, 0xFFFFFF00, id="first slice offset huge"),
        pytest.param(1, 3, "file size", id="second slice size past the end"),
        pytest.param(0, 3, 0xFFFFFFFF, id="first slice size huge"),
        pytest.param(0, 2, 0, id="first slice inside the fat header"),
        pytest.param(1, 2, 20, id="second slice inside the fat header"),
    ],
)
def test_a_slice_outside_the_file_is_refused_with_a_clear_message(number, field, value, machos):
    data = machos.bytes("universal-exe")
    value = len(data) if value == "file size" else value
    damaged = with_arch_field(data, number, field, value)
    _, _, offset, size, _ = fat_arches(damaged)[number]
    expected = (
        f"Slice {number + 1} of the universal file lies outside the file "
        f"(offset {offset}, size {size}, file size {len(data)})."
    )
    with pytest.raises(MalformedMachO) as raised:
        parse_universal(damaged)
    assert str(raised.value) == expected
    with pytest.raises(MalformedMachO, match="outside the file"):
        sign_macho(damaged, None, SigningOptions(identifier="x"))


@pytest.mark.parametrize("length", [8, 12, 27, 28, 47, 8 + 20 * 30 - 1])
def test_a_fat_header_cut_short_is_refused(length, machos):
    data = bytearray(machos.bytes("universal-exe")[:length].ljust(8, b"\0"))
    if length == 8 + 20 * 30 - 1:
        struct.pack_into(">I", data, 4, 30)  # 30 slices announced, 29.95 present
    with pytest.raises(MalformedMachO, match="header runs past the end"):
        parse_universal(bytes(data))


def test_a_64_bit_fat_header_cut_short_is_refused(machos):
    data = fat64([machos.bytes("arm64-exe")], [CpuType.ARM64])
    with pytest.raises(MalformedMachO, match="header runs past the end"):
        parse_universal(data[:39])


@pytest.mark.parametrize("name", ["universal-exe", "universal2", "cms"])
def test_a_truncated_universal_file_is_refused_at_every_length(name, machos):
    """Every length through the header and beyond: refused with MalformedMachO, never with
    another error (the last slice ends at the end of the file, so no cut is valid)."""
    data = machos.bytes(name)
    lengths = [*range(0, 256), *range(256, len(data), 997)]
    crashed, accepted = [], []
    for length in lengths:
        try:
            parse_universal(data[:length])
            accepted.append(length)
        except MalformedMachO:
            pass
        except Exception as error:
            crashed.append((length, repr(error)))
    assert crashed == []
    assert accepted == []


def test_too_many_slices_for_a_universal_file_is_not_universal(machos):
    data = bytearray(machos.bytes("universal-exe"))
    struct.pack_into(">I", data, 4, 31)
    assert not is_universal(bytes(data))


@pytest.mark.parametrize("align", [48, 64, 255])
def test_an_absurd_slice_alignment_is_refused_with_malformed_macho(align, machos):
    """Apple's lipo allows at most 2^15 (MAXSECTALIGN); rebuilding the fat file around a slice
    aligned to 2^48 or more must be refused, not attempted (MemoryError, struct.error)."""
    damaged = with_arch_field(machos.bytes("universal-exe"), 1, 4, align)
    with pytest.raises(MalformedMachO):
        sign_macho(damaged, None, SigningOptions(identifier="x"))
