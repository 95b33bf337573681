"""Fuzzing ``codesign`` with Mach-O files, thin and universal.

Seeds are built with Debian's clang and lld (an arm64 and an x86_64 executable, an arm64 dylib,
and a universal file of the two executables), each unsigned, ad-hoc signed and signed with a
local RSA identity by our engine; ``--seeds DIR`` adds real files. ``layout`` reads a seed with
its own small walker (``mach-o/loader.h``, ``mach-o/fat.h``, the SuperBlob and CodeDirectory of
the reference's section 3), independent of the parser under test, and names every integer a
parser trusts: header counts and sizes, load-command sizes, segment and section ranges, the
LC_CODE_SIGNATURE range, the fat architecture table, the SuperBlob index and the
CodeDirectory's offsets, counts and sizes.

A trial runs ``codesign -v``, ``codesign -d -vvv`` and ``codesign -f -s -`` on the mutant.
Beyond the harness's rules: ``-v`` never accepts a mutant whose signed bytes changed (those
before a slice's signature), and a mutant ``-s`` signed verifies with ``-v``.
"""

from __future__ import annotations

import random
import shutil
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fuzz.harness import Finding, Limits, checked_cli, expect_unchanged, snapshot
from fuzz.mutations import Field, Layout, Region, mutate
from signing_manager.codesign.signing import SigningOptions, sign_macho
from signing_manager.codesign.universal import Slice, build_universal

FAT_MAGIC = 0xCAFEBABE
THIN_MAGICS = {0xFEEDFACE: 28, 0xFEEDFACF: 32}  # header sizes
LC_SEGMENT, LC_SEGMENT_64, LC_CODE_SIGNATURE = 0x1, 0x19, 0x1D
LINKEDIT_DATA_COMMANDS = {0x1D, 0x1E, 0x26, 0x29, 0x2B, 0x2E, 0x33, 0x34}
CODE_DIRECTORY_MAGIC = 0xFADE0C02
CODE_DIRECTORY_FIELDS = [  # name, offset in the blob, size (big-endian, as blobs are)
    ("version", 8, 4), ("flags", 12, 4), ("hashOffset", 16, 4), ("identOffset", 20, 4),
    ("nSpecialSlots", 24, 4), ("nCodeSlots", 28, 4), ("codeLimit", 32, 4), ("hashSize", 36, 1),
    ("hashType", 37, 1), ("platform", 38, 1), ("pageSize", 39, 1), ("scatterOffset", 44, 4),
    ("teamOffset", 48, 4), ("codeLimit64", 56, 8), ("execSegBase", 64, 8),
    ("execSegLimit", 72, 8), ("execSegFlags", 80, 8),
]  # fmt: skip
SOURCE = "int main(void) { return 0; }\n"
LIBRARY = "int helper(int x) { return x * 2; }\n"


@dataclass(frozen=True)
class Seed:
    name: str
    data: bytes
    layout: Layout
    signed: list[tuple[int, int]]  # per signed slice: the range its signature covers


# --- The walker ------------------------------------------------------------------------------


def layout(data: bytes) -> tuple[Layout, list[tuple[int, int]]]:
    """The fields and regions of a seed, and the ranges its signatures cover."""
    fields: list[Field] = []
    regions: list[Region] = []
    signed: list[tuple[int, int]] = []
    (magic,) = struct.unpack_from(">I", data)
    if magic == FAT_MAGIC:
        (count,) = struct.unpack_from(">I", data, 4)
        fields.append(Field("nfat_arch", 4, 4, "big"))
        regions.append(Region("fat header", 0, 8 + 20 * count))
        for index in range(count):
            entry = 8 + 20 * index
            for name, at in (("cputype", 0), ("offset", 8), ("size", 12), ("align", 16)):
                fields.append(Field(f"arch[{index}].{name}", entry + at, 4, "big"))
            offset, size = struct.unpack_from(">II", data, entry + 8)
            walk_slice(data, offset, size, fields, regions, signed)
    else:
        walk_slice(data, 0, len(data), fields, regions, signed)
    return Layout(fields, regions), signed


