"""Copying ranges between files (``files.copy_range`` and ``files.copying``): in the kernel where
it can, through ``pread``/``pwrite`` where it cannot, with neither file's position moved, and
stopped by an error of the thread that reads meanwhile; and writing a replacement with its
writeback started as it is written (``files.Replacement``)."""

from __future__ import annotations

import errno
import io
import itertools
import os
import threading
import time

import pytest

from signing_manager.codesign import files

DATA = bytes(range(256)) * 40  # 10,240 bytes, no two neighbours alike


@pytest.fixture
def pair(tmp_path):
    """A source holding ``DATA`` and an empty target, both open (closed after the test)."""
    (tmp_path / "source").write_bytes(DATA)
    source, target = (tmp_path / "source").open("rb"), (tmp_path / "target").open("w+b")
    yield source, target
    source.close()
    target.close()


@pytest.fixture(params=["kernel", "user"])
def mode(request, monkeypatch):
    """Each way of copying: copy_file_range (where the OS has it), or pread and pwrite."""
    if request.param == "kernel" and not hasattr(os, "copy_file_range"):
        pytest.skip("This OS has no copy_file_range.")
    if request.param == "user":
        monkeypatch.delattr(os, "copy_file_range", raising=False)
    monkeypatch.setattr(files, "COPY_PIECE", 1000)  # ranges span several pieces
    return request.param


def test_a_range_lands_where_asked_and_no_file_position_moves(pair, mode):
    source, target = pair
    source.seek(7)
    target.write(b"head")
    target.flush()

    files.copy_range(source.fileno(), target.fileno(), (1000, 4, 5000))

    assert (source.tell(), target.tell()) == (7, 4)
    target.seek(0)
    assert target.read() == b"head" + DATA[1000:6000]


def test_a_source_that_ends_early_is_an_error(pair, mode):
    source, target = pair
    with pytest.raises(files.FileError, match="got shorter"):
        files.copy_range(source.fileno(), target.fileno(), (10000, 0, 1000))


def test_a_kernel_that_answers_zero_hands_the_copy_to_pread(pair, monkeypatch):
    # FUSE file systems and /proc answer 0 although the source goes on.
    monkeypatch.setattr(os, "copy_file_range", lambda *args: 0, raising=False)
    source, target = pair

    files.copy_range(source.fileno(), target.fileno(), (0, 0, len(DATA)))

    assert target.read() == DATA


def test_a_kernel_error_that_is_no_refusal_is_raised(pair, monkeypatch):
    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "copy_file_range", full, raising=False)
    source, target = pair
    with pytest.raises(OSError, match="No space left"):
        files.copy_range(source.fileno(), target.fileno(), (0, 0, len(DATA)))


def test_the_ranges_are_copied_while_the_block_runs(pair, mode):
    source, target = pair
    ranges = [(5000, 0, 100), (0, 100, 5000), (9000, 5100, 1240)]

    with files.copying(source.fileno(), target.fileno(), ranges):
        block_read = source.read()  # the other thread's reads move no position

    assert block_read == DATA
    assert target.read() == DATA[5000:5100] + DATA[:5000] + DATA[9000:]


def test_an_error_in_the_block_stops_the_copy_and_is_raised(pair, monkeypatch):
    started, calls = threading.Event(), []

    def slow(source, target, size, start, position):
        calls.append(start)
        started.set()
        time.sleep(0.01)
        return os.pwrite(target, os.pread(source, 1, start), position)

    monkeypatch.setattr(os, "copy_file_range", slow, raising=False)
    source, target = pair

    def check_while_copying() -> None:
        with files.copying(source.fileno(), target.fileno(), [(0, 0, len(DATA))]):
            started.wait()
            raise files.FileError("The input is damaged.")

    with pytest.raises(files.FileError, match="damaged"):
        check_while_copying()

    assert len(calls) < len(DATA)  # stopped, not run to the end (which takes 100 s)


def test_an_error_in_the_copy_is_raised_when_the_block_ends(pair, mode):
    source, target = pair
    copying = files.copying(source.fileno(), target.fileno(), [(0, 0, len(DATA) + 1)])
    with pytest.raises(files.FileError, match="got shorter"), copying:
        pass


def test_a_source_written_to_while_it_is_copied_is_an_error(pair, tmp_path):
    # The copy and the check read the source apart: what was copied might not be what was
    # checked. (Appended to: its size changes, whatever the clock's grain.)
    source, target = pair
    copying = files.copying(source.fileno(), target.fileno(), [(0, 0, len(DATA))])
    with (
        pytest.raises(files.FileError, match="changed while it was copied"),
        copying,
        (tmp_path / "source").open("ab") as appending,
    ):
        appending.write(b"more")


def test_a_file_has_a_descriptor_to_copy_with_and_memory_has_none(pair):
    source, _ = pair
    assert files.descriptor(source) == source.fileno()
    assert files.descriptor(io.BytesIO(DATA)) is None


def test_a_replacement_starts_the_writeback_of_every_window_it_writes(tmp_path, monkeypatch):
    """Each window written is handed to the writeback once, in order, and nothing else is: the
    file holds every buffer, whatever its type and wherever the windows split it."""
    if not files.CAN_START_WRITEBACK:
        pytest.skip("This OS has no posix_fadvise.")
    monkeypatch.setattr(files, "WRITEBACK_WINDOW", 4096)
    started = []
    real_fadvise = os.posix_fadvise

    def fadvise(descriptor, offset, size, advice):
        assert advice == os.POSIX_FADV_DONTNEED
        started.append((offset, size))
        real_fadvise(descriptor, offset, size, advice)

    monkeypatch.setattr(os, "posix_fadvise", fadvise)
    chunks = [DATA[:100], bytearray(DATA), memoryview(DATA)[7:9000], DATA * 2]
    output = files.Replacement(tmp_path / "signed")
    output.write(chunks)
    output.commit()
    written = b"".join(bytes(chunk) for chunk in chunks)
    assert (tmp_path / "signed").read_bytes() == written
    assert started[0][0] == 0
    assert all(a + size == b for (a, size), (b, _) in itertools.pairwise(started))
    assert all(size >= 4096 for _, size in started)
    assert len(written) - sum(size for _, size in started) < 4096
