"""Bundles made to attack the signer (issue: hostile files): every path a bundle names must stay
inside it, and nothing in it may make ``codesign`` wait forever. Each bundle is laid out by
the test from the session's Mach-O files; the real command runs on it, ad-hoc, as a user
would (``codesign -f -s - --deep``), and whatever it refuses is left exactly as it was, inside
the bundle and out."""

from __future__ import annotations

import os
import plistlib
from pathlib import Path

import pytest

from signing_manager.codesign.bundle import check_bundle
from signing_manager.codesign.macho import MachO

SIGN = ("-f", "-s", "-", "--deep")
SENTINEL = b"a file outside the bundle\n"


class Workspace:
    """A folder with an app in it (``X.app``) and files beside the app, outside it."""

    def __init__(self, cli, machos, folder: Path):
        self.cli = cli
        self.machos = machos
        self.folder = folder
        folder.mkdir(parents=True)
        self.app = folder / "X.app"
        self.contents = self.app / "Contents"

    def codesign(self, *args: str):
        return self.cli.run("codesign", *args, api_key=None, cwd=self.folder)

    def lay_out(self, executable_name: object = "X") -> Path:
        """``X.app`` with an Info.plist naming ``executable_name``, its executable (when the
        name is a plain one), a helper tool and a resource."""
        for folder in ("MacOS", "Resources"):
            (self.contents / folder).mkdir(parents=True, exist_ok=True)
        info = {"CFBundleIdentifier": "com.example.x", "CFBundleExecutable": executable_name}
        # XML property lists cannot hold a NUL; binary ones, which bundles may use, can.
        (self.contents / "Info.plist").write_bytes(plistlib.dumps(info, fmt=plistlib.FMT_BINARY))
        if executable_name == "X":
            self.machos.copy("arm64-exe", self.contents / "MacOS", "X")
        self.machos.copy("x86_64-exe", self.contents / "MacOS", "helper")
        (self.contents / "Resources" / "data.txt").write_text("data\n")
        return self.app

    def outside(self, name: str, macho: str | None = None) -> Path:
        """A file beside the app: a Mach-O file (signable, were it reached) or plain bytes."""
        if macho:
            return self.machos.copy(macho, self.folder, name)
        path = self.folder / name
        path.write_bytes(SENTINEL)
        return path


def everything(folder: Path) -> dict[str, tuple]:
    """Every entry under ``folder``: files with their bytes, links with their targets."""
    entries = {}
    for base, folders, files in os.walk(folder):
        for name in folders + files:
            path = Path(base) / name
            relative = path.relative_to(folder).as_posix()
            if path.is_symlink():
                entries[relative] = ("link", os.readlink(path))
            elif path.is_file():
                entries[relative] = ("file", path.read_bytes())
            else:
                entries[relative] = ("folder" if path.is_dir() else "other",)
    return entries


def assert_refused(result, expected: str) -> None:
    """Exit 1 and one line naming the problem, no traceback."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert expected in lines[0], result.stderr


def assert_reported(result, expected: str) -> None:
    """``-v`` found problems (exit 1), one per line, among them ``expected``; no traceback."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert "unexpected error" not in result.stderr
    assert any(expected in line for line in result.stderr.splitlines()), result.stderr


@pytest.fixture
def workspace(new_cli, machos, tmp_path) -> Workspace:
    return Workspace(new_cli(), machos, tmp_path / "work")


def test_an_executable_named_outside_the_bundle_is_refused_and_not_written(workspace):
    # The fuzzing campaign's reproducer: this signed, and rewrote, the file outside.
    outside = workspace.outside("outside-sentinel", macho="arm64-exe")
    workspace.lay_out("../../../outside-sentinel")
    before = everything(workspace.folder)

    result = workspace.codesign(*SIGN, "X.app")

    assert_refused(result, "names an executable that is not a file name in the bundle")
    assert everything(workspace.folder) == before
    assert outside.read_bytes() == workspace.machos.bytes("arm64-exe")


@pytest.mark.parametrize(
    "name",
    ["..", ".", "MacOS/X", "nul\0name", "x" * 300, 42],
    ids=["parent", "self", "a-path", "nul", "too-long", "not-a-string"],
)
def test_an_executable_name_that_is_no_file_name_is_refused_in_one_line(workspace, name):
    workspace.lay_out(name)
    before = everything(workspace.folder)

    for args in (SIGN, ("-v",)):
        result = workspace.codesign(*args, "X.app")
        assert_refused(result, "names an executable that is not a file name in the bundle")
    assert everything(workspace.folder) == before


def macos_folder_elsewhere(workspace: Workspace) -> None:
    elsewhere = workspace.folder / "elsewhere"
    elsewhere.mkdir()
    workspace.machos.copy("arm64-exe", elsewhere, "X")
    (workspace.contents / "MacOS").symlink_to("../../elsewhere")


def signature_folder_elsewhere(workspace: Workspace) -> None:
    (workspace.contents / "MacOS").mkdir()
    workspace.machos.copy("arm64-exe", workspace.contents / "MacOS", "X")
    (workspace.folder / "elsewhere").mkdir()
    (workspace.contents / "_CodeSignature").symlink_to("../../elsewhere")


def executable_linked_elsewhere(workspace: Workspace) -> None:
    workspace.outside("outside-sentinel", macho="arm64-exe")
    (workspace.contents / "MacOS").mkdir()
    (workspace.contents / "MacOS" / "X").symlink_to("../../../outside-sentinel")


@pytest.mark.parametrize(
    ("lead_out", "what"),
    [
        (macos_folder_elsewhere, "executable"),
        (signature_folder_elsewhere, "signature folder"),
        (executable_linked_elsewhere, "executable"),
    ],
)
def test_a_link_that_leads_a_bundle_path_outside_is_refused(workspace, lead_out, what):
    (workspace.contents / "Resources").mkdir(parents=True)
    (workspace.contents / "Info.plist").write_bytes(
        plistlib.dumps({"CFBundleIdentifier": "com.example.x", "CFBundleExecutable": "X"})
    )
    lead_out(workspace)
    before = everything(workspace.folder)

    for args in (SIGN, ("-v",)):
        assert_refused(workspace.codesign(*args, "X.app"), f"The bundle's {what} ")
    assert everything(workspace.folder) == before


def test_a_framework_whose_current_version_is_elsewhere_is_refused(workspace):
    framework = workspace.folder / "Lib.framework"
    elsewhere = workspace.folder / "elsewhere"
    (elsewhere / "Resources").mkdir(parents=True)
    (elsewhere / "Resources" / "Info.plist").write_bytes(
        plistlib.dumps({"CFBundleIdentifier": "com.example.lib", "CFBundleExecutable": "Lib"})
    )
    workspace.machos.copy("arm64-dylib", elsewhere, "Lib")
    (framework / "Versions").mkdir(parents=True)
    (framework / "Versions" / "Current").symlink_to("../../elsewhere")
    before = everything(workspace.folder)

    assert_refused(workspace.codesign(*SIGN, "Lib.framework"), "The bundle's content folder ")
    assert everything(workspace.folder) == before


def test_a_resource_link_that_points_outside_is_sealed_as_a_link_never_followed(workspace):
    outside = workspace.outside("outside.txt")
    app = workspace.lay_out()
    (workspace.contents / "Resources" / "escape.txt").symlink_to("../../../outside.txt")

    result = workspace.codesign(*SIGN, "X.app")

    assert result.returncode == 0, result.stderr
    seal = check_bundle(app).seal
    assert seal["files2"]["Resources/escape.txt"] == {"symlink": "../../../outside.txt"}
    assert outside.read_bytes() == SENTINEL
    assert workspace.codesign("-v", "X.app").returncode == 0
    # Changing what is outside changes nothing the seal covers; changing the link does.
    outside.write_bytes(b"changed\n")
    assert workspace.codesign("-v", "X.app").returncode == 0
    (workspace.contents / "Resources" / "escape.txt").unlink()
    (workspace.contents / "Resources" / "escape.txt").symlink_to("data.txt")
    assert_refused(workspace.codesign("-v", "X.app"), "file modified: Resources/escape.txt")


def test_a_fifo_in_a_bundle_is_refused_at_once_not_waited_on(workspace):
    workspace.lay_out()
    os.mkfifo(workspace.contents / "Resources" / "pipe")
    before = everything(workspace.folder)

    result = workspace.codesign(*SIGN, "X.app")

    assert_refused(result, "Resources/pipe is a FIFO")
    assert everything(workspace.folder) == before


def test_a_fifo_added_to_a_signed_bundle_is_reported_by_verify(workspace):
    workspace.lay_out()
    assert workspace.codesign(*SIGN, "X.app").returncode == 0
    os.mkfifo(workspace.contents / "Resources" / "pipe")

    assert_refused(workspace.codesign("-v", "X.app"), "Resources/pipe is a FIFO")


def test_a_file_name_with_a_newline_is_shown_escaped_on_one_line(workspace):
    # Found by fuzzing: the name split the message over two lines.
    workspace.lay_out()
    os.mkfifo(workspace.contents / "Resources" / "new\nline")

    assert_refused(workspace.codesign(*SIGN, "X.app"), "Resources/new\\nline is a FIFO")


def test_a_file_name_that_is_not_utf8_is_refused_in_one_line(workspace):
    # Found by fuzzing: a traceback from the rules engine, which matches UTF-8 only. macOS
    # file systems hold no such name, and the seal (a property list) could not record it.
    workspace.lay_out()
    assert workspace.codesign(*SIGN, "X.app").returncode == 0
    (workspace.contents / "Resources" / os.fsdecode(b"bad-\xff")).write_text("x\n")
    before = everything(workspace.folder)

    for args in (SIGN, ("-v",)):
        result = workspace.codesign(*args, "X.app")
        assert_refused(result, "Resources/bad-\\xff has a name that is not valid UTF-8")
    assert everything(workspace.folder) == before


