"""Fuzzing ``codesign`` with bundles: apps whose paths, plists, seals and files are hostile.

The seed is an app laid out as Xcode does (``X.app/Contents``: Info.plist, ``MacOS/X`` and a
helper tool, resources with a localization and a link between them, and a versioned framework
in ``Frameworks``), unsigned and ad-hoc signed with ``--deep``. A mutant is a copy of it with a
few of the changes below; beside it lies ``outside/``, with a Mach-O file a hostile bundle may
point at. The changes are what a bundle can say about paths and what its files can be:

- ``CFBundleExecutable`` naming a path (``../``, absolute, NUL, too long) or not a string;
- a damaged Info.plist: cut short, an unknown encoding, not a dictionary, nested too deep,
  a link, a folder or a FIFO;
- the executable (or the framework's ``Versions/Current``, or ``_CodeSignature``) replaced by
  a link out of the bundle, a loop, a FIFO, a folder or a mutated Mach-O file;
- new entries: links out (relative and absolute), dangling links and loops, FIFOs, sockets,
  a hard link to a file outside, names with newlines or invalid UTF-8 or of 255 bytes, deep
  folders, many files;
- a hostile seal (in the signed seed): a rule whose regular expression backtracks
  exponentially, bad weights, wrong types, entries that are not what they say;
- content changes the seal covers, which ``codesign -v`` must notice.

A trial runs ``codesign -v``, ``codesign -d -vvv`` and ``codesign -f -s - --deep`` on the app.
Beyond the harness's rules: nothing outside the app changes, ever; a changed sealed file is
never accepted; a bundle that ``-s`` signed verifies with ``-v``.
"""

from __future__ import annotations

import os
import plistlib
import random
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fuzz import macho
from fuzz.harness import Finding, Limits, checked_cli, expect_unchanged, run_cli, snapshot
from fuzz.mutations import mutate

HOSTILE_NAMES = [
    "../../outside/victim", "../outside", "/", ".", "..", "", "MacOS/X", "X\0", "X\n",
    "x" * 300, "é" * 128, 42, ["X"], {"name": "X"}, True,
]  # fmt: skip
PLIST_KEYS = ["CFBundleExecutable", "CFBundleIdentifier", "CFBundleShortVersionString"]
BACKTRACKING = "^Resources/(a+)+b$"


@dataclass
class App:
    """The mutant's paths: the app, its content folder and what lies outside it."""

    folder: Path
    root: Path
    outside: Path

    @property
    def contents(self) -> Path:
        return self.root / "Contents"

    @property
    def framework(self) -> Path:
        return self.contents / "Frameworks" / "Y.framework"

    def victim(self, absolute: bool) -> str:
        """A path to the Mach-O file outside, as a link in Contents/<folder>/ would name it."""
        target = self.outside / "victim"
        return str(target) if absolute else os.path.relpath(target, self.contents / "MacOS")


# --- Seeds -----------------------------------------------------------------------------------


def lay_out_app(root: Path, executables: dict[str, bytes]) -> None:
    contents = root / "Contents"
    for folder in ("MacOS", "Resources/en.lproj", "Frameworks"):
        (contents / folder).mkdir(parents=True)
    write_plist(
        contents / "Info.plist",
        {
            "CFBundleIdentifier": "com.example.x",
            "CFBundleExecutable": "X",
            "CFBundlePackageType": "APPL",
        },
    )
    write_file(contents / "MacOS" / "X", executables["arm64-exe"], 0o755)
    write_file(contents / "MacOS" / "helper", executables["x86_64-exe"], 0o755)
    (contents / "Resources" / "data.txt").write_text("data\n")
    (contents / "Resources" / "en.lproj" / "Localizable.strings").write_text('"a" = "b";\n')
    os.symlink("data.txt", contents / "Resources" / "link")
    version = contents / "Frameworks" / "Y.framework" / "Versions" / "A"
    (version / "Resources").mkdir(parents=True)
    write_plist(
        version / "Resources" / "Info.plist",
        {"CFBundleIdentifier": "com.example.y", "CFBundleExecutable": "Y"},
    )
    write_file(version / "Y", executables["arm64-dylib"], 0o755)
    os.symlink("A", version.parent / "Current")
    os.symlink("Versions/Current/Y", version.parent.parent / "Y")
    os.symlink("Versions/Current/Resources", version.parent.parent / "Resources")


