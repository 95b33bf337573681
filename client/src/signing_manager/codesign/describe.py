"""What ``codesign -d`` prints, from our checks, in Apple's order and at Apple's verbosity.

``-d`` alone prints ``Executable=``; ``-dv`` adds ``Identifier=``, ``Format=``, the
``CodeDirectory v=… size=… flags=…(…) hashes=N+M location=embedded`` line, ``Signature size=``
(or ``Signature=adhoc``), ``Timestamp=``/``Signed Time=``, ``Info.plist entries=``,
``TeamIdentifier=``, ``Runtime Version=``, ``Sealed Resources`` and ``Internal requirements``;
``-dvv`` adds the ``Authority=`` lines (leaf first); ``-dvvv`` the hash lines (``Hash type=``,
``CandidateCDHash``, ``Hash choices=``, ``CMSDigest=``, ``CMSDigestType=``, ``CDHash=``);
``-dvvvv`` the executable segment and page size. The order is Apple's codesign (Security's
``codesign`` display code, as of macOS 14). Of a universal file, one architecture is shown, the
one a Mac would run (arm64e, arm64, then x86_64), unless ``-a`` or ``--all-architectures``.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from signing_manager.cms import common_name
from signing_manager.codesign.blobs import Slot
from signing_manager.codesign.code_directory import (
    EXEC_SEGMENT_VERSION,
    CodeDirectory,
    CodeDirectoryFlag,
)
from signing_manager.codesign.macho import version_text
from signing_manager.codesign.requirements import RequirementType, requirement_text
from signing_manager.codesign.verify import SliceCheck
from signing_manager.errors import SigningManagerError

FLAG_NAMES = {
    CodeDirectoryFlag.HOST: "host",
    CodeDirectoryFlag.ADHOC: "adhoc",
    CodeDirectoryFlag.FORCE_HARD: "hard",
    CodeDirectoryFlag.FORCE_KILL: "kill",
    CodeDirectoryFlag.FORCE_EXPIRATION: "expires",
    CodeDirectoryFlag.RESTRICT: "restrict",
    CodeDirectoryFlag.ENFORCEMENT: "enforcement",
    CodeDirectoryFlag.LIBRARY_VALIDATION: "library-validation",
    CodeDirectoryFlag.RUNTIME: "runtime",
    CodeDirectoryFlag.LINKER_SIGNED: "linker-signed",
}


def flags_text(flags: int) -> str:
    names = [name for flag, name in FLAG_NAMES.items() if flags & flag]
    return f"{flags:#x}({','.join(names) or 'none'})"


def format_text(architectures: list[str], bundle: str | None) -> str:
    kind = "universal" if len(architectures) > 1 else "thin"
    text = f"Mach-O {kind} ({' '.join(architectures)})"
    return f"{bundle} with {text}" if bundle else text


# Security's kSecCodeSignatureHash* numbers, which CMSDigestType prints.
DIGEST_TYPES = {"sha1": 1, "sha256": 2, "sha384": 4, "sha512": 5}
# Which slice of a universal file a Mac runs, most preferred first.
NATIVE_ORDER = ("arm64e", "arm64", "x86_64")


@dataclass(frozen=True)
class DisplayOptions:
    verbosity: int = 0
    architecture: str | None = None  # -a: this slice
    all_architectures: bool = False  # --all-architectures: every slice


@dataclass(frozen=True)
class Shown:
    """What is being described: the file (or bundle) and its main executable's checks."""

    path: Path
    executable: Path
    checks: list[SliceCheck]
    bundle_kind: str | None = None
    info: dict | None = None
    seal: dict | None = None


def chosen_slices(shown: Shown, options: DisplayOptions) -> list[SliceCheck]:
    architectures = [check.architecture for check in shown.checks]
    if options.all_architectures:
        return shown.checks
    if options.architecture:
        chosen = [c for c in shown.checks if c.architecture == options.architecture]
        if not chosen:
            raise SigningManagerError(
                f"There is no {options.architecture} architecture here, only "
                f"{', '.join(architectures)}."
            )
        return chosen
    for name in NATIVE_ORDER:
        if name in architectures:
            return [shown.checks[architectures.index(name)]]
    return shown.checks[:1]


def describe(shown: Shown, options: DisplayOptions = DisplayOptions()) -> str:
    """The ``codesign -d`` text for a file or a bundle's main executable."""
    return "".join(describe_slice(shown, check, options) for check in chosen_slices(shown, options))