def test_an_executable_that_is_a_loop_of_links_is_refused_in_one_line(workspace):
    # Found by fuzzing: Path.resolve raised RuntimeError ("Symlink loop").
    workspace.lay_out(executable_name="Loop")
    (workspace.contents / "MacOS" / "Loop").symlink_to("Loop")
    before = everything(workspace.folder)

    for args in (SIGN, ("-v",)):
        result = workspace.codesign(*args, "X.app")
        assert_refused(result, "The bundle's executable")
        assert "is a loop of symbolic links" in result.stderr
    assert everything(workspace.folder) == before


def test_a_fifo_given_as_the_file_to_sign_is_refused_at_once(workspace):
    os.mkfifo(workspace.folder / "pipe")

    for args in (("-s", "-"), ("-v",), ("-d", "-vvv")):
        assert_refused(workspace.codesign(*args, "pipe"), "pipe is not a regular file")


# --- The seal's rules are hostile input too ----------------------------------------------------


def signed_with_rules(workspace: Workspace, **rules2) -> Path:
    """``X.app`` signed, then its seal's ``rules2`` given ``rules2`` as well (a seal edited by
    an attacker; the signature no longer matches it, and ``-v`` must say so in one line)."""
    workspace.lay_out()
    assert workspace.codesign(*SIGN, "X.app").returncode == 0
    seal_path = workspace.contents / "_CodeSignature" / "CodeResources"
    seal = plistlib.loads(seal_path.read_bytes())
    seal["rules2"].update(rules2)
    seal_path.write_bytes(plistlib.dumps(seal))
    return workspace.app


def test_a_rule_that_would_backtrack_for_ever_is_matched_in_linear_time(workspace):
    # With a backtracking engine each extra "a" doubles the work: 40 of them take days.
    signed_with_rules(workspace, **{"(a+)+b": {"weight": 5000.0}})
    (workspace.contents / "Resources" / ("a" * 40)).write_text("x\n")

    result = workspace.codesign("-v", "X.app")

    assert_reported(result, "file added: Resources/" + "a" * 40)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"^Resources/": {"weight": "abc"}}, "A resource rule (^Resources/) has a weight that"),
        ({r"^(a)\1$": True}, r"A resource rule (^(a)\1$) is not valid: invalid escape"),
    ],
    ids=["weight-no-number", "back-reference"],
)
def test_a_damaged_rule_is_reported_not_raised(workspace, rule, expected):
    signed_with_rules(workspace, **rule)

    assert_reported(workspace.codesign("-v", "X.app"), expected)


def test_an_info_plist_in_an_unknown_encoding_is_refused_in_one_line(workspace):
    workspace.lay_out()
    (workspace.contents / "Info.plist").write_bytes(
        b'<?xml version="1.0" encoding="UTFm8"?><plist version="1.0"><dict/></plist>'
    )
    before = everything(workspace.folder)

    for args in (SIGN, ("-v",)):
        assert_refused(workspace.codesign(*args, "X.app"), "unknown encoding: UTFm8")
    assert everything(workspace.folder) == before


def test_a_mach_o_hiding_a_load_command_is_refused_in_one_line_and_left_alone(workspace):
    path = workspace.machos.copy("arm64-exe", workspace.folder, "tool")
    data = bytearray(path.read_bytes())
    data[16:20] = (int.from_bytes(data[16:20], "little") - 1).to_bytes(4, "little")  # ncmds
    path.write_bytes(bytes(data))

    for args in (SIGN, ("-v",)):
        assert_refused(workspace.codesign(*args, "tool"), "do not fill their recorded size")
    assert path.read_bytes() == bytes(data)


def test_a_segment_reaching_into_the_signature_is_refused_before_signing(workspace):
    # Found by fuzzing: signed (the new signature shorter than the old), then refused by our
    # own -v: "Segment __TEXT lies past the end of the file."
    path = workspace.machos.copy("arm64-exe", workspace.folder, "tool")
    macho = MachO.parse(path.read_bytes())
    text = macho.segment("__TEXT")
    data = bytearray(path.read_bytes())
    filesize_at = text.command_offset + 48  # cmd, cmdsize, segname[16], vmaddr, vmsize, fileoff
    end = macho.code_signature.dataoff + 16
    data[filesize_at : filesize_at + 8] = (end - text.fileoff).to_bytes(8, "little")
    path.write_bytes(bytes(data))

    assert_refused(workspace.codesign(*SIGN, "tool"), "Segment __TEXT reaches into the code sig")
    assert path.read_bytes() == bytes(data)
