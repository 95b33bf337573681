"""``signing-manager codesign``, the real command in an isolated home (``new_cli``), ad-hoc
(``-s -``, no service): signing files and bundles, ``-v``, ``-d -vvv``, the options, and a
one-line error for every bad input, which is left as it was."""

from __future__ import annotations

import plistlib
import re
import shutil
import struct
from pathlib import Path

import pytest

from signing_manager.codesign.blobs import Slot
from signing_manager.codesign.bundle import check_bundle
from signing_manager.codesign.code_directory import CodeDirectoryFlag
from signing_manager.codesign.verify import check_macho

ENTITLEMENTS = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict>
<key>com.apple.security.cs.allow-jit</key><true/>
</dict></plist>
"""
CDHASH_LINE = re.compile(r"^CDHash=([0-9a-f]{40})$", re.MULTILINE)
CODE_DIRECTORY_LINE = re.compile(
    r"^CodeDirectory v=20[45]00 size=\d+ flags=0x[0-9a-f]+\([a-z,-]+\) hashes=\d+\+\d+ "
    r"location=embedded$",
    re.MULTILINE,
)


class Codesign:
    """``signing-manager codesign`` run in one isolated home, files in one folder."""

    def __init__(self, cli, machos, folder: Path):
        self.cli = cli
        self.machos = machos
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, *args):
        """Paths in the folder are given by name, as a user in it would."""
        names = [
            arg.relative_to(self.folder) if isinstance(arg, Path) and arg.is_absolute() else arg
            for arg in args
        ]
        return self.cli.run("codesign", *map(str, names), api_key=None, cwd=self.folder)

    def copy(self, name: str, as_name: str | None = None) -> Path:
        return self.machos.copy(name, self.folder, as_name)

    def app(self, name: str = "X") -> Path:
        """A small app: main executable, a helper tool, a loose dylib and a resource."""
        root = self.folder / f"{name}.app"
        contents = root / "Contents"
        for folder in ("MacOS", "Resources", "Frameworks"):
            (contents / folder).mkdir(parents=True)
        (contents / "Info.plist").write_bytes(
            plistlib.dumps({"CFBundleIdentifier": "com.example.x", "CFBundleExecutable": name})
        )
        self.machos.copy("arm64-exe", contents / "MacOS", name)
        self.machos.copy("x86_64-exe", contents / "MacOS", "helper")
        self.machos.copy("arm64-dylib", contents / "Frameworks", "libloose.dylib")
        (contents / "Resources" / "data.txt").write_text("data\n")
        return root


@pytest.fixture
def codesign(new_cli, machos, tmp_path) -> Codesign:
    return Codesign(new_cli(), machos, tmp_path / "work")


def lines(text: str) -> list[str]:
    return text.splitlines()


def assert_one_line_error(result, path: Path | str | None = None) -> str:
    """Exit 1, one line on stderr (naming the path), no traceback; the line."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    # Blank lines are left to test_signing_a_bundle_writes_nothing_on_standard_error.
    written = [line for line in lines(result.stderr) if line.strip()]
    assert len(written) == 1, result.stderr
    if path is not None:
        assert written[0].startswith(f"{path}: "), result.stderr
    return written[0]


def folder_listing(folder: Path) -> list[str]:
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*"))


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def code_offset(data: bytes) -> int:
    """A byte of code in the first slice: just before its signature."""
    return check_macho(data)[0].primary.code_limit - 1


# --- Signing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "architectures"),
    [("arm64-exe", ["arm64"]), ("universal-dylib", ["x86_64", "arm64"])],
)  # fmt: skip
def test_it_signs_a_file_ad_hoc(name, architectures, codesign):
    path = codesign.copy(name, "tool")

    result = codesign("-s", "-", path.name)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "tool: signed [tool]\n"
    checks = check_macho(path.read_bytes())
    assert [c.architecture for c in checks] == architectures
    assert [(c.kind, c.primary.identifier, c.problems) for c in checks] == [
        ("adhoc", "tool", [])
    ] * len(checks)
    assert codesign("-v", path).returncode == 0


