"""Thin Mach-O files: the header, load commands, segments and the code-signature command.

Specified by Apple's ``mach-o/loader.h`` (reference section 2). A slice starts with
``mach_header`` (28 bytes) or ``mach_header_64`` (32 bytes): magic, cputype, cpusubtype,
filetype, ncmds, sizeofcmds, flags (, reserved), in the slice's own byte order (little-endian
for every CPU we sign). ``ncmds`` load commands follow, each ``cmd u32, cmdsize u32, ...``.
What signing needs: ``LC_SEGMENT(_64)`` (name, vm and file ranges, sections), the
``LC_CODE_SIGNATURE`` ``linkedit_data_command`` (dataoff, datasize into ``__LINKEDIT``), and the
deployment target from ``LC_BUILD_VERSION`` or ``LC_VERSION_MIN_*``.

Only what is read is modelled; ``with_signature_space`` writes the few fields signing changes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from signing_manager.errors import SigningManagerError


class MalformedMachO(SigningManagerError):
    """A file is not Mach-O, or its structures do not fit inside it."""


class Magic(IntEnum):
    MH_MAGIC = 0xFEEDFACE
    MH_MAGIC_64 = 0xFEEDFACF


class CpuType(IntEnum):
    X86 = 0x7
    X86_64 = 0x01000007
    ARM = 0xC
    ARM64 = 0x0100000C
    ARM64_32 = 0x0200000C
    POWERPC = 0x12
    POWERPC64 = 0x01000012


CPU_NAMES = {
    CpuType.X86: "i386",
    CpuType.X86_64: "x86_64",
    CpuType.ARM: "arm",
    CpuType.ARM64: "arm64",
    CpuType.ARM64_32: "arm64_32",
    CpuType.POWERPC: "ppc",
    CpuType.POWERPC64: "ppc64",
}


class FileType(IntEnum):
    OBJECT = 1
    EXECUTE = 2
    DYLIB = 6
    DYLINKER = 7
    BUNDLE = 8


class LoadCommand(IntEnum):
    SEGMENT = 0x1
    SEGMENT_64 = 0x19
    CODE_SIGNATURE = 0x1D
    VERSION_MIN_MACOSX = 0x24
    VERSION_MIN_IPHONEOS = 0x25
    VERSION_MIN_TVOS = 0x2F
    VERSION_MIN_WATCHOS = 0x30
    BUILD_VERSION = 0x32


class Platform(IntEnum):
    MACOS = 1
    IOS = 2
    TVOS = 3
    WATCHOS = 4


VERSION_MIN_PLATFORMS = {
    LoadCommand.VERSION_MIN_MACOSX: Platform.MACOS,
    LoadCommand.VERSION_MIN_IPHONEOS: Platform.IOS,
    LoadCommand.VERSION_MIN_TVOS: Platform.TVOS,
    LoadCommand.VERSION_MIN_WATCHOS: Platform.WATCHOS,
}
ZEROFILL_TYPES = {0x1, 0xC, 0x12}  # S_ZEROFILL, S_GB_ZEROFILL, S_THREAD_LOCAL_ZEROFILL


def version_text(packed: int) -> str:
    """``xxxx.yy.zz`` nibble-packed, as load commands and CodeDirectories store versions."""
    return f"{packed >> 16}.{(packed >> 8) & 0xFF}.{packed & 0xFF}"


def version(major: int, minor: int = 0, patch: int = 0) -> int:
    return (major << 16) | (minor << 8) | patch


@dataclass(frozen=True)
class Section:
    segment: str
    name: str
    size: int
    offset: int
    flags: int

    @property
    def occupies_file(self) -> bool:
        return self.offset != 0 and (self.flags & 0xFF) not in ZEROFILL_TYPES


@dataclass(frozen=True)
class Segment:
    name: str
    vmaddr: int
    vmsize: int
    fileoff: int
    filesize: int
    command_offset: int  # where its load command starts in the slice
    sections: tuple[Section, ...]

    @property
    def file_end(self) -> int:
        return self.fileoff + self.filesize


@dataclass(frozen=True)
class CodeSignatureCommand:
    command_offset: int
    dataoff: int
    datasize: int


@dataclass(frozen=True)
class DeploymentTarget:
    platform: int
    minimum: int  # nibble-packed
    sdk: int


@dataclass
class MachO:
    """One architecture's Mach-O image, parsed from (and keeping) its bytes."""

    data: bytes
    is_64: bool
    cputype: int
    cpusubtype: int
    filetype: int
    ncmds: int
    sizeofcmds: int
    segments: list[Segment]
    code_signature: CodeSignatureCommand | None
    target: DeploymentTarget | None

    @property
    def header_size(self) -> int:
        return 32 if self.is_64 else 28

    @property
    def architecture(self) -> str:
        return CPU_NAMES.get(self.cputype, f"cpu {self.cputype:#x}")

    @classmethod
    def parse(cls, data: bytes) -> MachO:
        if len(data) < 28:
            raise MalformedMachO("The file is too short to be Mach-O.")
        (magic,) = struct.unpack_from("<I", data)
        if magic not in (Magic.MH_MAGIC, Magic.MH_MAGIC_64):
            raise MalformedMachO(f"Not a Mach-O file (magic {data[:4].hex()}).")
        is_64 = magic == Magic.MH_MAGIC_64
        header_size = 32 if is_64 else 28
        cputype, cpusubtype, filetype, ncmds, sizeofcmds = struct.unpack_from("<iIIII", data, 4)
        if header_size + sizeofcmds > len(data):
            raise MalformedMachO("The Mach-O load commands run past the end of the file.")
        macho = cls(data, is_64, cputype & 0xFFFFFFFF, cpusubtype, filetype, ncmds, sizeofcmds,
                    [], None, None)  # fmt: skip
        macho._read_commands(header_size)
        return macho

    def _read_commands(self, offset: int) -> None:
        end = offset + self.sizeofcmds
        for _ in range(self.ncmds):
            if offset + 8 > end:
                raise MalformedMachO("A Mach-O load command runs past the load commands.")
            command, size = struct.unpack_from("<II", self.data, offset)
            if size < 8 or offset + size > end:
                raise MalformedMachO(f"A Mach-O load command ({command:#x}) has a bad size.")
            self._read_command(command, offset, size)
            offset += size
        # Commands that do not fill sizeofcmds hide bytes from us: a command past ncmds (an old
        # LC_CODE_SIGNATURE, say) that the signed file would then bring back into view.
        if offset != end:
            raise MalformedMachO("The Mach-O load commands do not fill their recorded size.")

    def _read_command(self, command: int, offset: int, size: int) -> None:
        if command in (LoadCommand.SEGMENT, LoadCommand.SEGMENT_64):
            self.segments.append(self._segment(command, offset, size))
        elif command == LoadCommand.CODE_SIGNATURE:
            if size < 16:
                raise MalformedMachO("The LC_CODE_SIGNATURE command is too short.")
            dataoff, datasize = struct.unpack_from("<II", self.data, offset + 8)
            if dataoff + datasize > len(self.data):
                raise MalformedMachO("The code signature lies past the end of the file.")
            self.code_signature = CodeSignatureCommand(offset, dataoff, datasize)
        elif command == LoadCommand.BUILD_VERSION and size >= 24:
            self.target = DeploymentTarget(*struct.unpack_from("<III", self.data, offset + 8))
        elif command in VERSION_MIN_PLATFORMS and size >= 16:
            minimum, sdk = struct.unpack_from("<II", self.data, offset + 8)
            self.target = DeploymentTarget(VERSION_MIN_PLATFORMS[command], minimum, sdk)

    def _segment(self, command: int, offset: int, size: int) -> Segment:
        wide = command == LoadCommand.SEGMENT_64
        layout, section_layout = ("<16sQQQQiiII", "<16s16sQQIIIIIIII") if wide else (
            "<16sIIIIiiII", "<16s16sIIIIIIIII")  # fmt: skip
        fixed, section_size = (72, 80) if wide else (56, 68)
        if size < fixed:
            raise MalformedMachO("A Mach-O segment command is too short.")
        name, vmaddr, vmsize, fileoff, filesize, _, _, nsects, _ = struct.unpack_from(
            layout, self.data, offset + 8
        )
        if fixed + nsects * section_size > size:
            raise MalformedMachO("A Mach-O segment's sections run past its command.")
        if fileoff + filesize > len(self.data):
            raise MalformedMachO(f"Segment {cstring(name)} lies past the end of the file.")
        sections = []
        for number in range(nsects):
            fields = struct.unpack_from(
                section_layout, self.data, offset + fixed + number * section_size
            )
            sectname, segname, _, sectsize, sectoff, _, _, _, flags = fields[:9]
            sections.append(Section(cstring(segname), cstring(sectname), sectsize, sectoff, flags))
        return Segment(cstring(name), vmaddr, vmsize, fileoff, filesize, offset, tuple(sections))

    def segment(self, name: str) -> Segment | None:
        return next((s for s in self.segments if s.name == name), None)

    @property
    def linkedit(self) -> Segment:
        linkedit = self.segment("__LINKEDIT")
        if linkedit is None:
            raise MalformedMachO("The Mach-O file has no __LINKEDIT segment to hold a signature.")
        return linkedit

    def section_data(self, segment: str, name: str) -> bytes | None:
        for current in self.segments:
            for section in current.sections:
                if (section.segment, section.name) == (segment, name) and section.occupies_file:
                    return bytes(self.data[section.offset : section.offset + section.size])
        return None

    @property
    def signature_data(self) -> bytes | None:
        if self.code_signature is None:
            return None
        start = self.code_signature.dataoff
        return bytes(self.data[start : start + self.code_signature.datasize])

    @property
    def free_after_commands(self) -> int:
        """Bytes between the end of the load commands and the first section or segment data."""
        starts = [s.offset for seg in self.segments for s in seg.sections if s.occupies_file]
        starts += [seg.fileoff for seg in self.segments if seg.fileoff and seg.filesize]
        return min(starts, default=len(self.data)) - self.header_size - self.sizeofcmds

    def unsigned_end(self) -> int:
        """Where the signature goes: the old one's place, or the end of ``__LINKEDIT``.

        Signing needs ``__LINKEDIT`` last and nothing after it but the signature, and no other
        segment reaching into the signature: the new one may be shorter, and a segment past
        the end of the file would not load (nor verify)."""
        linkedit = self.linkedit
        if max(self.segments, key=lambda s: s.fileoff) is not linkedit:
            raise MalformedMachO("__LINKEDIT is not the last segment; this file cannot be signed.")
        if linkedit.file_end != len(self.data):
            raise MalformedMachO("The Mach-O file has data after __LINKEDIT; it cannot be signed.")
        end = linkedit.file_end
        if self.code_signature is not None:
            end = self.code_signature.dataoff
            if end < linkedit.fileoff or end + self.code_signature.datasize != linkedit.file_end:
                raise MalformedMachO("The existing signature is not at the end of __LINKEDIT.")
        elif self.free_after_commands < 16:
            raise MalformedMachO("There is no room after the load commands for a signature.")
        for segment in self.segments:
            if segment is not linkedit and segment.file_end > end:
                raise MalformedMachO(
                    f"Segment {segment.name} reaches into the code signature; this file cannot "
                    "be signed."
                )
        return end

    def patched_head(self, signature_offset: int, signature_size: int) -> bytearray:
        """The slice's first pages (header and load commands, whole 4 KiB pages up to where
        the signature goes) with LC_CODE_SIGNATURE and ``__LINKEDIT`` sized for a signature of
        ``signature_size`` bytes at ``signature_offset``; the rest of the slice is unchanged."""
        commands_end = self.header_size + self.sizeofcmds + 16
        head = bytearray(self.data[: min(round_up(commands_end, 4096), self.unsigned_end())])
        if self.code_signature is None:
            command_offset = self.header_size + self.sizeofcmds
            struct.pack_into("<II", head, 16, self.ncmds + 1, self.sizeofcmds + 16)
        else:
            command_offset = self.code_signature.command_offset
        struct.pack_into("<IIII", head, command_offset, LoadCommand.CODE_SIGNATURE, 16,
                         signature_offset, signature_size)  # fmt: skip
        linkedit = self.linkedit
        filesize = signature_offset + signature_size - linkedit.fileoff
        sizes = (linkedit.vmaddr, round_up(filesize, 0x4000), linkedit.fileoff, filesize)
        layout = "<QQQQ" if self.is_64 else "<IIII"
        struct.pack_into(layout, head, linkedit.command_offset + 24, *sizes)
        return head


def cstring(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple
