"""What ``codesign -d -vvv`` and ``codesign -v`` print, from our checks.

Lines follow Apple's tool (``Executable=``, ``Identifier=``, ``Format=``, ``CodeDirectory v=…
size=… flags=…(…) hashes=N+M location=embedded``, ``Hash type=``, ``CandidateCDHash``,
``CDHash=``, ``Signature size=``, ``Authority=``, ``Timestamp=``, ``Info.plist entries=``,
``TeamIdentifier=``, ``Sealed Resources``, ``Internal requirements``), one block per
architecture of a universal file.
"""

from __future__ import annotations

from pathlib import Path

from signing_manager.cms import common_name
from signing_manager.codesign.blobs import Slot
from signing_manager.codesign.code_directory import CodeDirectory, CodeDirectoryFlag
from signing_manager.codesign.macho import version_text
from signing_manager.codesign.requirements import RequirementType, requirement_text
from signing_manager.codesign.verify import SliceCheck

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


def describe(
    path: Path,
    executable: Path,
    checks: list[SliceCheck],
    *,
    bundle_kind: str | None = None,
    info: dict | None = None,
    seal: dict | None = None,
) -> str:
    """The ``codesign -dvvv`` text for a file or a bundle's main executable."""
    lines = [f"Executable={executable}"]
    signed = [check for check in checks if check.signed]
    if not signed:
        return f"{path}: code object is not signed at all\n"
    lines.append(f"Identifier={signed[0].primary.identifier}")
    lines.append(f"Format={format_text([c.architecture for c in checks], bundle_kind)}")
    for check in signed:
        if len(checks) > 1:
            lines.append(f"Architecture={check.architecture}")
        lines += slice_lines(check)
    lines.append(f"Info.plist entries={len(info)}" if info else "Info.plist=not bound")
    team = signed[0].primary.team_id
    lines.append(f"TeamIdentifier={team or 'not set'}")
    lines += seal_lines(seal)
    return "\n".join(lines) + "\n"


def slice_lines(check: SliceCheck) -> list[str]:
    best = check.best  # what Apple's tool shows: the CD the kernel would use
    lines = [code_directory_line(best)]
    if best.runtime:
        lines.append(f"Runtime Version={version_text(best.runtime)}")
    lines.append(f"Hash type={best.hash_type.hash_name} size={best.hash_type.size}")
    for _, directory in check.code_directories:
        name = directory.hash_type.hash_name
        lines.append(f"CandidateCDHash {name}={directory.cdhash().hex()}")
        lines.append(f"CandidateCDHashFull {name}={directory.digest().hex()}")
    names = ",".join(directory.hash_type.hash_name for _, directory in check.code_directories)
    lines.append(f"Hash choices={names}")
    lines.append(f"CDHash={check.best.cdhash().hex()}")
    if check.kind != "cms":
        lines.append("Signature=adhoc")
    else:
        lines.append(f"Signature size={check.signature_size}")
        lines += [f"Authority={common_name(certificate)}" for certificate in check.certificates]
        if check.timestamp:
            lines.append(f"Timestamp={check.timestamp:%b %d, %Y at %H:%M:%S %Z}")
        elif check.signing_time:
            lines.append(f"Signed Time={check.signing_time:%b %d, %Y at %H:%M:%S %Z}")
    lines += requirement_lines(check)
    entitlements = check.blobs.get(Slot.ENTITLEMENTS)
    if entitlements:
        lines.append(f"Entitlements size={len(entitlements) - 8}")
    return lines


def code_directory_line(directory: CodeDirectory) -> str:
    return (
        f"CodeDirectory v={directory.version:x} size={len(directory.serialize())} "
        f"flags={flags_text(directory.flags)} "
        f"hashes={len(directory.code_hashes)}+{directory.special_slot_count} "
        "location=embedded"
    )


def requirement_lines(check: SliceCheck) -> list[str]:
    data = check.blobs.get(Slot.REQUIREMENTS)
    if data is None:
        return ["Internal requirements=none"]
    requirements = check.requirements
    lines = [f"Internal requirements count={len(requirements)} size={len(data)}"]
    designated = requirements.get(RequirementType.DESIGNATED)
    if designated is not None:
        lines.append(f"designated => {requirement_text(designated)}")
    return lines


def seal_lines(seal: dict | None) -> list[str]:
    if seal is None:
        return ["Sealed Resources=none"]
    rules = len(seal.get("rules2", {}))
    files = len(seal.get("files2", {}))
    return [f"Sealed Resources version=2 rules={rules} files={files}"]