def describe_slice(shown: Shown, check: SliceCheck, options: DisplayOptions) -> str:
    if not check.signed:
        return f"{shown.path}: code object is not signed at all\n"
    level = options.verbosity
    primary = check.primary
    lines = [f"Executable={shown.executable}"]
    if level >= 1:
        architectures = [c.architecture for c in shown.checks]
        lines.append(f"Identifier={primary.identifier}")
        lines.append(f"Format={format_text(architectures, shown.bundle_kind)}")
        lines.append(code_directory_line(check.best))
    if level >= 3:
        lines += hash_lines(check, detailed=level >= 4)
    if level >= 1:
        lines += signature_lines(check, with_authorities=level >= 2)
        info = shown.info
        lines.append(f"Info.plist entries={len(info)}" if info else "Info.plist=not bound")
        lines.append(f"TeamIdentifier={primary.team_id or 'not set'}")
        if check.best.runtime:
            lines.append(f"Runtime Version={version_text(check.best.runtime)}")
        lines += seal_lines(shown.seal)
        lines.append(requirements_line(check))
    return "\n".join(lines) + "\n"


def hash_lines(check: SliceCheck, detailed: bool) -> list[str]:
    best = check.best  # what Apple's tool shows: the CD the kernel would use
    lines = [f"Hash type={best.hash_type.hash_name} size={best.hash_type.size}"]
    for _, directory in check.code_directories:
        name = directory.hash_type.hash_name
        lines.append(f"CandidateCDHash {name}={directory.cdhash().hex()}")
        lines.append(f"CandidateCDHashFull {name}={directory.digest().hex()}")
    names = ",".join(directory.hash_type.hash_name for _, directory in check.code_directories)
    lines.append(f"Hash choices={names}")
    if check.cms_digest is not None:
        lines.append(f"CMSDigest={check.cms_digest.hex()}")
        lines.append(f"CMSDigestType={DIGEST_TYPES.get(check.cms_digest_name, 0)}")
    if detailed and best.version >= EXEC_SEGMENT_VERSION:
        lines.append(f"Executable Segment base={best.exec_segment_base}")
        lines.append(f"Executable Segment limit={best.exec_segment_limit}")
        lines.append(f"Executable Segment flags={best.exec_segment_flags:#x}")
    if detailed:
        lines.append(f"Page size={best.page_size}")
    lines.append(f"CDHash={best.cdhash().hex()}")
    return lines


def signature_lines(check: SliceCheck, with_authorities: bool) -> list[str]:
    if check.kind != "cms":
        return ["Signature=adhoc"]
    lines = [f"Signature size={check.signature_size}"]
    if with_authorities:
        lines += [f"Authority={common_name(certificate)}" for certificate in check.certificates]
    if check.timestamp:
        lines.append(f"Timestamp={apple_time(check.timestamp)}")
    elif check.signing_time:
        lines.append(f"Signed Time={apple_time(check.signing_time)}")
    return lines


def apple_time(moment: datetime.datetime) -> str:
    """Apple's form, in local time as there: ``Nov 3, 2025 at 4:05:09 PM``."""
    local = moment.astimezone()
    return f"{local:%b} {local.day}, {local.year} at {local.hour % 12 or 12}:{local:%M:%S %p}"


def code_directory_line(directory: CodeDirectory) -> str:
    return (
        f"CodeDirectory v={directory.version:x} size={len(directory.serialize())} "
        f"flags={flags_text(directory.flags)} "
        f"hashes={len(directory.code_hashes)}+{directory.special_slot_count} "
        "location=embedded"
    )


def requirements_line(check: SliceCheck) -> str:
    data = check.blobs.get(Slot.REQUIREMENTS)
    if data is None:
        return "Internal requirements=none"
    return f"Internal requirements count={len(check.requirements)} size={len(data)}"


def requirements_text(check: SliceCheck) -> str:
    """What ``codesign -d -r-`` prints on standard output: each internal requirement."""
    if not check.signed or Slot.REQUIREMENTS not in check.blobs:
        return ""
    names = {kind.value: kind.name.lower() for kind in RequirementType}
    return "".join(
        f"{names.get(kind, f'requirement {kind}')} => {requirement_text(expression)}\n"
        for kind, expression in sorted(check.requirements.items())
    )


def seal_lines(seal: dict | None) -> list[str]:
    if seal is None:
        return ["Sealed Resources=none"]
    rules = len(seal.get("rules2", {}))
    files = len(seal.get("files2", {}))
    return [f"Sealed Resources version=2 rules={rules} files={files}"]