def walk_slice(data, base, size, fields, regions, signed) -> None:
    header_size = THIN_MAGICS[struct.unpack_from("<I", data, base)[0]]
    ncmds, sizeofcmds = struct.unpack_from("<II", data, base + 16)
    for name, at in (
        ("cputype", 4),
        ("filetype", 12),
        ("ncmds", 16),
        ("sizeofcmds", 20),
        ("flags", 24),
    ):
        fields.append(Field(f"@{base}.{name}", base + at, 4))
    regions.append(Region(f"@{base} load commands", base + header_size, sizeofcmds))
    regions.append(Region(f"@{base} slice", base, size))
    offset = base + header_size
    for index in range(ncmds):
        command, command_size = struct.unpack_from("<II", data, offset)
        prefix = f"@{base}.cmd[{index}]({command:#x})"
        fields.append(Field(f"{prefix}.cmdsize", offset + 4, 4))
        if command in (LC_SEGMENT, LC_SEGMENT_64):
            segment_fields(offset, command == LC_SEGMENT_64, prefix, fields)
        elif command in LINKEDIT_DATA_COMMANDS:
            fields.append(Field(f"{prefix}.dataoff", offset + 8, 4))
            fields.append(Field(f"{prefix}.datasize", offset + 12, 4))
        if command == LC_CODE_SIGNATURE:
            dataoff, datasize = struct.unpack_from("<II", data, offset + 8)
            signed.append((base, base + dataoff))
            walk_signature(data, base + dataoff, datasize, fields, regions)
        offset += command_size


def segment_fields(offset: int, wide: bool, prefix: str, fields: list[Field]) -> None:
    word = 8 if wide else 4
    at = offset + 24  # after cmd, cmdsize and the 16-byte name
    for name in ("vmaddr", "vmsize", "fileoff", "filesize"):
        fields.append(Field(f"{prefix}.{name}", at, word))
        at += word
    fields.append(Field(f"{prefix}.nsects", at + 8, 4))
    section = at + 16
    fields.append(Field(f"{prefix}.section0.offset", section + 32 + 2 * word, 4))
    fields.append(Field(f"{prefix}.section0.size", section + 32 + word, word))


def walk_signature(data, start, size, fields, regions) -> None:
    regions.append(Region("signature", start, size))
    (count,) = struct.unpack_from(">I", data, start + 8)
    fields += [
        Field("superblob.length", start + 4, 4, "big"),
        Field("superblob.count", start + 8, 4, "big"),
    ]
    for index in range(count):
        entry = start + 12 + 8 * index
        slot, blob_offset = struct.unpack_from(">II", data, entry)
        fields += [
            Field(f"index[{index}].type", entry, 4, "big"),
            Field(f"index[{index}].offset", entry + 4, 4, "big"),
        ]
        blob = start + blob_offset
        blob_magic, blob_length = struct.unpack_from(">II", data, blob)
        regions.append(Region(f"blob {slot:#x} ({blob_magic:#x})", blob, blob_length))
        fields.append(Field(f"blob {slot:#x}.length", blob + 4, 4, "big"))
        if blob_magic == CODE_DIRECTORY_MAGIC:
            for name, at, width in CODE_DIRECTORY_FIELDS:
                fields.append(Field(f"cd {slot:#x}.{name}", blob + at, width, "big"))


def changed_signed_bytes(seed: Seed, mutant: bytes) -> bool:
    """Whether a byte some slice's signature covers differs (or is gone) in the mutant."""
    return any(
        len(mutant) < end or mutant[start:end] != seed.data[start:end] for start, end in seed.signed
    )


# --- Seeds -----------------------------------------------------------------------------------