def test_it_signs_an_app_bundle(codesign):
    app = codesign.app()

    result = codesign("-s", "-", app.name)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "X.app: signed bundle (3 Mach-O files)\n"
    check = check_bundle(app)
    assert check.valid, check.problems
    assert check.slices[0].primary.identifier == "com.example.x"
    assert set(check.seal["files2"]) == {
        "MacOS/helper",
        "Frameworks/libloose.dylib",
        "Resources/data.txt",
    }
    verified = codesign("-v", "-v", app.name)
    assert verified.returncode == 0, verified.stderr
    assert verified.stderr == (
        "X.app: valid on disk\nX.app: satisfies its Designated Requirement\n"
    )


def test_signing_a_bundle_writes_nothing_on_standard_error(codesign):
    app = codesign.app()

    result = codesign("-s", "-", app.name)

    assert (result.returncode, result.stderr) == (0, "")


def test_the_identifier_option_sets_the_identifier(codesign):
    path = codesign.copy("arm64-exe", "tool")

    assert codesign("-s", "-", "-i", "com.example.chosen", path).returncode == 0

    assert check_macho(path.read_bytes())[0].primary.identifier == "com.example.chosen"


def test_the_entitlements_option_embeds_them(codesign):
    path = codesign.copy("arm64-exe", "tool")
    (codesign.folder / "app.entitlements").write_bytes(ENTITLEMENTS)

    result = codesign("-s", "-", "--entitlements", "app.entitlements", path)

    assert result.returncode == 0, result.stderr
    check = check_macho(path.read_bytes())[0]
    assert check.problems == []
    assert check.blobs[Slot.ENTITLEMENTS][8:] == ENTITLEMENTS
    assert Slot.ENTITLEMENTS_DER in check.blobs
    for form in ["-", ":-"]:  # Apple's two ways to print them on standard output
        shown = codesign("-d", "--entitlements", form, path)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.encode() == ENTITLEMENTS
        assert shown.stderr.startswith("Executable=")


BAD_ENTITLEMENTS = {
    "not XML": b"this is not a property list",
    "truncated XML": ENTITLEMENTS[:-20],
    "mismatched tags": b"<plist><dict><key>a</key><true/></array></plist>",
    "an array": plistlib.dumps(["com.apple.security.cs.allow-jit"]),
}


@pytest.mark.parametrize("content", BAD_ENTITLEMENTS.values(), ids=BAD_ENTITLEMENTS.keys())
def test_bad_entitlements_are_refused_and_leave_the_file_alone(content, codesign):
    path = codesign.copy("arm64-exe", "tool")
    before = path.read_bytes()
    (codesign.folder / "bad.entitlements").write_bytes(content)

    result = codesign("-s", "-", "--entitlements", "bad.entitlements", path)

    message = assert_one_line_error(result)
    assert message.endswith(".")
    assert path.read_bytes() == before
    assert folder_listing(codesign.folder) == ["bad.entitlements", "tool"]


def test_a_missing_entitlements_file_is_refused(codesign):
    path = codesign.copy("arm64-exe", "tool")
    before = path.read_bytes()

    result = codesign("-s", "-", "--entitlements", "nowhere.plist", path)

    assert "Cannot read nowhere.plist" in assert_one_line_error(result)
    assert path.read_bytes() == before


def test_the_runtime_option_sets_the_hardened_runtime(codesign):
    path = codesign.copy("arm64-exe", "tool")

    assert codesign("-s", "-", "--options", "runtime", path).returncode == 0

    check = check_macho(path.read_bytes())[0]
    assert check.primary.flags & CodeDirectoryFlag.RUNTIME
    assert check.problems == []
    shown = lines(codesign("-d", "-vvv", path).stderr)
    assert any(line.startswith("CodeDirectory v=20500 ") for line in shown), shown
    assert any("flags=0x10002(adhoc,runtime)" in line for line in shown), shown
    assert "Runtime Version=11.0.0" in shown


