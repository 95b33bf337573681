"""The CodeDirectory: serialize/parse round trips for the versions we write, the byte layout of
reference section 4.1, real CDs from Apple's tools kept byte for byte, cdhashes, page hashes,
and refusing damaged CDs with MalformedSignature only."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import struct

import pytest
from real_world import REAL_MACHOS

from signing_manager.codesign.blobs import BlobMagic, MalformedSignature, Slot, SuperBlob
from signing_manager.codesign.code_directory import (
    CDHASH_SIZE,
    HEADER_SIZES,
    CodeDirectory,
    CodeDirectoryFlag,
    HashType,
    directory_flags,
    hash_pages,
    page_hashes,
)
from signing_manager.codesign.macho import MachO
from signing_manager.codesign.universal import is_universal, parse_universal

ALTERNATES = range(Slot.ALTERNATE_CODE_DIRECTORY, Slot.ALTERNATE_CODE_DIRECTORY + 5)
REAL = {real.name: real for real in REAL_MACHOS}


def code_directory(
    version: int = 0x20400,
    hash_type: HashType = HashType.SHA256,
    team_id: str | None = None,
    specials: tuple[int, ...] = (),
    runtime: int = 0,
    code_limit: int = 3 * 4096 + 100,
) -> CodeDirectory:
    pages = -(-code_limit // 4096)
    return CodeDirectory(
        identifier="com.example.tool",
        hash_type=hash_type,
        code_limit=code_limit,
        page_size=4096,
        code_hashes=[hash_type.digest(bytes([n]) * 7) for n in range(pages)],
        special_hashes={slot: hash_type.digest(b"slot %d" % slot) for slot in specials},
        flags=CodeDirectoryFlag.ADHOC | (CodeDirectoryFlag.RUNTIME if runtime else 0),
        version=version,
        team_id=team_id,
        exec_segment_base=0,
        exec_segment_limit=0x4000,
        exec_segment_flags=1,
        runtime=runtime,
    )


def fields(directory: CodeDirectory) -> dict:
    """A CD's fields for comparison: unbound special slots inside the range are zeros."""
    values = dataclasses.asdict(directory)
    values.pop("raw")
    size = directory.hash_type.size
    values["special_hashes"] = {
        slot: directory.special_hashes.get(slot, bytes(size))
        for slot in range(1, directory.special_slot_count + 1)
    }
    return values


def real_code_directories(machos, name: str):
    """(architecture, slot, CD blob, slice bytes) of every CD of a real file."""
    data = machos.bytes(name)
    pieces = [p.data for p in parse_universal(data)] if is_universal(data) else [data]
    for piece in pieces:
        macho = MachO.parse(piece)
        if macho.code_signature is None:
            continue
        entries = SuperBlob.parse(macho.signature_data, BlobMagic.EMBEDDED_SIGNATURE).entries
        for slot in (Slot.CODE_DIRECTORY, *ALTERNATES):
            if slot in entries:
                yield macho.architecture, slot, entries[slot], piece


SHAPES = {
    "v20400 sha256": {},
    "v20400 sha1": {"hash_type": HashType.SHA1},
    "v20400 sha384": {"hash_type": HashType.SHA384},
    "v20400 sha256 truncated": {"hash_type": HashType.SHA256_TRUNCATED},
    "v20400 team": {"team_id": "ABCDE12345"},
    "v20400 specials": {"specials": (1, 2, 3, 5, 7)},
    "v20400 sparse specials": {"specials": (2, 7)},
    "v20400 sha1 team specials": {
        "hash_type": HashType.SHA1,
        "team_id": "ABCDE12345",
        "specials": (2, 5),
    },
    "v20500 runtime": {"version": 0x20500, "runtime": 0x0E0500},
    "v20500 runtime team specials": {
        "version": 0x20500,
        "runtime": 0x0F0000,
        "team_id": "ABCDE12345",
        "specials": (1, 2, 3, 5, 7),
    },
    "v20500 sha1 runtime": {"version": 0x20500, "runtime": 0x0B0000, "hash_type": HashType.SHA1},
    "one short page": {"code_limit": 100},
    "whole pages": {"code_limit": 2 * 4096},
}


