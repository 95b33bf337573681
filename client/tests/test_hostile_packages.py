"""Packages made to attack the checker (issue: hostile files): a table of contents that
inflates without bound, or that names an encoding XML parsers cannot read. Each is laid out by
the test as a XAR header and a zlib-compressed TOC; ``pkgutil --check-signature`` must refuse
it in one sentence, without a traceback, and without inflating more than the header records."""

from __future__ import annotations

import struct
import tracemalloc
import zlib

import pytest

from signing_manager.pkg.xar import XarArchive, XarError

HEADER = struct.Struct(">4sHHQQI")  # magic, header size, version, TOC lengths, checksum kind
TOC = b'<?xml version="1.0" encoding="UTF-8"?><xar><toc></toc></xar>'


def xar(compressed_toc: bytes, recorded_length: int) -> bytes:
    """A XAR file: the header (with a TOC length of our choosing), the TOC, no heap."""
    header = HEADER.pack(b"xar!", HEADER.size, 1, len(compressed_toc), recorded_length, 0)
    return header + compressed_toc


def zlib_bomb(toc: bytes, padding_mib: int) -> bytes:
    """The TOC followed by ``padding_mib`` MiB of spaces, compressed (about 1 KiB a MiB)."""
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(toc)]
    chunk = b" " * (1 << 20)
    parts += [compressor.compress(chunk) for _ in range(padding_mib)]
    return b"".join(parts) + compressor.flush()


def test_a_toc_that_inflates_past_its_recorded_length_is_refused_without_inflating_it():
    bomb = xar(zlib_bomb(TOC, padding_mib=512), recorded_length=len(TOC))
    assert len(bomb) < 1 << 20  # under a megabyte on disk, half a gigabyte inflated

    tracemalloc.start()
    try:
        with pytest.raises(XarError, match="does not have its recorded length"):
            XarArchive.parse(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"{peak / (1 << 20):.0f} MiB allocated"


def test_a_toc_shorter_than_recorded_is_refused():
    compressed = zlib.compress(TOC)
    with pytest.raises(XarError, match="does not have its recorded length"):
        XarArchive.parse(xar(compressed, recorded_length=len(TOC) + 1))


def test_a_zlib_bomb_is_refused_by_pkgutil_in_one_line(new_cli, tmp_path):
    package = tmp_path / "bomb.pkg"
    package.write_bytes(xar(zlib_bomb(TOC, padding_mib=64), recorded_length=len(TOC)))

    result = new_cli().run("pkgutil", "--check-signature", str(package), api_key=None)

    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr.strip().splitlines() == [
        "signing-manager: The XAR table of contents does not have its recorded length."
    ]


@pytest.mark.parametrize(
    ("encoding", "reason"),
    [("bogus", "unknown encoding: bogus"), ("UTF-32", "multi-byte encodings are not supported")],
)
def test_a_toc_in_an_encoding_xml_cannot_read_is_refused_in_one_line(
    new_cli, tmp_path, encoding, reason
):
    toc = TOC.replace(b"UTF-8", encoding.encode())
    package = tmp_path / "encoding.pkg"
    package.write_bytes(xar(zlib.compress(toc), recorded_length=len(toc)))

    result = new_cli().run("pkgutil", "--check-signature", str(package), api_key=None)

    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "The XAR table of contents is not valid XML" in lines[0]
    assert reason in lines[0]