@pytest.mark.parametrize(
    ("options", "flags"),
    [
        ("kill", "0x202(adhoc,kill)"),
        ("runtime,library", "0x12002(adhoc,library-validation,runtime)"),
        ("hard,restrict", "0x902(adhoc,hard,restrict)"),
    ],
)
def test_codesigns_other_options_set_their_flags(options, flags, codesign):
    path = codesign.copy("arm64-exe", "tool")

    assert codesign("-s", "-", "--options", options, path).returncode == 0

    assert check_macho(path.read_bytes())[0].problems == []
    shown = lines(codesign("-d", "-vvv", path).stderr)
    assert any(f"flags={flags}" in line for line in shown), shown


@pytest.mark.parametrize("flags", ["linker-signed", "runtime,jit"])
def test_an_unsupported_option_is_refused(flags, codesign):
    path = codesign.copy("arm64-exe", "tool")
    before = path.read_bytes()

    result = codesign("-s", "-", "--options", flags, path)

    assert "Unsupported --options" in assert_one_line_error(result)
    assert path.read_bytes() == before


def test_the_mode_of_a_signed_file_is_kept(codesign):
    executable = codesign.copy("arm64-exe", "tool")
    executable.chmod(0o751)
    library = codesign.copy("arm64-dylib", "lib.dylib")
    library.chmod(0o640)

    assert codesign("-s", "-", executable, library).returncode == 0

    assert executable.stat().st_mode & 0o7777 == 0o751
    assert library.stat().st_mode & 0o7777 == 0o640


# --- Already signed -------------------------------------------------------------------------


@pytest.fixture(params=["ours", "adhoc", "cms"])
def already_signed(request, codesign) -> Path:
    if request.param == "ours":
        path = codesign.copy("arm64-exe", "tool")
        assert codesign("-s", "-", path).returncode == 0
        return path
    return codesign.copy(request.param, "tool")


def test_an_already_signed_file_is_refused_without_force(already_signed, codesign):
    before = already_signed.read_bytes()

    result = codesign("-s", "-", already_signed)

    message = assert_one_line_error(result, "tool")
    assert "already signed" in message
    assert "-f" in message
    assert already_signed.read_bytes() == before
    assert folder_listing(codesign.folder) == ["tool"]


def test_an_already_signed_file_is_re_signed_with_force(already_signed, codesign):
    before = already_signed.read_bytes()

    result = codesign("-s", "-", "-f", "-i", "com.example.again", already_signed)

    assert result.returncode == 0, result.stderr
    assert already_signed.read_bytes() != before
    checks = check_macho(already_signed.read_bytes())
    assert [(c.kind, c.primary.identifier, c.problems) for c in checks] == [
        ("adhoc", "com.example.again", [])
    ] * len(checks)


def test_an_already_signed_bundle_is_refused_without_force(codesign):
    app = codesign.app()
    assert codesign("-s", "-", app).returncode == 0
    before = (app / "Contents" / "MacOS" / "X").read_bytes()

    result = codesign("-s", "-", app)

    assert "-f" in assert_one_line_error(result, app.name)
    assert (app / "Contents" / "MacOS" / "X").read_bytes() == before
    assert codesign("-s", "-", "-f", app).returncode == 0
    assert check_bundle(app).valid


# --- Verifying ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cms", "adhoc", "universal2-adhoc-sha1"])
def test_verify_accepts_real_signed_files(name, codesign):
    path = codesign.copy(name, "real")

    result = codesign("-v", path)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_verify_says_valid_on_disk_with_two_v(codesign):
    path = codesign.copy("universal-exe", "tool")
    codesign("-s", "-", path)

    result = codesign("-v", "-v", path)

    # Apple's two lines: ad-hoc code's implicit requirement is its own cdhash.
    assert (result.returncode, result.stderr) == (
        0,
        "tool: valid on disk\ntool: satisfies its Designated Requirement\n",
    )


def test_verify_reports_a_modified_thin_file(codesign):
    path = codesign.copy("arm64-exe", "tool")
    codesign("-s", "-", path)
    flip(path, code_offset(path.read_bytes()))

    message = assert_one_line_error(codesign("-v", path), "tool")

    assert re.fullmatch(r"tool: code page \d+ has been modified \(sha256\)", message), message