def build(folder: Path, name: str, target: str, kind: str = "exe") -> bytes:
    """A Mach-O file from Debian's clang and lld (scripts/system-packages installs them)."""
    source = folder / f"{name}.c"
    source.write_text(SOURCE if kind == "exe" else LIBRARY)
    output = folder / name
    flags = ["-Wl,-e,_main"] if kind == "exe" else ["-dynamiclib"]
    clang = shutil.which("clang")
    if clang is None:
        raise SystemExit("clang and lld are needed: scripts/system-packages installs them.")
    command = [
        clang,
        "-target",
        target,
        "-fuse-ld=lld",
        "-nostdlib",
        *flags,
        str(source),
        "-o",
        str(output),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    return output.read_bytes()


def universal(*slices: bytes) -> bytes:
    """A fat file of thin ``slices``, laid out by our own writer (lipo's alignment)."""
    return build_universal([Slice(*struct.unpack_from("<II", data, 4), data) for data in slices])


def unsigned_seeds(folder: Path) -> dict[str, bytes]:
    arm64 = build(folder, "arm64-exe", "arm64-apple-macos11")
    x86_64 = build(folder, "x86_64-exe", "x86_64-apple-macos10.12")
    return {
        "arm64-exe": arm64,
        "x86_64-exe": x86_64,
        "arm64-dylib": build(folder, "arm64-dylib", "arm64-apple-macos11", "dylib"),
        "universal-exe": universal(x86_64, arm64),
    }


def make_seeds(unsigned: dict[str, bytes], signer, extra: list[Path]) -> list[Seed]:
    """Each of ``unsigned``, as it is, ad-hoc signed and signed with ``signer``; and ``extra``
    files."""
    seeds = []
    for name, data in unsigned.items():
        options = SigningOptions(identifier=f"com.example.{name}")
        seeds += [
            seed(f"{name} unsigned", data),
            seed(f"{name} ad-hoc", sign_macho(data, None, options)),
            seed(f"{name} signed", sign_macho(data, signer, options)),
        ]
    return seeds + [seed(path.name, path.read_bytes()) for path in extra]


def seed(name: str, data: bytes) -> Seed:
    fields_and_regions, signed = layout(data)
    return Seed(name, data, fields_and_regions, signed)


def is_macho(data: bytes) -> bool:
    return len(data) >= 8 and (
        struct.unpack_from(">I", data)[0] == FAT_MAGIC
        or struct.unpack_from("<I", data)[0] in THIN_MAGICS
    )


# --- The trial -------------------------------------------------------------------------------


class MachOTarget:
    name = "macho"

    def __init__(self, seeds: list[Seed], limits: Limits):
        self.seeds = seeds
        self.limits = limits

    def make(self, rng: random.Random, folder: Path) -> tuple[str, Callable[[], None]]:
        """A mutant in ``folder``: what was done, and the check to run on it."""
        chosen = rng.choice(self.seeds)
        mutant, steps = mutate(rng, chosen.data, chosen.layout, rng.choice((1, 1, 2, 3)))
        path = folder / "tool"
        path.write_bytes(mutant)
        path.chmod(0o755)
        (folder / "beside.txt").write_text("not the input\n")
        return f"{chosen.name}: {'; '.join(steps)}", lambda: self.check(
            chosen, mutant, path, folder
        )

    def check(self, chosen: Seed, mutant: bytes, path: Path, folder: Path) -> None:
        before, beside = snapshot(folder), snapshot(folder, leave_out=path)
        problems = f"{path}: "  # -v lists problems, one line each, naming the file
        verdict = checked_cli("codesign", "-v", path, limits=self.limits, line_prefix=problems)
        if verdict.status == 0 and changed_signed_bytes(chosen, mutant):
            raise Finding("codesign -v accepted a file whose signed bytes changed")
        # -d describes the signature on stderr, in many lines.
        checked_cli("codesign", "-d", "-vvv", path, limits=self.limits, line_prefix="")
        expect_unchanged(before, snapshot(folder), "checking changed files")
        signing = checked_cli("codesign", "-f", "-s", "-", path, limits=self.limits)
        if signing.status == 0:
            expect_unchanged(beside, snapshot(folder, leave_out=path), "signing wrote elsewhere")
            after = checked_cli("codesign", "-v", path, limits=self.limits, line_prefix=problems)
            if after.status != 0:
                raise Finding(f"signed, then refused by codesign -v: {after.stderr.strip()}")
        else:
            expect_unchanged(before, snapshot(folder), "a refused file changed")