def make_seeds(folder: Path, executables: dict[str, bytes], limits: Limits) -> list[Path]:
    unsigned = folder / "unsigned" / "X.app"
    lay_out_app(unsigned, executables)
    signed = folder / "signed" / "X.app"
    shutil.copytree(unsigned, signed, symlinks=True)
    outcome = run_cli(["codesign", "-f", "-s", "-", "--deep", str(signed)], limits)
    if outcome.status != 0:
        raise RuntimeError(f"the seed app does not sign: {outcome.stderr}")
    return [unsigned, signed]


def write_plist(path: Path, value, binary: bool = False) -> None:
    data = plistlib.dumps(value, fmt=plistlib.FMT_BINARY if binary else plistlib.FMT_XML)
    replace_with_bytes(path, data)


def write_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.write_bytes(data)
    path.chmod(mode)


# --- Mutations: each changes the app and says what it did, and whether the seal covers it ----


def hostile_executable_name(rng: random.Random, app: App) -> tuple[str, bool]:
    name = rng.choice([*HOSTILE_NAMES, app.victim(absolute=True)])
    plist = rng.choice([app.contents / "Info.plist", app.framework / "Resources" / "Info.plist"])
    info = read_plist_or_empty(plist)
    info["CFBundleExecutable"] = name
    write_plist(plist, info, binary=True)  # only binary property lists can hold a NUL
    return f"CFBundleExecutable = {name!r:.60} in {plist.relative_to(app.root)}", True


def damage_info_plist(rng: random.Random, app: App) -> tuple[str, bool]:
    plist = app.contents / "Info.plist"
    data = read_if_file(plist)
    damages: dict[str, Callable[[], None]] = {
        "cut short": lambda: plist.write_bytes(data[: rng.randrange(max(1, len(data)))]),
        "unknown encoding": lambda: plist.write_bytes(data.replace(b"UTF-8", b"UTFm8", 1)),
        "UTF-32 declared": lambda: plist.write_bytes(data.replace(b"UTF-8", b"UTF-32", 1)),
        "an array": lambda: write_plist(plist, ["X"]),
        "nested deep": lambda: plist.write_bytes(nested_plist(rng.choice((100, 5000)))),
        "a wrong key type": lambda: write_plist(plist, {rng.choice(PLIST_KEYS): 1.5}),
        "a link out": lambda: replace_with_link(plist, app.victim(absolute=True)),
        "a folder": lambda: replace_with_folder(plist),
        "a FIFO": lambda: replace_with_special(plist, stat.S_IFIFO),
    }
    damage = rng.choice(list(damages))
    damages[damage]()
    return f"Info.plist: {damage}", True


def nested_plist(depth: int) -> bytes:
    return (
        b'<?xml version="1.0" encoding="UTF-8"?><plist version="1.0">'
        + b"<array>" * depth
        + b"</array>" * depth
        + b"</plist>"
    )


def replace_code(rng: random.Random, app: App) -> tuple[str, bool]:
    """The executable, the framework's Current version or the signature folder, replaced."""
    path = rng.choice(
        [
            app.contents / "MacOS" / "X",
            app.contents / "MacOS" / "helper",
            app.framework / "Versions" / "Current",
            app.contents / "_CodeSignature",
            app.contents / "MacOS",
        ]
    )
    replacements: dict[str, Callable[[], None]] = {
        "a relative link out": lambda: replace_with_link(path, app.victim(absolute=False)),
        "an absolute link out": lambda: replace_with_link(path, app.victim(absolute=True)),
        "a link up": lambda: replace_with_link(path, "../../.."),
        "a loop": lambda: replace_with_link(path, path.name),
        "a FIFO": lambda: replace_with_special(path, stat.S_IFIFO),
        "a folder": lambda: replace_with_folder(path),
        "an empty file": lambda: replace_with_bytes(path, b""),
        "a mutated Mach-O file": lambda: mutate_macho(rng, path),
    }
    replacement = rng.choice(list(replacements))
    if replacement == "a mutated Mach-O file" and not path.is_file():
        replacement = "an empty file"
    replacements[replacement]()
    return f"{path.relative_to(app.root)}: {replacement}", True