def test_verify_reports_a_modified_universal_file_by_architecture(codesign):
    path = codesign.copy("universal-exe", "tool")
    codesign("-s", "-", path)
    data = path.read_bytes()
    first, size = struct.unpack_from(">II", data, 16)  # the first slice's offset and size
    flip(path, first + code_offset(data[first : first + size]))

    message = assert_one_line_error(codesign("-v", path), "tool")

    assert message.startswith("tool: x86_64: code page "), message


def test_verify_reports_a_modified_real_file(codesign):
    path = codesign.copy("cms", "real")
    data = path.read_bytes()
    first = struct.unpack_from(">I", data, 16)[0]  # the first slice's offset
    flip(path, first + 4096 * 3)

    message = assert_one_line_error(codesign("-v", path), "real")

    assert "x86_64: code page 3 has been modified" in message, message


def test_verify_reports_an_unsigned_file(codesign):
    path = codesign.copy("x86_64-exe", "tool")

    message = assert_one_line_error(codesign("-v", path), "tool")

    assert message == "tool: code object is not signed at all"


def test_verify_reports_a_modified_resource_of_a_bundle(codesign):
    app = codesign.app()
    codesign("-s", "-", app)
    (app / "Contents" / "Resources" / "data.txt").write_text("changed\n")

    message = assert_one_line_error(codesign("-v", app), app.name)

    assert message == "X.app: file modified: Resources/data.txt"


def test_verify_reports_a_damaged_seal_in_one_line(codesign):
    app = codesign.app()
    codesign("-s", "-", app)
    seal = app / "Contents" / "_CodeSignature" / "CodeResources"
    seal.write_bytes(seal.read_bytes()[:-40])

    result = codesign("-v", app)

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "unexpected error" not in result.stderr
    assert "CodeResources is damaged" in result.stderr


def test_codesign_without_an_action_is_refused(codesign):
    path = codesign.copy("arm64-exe", "tool")

    result = codesign(path)

    assert result.returncode == 1
    assert result.stderr == "signing-manager: codesign needs -s IDENTITY, -v or -d.\n"


# --- Describing -----------------------------------------------------------------------------


def described(codesign, path, *options: str) -> list[str]:
    result = codesign("-d", "-vvv", *options, path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # Apple's tool describes on standard error
    return lines(result.stderr)


@pytest.mark.parametrize(
    ("name", "format_line", "blocks"),
    [
        ("arm64-exe", "Format=Mach-O thin (arm64)", 1),
        ("universal-exe", "Format=Mach-O universal (x86_64 arm64)", 2),
    ],
)
def test_describe_shows_what_apples_tool_shows(name, format_line, blocks, codesign):
    path = codesign.copy(name, "tool")
    codesign("-s", "-", path)
    checks = check_macho(path.read_bytes())

    shown = described(codesign, path)
    every = described(codesign, path, "--all-architectures")
    text = "\n".join(every)

    assert shown[:3] == [f"Executable={path.resolve()}", "Identifier=tool", format_line]
    assert CDHASH_LINE.findall("\n".join(shown)) == [checks[-1].best.cdhash().hex()]  # arm64
    assert len(CODE_DIRECTORY_LINE.findall(text)) == blocks, text
    assert "flags=0x2(adhoc)" in text
    assert CDHASH_LINE.findall(text) == [c.best.cdhash().hex() for c in checks]
    assert every.count("Signature=adhoc") == blocks
    assert "TeamIdentifier=not set" in shown
    assert not [line for line in every if line.startswith("Authority=")]


def test_describe_shows_an_app_bundle(codesign):
    app = codesign.app()
    codesign("-s", "-", app)

    shown = described(codesign, app)

    executable = (app / "Contents" / "MacOS" / "X").resolve()
    assert shown[:3] == [
        f"Executable={executable}",
        "Identifier=com.example.x",
        "Format=app bundle with Mach-O thin (arm64)",
    ]
    assert "Info.plist entries=2" in shown
    assert any(re.fullmatch(r"Sealed Resources version=2 rules=\d+ files=3", s) for s in shown)


def test_describe_shows_the_authorities_and_timestamp_of_a_real_signature(codesign):
    path = codesign.copy("cms", "real")

    shown = described(codesign, path, "--all-architectures")

    assert shown[1:3] == [
        "Identifier=com.apple.dt.runtime.swiftConcurrency",
        "Format=Mach-O universal (x86_64 arm64)",
    ]
    authorities = [line for line in shown if line.startswith("Authority=")]
    assert (
        authorities
        == [
            "Authority=Developer ID Application: Maximilian Hils (S8XHQB96PW)",
            "Authority=Developer ID Certification Authority",
            "Authority=Apple Root CA",
        ]
        * 2
    )
    assert "TeamIdentifier=S8XHQB96PW" in shown
    timestamps = [line for line in shown if line.startswith("Timestamp=")]
    assert len(timestamps) == 2
    assert all(
        re.fullmatch(r"Timestamp=\w{3} \d\d?, \d{4} at \d\d?:\d\d:\d\d [AP]M", t)
        for t in timestamps
    )
    assert "Signature=adhoc" not in shown
    assert "flags=0x0(none)" in "\n".join(shown)


def test_describe_shows_a_real_ad_hoc_signature(codesign):
    path = codesign.copy("adhoc", "real")

    shown = described(codesign, path)

    assert shown[1:3] == [
        "Identifier=libspatialindex_c-55554944fc3c7fb8f28830c791ea4154bd2abac1",
        "Format=Mach-O thin (arm64)",
    ]
    assert "Signature=adhoc" in shown
    assert CDHASH_LINE.findall("\n".join(shown)) == [
        check_macho(path.read_bytes())[0].best.cdhash().hex()
    ]


def test_describe_says_when_a_file_is_not_signed(codesign):
    path = codesign.copy("x86_64-exe", "tool")

    result = codesign("-d", "-vvv", path)

    assert result.stderr == "tool: code object is not signed at all\n"


# --- Bad input ------------------------------------------------------------------------------


def empty(codesign) -> Path:
    path = codesign.folder / "empty"
    path.write_bytes(b"")
    return path


def truncated_header(codesign) -> Path:
    path = codesign.folder / "truncated"
    path.write_bytes(codesign.machos.bytes("arm64-exe")[:100])
    return path


def truncated_linkedit(codesign) -> Path:
    path = codesign.folder / "truncated"
    path.write_bytes(codesign.machos.bytes("arm64-exe")[:-100])
    return path


def text_file(codesign) -> Path:
    path = codesign.folder / "notes.txt"
    path.write_text("These are notes, not code. " * 10)
    return path


def elf_file(codesign) -> Path:
    path = codesign.folder / "x.dylib"
    shutil.copyfile("/bin/true", path)
    return path


def universal_slice_past_the_end(codesign) -> Path:
    path = codesign.copy("universal-exe", "fat")
    data = bytearray(path.read_bytes())
    struct.pack_into(">I", data, 16, len(data) + 4096)  # the first slice's offset
    path.write_bytes(bytes(data))
    return path


def universal_slice_too_long(codesign) -> Path:
    path = codesign.copy("universal-exe", "fat")
    data = bytearray(path.read_bytes())
    struct.pack_into(">I", data, 20 + 20, 1 << 30)  # the second slice's size
    path.write_bytes(bytes(data))
    return path


def java_class(codesign) -> Path:
    path = codesign.folder / "Main.class"
    path.write_bytes(bytes.fromhex("cafebabe00000034") + bytes(200))
    return path


def missing(codesign) -> Path:
    return codesign.folder / "missing"


BAD_INPUTS = {
    empty: "too short to be Mach-O",
    truncated_header: "load commands run past the end",
    truncated_linkedit: "past the end of the file",
    text_file: "Not a Mach-O file",
    elf_file: "Not a Mach-O file (magic 7f454c46)",
    universal_slice_past_the_end: "lies outside the file",
    universal_slice_too_long: "lies outside the file",
    java_class: "Not a Mach-O file",
    missing: "No such file or directory",
}


@pytest.mark.parametrize("make", BAD_INPUTS, ids=[f.__name__ for f in BAD_INPUTS])
def test_bad_input_is_refused_in_one_line_and_left_alone(make, codesign):
    path = make(codesign)
    before = path.read_bytes() if path.exists() else None
    listing = folder_listing(codesign.folder)

    result = codesign("-s", "-", path.name)

    message = assert_one_line_error(result, path.name)
    assert BAD_INPUTS[make] in message
    assert message.endswith(".")
    assert (path.read_bytes() if path.exists() else None) == before
    assert folder_listing(codesign.folder) == listing


@pytest.mark.parametrize("action", [("-v",), ("-d", "-vvv")], ids=["verify", "describe"])
def test_bad_input_gets_one_line_each_from_verify_and_describe(action, codesign):
    paths = {}
    for make, expected in BAD_INPUTS.items():
        codesign.folder = codesign.folder.parent / make.__name__
        codesign.folder.mkdir()
        paths[make(codesign)] = expected
    before = {path: path.read_bytes() for path in paths if path.exists()}

    result = codesign.cli.run("codesign", *action, *map(str, paths), api_key=None)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    written = lines(result.stderr)
    assert len(written) == len(paths), result.stderr
    for line, (path, expected) in zip(written, paths.items(), strict=True):
        assert line.startswith(f"{path}: "), line
        assert expected in line, line
    assert {path: path.read_bytes() for path in before} == before


def test_a_folder_that_is_not_a_bundle_is_refused(codesign):
    (codesign.folder / "plain").mkdir()

    message = assert_one_line_error(codesign("-s", "-", "plain"), "plain")

    assert "not a bundle" in message


def test_a_bundle_without_its_executable_is_refused(codesign):
    app = codesign.app()
    (app / "Contents" / "MacOS" / "X").unlink()
    listing = folder_listing(codesign.folder)

    message = assert_one_line_error(codesign("-s", "-", app.name), app.name)

    assert "is missing" in message
    assert folder_listing(codesign.folder) == listing


def test_one_bad_path_among_several_fails_alone(codesign):
    first = codesign.copy("arm64-exe", "first")
    bad = text_file(codesign)
    last = codesign.copy("universal-dylib", "last")
    app = codesign.app()

    result = codesign("-s", "-", first, bad, last, app)

    assert_one_line_error(result, bad.name)
    assert lines(result.stdout) == [
        "first: signed [first]",
        "last: signed [last]",
        "X.app: signed bundle (3 Mach-O files)",
    ]
    for path in (first, last):
        assert [c.problems for c in check_macho(path.read_bytes())] in ([[]], [[], []])
    assert check_bundle(app).valid


def test_a_symlink_is_signed_through_and_stays_a_link(codesign):
    target = codesign.copy("arm64-exe", "tool")
    link = target.with_name("tool-link")
    link.symlink_to(target.name)

    assert codesign("-s", "-", link).returncode == 0

    assert link.is_symlink()
    assert check_macho(target.read_bytes())[0].kind == "adhoc"


# --- Apple's command lines --------------------------------------------------------------------


def test_a_bare_timestamp_option_never_takes_the_path_after_it(codesign):
    path = codesign.copy("arm64-exe", "tool")

    for option in ["--timestamp", "--timestamp=none"]:
        result = codesign("-f", "-s", "-", option, path)
        assert result.returncode == 0, (option, result.stderr)
        assert result.stdout == "tool: signed [tool]\n"


def test_apples_verify_lines_run_unchanged(codesign):
    app = codesign.app()
    codesign("-s", "-", app)

    for args in (
        ["--verify", "--deep", "--strict", "--verbose=2"],
        ["--verify", "--strict=symlinks,sideband", "-vv"],
        ["-vvvv"],
        ["-v", "-v"],
        ["--verify", "--verbose"],
    ):
        result = codesign(*args, app)
        assert result.returncode == 0, (args, result.stderr)
        assert "X.app: valid on disk\n" in result.stderr, (args, result.stderr)
    assert codesign("-v", app).stderr == ""
    assert codesign("--verify", app).stderr == ""


def test_options_may_be_listed_and_repeated(codesign):
    path = codesign.copy("arm64-exe", "tool")

    assert codesign("-s", "-", "-o", "runtime,library", "--options=kill", path).returncode == 0

    flags = check_macho(path.read_bytes())[0].primary.flags
    wanted = CodeDirectoryFlag.RUNTIME | CodeDirectoryFlag.LIBRARY_VALIDATION
    assert flags & (wanted | CodeDirectoryFlag.FORCE_KILL) == wanted | CodeDirectoryFlag.FORCE_KILL


def test_display_prints_the_requirements_on_standard_output(codesign):
    path = codesign.copy("cms", "real")

    for args in (["-d", "-r-"], ["-d", "--requirements", "-"], ["-dr-"]):
        result = codesign(*args, path)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(
            'designated => anchor apple generic and identifier "com.apple'
        )
        assert result.stdout.count("\n") == 1  # one architecture, one requirement
        assert result.stderr == f"Executable={path.resolve()}\n"


def test_architecture_chooses_the_slice_to_check(codesign):
    path = codesign.copy("universal-exe", "tool")
    codesign("-s", "-", path)
    arm64 = next(c for c in check_macho(path.read_bytes()) if c.architecture == "arm64")
    universal = path.read_bytes()
    start = universal.index(arm64.primary.serialize()[:64]) - 4096  # inside the arm64 code
    flip(path, start)

    assert codesign("-v", path).returncode == 1
    assert codesign("-v", "-a", "x86_64", path).returncode == 0
    assert codesign("--verify", "--architecture=arm64", path).returncode == 1
    result = codesign("-d", "-a", "ppc", path)
    assert assert_one_line_error(result) == (
        "tool: There is no ppc architecture here, only x86_64, arm64."
    )


@pytest.mark.parametrize("option", ["--bogus", "--prefix=com.example.", "-P", "--detached=x"])
def test_an_option_codesign_does_not_have_is_refused_by_name_under_its_usage(option, codesign):
    path = codesign.copy("arm64-exe", "tool")
    before = path.read_bytes()

    result = codesign("-s", "-", option, path)

    assert result.returncode == 2
    assert result.stderr.startswith("usage: signing-manager codesign ")
    name = option.split("=")[0]
    assert result.stderr.endswith(
        f"signing-manager codesign: error: {name} is not an option of codesign here "
        "(-h lists those it has).\n"
    )
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["-a", "arm64"], "signing always signs every architecture"),
        (["--all-architectures"], "signing always signs every architecture"),
        (["-r-"], "-r- prints the requirements of signed code (with -d)"),
        (["-r=designated => anchor apple and"], "where a requirement (identifier"),
        (["--preserve-metadata=identifier,colour"], "does not know colour"),
        (["--verbose=lots"], "--verbose takes a number"),
    ],
)
def test_what_signing_cannot_honour_is_refused_in_one_sentence(args, fragment, codesign):
    path = codesign.copy("arm64-exe", "tool")
    before = path.read_bytes()

    result = codesign("-s", "-", *args, path)

    assert result.returncode == 1
    assert fragment in result.stderr
    assert result.stderr.count("\n") == 1
    assert path.read_bytes() == before