# --- round trips and layout -----------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_a_code_directory_round_trips_through_its_bytes(shape):
    original = code_directory(**shape)
    data = original.serialize()
    parsed = CodeDirectory.parse(data)
    assert parsed.raw == data
    assert parsed.serialize() == data
    assert fields(parsed) == fields(original)
    assert dataclasses.replace(parsed, raw=None).serialize() == data
    assert parsed.cdhash() == original.cdhash()


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_a_code_directory_is_laid_out_as_the_reference_says(shape):
    directory = code_directory(**shape)
    data = directory.serialize()
    size = directory.hash_type.size
    (
        magic,
        length,
        version,
        flags,
        hash_offset,
        ident_offset,
        n_special,
        n_code,
        code_limit,
        hash_size,
        hash_type,
        platform,
        page_shift,
        spare2,
    ) = struct.unpack_from(">9I4BI", data)
    assert (magic, length, version) == (BlobMagic.CODE_DIRECTORY, len(data), directory.version)
    assert flags == directory.flags
    assert ident_offset == HEADER_SIZES[version]
    assert data[ident_offset:].startswith(b"com.example.tool\0")
    assert (n_special, n_code) == (directory.special_slot_count, len(directory.code_hashes))
    assert code_limit == directory.code_limit
    assert (hash_size, hash_type, platform, page_shift, spare2) == (
        size,
        directory.hash_type,
        0,
        12,
        0,
    )
    (scatter, team_offset, spare3, limit64) = struct.unpack_from(">IIIQ", data, 0x2C)
    assert (scatter, spare3, limit64) == (0, 0, 0)
    if directory.team_id:
        assert team_offset == ident_offset + len(b"com.example.tool\0")
        assert data[team_offset:].startswith(directory.team_id.encode() + b"\0")
    else:
        assert team_offset == 0
    assert struct.unpack_from(">QQQ", data, 0x40) == (0, 0x4000, 1)
    if version >= 0x20500:
        assert struct.unpack_from(">II", data, 0x58) == (directory.runtime, 0)
    for slot in range(1, n_special + 1):
        expected = directory.special_hashes.get(slot, bytes(size))
        assert data[hash_offset - slot * size : hash_offset - (slot - 1) * size] == expected
    assert data[hash_offset:] == b"".join(directory.code_hashes)
    assert hash_offset - n_special * size == ident_offset + len(b"com.example.tool\0") + (
        len(directory.team_id) + 1 if directory.team_id else 0
    )


@pytest.mark.parametrize(
    "hash_type",
    [HashType.SHA1, HashType.SHA256, HashType.SHA256_TRUNCATED, HashType.SHA384],
)
def test_the_cdhash_is_the_cd_hash_truncated_to_20_bytes(hash_type):
    directory = code_directory(hash_type=hash_type)
    full = hashlib.new(
        "sha1" if hash_type == HashType.SHA1 else hash_type.hash_name, directory.serialize()
    ).digest()
    assert directory.digest() == full
    assert directory.cdhash() == full[:CDHASH_SIZE]
    assert len(directory.cdhash()) == 20


def test_a_parsed_cd_hashes_its_own_bytes_not_a_re_serialization():
    data = bytearray(code_directory(specials=(2,)).serialize())
    data += bytes(8)  # slack after the hashes, inside the blob, as some tools leave
    struct.pack_into(">I", data, 4, len(data))
    parsed = CodeDirectory.parse(bytes(data))
    assert parsed.serialize() == bytes(data)
    assert parsed.cdhash() == hashlib.sha256(bytes(data)).digest()[:20]


# --- real code directories ------------------------------------------------------------------


REAL_SIGNED = [r.name for r in REAL_MACHOS if r.signature != "unsigned"]