def mutate_macho(rng: random.Random, path: Path) -> None:
    data = path.read_bytes()
    mutant, _ = mutate(rng, data, macho.layout(data)[0], rng.choice((1, 2)))
    write_file(path, mutant, 0o755)


def add_entry(rng: random.Random, app: App) -> tuple[str, bool]:
    folder = rng.choice(
        [
            app.contents / "Resources",
            app.contents,
            app.contents / "MacOS",
            app.framework / "Versions" / "A" / "Resources",
        ]
    )
    if not folder.is_dir() or folder.is_symlink():
        return "nothing added (no folder)", False
    kinds: dict[str, Callable[[Path], None]] = {
        "a link out": lambda path: os.symlink(app.victim(absolute=rng.random() < 0.5), path),
        "a link to a folder out": lambda path: os.symlink(app.outside, path),
        "a dangling link": lambda path: os.symlink("nowhere/at/all", path),
        "a link loop": lambda path: os.symlink(path.name, path),
        "a FIFO": lambda path: os.mkfifo(path),
        "a socket": lambda path: os.mknod(path, stat.S_IFSOCK | 0o600),
        "a hard link out": lambda path: os.link(app.outside / "note.txt", path),
        "deep folders": lambda path: make_deep(path, rng.choice((40, 200))),
        "many files": lambda path: make_many(path, rng.choice((50, 600))),
        "a Mach-O file": lambda path: shutil.copyfile(app.outside / "victim", path),
    }
    kind = rng.choice(list(kinds))
    name = rng.choice([b"extra", b"new\nline", b"bad-\xff-utf8", b"n" * 255, b" lead", b"-"])
    path = folder / os.fsdecode(name)
    kinds[kind](path)
    return f"{kind} at {path.relative_to(app.root)!s:.80}", False


def make_deep(path: Path, depth: int) -> None:
    deepest = path.joinpath(*["d"] * depth)
    deepest.mkdir(parents=True)
    (deepest / "leaf.txt").write_text("leaf\n")


def make_many(path: Path, count: int) -> None:
    path.mkdir()
    for index in range(count):
        (path / f"f{index}").write_text(str(index))


def hostile_seal(rng: random.Random, app: App) -> tuple[str, bool]:
    seal = app.contents / "_CodeSignature" / "CodeResources"
    if not seal.is_file():
        return "no seal to damage", False
    resources = read_plist_or_empty(seal)
    damages: dict[str, Callable[[], None]] = {
        "a backtracking rule": lambda: add_rule(resources, app, BACKTRACKING, True),
        "an invalid rule": lambda: add_rule(resources, app, "(unclosed", True),
        "a rule weight that is not a number": lambda: add_rule(
            resources, app, "^Resources/", {"weight": "abc"}
        ),
        "rules that are a list": lambda: resources.update(rules2=["^.*"]),
        "files that are a string": lambda: resources.update(files2="data.txt"),
        "an entry that is a number": lambda: resources.setdefault("files2", {}).update(
            {"Resources/data.txt": 7}
        ),
        "an entry linking out": lambda: resources.setdefault("files2", {}).update(
            {"Resources/data.txt": {"symlink": "/etc/passwd"}}
        ),
        "a nested entry with a bad cdhash": lambda: resources.setdefault("files2", {}).update(
            {"Frameworks/Y.framework": {"cdhash": "not bytes", "requirement": 5}}
        ),
        "an empty dictionary": resources.clear,
    }
    damage = rng.choice(list(damages))
    damages[damage]()
    write_plist(seal, resources, binary=rng.random() < 0.3)
    return f"seal: {damage}", True


def add_rule(resources: dict, app: App, pattern: str, value) -> None:
    rules = resources.setdefault("rules2", {})
    if isinstance(rules, dict):
        rules[pattern] = value
    (app.contents / "Resources" / ("a" * 40)).write_text("a\n")


def change_sealed_content(rng: random.Random, app: App) -> tuple[str, bool]:
    """What the seal covers, changed: ``codesign -v`` must refuse it."""
    data = app.contents / "Resources" / "data.txt"
    changes: dict[str, Callable[[], None]] = {
        "a resource changed": lambda: data.write_text("changed\n"),
        "a resource removed": data.unlink,
        "a resource added": lambda: (data.parent / "added.txt").write_text("new\n"),
        "a localization changed": lambda: (
            app.contents / "Resources" / "en.lproj" / "Localizable.strings"
        ).write_text('"a" = "c";\n'),
        "the link retargeted": lambda: replace_with_link(data.parent / "link", "en.lproj"),
    }
    change = rng.choice(list(changes))
    if data.is_file() and (data.parent / "link").is_symlink():
        changes[change]()
        return change, True
    return "nothing to change", False