def test_a_keychain_is_accepted_and_explained(codesign):
    path = codesign.copy("arm64-exe", "tool")

    result = codesign("-s", "-", "--keychain", "build.keychain-db", path)

    assert result.returncode == 0, result.stderr
    assert "--keychain is not needed: identities stay in the Signing Service" in result.stderr


def test_preserve_metadata_keeps_what_the_old_signature_held(codesign):
    path = codesign.copy("arm64-exe", "tool")
    (codesign.folder / "app.entitlements").write_bytes(ENTITLEMENTS)
    first = ["-s", "-", "-i", "com.example.kept", "-o", "runtime,library"]
    assert codesign(*first, "--entitlements", "app.entitlements", path).returncode == 0
    before = check_macho(path.read_bytes())[0]
    assert before.primary.runtime

    kept = "--preserve-metadata=identifier,entitlements,requirements,flags,runtime"
    assert codesign("-f", "-s", "-", kept, path).returncode == 0

    after = check_macho(path.read_bytes())[0]
    assert after.problems == []
    assert after.primary.identifier == "com.example.kept"
    assert after.blobs[Slot.ENTITLEMENTS] == before.blobs[Slot.ENTITLEMENTS]
    assert after.blobs[Slot.REQUIREMENTS] == before.blobs[Slot.REQUIREMENTS]
    assert after.primary.flags == before.primary.flags
    assert after.primary.runtime == before.primary.runtime

    # What the command line gives wins; without the option, nothing is kept.
    assert codesign("-f", "-s", "-", kept, "-i", "com.example.new", path).returncode == 0
    assert check_macho(path.read_bytes())[0].primary.identifier == "com.example.new"
    assert codesign("-f", "-s", "-", path).returncode == 0
    plain = check_macho(path.read_bytes())[0]
    assert plain.primary.identifier == "tool"
    assert Slot.ENTITLEMENTS not in plain.blobs
    assert not plain.primary.flags & CodeDirectoryFlag.RUNTIME


