"""Thin Mach-O parsing: header, segments, deployment target and LC_CODE_SIGNATURE of built and
real files (checked against llvm-objdump), refusals of damaged files with MalformedMachO only,
and the layout changes signing makes (LC_CODE_SIGNATURE, ncmds/sizeofcmds, __LINKEDIT)."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

from signing_manager.codesign.macho import (
    CpuType,
    FileType,
    LoadCommand,
    MachO,
    MalformedMachO,
    Platform,
    round_up,
    version,
    version_text,
)
from signing_manager.codesign.signing import SigningOptions, sign_macho
from signing_manager.codesign.universal import is_universal, parse_universal
from signing_manager.codesign.verify import check_macho

THIN = [
    "arm64-exe",
    "x86_64-exe",
    "x86_64-exe-10.9",
    "arm64-dylib",
    "x86_64-dylib",
    "arm64-bundle",
    "x86_64-bundle",
    "x86_64-thin",
    "arm64-thin",
    "adhoc",
    "linker-signed",
]
UNIVERSAL = [
    "universal-exe",
    "universal-dylib",
    "universal2",
    "universal2-adhoc-sha1",
    "universal2-execute",
    "cms",
]
EXPECTED = {
    "arm64-exe": [("arm64", FileType.EXECUTE)],
    "x86_64-exe": [("x86_64", FileType.EXECUTE)],
    "x86_64-exe-10.9": [("x86_64", FileType.EXECUTE)],
    "arm64-dylib": [("arm64", FileType.DYLIB)],
    "x86_64-dylib": [("x86_64", FileType.DYLIB)],
    "arm64-bundle": [("arm64", FileType.BUNDLE)],
    "x86_64-bundle": [("x86_64", FileType.BUNDLE)],
    "x86_64-thin": [("x86_64", FileType.BUNDLE)],
    "arm64-thin": [("arm64", FileType.BUNDLE)],
    "adhoc": [("arm64", FileType.DYLIB)],
    "linker-signed": [("arm64", FileType.BUNDLE)],
    "universal-exe": [("x86_64", FileType.EXECUTE), ("arm64", FileType.EXECUTE)],
    "universal-dylib": [("x86_64", FileType.DYLIB), ("arm64", FileType.DYLIB)],
    "universal2": [("x86_64", FileType.BUNDLE), ("arm64", FileType.BUNDLE)],
    "universal2-adhoc-sha1": [("x86_64", FileType.BUNDLE), ("arm64", FileType.BUNDLE)],
    "universal2-execute": [("x86_64", FileType.EXECUTE), ("arm64", FileType.EXECUTE)],
    "cms": [("x86_64", FileType.DYLIB), ("arm64", FileType.DYLIB)],
}
OBJDUMP_CPUS = {"x86_64": "X86_64", "arm64": "ARM64"}


# --- helpers --------------------------------------------------------------------------------


def slices(data: bytes) -> list[bytes]:
    return [piece.data for piece in parse_universal(data)] if is_universal(data) else [data]


def patched(data: bytes, offset: int, layout: str, *values) -> bytes:
    image = bytearray(data)
    struct.pack_into(layout, image, offset, *values)
    return bytes(image)


def segment_command(macho: MachO, name: str) -> int:
    segment = macho.segment(name)
    assert segment is not None, name
    return segment.command_offset


def commands_of(macho: MachO) -> list[tuple[int, int, int]]:
    """(offset, cmd, cmdsize) of every load command, read without our parser."""
    found, offset = [], macho.header_size
    for _ in range(macho.ncmds):
        command, size = struct.unpack_from("<II", macho.data, offset)
        found.append((offset, command, size))
        offset += size
    return found


def tiny_macho(*commands: bytes, ncmds: int | None = None, tail: bytes = b"") -> bytes:
    """A 64-bit arm64 MH_EXECUTE header followed by ``commands`` (and ``tail``)."""
    body = b"".join(commands)
    count = len(commands) if ncmds is None else ncmds
    header = struct.pack(
        "<IiIIIIII", 0xFEEDFACF, CpuType.ARM64, 0, FileType.EXECUTE, count, len(body), 0, 0
    )
    return header + body + tail


def objdump_slices(text: str) -> list[dict]:
    """llvm-objdump's view of each architecture: the header's ncmds/sizeofcmds and every load
    command as a dict of its first ``key value`` lines (sections excluded)."""
    found = []
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if line.strip() == "Mach header":
            values = lines[number + 2].split()
            found.append(
                {
                    "cpu": values[1],
                    "filetype": values[4],
                    "ncmds": int(values[5]),
                    "sizeofcmds": int(values[6]),
                    "commands": [],
                }
            )
        elif line.startswith("Load command "):
            found[-1]["commands"].append({})
        elif line.strip() == "Section":
            found[-1]["commands"][-1]["in_sections"] = True
        elif found and found[-1]["commands"] and line.strip():
            current = found[-1]["commands"][-1]
            if not current.get("in_sections"):
                key, _, value = line.strip().partition(" ")
                current.setdefault(key, value.strip())
    return found


def objdump_segments(view: dict) -> list[tuple[str, int, int, int, int]]:
    return [
        (
            c["segname"],
            int(c["vmaddr"], 16),
            int(c["vmsize"], 16),
            int(c["fileoff"]),
            int(c["filesize"]),
        )
        for c in view["commands"]
        if c["cmd"] in ("LC_SEGMENT_64", "LC_SEGMENT")
    ]


def objdump_version(text: str) -> int:
    parts = [int(part) for part in text.split(".")]
    return version(*parts)


# --- parsing --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", THIN + UNIVERSAL)
def test_it_reads_the_architecture_and_file_type_of_every_slice(name, machos):
    parsed = [MachO.parse(data) for data in slices(machos.bytes(name))]
    assert [(m.architecture, m.filetype) for m in parsed] == EXPECTED[name]
    assert all(m.is_64 and m.header_size == 32 for m in parsed)


@pytest.mark.parametrize("name", THIN + UNIVERSAL)
def test_its_segments_and_header_match_what_llvm_objdump_reads(name, machos, toolchain):
    parsed = [MachO.parse(data) for data in slices(machos.bytes(name))]
    views = objdump_slices(toolchain.load_commands(machos.path(name)))
    assert len(views) == len(parsed)
    for macho, view in zip(parsed, views, strict=True):
        assert view["cpu"] == OBJDUMP_CPUS[macho.architecture]
        assert (macho.ncmds, macho.sizeofcmds) == (view["ncmds"], view["sizeofcmds"])
        ours = [(s.name, s.vmaddr, s.vmsize, s.fileoff, s.filesize) for s in macho.segments]
        assert ours == objdump_segments(view)


@pytest.mark.parametrize("name", THIN + UNIVERSAL)
def test_text_comes_first_and_linkedit_last_ending_at_the_end_of_the_slice(name, machos):
    for data in slices(machos.bytes(name)):
        macho = MachO.parse(data)
        text, linkedit = macho.segment("__TEXT"), macho.linkedit
        assert text is not None
        assert text.fileoff == 0
        assert text.filesize > 0
        assert max(macho.segments, key=lambda s: s.fileoff) is linkedit
        assert linkedit.file_end == len(data)
        assert any(s.name == "__text" for s in text.sections)


def test_it_reads_the_deployment_target_from_lc_build_version(machos, toolchain):
    macho = MachO.parse(machos.bytes("arm64-exe"))
    assert macho.target is not None
    assert macho.target.platform == Platform.MACOS
    assert macho.target.minimum == version(11)
    (view,) = objdump_slices(toolchain.load_commands(machos.path("arm64-exe")))
    (build,) = [c for c in view["commands"] if c["cmd"] == "LC_BUILD_VERSION"]
    assert macho.target.minimum == objdump_version(build["minos"])
    assert macho.target.sdk == objdump_version(build["sdk"])


def test_it_reads_an_old_deployment_target_from_lc_version_min_macosx(machos, toolchain):
    macho = MachO.parse(machos.bytes("x86_64-exe-10.9"))
    assert macho.target is not None
    assert macho.target.platform == Platform.MACOS
    assert version_text(macho.target.minimum) == "10.9.0"
    (view,) = objdump_slices(toolchain.load_commands(machos.path("x86_64-exe-10.9")))
    (command,) = [c for c in view["commands"] if c["cmd"] == "LC_VERSION_MIN_MACOSX"]
    assert macho.target.minimum == objdump_version(command["version"])


def test_it_reads_a_real_wheels_sdk_and_minimum(machos):
    macho = MachO.parse(machos.bytes("x86_64-thin"))
    assert (macho.target.platform, version_text(macho.target.minimum)) == (1, "10.9.0")
    assert version_text(macho.target.sdk) == "26.5.0"


@pytest.mark.parametrize("name", ["linker-signed", "arm64-thin", "arm64-exe", "adhoc"])
def test_it_finds_the_code_signature_of_a_signed_arm64_file(name, machos, independent):
    data = machos.bytes(name)
    macho = MachO.parse(data)
    assert macho.code_signature is not None
    command = macho.code_signature
    assert [(command.dataoff, command.datasize)] == independent.objdump_signature(machos.path(name))
    assert command.dataoff % 16 == 0
    assert command.dataoff + command.datasize == macho.linkedit.file_end == len(data)
    assert struct.unpack_from("<I", data, command.command_offset)[0] == LoadCommand.CODE_SIGNATURE
    assert macho.signature_data == data[command.dataoff :]
    assert macho.signature_data[:4] == bytes.fromhex("fade0cc0")
    assert macho.unsigned_end() == command.dataoff


@pytest.mark.parametrize("name", ["x86_64-exe", "x86_64-dylib", "x86_64-thin"])
def test_an_unsigned_file_has_no_code_signature(name, machos, independent):
    macho = MachO.parse(machos.bytes(name))
    assert macho.code_signature is None
    assert macho.signature_data is None
    assert independent.objdump_signature(machos.path(name)) == []
    assert macho.unsigned_end() == macho.linkedit.file_end == len(macho.data)
    assert macho.free_after_commands >= 16


def test_it_reads_an_embedded_info_plist_section(machos):
    macho = MachO.parse(machos.bytes("info-plist-exe"))
    plist = macho.section_data("__TEXT", "__info_plist")
    assert plist is not None
    assert plist.startswith(b"<?xml")
    assert b"com.example.tool" in plist
    assert MachO.parse(machos.bytes("arm64-exe")).section_data("__TEXT", "__info_plist") is None


# --- malformed input ------------------------------------------------------------------------


def elf_bytes() -> bytes:
    return Path(shutil.which("true") or "/bin/true").read_bytes()


NOT_MACHO = {
    "empty": b"",
    "one byte": b"\xcf",
    "short header": bytes.fromhex("cffaedfe") + bytes(20),
    "text": b"#!/bin/sh\necho this is a shell script, not a Mach-O file\n",
    "zeros": bytes(4096),
    "big-endian magic": bytes.fromhex("feedfacf") + bytes(60),
    "universal header": bytes.fromhex("cafebabe00000002") + bytes(64),
    "java class": bytes.fromhex("cafebabe00000041") + bytes(64),
}


@pytest.mark.parametrize("data", NOT_MACHO.values(), ids=NOT_MACHO.keys())
def test_it_rejects_what_is_not_mach_o(data):
    with pytest.raises(MalformedMachO, match="Mach-O"):
        MachO.parse(data)


def test_it_rejects_an_elf_executable_renamed_to_dylib(tmp_path):
    renamed = tmp_path / "libtrue.dylib"
    renamed.write_bytes(elf_bytes())
    with pytest.raises(MalformedMachO, match="Not a Mach-O file"):
        MachO.parse(renamed.read_bytes())


@pytest.mark.parametrize("name", ["linker-signed", "x86_64-thin", "arm64-exe", "x86_64-dylib"])
def test_a_truncated_file_is_rejected_with_malformed_macho_at_every_length(name, machos):
    """Every offset through the load commands and past them, then every 97th byte: the file
    always ends with __LINKEDIT, so every cut must be refused, and never with another error."""
    data = machos.bytes(name)
    commands_end = MachO.parse(data).header_size + MachO.parse(data).sizeofcmds
    lengths = [*range(commands_end + 256), *range(commands_end + 256, len(data), 97)]
    accepted, crashed = [], []
    for length in lengths:
        try:
            MachO.parse(data[:length])
            accepted.append(length)
        except MalformedMachO:
            pass
        except Exception as error:
            crashed.append((length, repr(error)))
    assert crashed == []
    assert accepted == []


def damaged(machos, case: str) -> bytes:
    """Named damage to a real or built file, patched at the byte level."""
    name = "linker-signed" if "signature" in case else "x86_64-exe"
    data = machos.bytes(name)
    macho = MachO.parse(data)
    first, *_ = commands_of(macho)
    text = segment_command(macho, "__TEXT")
    signature = macho.code_signature.command_offset if macho.code_signature else None
    return {
        "cmdsize 0": lambda: patched(data, first[0] + 4, "<I", 0),
        "cmdsize 4": lambda: patched(data, first[0] + 4, "<I", 4),
        "cmdsize past the load commands": lambda: patched(data, first[0] + 4, "<I", 1 << 20),
        "cmdsize past the end of the file": lambda: patched(data, first[0] + 4, "<I", 0xFFFFFFF0),
        "ncmds more than there are": lambda: patched(data, 16, "<I", macho.ncmds + 1),
        "ncmds huge": lambda: patched(data, 16, "<I", 0xFFFFFFFF),
        "sizeofcmds past the end": lambda: patched(data, 20, "<I", len(data)),
        "sizeofcmds huge": lambda: patched(data, 20, "<I", 0xFFFFFFFF),
        "segment fileoff past the end": lambda: patched(data, text + 40, "<Q", len(data)),
        "segment filesize past the end": lambda: patched(data, text + 48, "<Q", len(data) + 1),
        "segment fileoff huge": lambda: patched(data, text + 40, "<Q", 1 << 63),
        "segment nsects too many": lambda: patched(data, text + 64, "<I", 1000),
        "segment cmdsize too short": lambda: patched(data, text + 4, "<I", 64),
        "signature dataoff past the end": lambda: patched(data, signature + 8, "<I", len(data)),
        "signature datasize past the end": lambda: patched(
            data, signature + 12, "<I", len(data) - macho.code_signature.dataoff + 1
        ),
        "signature dataoff huge": lambda: patched(data, signature + 8, "<I", 0xFFFFFFF0),
    }[case]()


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("cmdsize 0", "bad size"),
        ("cmdsize 4", "bad size"),
        ("cmdsize past the load commands", "bad size"),
        ("cmdsize past the end of the file", "bad size"),
        ("ncmds more than there are", "runs past the load commands"),
        ("ncmds huge", "runs past the load commands"),
        ("sizeofcmds past the end", "past the end of the file"),
        ("sizeofcmds huge", "past the end of the file"),
        ("segment fileoff past the end", "__TEXT lies past the end"),
        ("segment filesize past the end", "__TEXT lies past the end"),
        ("segment fileoff huge", "__TEXT lies past the end"),
        ("segment nsects too many", "sections run past"),
        ("segment cmdsize too short", "too short|bad size|sections run past"),
        ("signature dataoff past the end", "code signature lies past the end"),
        ("signature datasize past the end", "code signature lies past the end"),
        ("signature dataoff huge", "code signature lies past the end"),
    ],
)
def test_it_rejects_damaged_load_commands(case, message, machos):
    with pytest.raises(MalformedMachO, match=message):
        MachO.parse(damaged(machos, case))


SHORT_COMMANDS = {
    "code signature of 8 bytes at the end of the file": struct.pack(
        "<II", LoadCommand.CODE_SIGNATURE, 8
    ),
    "code signature of 12 bytes at the end of the file": struct.pack(
        "<III", LoadCommand.CODE_SIGNATURE, 12, 0
    ),
    "code signature of 8 bytes before more data": struct.pack("<II", LoadCommand.CODE_SIGNATURE, 8)
    + bytes(8),
    "segment of 8 bytes": struct.pack("<II", LoadCommand.SEGMENT_64, 8),
    "build version of 8 bytes": struct.pack("<II", LoadCommand.BUILD_VERSION, 8),
    "version min of 8 bytes": struct.pack("<II", LoadCommand.VERSION_MIN_MACOSX, 8),
}


@pytest.mark.parametrize("command", SHORT_COMMANDS.values(), ids=SHORT_COMMANDS.keys())
def test_a_load_command_too_short_for_its_fields_is_rejected_or_ignored(command):
    """A command whose cmdsize is smaller than its structure, last in a file that ends with the
    load commands: its fields lie past the end of the file."""
    try:
        macho = MachO.parse(tiny_macho(command))
    except MalformedMachO:
        return
    assert macho.code_signature is None
    assert macho.segments == []


# --- where a signature can go ---------------------------------------------------------------


def linkedit_not_last(machos) -> bytes:
    """x86_64-thin with the names of __DATA and __LINKEDIT swapped: __LINKEDIT comes second."""
    data = machos.bytes("x86_64-thin")
    macho = MachO.parse(data)
    data = patched(data, segment_command(macho, "__DATA") + 8, "16s", b"__LINKEDIT")
    return patched(data, segment_command(macho, "__LINKEDIT") + 8, "16s", b"__DATA")


def no_linkedit(machos) -> bytes:
    data = machos.bytes("x86_64-exe")
    return patched(data, segment_command(MachO.parse(data), "__LINKEDIT") + 8, "16s", b"__LINKEDIX")


LC_SOURCE_VERSION = 0x2A


def with_filler_command(data: bytes, left: int) -> bytes:
    """``data`` with one more load command after the others (an LC_SOURCE_VERSION sized to
    fit), so that ``left`` bytes stay free before the first section."""
    macho = MachO.parse(data)
    size = macho.free_after_commands - left
    data = patched(data, macho.header_size + macho.sizeofcmds, "<II", LC_SOURCE_VERSION, size)
    return patched(data, 16, "<II", macho.ncmds + 1, macho.sizeofcmds + size)


def no_room_after_commands(machos) -> bytes:
    """x86_64-exe with a load command that leaves 12 bytes before the first section."""
    return with_filler_command(machos.bytes("x86_64-exe"), 12)


def signature_not_at_the_end(machos) -> bytes:
    data = machos.bytes("linker-signed")
    command = MachO.parse(data).code_signature
    return patched(data, command.command_offset + 12, "<I", command.datasize - 16)


def adhoc_signed_x86_64(machos) -> bytes:
    return sign_macho(machos.bytes("x86_64-exe"), None, SigningOptions(identifier="x"))


REFUSALS = {
    "__LINKEDIT not last": (linkedit_not_last, "__LINKEDIT is not the last segment"),
    "no __LINKEDIT": (no_linkedit, "no __LINKEDIT segment"),
    "unsigned, data after __LINKEDIT": (
        lambda machos: machos.bytes("x86_64-exe") + bytes(16),
        "data after __LINKEDIT",
    ),
    "no room after the load commands": (no_room_after_commands, "no room after the load"),
    "signature not at the end of __LINKEDIT": (signature_not_at_the_end, "not at the end"),
}


@pytest.mark.parametrize(("make", "message"), REFUSALS.values(), ids=REFUSALS.keys())
def test_it_refuses_to_place_a_signature_in_a_file_laid_out_wrongly(make, message, machos):
    data = make(machos)
    macho = MachO.parse(data)
    with pytest.raises(MalformedMachO, match=message):
        macho.unsigned_end()
    with pytest.raises(MalformedMachO, match=message):
        sign_macho(data, None, SigningOptions(identifier="x", force=True))


def test_a_load_command_hidden_by_a_lowered_ncmds_is_refused_before_signing(machos):
    # From the fuzzing campaign: this signed, then our own -v refused the result, since the
    # hidden linker signature came back into view behind the new one.
    data = machos.bytes("arm64-exe")
    data = patched(data, 16, "<I", MachO.parse(data).ncmds - 1)

    for read in (MachO.parse, check_macho):
        with pytest.raises(MalformedMachO, match="do not fill their recorded size"):
            read(data)
    with pytest.raises(MalformedMachO, match="do not fill their recorded size"):
        sign_macho(data, None, SigningOptions(identifier="x", force=True))


SIGNED_WITH_TRAILING_DATA = {
    "linker-signed by lld": lambda machos: machos.bytes("arm64-exe"),
    "linker-signed by ld64": lambda machos: machos.bytes("linker-signed"),
    "ad-hoc signed by us": adhoc_signed_x86_64,
}


@pytest.mark.parametrize(
    "make", SIGNED_WITH_TRAILING_DATA.values(), ids=SIGNED_WITH_TRAILING_DATA.keys()
)
def test_data_after_an_existing_signature_is_refused_not_dropped(make, machos):
    """Reference 2.2 and 11.1: nothing may follow __LINKEDIT, signed or not; signing must not
    silently cut off what follows the old signature."""
    data = make(machos) + b"appended after the signature".ljust(32, b"\0")
    macho = MachO.parse(data)
    with pytest.raises(MalformedMachO, match="after __LINKEDIT"):
        macho.unsigned_end()


def test_a_file_with_exactly_16_free_bytes_after_the_load_commands_can_be_signed(machos):
    data = with_filler_command(machos.bytes("x86_64-exe"), 16)
    assert MachO.parse(data).free_after_commands == 16
    assert MachO.parse(data).unsigned_end() == len(data)


# --- the layout signing writes --------------------------------------------------------------


def image_with_signature_space(macho: MachO, offset: int, size: int) -> bytes:
    """The whole slice as signing lays it out before the signature is written."""
    head = macho.patched_head(offset, size)
    body = macho.data[len(head) : macho.unsigned_end()]
    return bytes(head) + body + bytes(offset - len(head) - len(body) + size)


@pytest.mark.parametrize("name", ["x86_64-exe", "x86_64-dylib", "x86_64-thin"])
def test_signature_space_adds_lc_code_signature_to_an_unsigned_file(
    name, machos, toolchain, independent, tmp_path
):
    before = MachO.parse(machos.bytes(name))
    offset, size = round_up(before.unsigned_end(), 16), 0x1230
    image = image_with_signature_space(before, offset, size)
    after = MachO.parse(image)
    assert (after.ncmds, after.sizeofcmds) == (before.ncmds + 1, before.sizeofcmds + 16)
    assert after.code_signature.command_offset == before.header_size + before.sizeofcmds
    assert (after.code_signature.dataoff, after.code_signature.datasize) == (offset, size)
    linkedit = after.linkedit
    assert linkedit.fileoff == before.linkedit.fileoff
    assert linkedit.filesize == offset + size - linkedit.fileoff
    assert linkedit.vmsize == round_up(linkedit.filesize, 0x4000)
    assert linkedit.file_end == len(image)
    # Nothing else moved: the other segments and every byte past the load commands.
    assert [s for s in after.segments if s.name != "__LINKEDIT"] == [
        s for s in before.segments if s.name != "__LINKEDIT"
    ]
    commands_end = before.header_size + before.sizeofcmds + 16
    assert image[commands_end : before.unsigned_end()] == before.data[commands_end:]
    path = tmp_path / name
    path.write_bytes(image)
    (view,) = objdump_slices(toolchain.load_commands(path))
    assert (view["ncmds"], view["sizeofcmds"]) == (after.ncmds, after.sizeofcmds)
    assert (
        "__LINKEDIT",
        linkedit.vmaddr,
        linkedit.vmsize,
        linkedit.fileoff,
        linkedit.filesize,
    ) in objdump_segments(view)
    assert independent.objdump_signature(path) == [(offset, size)]


def test_signature_space_reuses_the_existing_lc_code_signature(machos, independent, tmp_path):
    before = MachO.parse(machos.bytes("linker-signed"))
    offset, size = before.code_signature.dataoff, 0x2000
    after = MachO.parse(image_with_signature_space(before, offset, size))
    assert (after.ncmds, after.sizeofcmds) == (before.ncmds, before.sizeofcmds)
    assert after.code_signature.command_offset == before.code_signature.command_offset
    assert (after.code_signature.dataoff, after.code_signature.datasize) == (offset, size)
    assert after.linkedit.filesize == offset + size - before.linkedit.fileoff
    assert after.linkedit.vmsize == round_up(after.linkedit.filesize, 0x4000)
    path = tmp_path / "resized"
    path.write_bytes(after.data)
    assert independent.objdump_signature(path) == [(offset, size)]


@pytest.mark.parametrize("name", ["x86_64-exe", "arm64-exe", "x86_64-thin", "linker-signed"])
def test_a_signed_file_has_the_layout_llvm_objdump_expects(name, machos, toolchain, tmp_path):
    before = MachO.parse(machos.bytes(name))
    signed = sign_macho(before.data, None, SigningOptions(identifier="x"))
    after = MachO.parse(signed)
    added = 0 if before.code_signature else 1
    assert (after.ncmds, after.sizeofcmds) == (before.ncmds + added, before.sizeofcmds + 16 * added)
    assert after.code_signature.dataoff == round_up(before.unsigned_end(), 16)
    assert after.code_signature.dataoff + after.code_signature.datasize == len(signed)
    assert after.linkedit.file_end == len(signed)
    assert after.linkedit.vmsize == round_up(after.linkedit.filesize, 0x4000)
    path = tmp_path / name
    path.write_bytes(signed)
    (view,) = objdump_slices(toolchain.load_commands(path))
    assert (view["ncmds"], view["sizeofcmds"]) == (after.ncmds, after.sizeofcmds)
    ours = [(s.name, s.vmaddr, s.vmsize, s.fileoff, s.filesize) for s in after.segments]
    assert ours == objdump_segments(view)
    assert [c["cmd"] for c in view["commands"]].count("LC_CODE_SIGNATURE") == 1


# --- 32-bit slices --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def armv7(toolchain) -> Path:
    """A 32-bit (mach_header, LC_SEGMENT) executable: lld writes armv7 but not i386."""
    return toolchain.build("armv7-exe", "armv7-apple-ios9", "exe")


def test_it_reads_a_32_bit_slice(armv7, toolchain):
    macho = MachO.parse(armv7.read_bytes())
    assert (macho.is_64, macho.header_size, macho.architecture) == (False, 28, "arm")
    assert macho.target.platform == Platform.IOS
    assert version_text(macho.target.minimum) == "9.0.0"
    (view,) = objdump_slices(toolchain.load_commands(armv7))
    assert (macho.ncmds, macho.sizeofcmds) == (view["ncmds"], view["sizeofcmds"])
    ours = [(s.name, s.vmaddr, s.vmsize, s.fileoff, s.filesize) for s in macho.segments]
    assert ours == objdump_segments(view)


def test_a_signed_32_bit_slice_has_the_layout_llvm_objdump_expects(
    armv7, toolchain, independent, tmp_path
):
    before = MachO.parse(armv7.read_bytes())
    signed = sign_macho(before.data, None, SigningOptions(identifier="x"))
    after = MachO.parse(signed)
    assert (after.ncmds, after.sizeofcmds) == (before.ncmds + 1, before.sizeofcmds + 16)
    assert after.code_signature.command_offset == 28 + before.sizeofcmds
    assert after.linkedit.file_end == len(signed)
    assert after.linkedit.vmsize == round_up(after.linkedit.filesize, 0x4000)
    assert after.linkedit.vmaddr == before.linkedit.vmaddr
    path = tmp_path / "armv7-signed"
    path.write_bytes(signed)
    (view,) = objdump_slices(toolchain.load_commands(path))
    ours = [(s.name, s.vmaddr, s.vmsize, s.fileoff, s.filesize) for s in after.segments]
    assert ours == objdump_segments(view)
    command = after.code_signature
    assert independent.objdump_signature(path) == [(command.dataoff, command.datasize)]
