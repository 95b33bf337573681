"""Reading files to sign without copying them whole, and writing signed files atomically.

A signed Mach-O is mostly its input unchanged, so the input is mapped (``mmap``) rather than
read, and the output is written as a list of buffers (patched first pages, the untouched
rest as a view of the mapping, the signature). Packages and files signed whole are read a
chunk (1 MiB) at a time instead (``read_chunks``): a mapping's pages count in the process's
memory once touched, and these inputs run to gigabytes. What such an output takes unchanged from
its input is copied on a second thread while the first reads and hashes (``copying``), in the
kernel where it can (``os.copy_file_range``: no byte passes through Python), else through
``os.pread`` and ``os.pwrite``. Every output goes to a temporary file beside its target and is
renamed over it only when all outputs of one operation are written: the inputs stay whole if
anything fails.
"""

from __future__ import annotations

import errno
import io
import mmap
import os
import stat
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from signing_manager.errors import SigningManagerError

Chunks = list  # buffers (bytes, bytearray, memoryview) to write one after the other
# What a streaming read holds at once: large enough that system calls cost nothing next to
# hashing, small enough that memory stays flat.
CHUNK = 1 << 20
# What the copying thread asks the kernel for at once: a stop (the reading thread found damage)
# takes effect within one piece.
COPY_PIECE = 64 << 20
# Files can be copied at given offsets without moving the readers' file positions (not on
# Windows, which keeps the copy in line with the reading).
CAN_COPY_RANGES = hasattr(os, "pread") and hasattr(os, "pwrite")
# What copy_file_range answers for a pair of files it cannot copy between (another file
# system, an old kernel, a sandbox that forbids the call): the copy goes through user space.
KERNEL_COPY_REFUSED = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP,
                       errno.EPERM}  # fmt: skip
Range = tuple[int, int, int]  # where a copy starts in the source, where it goes, its size
# An output's written data is handed to the kernel's writeback this much at a time (``write``).
WRITEBACK_WINDOW = 16 << 20
CAN_START_WRITEBACK = hasattr(os, "posix_fadvise")


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


def descriptor(handle) -> int | None:
    """The OS-level file descriptor behind ``handle``; None for one in memory (``BytesIO``)."""
    try:
        return handle.fileno()
    except (io.UnsupportedOperation, AttributeError):
        return None


def kernel_copy(source: int, target: int, start: int, position: int, size: int) -> int:
    return os.copy_file_range(source, target, size, start, position)


def user_copy(source: int, target: int, start: int, position: int, size: int) -> int:
    data = memoryview(os.pread(source, min(size, CHUNK), start))
    written = 0
    while written < len(data):
        written += os.pwrite(target, data[written:], position + written)
    return len(data)


def copy_range(
    source: int, target: int, copied: Range, stop: threading.Event | None = None
) -> None:
    """Copy a range between two open files without moving either's file position: in the
    kernel where it can, else a chunk at a time through Python. A source that ends early is a
    ``FileError``; ``stop``, once set, ends the copy where it is."""
    start, position, size = copied
    copy = kernel_copy if hasattr(os, "copy_file_range") else user_copy
    end = start + size
    while start < end and not (stop is not None and stop.is_set()):
        try:
            done = copy(source, target, start, position, min(COPY_PIECE, end - start))
        except OSError as error:
            if copy is user_copy or error.errno not in KERNEL_COPY_REFUSED:
                raise
            done = 0
        if not done:
            if copy is user_copy:
                raise FileError("The input got shorter while it was copied.")
            copy = user_copy  # refused, or 0 where the source goes on (FUSE, /proc)
            continue
        start, position = start + done, position + done


@contextmanager
def copying(source: int, target: int, ranges: list[Range]) -> Iterator[None]:
    """The ranges copied from ``source`` into ``target`` on a second thread while the block
    runs (which reads and hashes the same input meanwhile); done when the block ends. An error
    in the block stops the copy and is the one raised; else the copy's own error is. The two
    threads read the source apart, so a source written to meanwhile is a ``FileError``: what
    was copied might not be what was checked."""
    stop = threading.Event()
    before = version_of(source)

    def copy_all() -> None:
        for copied in ranges:
            copy_range(source, target, copied, stop)

    with ThreadPoolExecutor(max_workers=1) as pool:
        copied = pool.submit(copy_all)
        try:
            yield
        except BaseException:
            stop.set()
            raise
        copied.result()
    if version_of(source) != before:
        raise FileError("The input changed while it was copied.")


def version_of(descriptor: int) -> tuple[int, int, int]:
    """What changes when a file is written to: its size, modification and change times (the
    times move by the kernel's clock tick, a few milliseconds)."""
    status = os.fstat(descriptor)
    return status.st_size, status.st_mtime_ns, status.st_ctime_ns


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
        self.written = self.written_back = 0

    def write(self, chunks: Chunks) -> None:
        """Write the buffers, starting the kernel's writeback of each window as it is written.

        Renaming a new file over an existing one makes ext4 allocate and start writing all of
        the new file's data first (its ``auto_da_alloc``), in the rename's caller: 60-90 ms for
        256 MiB on our build machines, after the hashing. Started here, on the writing thread,
        that work overlaps the hashing (bench/README.md). ``POSIX_FADV_DONTNEED`` starts the
        writeback of the range's dirty pages without waiting for it (Linux); it drops only pages
        already clean, and elsewhere it is at most a hint."""
        for chunk in chunks:
            view = memoryview(chunk).cast("B")
            for start in range(0, len(view), WRITEBACK_WINDOW):
                window = view[start : start + WRITEBACK_WINDOW]
                self.handle.write(window)
                self.written += len(window)
                if self.written - self.written_back >= WRITEBACK_WINDOW:
                    self.start_writeback()

    def start_writeback(self) -> None:
        if CAN_START_WRITEBACK:
            self.handle.flush()
            size = self.written - self.written_back
            os.posix_fadvise(self.handle.fileno(), self.written_back, size, os.POSIX_FADV_DONTNEED)
        self.written_back = self.written

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
