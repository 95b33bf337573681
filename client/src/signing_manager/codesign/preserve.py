"""``--preserve-metadata``: what a new signature keeps of the one it replaces.

Apple's codesign(1) names the items: ``identifier`` (the CodeDirectory's identifier),
``entitlements`` (the XML entitlements blob, slot 5; the DER form is made again from it),
``requirements`` (the internal requirements set, slot 2, byte for byte), ``flags`` (the
CodeDirectory's option flags: hardened runtime, library validation, kill, hard, restrict, ...)
and ``runtime`` (the hardened runtime version the CodeDirectory records). What the command line
gives explicitly (``-i``, ``--entitlements``, ``--options``) wins over what is kept, as there.
"""

from __future__ import annotations

from dataclasses import replace

from signing_manager.codesign.blobs import BlobMagic, Slot, SuperBlob, blob_payload
from signing_manager.codesign.code_directory import CodeDirectory, CodeDirectoryFlag
from signing_manager.codesign.macho import MachO
from signing_manager.errors import ConfigurationError, SigningManagerError

PRESERVABLE = ("identifier", "entitlements", "requirements", "flags", "runtime")
# Flags that describe how a signature was made, not options of the code: never carried over.
SIGNATURE_KIND_FLAGS = CodeDirectoryFlag.ADHOC | CodeDirectoryFlag.LINKER_SIGNED


def preserve_list(value: str | None) -> frozenset[str]:
    """The items of ``--preserve-metadata[=LIST]``; bare, every item."""
    if value is None:
        return frozenset()
    names = {name.strip() for name in value.split(",") if name.strip()}
    unknown = names - set(PRESERVABLE)
    if unknown:
        raise ConfigurationError(
            f"--preserve-metadata does not know {', '.join(sorted(unknown))}; "
            f"it keeps: {', '.join(PRESERVABLE)}."
        )
    return frozenset(names or PRESERVABLE)


def keep_metadata(macho: MachO, options):
    """``options`` with what the slice's current signature holds of ``options.preserve``
    (less what was given explicitly); unchanged for code that is not signed yet."""
    wanted = options.preserve - options.explicit
    if not wanted or not macho.signature_data:
        return options
    try:
        entries = SuperBlob.parse(macho.signature_data, BlobMagic.EMBEDDED_SIGNATURE).entries
        directory = CodeDirectory.parse(entries[Slot.CODE_DIRECTORY])
        if directory.flags & CodeDirectoryFlag.LINKER_SIGNED:
            return options  # the linker's signature holds nothing chosen by anyone
        entitlements = entries.get(Slot.ENTITLEMENTS)
        changes = {
            "identifier": {"identifier": directory.identifier},
            "entitlements": {
                "entitlements": blob_payload(entitlements, BlobMagic.ENTITLEMENTS)
                if entitlements
                else None
            },
            "requirements": {"requirements": entries.get(Slot.REQUIREMENTS)},
            "flags": {
                "flags": directory.flags & ~(SIGNATURE_KIND_FLAGS | CodeDirectoryFlag.RUNTIME),
                "runtime": bool(directory.flags & CodeDirectoryFlag.RUNTIME),
            },
            "runtime": {"runtime_version": directory.runtime or None},
        }
    except (SigningManagerError, KeyError):
        raise SigningManagerError(
            "The current signature cannot be read, so nothing of it can be preserved."
        ) from None
    kept = {}
    for name in sorted(wanted):
        kept.update(changes[name])
    return replace(options, **kept)
