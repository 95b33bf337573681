"""Verifying embedded signatures (reference section 9): our outputs and Apple's verify clean,
and every kind of tampering is reported with a problem that names what broke."""

from __future__ import annotations

import datetime
import struct

import pytest
from asn1crypto import cms

from signing_manager.codesign.blobs import BlobMagic, Slot, SuperBlob
from signing_manager.codesign.code_directory import CodeDirectory
from signing_manager.codesign.macho import MachO
from signing_manager.codesign.signing import SigningOptions, sign_macho
from signing_manager.codesign.universal import build_universal, parse_universal
from signing_manager.codesign.verify import check_macho
from signing_manager.errors import SigningManagerError

IDENTIFIER = "com.example.verify"
ENTITLEMENTS = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>com.apple.security.app-sandbox</key>
	<true/>
	<key>com.apple.security.network.client</key>
	<true/>
</dict>
</plist>
"""
GET_TASK_ALLOW = b"""<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>get-task-allow</key><true/></dict></plist>
"""


# --- helpers --------------------------------------------------------------------------------


def signed(machos, name, signer, **options) -> bytes:
    return sign_macho(machos.bytes(name), signer, SigningOptions(identifier=IDENTIFIER, **options))


def problems_of(data: bytes, **bound) -> list[str]:
    """Every problem of every slice, or the refusal when the file does not even parse, as
    ``codesign --verify`` reports them."""
    try:
        return [problem for check in check_macho(data, **bound) for problem in check.problems]
    except SigningManagerError as error:
        return [str(error)]


def flipped(data: bytes, offset: int) -> bytes:
    image = bytearray(data)
    image[offset] ^= 0x01
    return bytes(image)


def entries_of(data: bytes) -> dict[int, bytes]:
    return SuperBlob.parse(MachO.parse(data).signature_data, BlobMagic.EMBEDDED_SIGNATURE).entries


def blob_offset(data: bytes, slot: int) -> int:
    """Where the blob of ``slot`` starts in a thin file."""
    macho = MachO.parse(data)
    signature = macho.signature_data
    (count,) = struct.unpack_from(">I", signature, 8)
    for number in range(count):
        found, offset = struct.unpack_from(">II", signature, 12 + 8 * number)
        if found == slot:
            return macho.code_signature.dataoff + offset
    raise AssertionError(f"no blob in slot {slot:#x}")


def with_entries(data: bytes, entries: dict[int, bytes]) -> bytes:
    """A thin file with its SuperBlob rewritten in the space the signature already has."""
    macho = MachO.parse(data)
    superblob = SuperBlob(BlobMagic.EMBEDDED_SIGNATURE, entries).serialize()
    command = macho.code_signature
    assert len(superblob) <= command.datasize, "the new SuperBlob must fit the old space"
    return data[: command.dataoff] + superblob.ljust(command.datasize, b"\0")


def cms_signature_value(data: bytes) -> bytes:
    content = entries_of(data)[Slot.SIGNATURE][8:]
    signer_info = cms.ContentInfo.load(content)["content"]["signer_infos"][0]
    return signer_info["signature"].native


# --- what verifies --------------------------------------------------------------------------


SIGNERS = ["apple_signer", "ca_signer", "ec_signer", None]
NAMES = ["arm64-exe", "x86_64-exe-10.9", "arm64-dylib", "universal-exe", "linker-signed"]


@pytest.mark.parametrize("signer_name", SIGNERS)
@pytest.mark.parametrize("name", NAMES)
def test_what_we_sign_verifies_clean(name, signer_name, machos, request):
    signer = request.getfixturevalue(signer_name) if signer_name else None
    checks = check_macho(signed(machos, name, signer, force=True))
    assert [c.problems for c in checks] == [[] for _ in checks]
    assert {c.kind for c in checks} == {"cms" if signer else "adhoc"}
    for check in checks:
        if signer:
            assert check.certificates[0] == signer.certificate
            assert check.signing_time is not None
            assert check.timestamp is None
        else:
            assert check.certificates == []


def test_a_verified_cms_signature_reports_the_chain_leaf_first(machos, apple_signer, apple_root):
    (check,) = check_macho(signed(machos, "arm64-exe", apple_signer))
    assert check.certificates == [apple_signer.certificate, *apple_signer.chain]
    assert check.certificates[-1] == apple_root


def test_the_real_apple_signed_file_verifies_clean_in_every_slice(machos):
    checks = check_macho(machos.bytes("cms"))
    assert [c.architecture for c in checks] == ["x86_64", "arm64"]
    assert [c.problems for c in checks] == [[], []]
    assert [c.kind for c in checks] == ["cms", "cms"]


def test_the_real_apple_signature_reports_its_timestamp_and_developer_id_chain(machos):
    for check in check_macho(machos.bytes("cms")):
        assert check.timestamp is not None
        assert check.timestamp.tzinfo is not None
        assert datetime.datetime(2023, 1, 1, tzinfo=datetime.UTC) < check.timestamp
        assert check.timestamp < datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
        assert abs(check.timestamp - check.signing_time) < datetime.timedelta(minutes=5)
        leaf, *rest = check.certificates
        assert "Developer ID Application" in leaf.subject.rfc4514_string()
        assert [c.subject.rfc4514_string() for c in rest][-1].startswith("CN=Apple Root CA")
        assert check.primary.team_id == "S8XHQB96PW"


@pytest.mark.parametrize(
    ("name", "kinds"),
    [
        ("adhoc", ["adhoc"]),
        ("linker-signed", ["linker-signed"]),
        ("arm64-thin", ["linker-signed"]),
        ("universal2-adhoc-sha1", ["adhoc", "adhoc"]),
    ],
)
def test_real_ad_hoc_and_linker_signatures_verify_clean(name, kinds, machos):
    checks = check_macho(machos.bytes(name))
    assert [c.kind for c in checks] == kinds
    assert [c.problems for c in checks] == [[] for _ in checks]


@pytest.mark.parametrize("name", ["x86_64-exe", "x86_64-thin", "x86_64-dylib"])
def test_an_unsigned_file_is_not_signed_at_all(name, machos):
    (check,) = check_macho(machos.bytes(name))
    assert not check.signed
    assert check.problems == ["code object is not signed at all"]


def test_an_unsigned_slice_of_a_universal_file_is_reported_alone(machos):
    checks = check_macho(machos.bytes("universal2"))
    assert [(c.architecture, c.problems) for c in checks] == [
        ("x86_64", ["code object is not signed at all"]),
        ("arm64", []),
    ]


# --- tampering ------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["first page", "middle page", "last byte before the signature"])
def test_a_byte_changed_in_a_code_page_is_reported_with_its_page(where, machos, apple_signer):
    data = signed(machos, "arm64-exe", apple_signer)
    end = MachO.parse(data).code_signature.dataoff
    offset = {
        "first page": 40,
        "middle page": 2 * 4096 + 7,
        "last byte before the signature": end - 1,
    }[where]
    assert problems_of(flipped(data, offset)) == [
        f"code page {offset // 4096} has been modified (sha256)"
    ]


def test_a_changed_code_page_is_reported_by_both_sha1_and_sha256_directories(machos, ca_signer):
    data = signed(machos, "x86_64-exe-10.9", ca_signer)
    assert problems_of(flipped(data, 5000)) == [
        "code page 1 has been modified (sha1)",
        "code page 1 has been modified (sha256)",
    ]


def test_a_changed_code_page_of_the_real_apple_file_is_reported_in_its_slice(machos):
    data = machos.bytes("cms")
    slices = parse_universal(data)
    damaged = bytearray(slices[1].data)
    damaged[4096 * 3 + 1] ^= 0x80
    rebuilt = build_universal(
        [
            slices[0],
            type(slices[1])(
                slices[1].cputype, slices[1].cpusubtype, bytes(damaged), slices[1].align
            ),
        ]
    )
    checks = check_macho(rebuilt)
    assert [c.problems for c in checks] == [[], ["code page 3 has been modified (sha256)"]]


@pytest.mark.parametrize("signer_name", ["apple_signer", None])
@pytest.mark.parametrize("where", [0, 7, 8, -1])
def test_a_byte_changed_in_the_requirements_blob_is_reported(where, signer_name, machos, request):
    signer = request.getfixturevalue(signer_name) if signer_name else None
    data = signed(machos, "arm64-dylib", signer)
    start = blob_offset(data, Slot.REQUIREMENTS)
    offset = start + where if where >= 0 else start + len(entries_of(data)[Slot.REQUIREMENTS]) - 1
    assert problems_of(flipped(data, offset)) == ["special slot 2 has been modified (sha256)"]


@pytest.mark.parametrize(("slot", "name"), [(5, "XML"), (7, "DER")])
def test_a_byte_changed_in_an_entitlements_blob_is_reported(slot, name, machos, apple_signer):
    data = signed(machos, "arm64-exe", apple_signer, entitlements=ENTITLEMENTS)
    start = blob_offset(data, slot)
    length = len(entries_of(data)[slot])
    for offset in (start + 9, start + length // 2, start + length - 1):
        assert problems_of(flipped(data, offset)) == [
            f"special slot {slot} has been modified (sha256)"
        ], name


def test_a_changed_code_directory_breaks_the_cms_signature_and_cdhashes(machos, apple_signer):
    data = signed(machos, "arm64-exe", apple_signer)
    directory = entries_of(data)[Slot.CODE_DIRECTORY]
    identifier = blob_offset(data, Slot.CODE_DIRECTORY) + directory.index(IDENTIFIER.encode())
    problems = problems_of(flipped(data, identifier))
    assert problems == [
        "the CMS signature is over other content",
        "the signed cdhashes do not match the CodeDirectories",
        "the signed CodeDirectory digests do not match",
    ]


def test_a_changed_code_directory_flag_is_caught_by_the_cms(machos, ca_signer):
    data = signed(machos, "arm64-dylib", ca_signer)
    flags = blob_offset(data, Slot.CODE_DIRECTORY) + 12
    image = bytearray(data)
    image[flags + 1] |= 0x01  # CS_RUNTIME off -> on, say
    problems = problems_of(bytes(image))
    assert "the CMS signature is over other content" in problems
    assert "the signed cdhashes do not match the CodeDirectories" in problems


def test_a_changed_alternate_code_directory_is_caught_by_the_signed_cdhashes(machos, ca_signer):
    """The CMS digests only the slot-0 CD; the SHA-256 alternate is bound by attributes 9.1
    and 9.2, so a change there must be reported even though the messageDigest still holds."""
    data = signed(machos, "x86_64-exe-10.9", ca_signer)
    alternate = entries_of(data)[Slot.ALTERNATE_CODE_DIRECTORY]
    offset = blob_offset(data, Slot.ALTERNATE_CODE_DIRECTORY) + alternate.index(b"com.example")
    problems = problems_of(flipped(data, offset))
    assert problems == [
        "the signed cdhashes do not match the CodeDirectories",
        "the signed CodeDirectory digests do not match",
    ]


def test_a_changed_byte_in_the_cms_signature_value_is_reported(machos, apple_signer):
    data = signed(machos, "arm64-exe", apple_signer)
    value = cms_signature_value(data)
    offset = data.index(value) + len(value) // 2
    assert problems_of(flipped(data, offset)) == [
        "the CMS signature does not verify with its certificate"
    ]


def test_a_changed_byte_in_the_real_apple_cms_signature_value_is_reported(machos):
    data = machos.bytes("cms")
    slices = parse_universal(data)
    value = cms_signature_value(slices[0].data)
    offset = data.index(value) + 17
    checks = check_macho(flipped(data, offset))
    assert [c.problems for c in checks] == [
        [
            "the CMS signature does not verify with its certificate",
            "The timestamp is over another signature.",  # its imprint is the signature's hash
        ],
        [],
    ]


def test_another_files_code_directory_swapped_in_is_reported(machos, apple_signer):
    data = signed(machos, "arm64-dylib", apple_signer)
    other = signed(machos, "arm64-bundle", apple_signer)
    entries = entries_of(data)
    entries[Slot.CODE_DIRECTORY] = entries_of(other)[Slot.CODE_DIRECTORY]
    problems = problems_of(with_entries(data, entries))
    assert "code page 0 has been modified (sha256)" in problems
    assert "the CMS signature is over other content" in problems
    assert "the signed cdhashes do not match the CodeDirectories" in problems


def test_another_files_whole_signature_swapped_in_is_reported(machos, apple_signer):
    """Both CD and CMS from the other file: the CMS is consistent, only the pages disagree."""
    data = signed(machos, "arm64-dylib", apple_signer)
    other = signed(machos, "arm64-bundle", apple_signer)
    problems = problems_of(with_entries(data, entries_of(other)))
    assert problems == ["code page 0 has been modified (sha256)"]


@pytest.mark.parametrize("slot", [2, 1])
def test_a_changed_special_slot_hash_in_an_ad_hoc_cd_is_reported(slot, machos):
    data = signed(machos, "info-plist-exe", None)
    directory = CodeDirectory.parse(entries_of(data)[Slot.CODE_DIRECTORY])
    assert any(directory.special_hashes[slot])
    (hash_offset,) = struct.unpack_from(">I", entries_of(data)[Slot.CODE_DIRECTORY], 0x10)
    offset = blob_offset(data, Slot.CODE_DIRECTORY) + hash_offset - slot * 32 + 5
    assert problems_of(flipped(data, offset)) == [f"special slot {slot} has been modified (sha256)"]


def test_a_changed_special_slot_hash_in_a_signed_cd_is_reported(machos, apple_signer):
    data = signed(machos, "arm64-exe", apple_signer, entitlements=ENTITLEMENTS)
    directory = entries_of(data)[Slot.CODE_DIRECTORY]
    (hash_offset,) = struct.unpack_from(">I", directory, 0x10)
    offset = blob_offset(data, Slot.CODE_DIRECTORY) + hash_offset - 5 * 32
    problems = problems_of(flipped(data, offset))
    assert "special slot 5 has been modified (sha256)" in problems
    assert "the CMS signature is over other content" in problems


def test_an_entitlements_blob_the_code_directory_does_not_bind_is_reported(machos, apple_signer):
    """An attacker adds entitlements to a signature that had none: the CD's special slots stop
    at 2 so nothing hashes slot 5. xnu refuses such a blob (``find_special_slot``), so must we."""
    data = signed(machos, "arm64-exe", apple_signer)
    assert CodeDirectory.parse(entries_of(data)[Slot.CODE_DIRECTORY]).special_slot_count == 2
    entries = entries_of(data)
    entries[Slot.ENTITLEMENTS] = struct.pack(">II", BlobMagic.ENTITLEMENTS, 8 + len(GET_TASK_ALLOW))
    entries[Slot.ENTITLEMENTS] += GET_TASK_ALLOW
    problems = problems_of(with_entries(data, entries))
    assert any("slot 5" in problem or "entitlements" in problem for problem in problems), problems


def test_a_bound_resource_seal_is_checked_when_given(machos, ca_signer):
    seal = b"<plist>the CodeResources file</plist>"
    data = signed(machos, "arm64-exe", ca_signer, resources=seal)
    assert problems_of(data, resources=seal) == []
    assert problems_of(data, resources=seal + b" ") == ["special slot 3 has been modified (sha256)"]
    assert problems_of(data) == ["special slot 3 is bound but its data is missing"]


def test_a_removed_cms_signature_is_reported(machos, apple_signer):
    data = signed(machos, "arm64-exe", apple_signer)
    entries = entries_of(data)
    entries[Slot.SIGNATURE] = struct.pack(">II", BlobMagic.BLOB_WRAPPER, 8)
    assert problems_of(with_entries(data, entries)) == [
        "the signature is not ad-hoc, yet carries no CMS signature"
    ]


def test_a_missing_code_directory_is_reported(machos):
    data = signed(machos, "arm64-exe", None)
    entries = entries_of(data)
    del entries[Slot.CODE_DIRECTORY]
    assert problems_of(with_entries(data, entries)) == ["the signature has no CodeDirectory"]


@pytest.mark.parametrize("cut", [1, 16, 100, "signature", "last page"])
def test_a_truncated_file_is_reported(cut, machos, apple_signer):
    data = signed(machos, "arm64-exe", apple_signer)
    start = MachO.parse(data).code_signature.dataoff
    length = {"signature": start, "last page": start - 100}.get(cut) or len(data) - cut
    problems = problems_of(data[:length])
    assert problems
    assert any("past the end of the file" in problem for problem in problems), problems


def test_a_truncated_universal_file_is_reported(machos, apple_signer):
    data = signed(machos, "universal-exe", apple_signer)
    problems = problems_of(data[:-1])
    assert problems
    assert "Slice 2 of the universal file lies outside the file" in problems[0]


def test_data_appended_after_the_signature_is_reported(machos, apple_signer):
    """Reference 9 step 1: the signature ends __LINKEDIT and the file; appended bytes are
    covered by no hash and must not pass as signed."""
    data = signed(machos, "arm64-exe", apple_signer) + b"\0" * 15 + b"\x90"
    assert problems_of(data) != []


# A flipped sign bit in a serial number makes cryptography warn that it will refuse it one day.
@pytest.mark.filterwarnings(
    "ignore:Parsed a serial number:cryptography.utils.CryptographyDeprecationWarning"
)
def test_a_damaged_cms_blob_never_escapes_as_another_error(machos, apple_signer):
    """Every 3rd byte of the CMS blob flipped: each verdict is a list of problems (or our own
    error), never a crash from the ASN.1 or plist parsers."""
    data = signed(machos, "arm64-exe", apple_signer)
    start = blob_offset(data, Slot.SIGNATURE) + 8
    length = len(entries_of(data)[Slot.SIGNATURE]) - 8
    crashed = []
    for offset in range(start, start + length, 3):
        image = bytearray(data)
        image[offset] ^= 0xFF
        try:
            check_macho(bytes(image))
        except SigningManagerError:
            pass
        except Exception as error:
            crashed.append((offset - start, type(error).__name__))
    assert crashed == []


def test_a_damaged_wrapper_around_the_cms_is_reported(machos, apple_signer):
    data = signed(machos, "arm64-exe", apple_signer)
    problems = problems_of(flipped(data, blob_offset(data, Slot.SIGNATURE)))
    assert "the CMS signature's wrapper is damaged" in problems
