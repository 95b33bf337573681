"""Signed packages byte for byte as the engine wrote them when it held whole packages in memory.

``data/packages`` holds two packages bsdtar built (``files``: nested folders, symlinks, a hard
link, gzip members, a SHA-1 TOC; ``md5-bzip2``: the same with bzip2 members and an MD5 TOC) and
an installer identity made for these tests alone (a key, its certificate and its CA's, valid
from 2025 to 2125). Signed with that key at a fixed signing time by the in-memory engine of
commit d32def2, each gave the package whose SHA-256 is recorded below; signing that one again
with ``force`` gave the same bytes. RSA PKCS#1 v1.5 signatures are deterministic, so the engine
must give these bytes today. (The TOC is compressed with zlib at level 9: zlib-ng, which some
distributions ship instead of zlib, compresses differently and would change every byte after
the header.)
"""

from __future__ import annotations

import datetime
import errno
import hashlib
import os
import types
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from signing_manager import cms
from signing_manager.codesign import files
from signing_manager.local_key import LocalSigner
from signing_manager.pkg.signing import sign_archive, sign_package
from signing_manager.pkg.verify import check_archive
from signing_manager.pkg.xar import XarArchive

DATA = Path(__file__).parent / "data" / "packages"
SIGNING_TIME = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
SIGNED_SHA256 = {
    "files.pkg": "0ef959116cca35835bab9166d00d087ca1704241d0a3883f5d5a34b4163feedf",
    "md5-bzip2.pkg": "9a2805ab392cdeda7f93a31273d48d30bb7c1e52789abb9b650ab439f42fde63",
}


@pytest.fixture
def golden_signer(monkeypatch) -> LocalSigner:
    """The recorded identity, signing at the recorded time."""

    class FrozenClock(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return SIGNING_TIME

    monkeypatch.setattr(
        cms, "datetime", types.SimpleNamespace(datetime=FrozenClock, UTC=datetime.UTC)
    )
    key = serialization.load_pem_private_key((DATA / "golden-installer.key.pem").read_bytes(), None)
    return LocalSigner(certificate("golden-installer.pem"), key, [certificate("golden-ca.pem")])


def certificate(name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((DATA / name).read_bytes())


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("name", sorted(SIGNED_SHA256))
def test_a_package_is_signed_into_the_recorded_bytes(golden_signer, packages, name):
    original = (DATA / name).read_bytes()

    signed = sign_package(original, golden_signer)
    again = sign_package(signed, golden_signer, force=True)

    assert sha256(signed) == SIGNED_SHA256[name]
    assert sha256(again) == SIGNED_SHA256[name]
    packages.assert_same_content(original, signed)
    packages.assert_openssl_verifies(
        signed, certificate("golden-installer.pem"), certificate("golden-ca.pem")
    )


def copy_calls(monkeypatch, mode: str) -> list[str]:
    """The copy between two files made to go one way (``kernel``: copy_file_range; ``refused``:
    copy_file_range refuses the pair, as across file systems; ``absent``: an OS without it;
    ``in line``: an OS without pread, where the data is written as it is checked), and the
    list of the system calls that copied, as they are made."""
    calls: list[str] = []
    real_copy, real_pread = getattr(os, "copy_file_range", None), os.pread

    def kernel(*args):
        calls.append("copy_file_range")
        if mode == "refused":
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_copy(*args)

    def pread(*args):
        calls.append("pread")
        return real_pread(*args)

    monkeypatch.setattr(os, "pread", pread)
    if mode == "absent" or real_copy is None:
        monkeypatch.delattr(os, "copy_file_range", raising=False)
    else:
        monkeypatch.setattr(os, "copy_file_range", kernel, raising=False)
    monkeypatch.setattr(files, "CAN_COPY_RANGES", mode != "in line")
    return calls


COPIED_BY = {"kernel": {"copy_file_range"}, "refused": {"copy_file_range", "pread"},
             "absent": {"pread"}, "in line": set()}  # fmt: skip


@pytest.mark.parametrize("mode", sorted(COPIED_BY))
@pytest.mark.parametrize("name", sorted(SIGNED_SHA256))
def test_a_package_signed_file_to_file_in_small_chunks_is_the_same(
    golden_signer, monkeypatch, tmp_path, name, mode
):
    # Chunks and copies of an odd size, far smaller than the files: every range spans
    # several, and none ends on a chunk's boundary.
    monkeypatch.setattr(files, "CHUNK", 1001)
    monkeypatch.setattr(files, "COPY_PIECE", 1001)
    if mode == "kernel" and not hasattr(os, "copy_file_range"):
        pytest.skip("This OS has no copy_file_range.")
    calls = copy_calls(monkeypatch, mode)
    signed, again = tmp_path / "signed.pkg", tmp_path / "again.pkg"
    hashed: list[int] = []

    with files.open_regular(DATA / name) as source, signed.open("w+b") as output:
        sign_archive(XarArchive.load(source), golden_signer, output, advance=hashed.append)
    with files.open_regular(signed) as source, again.open("w+b") as output:
        sign_archive(XarArchive.load(source), golden_signer, output, force=True)
    with files.open_regular(again) as source:
        check = check_archive(XarArchive.load(source))

    assert sha256(signed.read_bytes()) == SIGNED_SHA256[name]
    assert sha256(again.read_bytes()) == SIGNED_SHA256[name]
    assert check.valid, check.problems
    assert max(hashed) == 1001
    assert len(hashed) > 60  # the 70 kB file alone takes 70 chunks
    assert set(calls) == COPIED_BY[mode]