# --- Replacing entries ------------------------------------------------------------------------


def remove(path: Path) -> None:
    if path.is_symlink() or not path.exists():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def replace_with_link(path: Path, target: str) -> None:
    remove(path)
    os.symlink(target, path)


def replace_with_folder(path: Path) -> None:
    remove(path)
    path.mkdir()


def replace_with_special(path: Path, kind: int) -> None:
    remove(path)
    os.mknod(path, kind | 0o644)


def replace_with_bytes(path: Path, data: bytes) -> None:
    remove(path)
    path.write_bytes(data)


def read_if_file(path: Path) -> bytes:
    """A file's bytes; nothing for anything else (an earlier mutation may have made it a
    FIFO, which would block the harness)."""
    return path.read_bytes() if path.is_file() else b""


def read_plist_or_empty(path: Path) -> dict:
    try:
        value = plistlib.loads(read_if_file(path))
    except Exception:  # an earlier mutation may have damaged it: start afresh
        return {}
    return value if isinstance(value, dict) else {}


MUTATIONS = [
    hostile_executable_name,
    damage_info_plist,
    replace_code,
    add_entry,
    hostile_seal,
    change_sealed_content,
]


# --- The trial -------------------------------------------------------------------------------


class BundleTarget:
    name = "bundle"

    def __init__(self, seeds: list[Path], victim: bytes, limits: Limits):
        self.seeds = seeds
        self.victim = victim
        self.limits = limits

    def make(self, rng: random.Random, folder: Path) -> tuple[str, Callable[[], None]]:
        seed = rng.choice(self.seeds)
        app = App(folder, folder / "X.app", folder / "outside")
        app.outside.mkdir()
        write_file(app.outside / "victim", self.victim, 0o755)
        (app.outside / "note.txt").write_text("outside the bundle\n")
        shutil.copytree(seed, app.root, symlinks=True)
        steps, sealed_change = [], False
        for mutation in rng.sample(MUTATIONS, rng.choice((1, 1, 2, 3))):
            try:
                step, seals = mutation(rng, app)
            except OSError as error:  # an earlier mutation took away what this one needs
                step, seals = f"{mutation.__name__} not applied: {error.strerror}", False
            steps.append(step)
            sealed_change = sealed_change or seals
        must_refuse = sealed_change and seed.parent.name == "signed"
        return f"{seed.parent.name} app: {'; '.join(steps)}", lambda: self.check(app, must_refuse)

    def check(self, app: App, must_refuse: bool) -> None:
        before = snapshot(app.folder)
        problems = f"{app.root}: "  # -v lists problems, one line each, naming the app
        verdict = checked_cli("codesign", "-v", app.root, limits=self.limits, line_prefix=problems)
        if verdict.status == 0 and must_refuse:
            raise Finding("codesign -v accepted an app whose sealed content changed")
        # -d describes the signature on stderr, in many lines.
        checked_cli("codesign", "-d", "-vvv", app.root, limits=self.limits, line_prefix="")
        expect_unchanged(before, snapshot(app.folder), "checking changed files")
        signing = checked_cli("codesign", "-f", "-s", "-", "--deep", app.root, limits=self.limits)
        outside = snapshot(app.folder, leave_out=app.root)
        expect_unchanged(snapshot_without(before, app), outside, "signing wrote outside the app")
        if signing.status == 0:
            after = checked_cli(
                "codesign", "-v", app.root, limits=self.limits, line_prefix=problems
            )
            if after.status != 0:
                raise Finding(f"signed, then refused by codesign -v: {after.stderr.strip()}")
        else:
            expect_unchanged(before, snapshot(app.folder), "a refused app changed")


def snapshot_without(entries: dict[str, tuple], app: App) -> dict[str, tuple]:
    prefix = app.root.name
    return {
        name: entry
        for name, entry in entries.items()
        if name != prefix and not name.startswith(f"{prefix}/")
    }