@pytest.mark.parametrize("name", REAL_SIGNED)
def test_real_code_directories_keep_their_bytes_and_match_the_pinned_facts(name, machos):
    facts = [s for s in REAL[name].slices if s.signature != "unsigned"]
    found = list(real_code_directories(machos, name))
    assert {arch for arch, *_ in found} == {s.arch for s in facts}
    for fact in facts:
        mine = [(slot, data) for arch, slot, data, _ in found if arch == fact.arch]
        directories = [CodeDirectory.parse(data) for _, data in mine]
        assert [cd.hash_type for cd in directories] == list(fact.hash_types)
        primary = directories[0]
        assert (primary.version, primary.flags) == (fact.cd_version, fact.cd_flags)
        assert (primary.page_size, primary.identifier) == (fact.page_size, fact.identifier)
        assert primary.exec_segment_flags == fact.exec_seg_flags
        for (_, data), directory in zip(mine, directories, strict=True):
            assert directory.serialize() == data
            hash_name = directory.hash_type.hash_name
            assert directory.cdhash() == hashlib.new(hash_name, data).digest()[:20]


@pytest.mark.parametrize("name", REAL_SIGNED)
def test_the_flags_read_alone_are_those_parsing_finds(name, machos):
    for _, _, data, _ in real_code_directories(machos, name):
        assert directory_flags(data) == CodeDirectory.parse(data).flags
    with pytest.raises(MalformedSignature):
        directory_flags(data[:40])


@pytest.mark.parametrize("name", REAL_SIGNED)
def test_real_code_directories_written_by_apple_re_serialize_from_their_fields(name, machos):
    for _, _, data, _ in real_code_directories(machos, name):
        parsed = CodeDirectory.parse(data)
        assert dataclasses.replace(parsed, raw=None).serialize() == data


@pytest.mark.parametrize("name", REAL_SIGNED)
def test_real_page_hashes_are_those_of_the_slice_pages(name, machos):
    for _, _, data, piece in real_code_directories(machos, name):
        directory = CodeDirectory.parse(data)
        assert directory.code_limit == MachO.parse(piece).code_signature.dataoff
        assert directory.code_hashes == page_hashes(
            piece, directory.code_limit, directory.page_size, directory.hash_type
        )


def test_the_real_cms_signed_cd_carries_its_team_and_bound_slots(machos):
    for _, slot, data, _ in real_code_directories(machos, "cms"):
        directory = CodeDirectory.parse(data)
        assert slot == Slot.CODE_DIRECTORY
        assert directory.team_id == "S8XHQB96PW"
        assert directory.special_slot_count == 5
        assert any(directory.special_hashes[Slot.REQUIREMENTS])
        assert any(directory.special_hashes[Slot.INFO_PLIST])


# --- page hashes ----------------------------------------------------------------------------


def test_page_hashes_hash_the_last_page_short():
    image = os.urandom(2 * 4096 + 100) + b"beyond the limit"
    limit = 2 * 4096 + 100
    expected = [
        hashlib.sha256(image[:4096]).digest(),
        hashlib.sha256(image[4096:8192]).digest(),
        hashlib.sha256(image[8192:limit]).digest(),
    ]
    assert page_hashes(image, limit, 4096, HashType.SHA256) == expected


@pytest.mark.parametrize(
    ("limit", "count"), [(0, 0), (1, 1), (4095, 1), (4096, 1), (4097, 2), (3 * 4096, 3)]
)
def test_there_is_one_page_hash_per_started_page(limit, count):
    hashes = page_hashes(bytes(4 * 4096), limit, 4096, HashType.SHA1)
    assert len(hashes) == count
    assert all(len(h) == 20 for h in hashes)


def test_truncated_sha256_page_hashes_are_20_bytes():
    image = os.urandom(5000)
    hashes = page_hashes(image, 5000, 4096, HashType.SHA256_TRUNCATED)
    assert hashes == [
        hashlib.sha256(image[:4096]).digest()[:20],
        hashlib.sha256(image[4096:]).digest()[:20],
    ]


