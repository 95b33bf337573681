"""Reading code to sign without copying it, and writing signed files atomically.

A signed Mach-O is mostly its input unchanged, so the input is mapped (``mmap``) rather than
read, and the output is written as a list of buffers (patched first pages, the untouched
rest as a view of the mapping, the signature). Every output goes to a temporary file beside
its target and is renamed over it only when all outputs of one operation are written: the
inputs stay whole if anything fails.
"""

from __future__ import annotations

import mmap
import os
import stat
import tempfile
from pathlib import Path

from signing_manager.errors import SigningManagerError

Chunks = list  # buffers (bytes, bytearray, memoryview) to write one after the other


class FileError(SigningManagerError):
    pass


def map_file(path: Path):
    """The file's bytes as a read-only buffer (a memory map; empty files as ``b""``)."""
    try:
        # Not blocking: opening a FIFO would otherwise wait for a writer forever.
        with os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as handle:
            status = os.fstat(handle.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise FileError(f"{path} is not a regular file.")
            if status.st_size == 0:
                return b""
            if hasattr(mmap, "MAP_POPULATE"):  # fault the pages in at once, not one by one
                flags = mmap.MAP_PRIVATE | mmap.MAP_POPULATE
                mapping = mmap.mmap(handle.fileno(), 0, flags=flags, prot=mmap.PROT_READ)
            else:
                mapping = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as error:
        raise FileError(f"Cannot read {path}: {error.strerror or error}.") from None
    return memoryview(mapping)


class Replacement:
    """A temporary file beside ``path`` that replaces it on ``commit`` (keeping the old file's
    permission bits; a new file gets those of any new file) or vanishes on ``discard``.
    ``make_folder`` creates a missing folder (a bundle's ``_CodeSignature``) and removes it
    again on ``discard``."""

    def __init__(self, path: Path, make_folder: bool = False):
        self.path = path
        folder = path.parent if str(path.parent) else Path(".")
        self.new_folder = None
        if make_folder and not folder.exists():
            folder.mkdir(parents=True)
            self.new_folder = folder
        descriptor, name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.")
        self.temporary = Path(name)
        self.handle = os.fdopen(descriptor, "wb")

    def write(self, chunks: Chunks) -> None:
        for chunk in chunks:
            self.handle.write(chunk)

    def write_at(self, position: int, data: bytes) -> None:
        self.handle.seek(position)
        self.handle.write(data)

    def commit(self) -> None:
        self.handle.close()
        mode = self.path.stat().st_mode & 0o7777 if self.path.exists() else 0o666 & ~umask()
        os.chmod(self.temporary, mode)
        os.replace(self.temporary, self.path)

    def discard(self) -> None:
        self.handle.close()
        self.temporary.unlink(missing_ok=True)
        if self.new_folder is not None:
            self.new_folder.rmdir()


def write_atomically(path: Path, data: bytes) -> None:
    """One file, written whole or not at all."""
    output = Replacement(path)
    try:
        output.write([data])
        output.commit()
    except BaseException:
        output.discard()
        raise


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_all(outputs: list[tuple[Path, bytes | Chunks]]) -> None:
    """Write every output to a temporary file first; rename them all only when all are written."""
    replacements: list[Replacement] = []
    try:
        for path, data in outputs:
            replacements.append(Replacement(path, make_folder=True))
            replacements[-1].write([data] if isinstance(data, bytes | bytearray) else data)
        for replacement in replacements:
            replacement.handle.flush()
    except OSError as error:
        for replacement in replacements:
            replacement.discard()
        raise FileError(f"Cannot write the signed files: {error.strerror or error}.") from None
    for replacement in replacements:
        replacement.commit()