# --- Checking like Apple: requirements and trust ----------------------------------------------


def test_a_real_developer_id_signature_satisfies_its_requirement_and_apples_root(codesign):
    path = codesign.copy("cms", "real")

    result = codesign("-vvvv", path)

    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        "real: valid on disk\n"
        "real: satisfies its Designated Requirement\n"
        "real: chain trusted: it ends at “Apple Root CA” (Apple's root)\n"
    )


@pytest.mark.parametrize(
    ("requirement", "satisfied"),
    [
        ("=anchor apple generic and certificate leaf[subject.OU] = S8XHQB96PW", True),
        ("anchor apple generic and certificate leaf[subject.OU] = S8XHQB96PW", True),
        ("=certificate leaf[subject.OU] = ABCDE12345", False),
        ("=identifier com.apple.dt.runtime.swiftConcurrency and anchor trusted", True),
    ],
)
def test_a_test_requirement_is_checked(requirement, satisfied, codesign):
    path = codesign.copy("cms", "real")

    result = codesign("-vv", "-R", requirement, path)

    if satisfied:
        assert result.returncode == 0, result.stderr
        assert "real: explicit requirement satisfied\n" in result.stderr
    else:
        assert result.stderr.endswith(
            "test-requirement: code failed to satisfy the requirement\n"
        ), result.stderr
        assert result.returncode == 1