@pytest.mark.parametrize(
    "sizes",
    [(5000, 100, 9000), (4096, 4096), (1, 4095, 1), (0, 8192, 0), (100, 100, 100, 10000)],
)
@pytest.mark.parametrize("page_size", [4096, 16384])
def test_hashing_pages_of_several_pieces_equals_hashing_their_concatenation(sizes, page_size):
    pieces = [os.urandom(size) for size in sizes]
    whole = b"".join(pieces)
    for limit in (len(whole), len(whole) - 1, 4096, 1):
        assert hash_pages(pieces, limit, page_size, HashType.SHA256) == page_hashes(
            whole, limit, page_size, HashType.SHA256
        )


# --- malformed code directories -------------------------------------------------------------


def with_field(data: bytes, offset: int, layout: str, value: int) -> bytes:
    image = bytearray(data)
    struct.pack_into(layout, image, offset, value)
    return bytes(image)


SAMPLE = code_directory(team_id="ABCDE12345", specials=(2, 5)).serialize()
MALFORMED = {
    "wrong magic": with_field(SAMPLE, 0, ">I", BlobMagic.REQUIREMENTS),
    "hash type 0": with_field(SAMPLE, 0x25, ">B", 0),
    "hash type 5": with_field(SAMPLE, 0x25, ">B", 5),
    "hash type 255": with_field(SAMPLE, 0x25, ">B", 255),
    "hash size not the type's": with_field(SAMPLE, 0x24, ">B", 20),
    "code slots past the end": with_field(SAMPLE, 0x1C, ">I", 1000),
    "code slots huge": with_field(SAMPLE, 0x1C, ">I", 0xFFFFFFFF),
    "hash offset past the end": with_field(SAMPLE, 0x10, ">I", len(SAMPLE)),
    "hash offset huge": with_field(SAMPLE, 0x10, ">I", 0xFFFFFFF0),
    "special slots past the start": with_field(SAMPLE, 0x18, ">I", 1000),
    "special slots huge": with_field(SAMPLE, 0x18, ">I", 0xFFFFFFFF),
    "identifier offset zero": with_field(SAMPLE, 0x14, ">I", 0),
    "identifier offset past the end": with_field(SAMPLE, 0x14, ">I", len(SAMPLE)),
    "identifier without its NUL": with_field(SAMPLE, 0x14, ">I", len(SAMPLE) - 1)[:-1] + b"x",
    "team offset past the end": with_field(SAMPLE, 0x30, ">I", len(SAMPLE) + 4),
    "length past the data": with_field(SAMPLE, 4, ">I", len(SAMPLE) + 1),
    "length shorter than the header": with_field(SAMPLE, 4, ">I", 40),
    "length below 8": with_field(SAMPLE, 4, ">I", 4),
    "header only": SAMPLE[:44],
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_code_directory_is_refused_with_malformed_signature(data):
    with pytest.raises(MalformedSignature):
        CodeDirectory.parse(data)


def test_an_unknown_hash_type_is_named_in_the_message():
    with pytest.raises(MalformedSignature, match="Unknown CodeDirectory hash type 9"):
        CodeDirectory.parse(with_field(SAMPLE, 0x25, ">B", 9))


def test_hashes_past_the_end_are_named_in_the_message():
    with pytest.raises(MalformedSignature, match="hashes run past its end"):
        CodeDirectory.parse(with_field(SAMPLE, 0x1C, ">I", 1000))


def test_a_truncated_code_directory_is_refused_at_every_length():
    for length in range(len(SAMPLE)):
        with pytest.raises(MalformedSignature):
            CodeDirectory.parse(SAMPLE[:length])


def test_every_single_byte_change_parses_or_is_refused_with_malformed_signature():
    crashed = []
    for offset in range(len(SAMPLE)):
        for value in (0x00, 0x01, 0x7F, 0x80, 0xFF):
            image = bytearray(SAMPLE)
            image[offset] = value
            try:
                parsed = CodeDirectory.parse(bytes(image))
                parsed.cdhash()
            except MalformedSignature:
                pass
            except Exception as error:
                crashed.append((offset, value, repr(error)))
    assert crashed == []
