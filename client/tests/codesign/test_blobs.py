"""Generic code-signing blobs and the SuperBlob: round trips, the layout rcodesign writes, real
embedded signatures, and refusing damaged indexes with MalformedSignature only."""

from __future__ import annotations

import struct

import pytest

from signing_manager.codesign.blobs import (
    BlobMagic,
    MalformedSignature,
    Slot,
    SuperBlob,
    blob,
    blob_payload,
    read_blob,
)
from signing_manager.codesign.macho import MachO
from signing_manager.codesign.universal import is_universal, parse_universal

# Written by Apple's ld64 and codesign (lld pads its SuperBlob, so the built files are not here).
REAL_SIGNED = ["arm64-thin", "adhoc", "linker-signed", "universal2-adhoc-sha1", "cms"]


def embedded_signatures(data: bytes) -> list[bytes]:
    pieces = [p.data for p in parse_universal(data)] if is_universal(data) else [data]
    found = [MachO.parse(piece).signature_data for piece in pieces]
    return [signature for signature in found if signature]


def example() -> SuperBlob:
    return SuperBlob(
        BlobMagic.EMBEDDED_SIGNATURE,
        {
            Slot.SIGNATURE: blob(BlobMagic.BLOB_WRAPPER, b""),
            Slot.CODE_DIRECTORY: blob(BlobMagic.CODE_DIRECTORY, b"cd" * 10),
            Slot.REQUIREMENTS: blob(BlobMagic.REQUIREMENTS, struct.pack(">I", 0)),
            Slot.ENTITLEMENTS: blob(BlobMagic.ENTITLEMENTS, b"<plist/>"),
        },
    )


def test_a_blob_is_magic_length_and_payload():
    assert blob(0xFADE0B01, b"abc") == bytes.fromhex("fade0b01 0000000b") + b"abc"
    assert read_blob(b"xx" + blob(7, b"abcd") + b"tail", 2) == (7, blob(7, b"abcd"))
    assert blob_payload(blob(BlobMagic.ENTITLEMENTS, b"xml"), BlobMagic.ENTITLEMENTS) == b"xml"


def test_a_superblob_round_trips():
    superblob = example()
    data = superblob.serialize()
    assert SuperBlob.parse(data, BlobMagic.EMBEDDED_SIGNATURE) == superblob
    assert SuperBlob.parse(data).serialize() == data


def test_a_superblob_writes_its_index_and_blobs_in_ascending_slot_order():
    data = example().serialize()
    magic, length, count = struct.unpack_from(">III", data)
    assert (magic, length, count) == (BlobMagic.EMBEDDED_SIGNATURE, len(data), 4)
    index = [struct.unpack_from(">II", data, 12 + 8 * n) for n in range(count)]
    assert [slot for slot, _ in index] == [0, 2, 5, 0x10000]
    assert index[0][1] == 12 + 8 * count
    for (slot, offset), (_, following) in zip(index, [*index[1:], (0, len(data))], strict=True):
        assert data[offset:following] == example().entries[slot]


def test_an_empty_superblob_is_its_header_and_a_zero_count():
    data = SuperBlob(BlobMagic.REQUIREMENTS, {}).serialize()
    assert data == bytes.fromhex("fade0c01 0000000c 00000000")
    assert SuperBlob.parse(data, BlobMagic.REQUIREMENTS).entries == {}


@pytest.mark.parametrize("name", REAL_SIGNED)
def test_real_embedded_signatures_parse_and_serialize_to_the_same_superblob(name, machos):
    for signature in embedded_signatures(machos.bytes(name)):
        superblob = SuperBlob.parse(signature, BlobMagic.EMBEDDED_SIGNATURE)
        length = struct.unpack_from(">I", signature, 4)[0]
        assert superblob.serialize() == signature[:length]
        assert Slot.CODE_DIRECTORY in superblob.entries
        assert superblob.entries[Slot.CODE_DIRECTORY][:4] == bytes.fromhex("fade0c02")


def test_an_lld_superblob_with_padding_parses_to_the_same_blobs(machos):
    (signature,) = embedded_signatures(machos.bytes("arm64-exe"))
    superblob = SuperBlob.parse(signature, BlobMagic.EMBEDDED_SIGNATURE)
    assert list(superblob.entries) == [Slot.CODE_DIRECTORY]
    (entry_offset,) = struct.unpack_from(">I", signature, 16)
    directory = superblob.entries[Slot.CODE_DIRECTORY]
    assert signature[entry_offset : entry_offset + len(directory)] == directory


def test_a_superblob_of_the_wrong_kind_is_refused():
    data = example().serialize()
    with pytest.raises(MalformedSignature, match="Expected a SuperBlob 0xfade0c01"):
        SuperBlob.parse(data, BlobMagic.REQUIREMENTS)
    with pytest.raises(MalformedSignature, match="Expected blob magic"):
        blob_payload(data, BlobMagic.CODE_DIRECTORY)


def damaged(case: str) -> bytes:
    data = bytearray(example().serialize())
    first_entry = 12
    changes = {
        "count past the end": (8, 1000),
        "count huge": (8, 0xFFFFFFFF),
        "entry offset past the end": (first_entry + 4, len(data)),
        "entry offset huge": (first_entry + 4, 0xFFFFFFF8),
        "entry offset into the index": (first_entry + 4, 12),
        "entry offset zero": (first_entry + 4, 0),
        "entry offset at the last byte": (first_entry + 4, len(data) - 1),
        "length past the end": (4, len(data) + 1),
        "length shorter than the header": (4, 7),
        "length too short for the count": (4, 11),
        "inner blob length past the end": (12 + 8 * 4 + 4, len(data)),
        "inner blob length zero": (12 + 8 * 4 + 4, 0),
    }
    offset, value = changes[case]
    struct.pack_into(">I", data, offset, value)
    return bytes(data)


@pytest.mark.parametrize(
    "case",
    [
        "count past the end",
        "count huge",
        "entry offset past the end",
        "entry offset huge",
        "entry offset into the index",
        "entry offset zero",
        "entry offset at the last byte",
        "length past the end",
        "length shorter than the header",
        "length too short for the count",
        "inner blob length past the end",
        "inner blob length zero",
    ],
)
def test_a_damaged_superblob_is_refused_with_malformed_signature(case):
    with pytest.raises(MalformedSignature):
        SuperBlob.parse(damaged(case))


@pytest.mark.parametrize("data", [b"", b"\xfa\xde", bytes(7), bytes.fromhex("fade0cc0 0000")])
def test_a_blob_too_short_for_its_header_is_refused(data):
    with pytest.raises(MalformedSignature):
        read_blob(data)
    with pytest.raises(MalformedSignature):
        SuperBlob.parse(data)


def test_a_truncated_superblob_is_refused_at_every_length():
    data = example().serialize()
    for length in range(len(data)):
        with pytest.raises(MalformedSignature):
            SuperBlob.parse(data[:length])


def test_every_single_byte_change_parses_or_is_refused_with_malformed_signature():
    data = example().serialize()
    crashed = []
    for offset in range(len(data)):
        for value in (0x00, 0x7F, 0xFF):
            image = bytearray(data)
            image[offset] = value
            try:
                SuperBlob.parse(bytes(image))
            except MalformedSignature:
                pass
            except Exception as error:
                crashed.append((offset, value, repr(error)))
    assert crashed == []


@pytest.mark.parametrize("offset", [-1, -8])
def test_reading_a_blob_before_the_start_is_refused(offset):
    with pytest.raises(MalformedSignature, match="outside the signature"):
        read_blob(blob(7, b"abcd"), offset)