def test_a_test_requirement_may_come_from_a_file(codesign):
    path = codesign.copy("arm64-exe", "tool")
    codesign("-s", "-", path)
    (codesign.folder / "wanted.req").write_text('identifier "tool"\n')
    (codesign.folder / "other.req").write_text("identifier other\n")

    assert codesign("-v", "-R", "wanted.req", path).returncode == 0
    assert codesign("-v", "--test-requirement=other.req", path).returncode == 1


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["-v", "-R", "=identifier"], "where a string was expected"),
        (["-v", "--anchor", "missing.pem"], "Cannot read the anchor missing.pem"),
        (["-s", "-", "-R", "=always"], "apply to checking (-v)"),
    ],
)
def test_bad_requirements_and_anchors_are_one_sentence(args, fragment, codesign):
    path = codesign.copy("arm64-exe", "tool")

    result = codesign(*args, path)

    assert result.returncode == 1
    assert fragment in result.stderr
    assert result.stderr.count("\n") == 1


def test_signing_embeds_the_requirements_given(codesign):
    path = codesign.copy("arm64-exe", "tool")
    (codesign.folder / "tool.rqset").write_text('designated => identifier "tool" and always\n')

    signed = codesign("-s", "-", '-r=designated => identifier "tool" or identifier t2', path)
    shown = codesign("-d", "-r-", path)
    again = codesign("-f", "-s", "-", "--requirements", "tool.rqset", path)

    assert signed.returncode == 0, signed.stderr
    assert shown.stdout == "designated => identifier tool or identifier t2\n"
    assert again.returncode == 0, again.stderr
    assert codesign("-d", "-r-", path).stdout == "designated => identifier tool and always\n"
    assert codesign("-vv", path).stderr.endswith("tool: satisfies its Designated Requirement\n")
