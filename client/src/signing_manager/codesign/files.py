"""Reading files to sign without copying them whole, and writing signed files atomically.

A signed Mach-O is mostly its input unchanged, so the input is mapped (``mmap``) rather than
read, and the output is written as a list of buffers (patched first pages, the untouched
rest as a view of the mapping, the signature). Packages and files signed whole are read a
chunk (1 MiB) at a time instead (``read_chunks``): a mapping's pages count in the process's
memory once touched, and these inputs run to gigabytes. Every output goes to a temporary file
beside its target and is renamed over it only when all outputs of one operation are written:
the inputs stay whole if anything fails.
"""

from __future__ import annotations

import mmap
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from signing_manager.errors import SigningManagerError

Chunks = list  # buffers (bytes, bytearray, memoryview) to write one after the other
# What a streaming read holds at once: large enough that system calls cost nothing next to
# hashing, small enough that memory stays flat.
CHUNK = 1 << 20


class FileError(SigningManagerError):
    pass


def open_regular(path: Path) -> BinaryIO:
    """The file opened for reading, once it is known to be a regular file (else ``FileError``)."""
    try:
        handle = open(path, "rb", opener=open_without_waiting)  # noqa: SIM115 - returned
    except OSError as error:
        raise FileError(f"Cannot read {path}: {error.strerror or error}.") from None
    if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
        handle.close()
        raise FileError(f"{path} is not a regular file.")
    return handle


def open_without_waiting(name: str, flags: int) -> int:
    # Not blocking: opening a FIFO would otherwise wait for a writer forever.
    return os.open(name, flags | getattr(os, "O_NONBLOCK", 0))


def map_file(path: Path):
    """The file's bytes as a read-only buffer (a memory map; empty files as ``b""``)."""
    with open_regular(path) as handle:
        try:
            if os.fstat(handle.fileno()).st_size == 0:
                return b""
            if hasattr(mmap, "MAP_POPULATE"):  # fault the pages in at once, not one by one
                flags = mmap.MAP_PRIVATE | mmap.MAP_POPULATE
                mapping = mmap.mmap(handle.fileno(), 0, flags=flags, prot=mmap.PROT_READ)
            else:
                mapping = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as error:
            raise FileError(f"Cannot read {path}: {error.strerror or error}.") from None
    return memoryview(mapping)


def read_chunks(handle: BinaryIO, start: int, size: int) -> Iterator[bytes]:
    """``size`` bytes of an open file from ``start``, at most ``CHUNK`` at a time. A file that
    ends early (it shrank while it was read) or fails to read is a ``FileError``."""
    position, end = start, start + size
    while position < end:
        try:
            handle.seek(position)  # each time: the caller may read elsewhere between chunks
            chunk = handle.read(min(CHUNK, end - position))
        except OSError as error:
            raise FileError(f"Cannot read {handle.name}: {error.strerror or error}.") from None
        if not chunk:
            raise FileError(f"{handle.name} got shorter while it was read.")
        position += len(chunk)
        yield chunk


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


@contextmanager
def replacing(path: Path) -> Iterator[Replacement]:
    """A ``Replacement`` of ``path`` to write into, as much and as late as the block likes: it
    replaces ``path`` when the block ends (one file, written whole or not at all), and
    vanishes if the block fails. Created first, so that a folder that cannot be written is
    found before any work is done."""
    output = Replacement(path)
    try:
        yield output
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
