"""Signing bundles inside-out (``bundle.py``): apps laid out at test time from the built Mach-O
files, with nested code of every kind the default nesting rules cover, signed ad-hoc and with
a CMS; each result checked by ``check_bundle``, per Mach-O by ``check_macho`` and by openssl,
then tampered with in every way a seal must notice."""

from __future__ import annotations

import hashlib
import os
import plistlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from signing_manager.codesign.blobs import Slot
from signing_manager.codesign.bundle import BundleError, check_bundle, sign_bundle
from signing_manager.codesign.code_directory import HashType
from signing_manager.codesign.requirements import RequirementType, requirement_text
from signing_manager.codesign.resources import RULES, RULES2, SHALLOW_RULES, SHALLOW_RULES2
from signing_manager.codesign.signing import AlreadySigned, SigningOptions, sign_macho
from signing_manager.codesign.verify import check_macho
from signing_manager.errors import SigningManagerError

MACHO_MAGICS = (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe")
SEAL = "_CodeSignature/CodeResources"
DATA_TXT = b"Some data the app reads.\n"
OPTIONS = SigningOptions(identifier="")
SIGNERS = ["adhoc", "apple", "ca"]


def info_plist(identifier: str, executable: str | None, package_type: str = "APPL") -> bytes:
    document = {"CFBundleIdentifier": identifier, "CFBundlePackageType": package_type}
    if executable:
        document["CFBundleExecutable"] = executable
    return plistlib.dumps(document)


@dataclass(frozen=True)
class MainExecutable:
    """A bundle's main executable and the two files its signature binds."""

    path: Path
    info_plist: Path
    content: Path
    root: Path  # the bundle's folder

    @property
    def seal(self) -> Path:
        return self.content / SEAL


@dataclass
class App:
    """A laid-out bundle: where everything is, and how many slices its Mach-O files hold."""

    root: Path
    mains: list[MainExecutable] = field(default_factory=list)  # the outermost one first
    loose: list[Path] = field(default_factory=list)  # nested Mach-O files outside bundles
    slices: int = 0

    @property
    def contents(self) -> Path:
        return self.root / "Contents"

    @property
    def main(self) -> MainExecutable:
        return self.mains[0]

    @property
    def machos(self) -> list[Path]:
        return [main.path for main in self.mains] + self.loose

    def seal(self) -> dict:
        return plistlib.loads(self.main.seal.read_bytes())


class AppBuilder:
    """Lays out bundles from the session's built Mach-O files (``machos.copy``)."""

    SLICES = {"universal-exe": 2, "universal-dylib": 2}

    def __init__(self, machos, folder: Path):
        self.machos = machos
        self.folder = folder

    def place(self, app: App, macho: str, folder: Path, name: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        app.slices += self.SLICES.get(macho, 1)
        return self.machos.copy(macho, folder, name)

    def plain_bundle(self, app: App, root: Path, macho: str, package_type: str = "APPL") -> Path:
        """``root/Contents/{Info.plist, MacOS/<name>}``."""
        contents = root / "Contents"
        name = root.stem
        executable = self.place(app, macho, contents / "MacOS", name)
        (contents / "Info.plist").write_bytes(
            info_plist(f"com.example.{name.lower()}", name, package_type)
        )
        app.mains.append(MainExecutable(executable, contents / "Info.plist", contents, root))
        return root

    def framework(self, app: App, root: Path, macho: str) -> Path:
        """A versioned framework: ``Versions/A/{<name>, Resources/...}`` and its symlinks."""
        name = root.stem
        version = root / "Versions" / "A"
        resources = version / "Resources"
        resources.mkdir(parents=True)
        (resources / "Info.plist").write_bytes(
            info_plist(f"com.example.{name.lower()}", name, "FMWK")
        )
        (resources / "lib-data.txt").write_text(f"{name}'s own resource.\n")
        executable = self.place(app, macho, version, name)
        (root / "Versions" / "Current").symlink_to("A")
        (root / name).symlink_to(f"Versions/Current/{name}")
        (root / "Resources").symlink_to("Versions/Current/Resources")
        app.mains.append(MainExecutable(executable, resources / "Info.plist", version, root))
        return root

    def app(self, name: str = "X", main: str = "arm64-exe") -> App:
        """The full layout: resources of every kind and nested code of every kind."""
        app = App(self.folder / f"{name}.app")
        self.plain_bundle(app, app.root, main)
        contents = app.contents
        (contents / "PkgInfo").write_bytes(b"APPL????")
        app.loose.append(self.place(app, "x86_64-exe", contents / "MacOS", "helper-tool"))
        resources = contents / "Resources"
        (resources / "en.lproj").mkdir(parents=True)
        (resources / "Base.lproj").mkdir()
        (resources / "data.txt").write_bytes(DATA_TXT)
        (resources / "en.lproj" / "Localizable.strings").write_text('"Hello" = "Hello";\n')
        (resources / "Base.lproj" / "x.nib").write_bytes(b"nib\x00\x01\x02")
        (resources / "link.txt").symlink_to("data.txt")
        (resources / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
        frameworks = contents / "Frameworks"
        app.loose.append(self.place(app, "arm64-dylib", frameworks, "libloose.dylib"))
        self.framework(app, frameworks / "Lib.framework", "universal-dylib")
        self.plain_bundle(app, contents / "PlugIns" / "P.bundle", "arm64-bundle", "BNDL")
        self.plain_bundle(app, contents / "XPCServices" / "S.xpc", "x86_64-exe", "XPC!")
        helper = self.plain_bundle(app, contents / "Helpers" / "H.app", "arm64-exe")
        self.framework(app, helper / "Contents" / "Frameworks" / "Inner.framework", "arm64-dylib")
        self.plain_bundle(app, contents / "Library" / "LoginItems" / "L.app", "universal-exe")
        return app

    def shallow(self, name: str = "Shallow") -> App:
        """A shallow bundle: Info.plist and the executable at the top, no Contents."""
        app = App(self.folder / f"{name}.bundle")
        app.root.mkdir()
        executable = self.place(app, "arm64-exe", app.root, name)
        (app.root / "Info.plist").write_bytes(info_plist(f"com.example.{name.lower()}", name))
        app.mains.append(MainExecutable(executable, app.root / "Info.plist", app.root, app.root))
        app.loose.append(self.place(app, "arm64-dylib", app.root, "libshallow.dylib"))
        (app.root / "data.txt").write_bytes(DATA_TXT)
        (app.root / "sub").mkdir()
        (app.root / "sub" / "x.txt").write_text("x\n")
        (app.root / "en.lproj").mkdir()
        (app.root / "en.lproj" / "Localizable.strings").write_text('"A" = "A";\n')
        return app


class CountingSigner:
    """A signer proxy that records each call (and can fail in ``sign_digests``)."""

    def __init__(self, inner, failure: Exception | None = None):
        self.inner = inner
        self.failure = failure
        self.batches: list[list[bytes]] = []
        self.single_calls = 0

    @property
    def certificate(self):
        return self.inner.certificate

    @property
    def chain(self):
        return self.inner.chain

    def default_algorithm(self):
        return self.inner.default_algorithm()

    def sign_digest(self, digest, algorithm):
        self.single_calls += 1
        return self.inner.sign_digest(digest, algorithm)

    def sign_digests(self, requests):
        self.batches.append([digest for digest, _ in requests])
        if self.failure is not None:
            raise self.failure
        return self.inner.sign_digests(requests)


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file under ``root`` with its bytes and mode, and every symlink with its target
    (an empty folder left behind is no harm)."""
    entries: dict[str, tuple] = {}
    for folder, folders, files in os.walk(root):
        for name in folders + files:
            path = Path(folder) / name
            relative = path.relative_to(root).as_posix()
            if path.is_symlink():
                entries[relative] = ("symlink", os.readlink(path))
            elif path.is_file():
                entries[relative] = ("file", path.read_bytes(), path.stat().st_mode)
    return entries


def temporary_files(root: Path) -> list[str]:
    """Names write_all's temporary files would have (``.NAME.xxxx``)."""
    return sorted(
        path.relative_to(root).as_posix() for path in root.rglob(".*") if path.name != ".DS_Store"
    )


def machos_on_disk(root: Path) -> list[Path]:
    """Every regular file under ``root`` that starts with a Mach-O or universal magic."""
    found = []
    for folder, _, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            if not path.is_symlink() and path.read_bytes()[:4] in MACHO_MAGICS:
                found.append(path)
    return sorted(found)


def all_problems(path: Path) -> list[str]:
    check = check_bundle(path)
    return check.problems + [p for s in check.slices for p in s.problems]


def main_check(main: MainExecutable):
    return check_macho(
        main.path.read_bytes(),
        info_plist=main.info_plist.read_bytes(),
        resources=main.seal.read_bytes(),
    )


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def flip_before_signature(path: Path) -> None:
    """Invert one byte of code (just before the signature) in a thin Mach-O file."""
    data = bytearray(path.read_bytes())
    offset = check_macho(bytes(data))[0].primary.code_limit - 1
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture
def builder(machos, tmp_path) -> AppBuilder:
    return AppBuilder(machos, tmp_path)


@pytest.fixture
def signer_named(request):
    def get(name: str):
        return None if name == "adhoc" else request.getfixturevalue(f"{name}_signer")

    return get


@pytest.fixture(scope="module")
def signed_app(machos, tmp_path_factory) -> App:
    """One ad-hoc signed app for the tests that only read it (or copy it first)."""
    app = AppBuilder(machos, tmp_path_factory.mktemp("signed")).app()
    sign_bundle(app.root, None, OPTIONS)
    return app


@pytest.fixture
def signed_copy(signed_app, tmp_path) -> App:
    """A test's own copy of ``signed_app``, to tamper with."""
    root = tmp_path / "copy" / signed_app.root.name
    shutil.copytree(signed_app.root, root, symlinks=True)

    def moved(path: Path) -> Path:
        return root / path.relative_to(signed_app.root)

    mains = [
        MainExecutable(moved(m.path), moved(m.info_plist), moved(m.content), moved(m.root))
        for m in signed_app.mains
    ]
    return App(root, mains, [moved(p) for p in signed_app.loose], signed_app.slices)


# --- Signing a whole app --------------------------------------------------------------------


@pytest.mark.parametrize("signer_name", SIGNERS)
def test_it_signs_every_mach_o_of_an_app_so_that_the_app_verifies(
    signer_name, signer_named, builder, independent, apple_root, test_ca
):
    signer = signer_named(signer_name)
    app = builder.app()

    count = sign_bundle(app.root, signer, OPTIONS)

    assert count == len(app.machos) == 9
    assert machos_on_disk(app.root) == sorted(app.machos)
    assert all_problems(app.root) == []
    assert check_bundle(app.root).valid
    assert [main.root for main in app.mains if not check_bundle(main.root).valid] == []
    kind = "adhoc" if signer is None else "cms"
    anchor = {"apple": apple_root, "ca": test_ca}.get(signer_name)
    for main in app.mains:
        checks = main_check(main)
        assert [(c.kind, c.problems) for c in checks] == [(kind, [])] * len(checks), main.path
    for path in app.loose:
        checks = check_macho(path.read_bytes())
        assert [(c.kind, c.problems) for c in checks] == [(kind, [])] * len(checks), path
    if anchor is not None:
        checked = sum(independent.openssl_verifies(p.read_bytes(), anchor) for p in app.machos)
        assert checked == app.slices


def test_it_signs_a_shallow_bundle_with_the_shallow_rules(builder):
    app = builder.shallow()

    assert sign_bundle(app.root, None, OPTIONS) == 2

    assert all_problems(app.root) == []
    seal = app.seal()
    assert seal["rules"] == SHALLOW_RULES
    assert seal["rules2"] == SHALLOW_RULES2
    files2 = seal["files2"]
    assert sorted(files2) == [
        "data.txt", "en.lproj/Localizable.strings", "libshallow.dylib", "sub/x.txt"
    ]  # fmt: skip
    assert files2["data.txt"] == {"hash2": sha256(DATA_TXT)}
    assert files2["en.lproj/Localizable.strings"]["optional"] is True
    assert set(files2["libshallow.dylib"]) == {"cdhash", "requirement"}
    special = main_check(app.main)[0].primary.special_hashes
    assert special[Slot.INFO_PLIST] == sha256(app.main.info_plist.read_bytes())
    assert special[Slot.RESOURCES] == sha256(app.main.seal.read_bytes())


def test_a_shallow_bundles_modified_file_is_detected(builder):
    app = builder.shallow()
    sign_bundle(app.root, None, OPTIONS)

    (app.root / "sub" / "x.txt").write_text("changed\n")

    assert "file modified: sub/x.txt" in all_problems(app.root)


def test_the_identifier_option_names_the_main_executable_only(builder):
    app = builder.app()

    sign_bundle(app.root, None, SigningOptions(identifier="com.example.chosen"))

    identifiers = {main.path.name: main_check(main)[0].primary.identifier for main in app.mains}
    assert identifiers == {
        "X": "com.example.chosen", "Lib": "com.example.lib", "P": "com.example.p",
        "S": "com.example.s", "H": "com.example.h", "Inner": "com.example.inner",
        "L": "com.example.l",
    }  # fmt: skip
    loose = {p.name: check_macho(p.read_bytes())[0].primary.identifier for p in app.loose}
    assert loose == {"helper-tool": "helper-tool", "libloose.dylib": "libloose"}


def test_every_bundles_main_executable_binds_its_own_info_plist_and_seal(signed_app):
    for main in signed_app.mains:
        for check in main_check(main):
            special = check.primary.special_hashes
            assert special[Slot.INFO_PLIST] == sha256(main.info_plist.read_bytes()), main.path
            assert special[Slot.RESOURCES] == sha256(main.seal.read_bytes()), main.path


def test_nested_mach_o_files_outside_bundles_bind_no_info_plist_nor_seal(signed_app):
    for path in signed_app.loose:
        special = check_macho(path.read_bytes())[0].primary.special_hashes
        assert not any(special.get(Slot.INFO_PLIST, b"")), path
        assert not any(special.get(Slot.RESOURCES, b"")), path


def test_the_main_executable_does_not_verify_without_its_bundle(signed_app):
    problems = check_macho(signed_app.main.path.read_bytes())[0].problems

    assert any("special slot 1" in p for p in problems), problems
    assert any("special slot 3" in p for p in problems), problems


# --- The seal -------------------------------------------------------------------------------


def test_the_seal_has_the_four_keys_and_the_default_rules(signed_app):
    seal = signed_app.seal()

    assert sorted(seal) == ["files", "files2", "rules", "rules2"]
    assert seal["rules"] == RULES
    assert seal["rules2"] == RULES2


def test_the_seal_records_resources_by_sha256_and_sha1(signed_app):
    seal = signed_app.seal()

    assert seal["files2"]["Resources/data.txt"] == {"hash2": sha256(DATA_TXT)}
    assert seal["files"]["Resources/data.txt"] == hashlib.sha1(DATA_TXT).digest()
    assert "Resources/Base.lproj/x.nib" in seal["files"]


def test_the_seal_records_a_symlink_as_its_target(signed_app):
    seal = signed_app.seal()

    assert seal["files2"]["Resources/link.txt"] == {"symlink": "data.txt"}
    assert "Resources/link.txt" not in seal["files"]


def test_the_seal_marks_localizations_optional_but_not_base(signed_app):
    files, files2 = signed_app.seal()["files"], signed_app.seal()["files2"]
    strings = "Resources/en.lproj/Localizable.strings"

    assert files2[strings]["optional"] is True
    assert files[strings]["optional"] is True
    assert "optional" not in files2["Resources/Base.lproj/x.nib"]


@pytest.mark.parametrize(
    "relative",
    ["Resources/.DS_Store", "Info.plist", "PkgInfo", SEAL, "MacOS/X",
     "Frameworks/Lib.framework/Versions/A/Lib", "PlugIns/P.bundle/Contents/MacOS/P"],
)  # fmt: skip
def test_the_seal_leaves_out(relative, signed_app):
    seal = signed_app.seal()

    assert relative not in seal["files2"]
    assert relative not in seal["files"]


NESTED = {
    "MacOS/helper-tool": "MacOS/helper-tool",
    "Frameworks/libloose.dylib": "Frameworks/libloose.dylib",
    "Frameworks/Lib.framework": "Frameworks/Lib.framework/Versions/A/Lib",
    "PlugIns/P.bundle": "PlugIns/P.bundle/Contents/MacOS/P",
    "XPCServices/S.xpc": "XPCServices/S.xpc/Contents/MacOS/S",
    "Helpers/H.app": "Helpers/H.app/Contents/MacOS/H",
    "Library/LoginItems/L.app": "Library/LoginItems/L.app/Contents/MacOS/L",
}


@pytest.mark.parametrize("signer_name", ["adhoc", "apple"])
def test_the_seal_records_nested_code_by_cdhash_and_requirement(signer_name, signer_named, builder):
    signer = signer_named(signer_name)
    app = builder.app()
    sign_bundle(app.root, signer, OPTIONS)
    files2 = app.seal()["files2"]

    nested = {relative: entry for relative, entry in files2.items() if "cdhash" in entry}
    assert sorted(nested) == sorted(NESTED)
    for relative, executable in NESTED.items():
        check = check_macho((app.contents / executable).read_bytes())[0]
        designated = check.requirements.get(RequirementType.DESIGNATED)
        cdhash = check.best.cdhash()
        expected = requirement_text(designated) if signer else f'cdhash H"{cdhash.hex()}"'
        assert nested[relative] == {"cdhash": cdhash, "requirement": expected}, relative
        assert relative not in app.seal()["files"]
    if signer is not None:
        assert 'identifier "com.example.p"' in nested["PlugIns/P.bundle"]["requirement"]


def test_a_nested_app_seals_its_own_nested_framework(signed_app):
    helper = signed_app.contents / "Helpers" / "H.app" / "Contents"
    files2 = plistlib.loads((helper / SEAL).read_bytes())["files2"]
    inner = check_macho((helper / "Frameworks/Inner.framework/Versions/A/Inner").read_bytes())[0]

    assert files2["Frameworks/Inner.framework"]["cdhash"] == inner.best.cdhash()


def test_a_versioned_framework_is_sealed_inside_its_current_version(signed_app):
    version = signed_app.contents / "Frameworks" / "Lib.framework" / "Versions" / "A"
    seal = plistlib.loads((version / SEAL).read_bytes())

    assert sorted(seal["files2"]) == ["Resources/Info.plist", "Resources/lib-data.txt"]
    assert not (version.parent.parent / "_CodeSignature").exists()


def test_old_deployment_targets_get_sha1_hashes_in_the_seal_too(builder):
    app = builder.app(main="x86_64-exe-10.9")

    sign_bundle(app.root, None, OPTIONS)

    entry = app.seal()["files2"]["Resources/data.txt"]
    assert entry == {"hash": hashlib.sha1(DATA_TXT).digest(), "hash2": sha256(DATA_TXT)}
    hash_types = [cd.hash_type for _, cd in main_check(app.main)[0].code_directories]
    assert hash_types == [HashType.SHA1, HashType.SHA256]
    assert all_problems(app.root) == []


def test_a_shell_script_among_the_executables_is_sealed_as_a_plain_file(builder):
    app = builder.app()
    script = app.contents / "MacOS" / "run.sh"
    script.write_bytes(b'#!/bin/sh\nexec "$(dirname "$0")/X"\n')
    script.chmod(0o755)
    before = script.read_bytes()

    count = sign_bundle(app.root, None, OPTIONS)

    assert count == len(app.machos)
    assert script.read_bytes() == before
    assert app.seal()["files2"]["MacOS/run.sh"] == {"hash2": sha256(before)}
    assert all_problems(app.root) == []


def test_a_nested_bundle_without_code_is_sealed_so_that_the_app_verifies(builder):
    app = builder.app()
    resources = app.contents / "PlugIns" / "Res.bundle" / "Contents" / "Resources"
    resources.mkdir(parents=True)
    (resources.parent / "Info.plist").write_bytes(info_plist("com.example.res", None, "BNDL"))
    (resources / "a.txt").write_text("a resource-only plug-in\n")

    sign_bundle(app.root, None, OPTIONS)

    assert all_problems(app.root) == []
    (resources / "a.txt").write_text("changed\n")
    assert [p for p in all_problems(app.root) if "Res.bundle" in p] != []


def test_a_nested_framework_without_versions_is_signed_in_place(builder):
    app = builder.app()
    framework = app.contents / "Frameworks" / "Flat.framework"
    framework.mkdir()
    (framework / "Info.plist").write_bytes(info_plist("com.example.flat", "Flat", "FMWK"))
    builder.machos.copy("arm64-dylib", framework, "Flat")

    sign_bundle(app.root, None, OPTIONS)

    assert all_problems(app.root) == []
    inner = plistlib.loads((framework / SEAL).read_bytes())
    assert "Info.plist" not in inner["files2"]
    flat = check_macho((framework / "Flat").read_bytes())[0]
    assert app.seal()["files2"]["Frameworks/Flat.framework"]["cdhash"] == flat.best.cdhash()


# --- One batch, progress --------------------------------------------------------------------


@pytest.mark.parametrize("signer_name", ["apple", "ca"])
def test_the_whole_tree_is_signed_in_one_batch(signer_name, signer_named, builder):
    signer = CountingSigner(signer_named(signer_name))
    app = builder.app()

    sign_bundle(app.root, signer, OPTIONS)

    assert len(signer.batches) == 1
    assert len(signer.batches[0]) == app.slices == 11
    assert len(set(signer.batches[0])) == app.slices
    assert signer.single_calls == 0
    assert all_problems(app.root) == []


def test_progress_is_reported_for_every_mach_o(builder):
    app = builder.app()
    reported: list[Path] = []

    sign_bundle(app.root, None, OPTIONS, reported.append)

    assert sorted(p.resolve() for p in reported) == sorted(p.resolve() for p in app.machos)


# --- Tampering ------------------------------------------------------------------------------


def modify_resource(app: App) -> None:
    (app.contents / "Resources" / "data.txt").write_bytes(DATA_TXT + b"more\n")


def add_resource(app: App) -> None:
    (app.contents / "Resources" / "new.txt").write_text("new\n")


def remove_resource(app: App) -> None:
    (app.contents / "Resources" / "data.txt").unlink()


def remove_base_localization(app: App) -> None:
    (app.contents / "Resources" / "Base.lproj" / "x.nib").unlink()


def retarget_symlink(app: App) -> None:
    link = app.contents / "Resources" / "link.txt"
    link.unlink()
    link.symlink_to("Base.lproj/x.nib")


def replace_symlink_with_file(app: App) -> None:
    link = app.contents / "Resources" / "link.txt"
    link.unlink()
    link.write_bytes(DATA_TXT)


def modify_nested_dylib(app: App) -> None:
    flip_before_signature(app.contents / "Frameworks" / "libloose.dylib")


def resign_nested_dylib(app: App) -> None:
    path = app.contents / "Frameworks" / "libloose.dylib"
    options = SigningOptions(identifier="libloose", force=True, runtime=True)
    path.write_bytes(sign_macho(path.read_bytes(), None, options))


def modify_framework_resource(app: App) -> None:
    resource = app.contents / "Frameworks/Lib.framework/Versions/A/Resources/lib-data.txt"
    resource.write_text("changed\n")


def modify_deeply_nested_framework(app: App) -> None:
    inner = "Helpers/H.app/Contents/Frameworks/Inner.framework/Versions/A/Resources/lib-data.txt"
    (app.contents / inner).write_text("changed\n")


def remove_nested_bundle(app: App) -> None:
    shutil.rmtree(app.contents / "PlugIns" / "P.bundle")


def modify_info_plist(app: App) -> None:
    path = app.contents / "Info.plist"
    path.write_bytes(path.read_bytes().replace(b"com.example.x", b"com.example.y"))


def modify_seal(app: App) -> None:
    seal = app.seal()
    del seal["files2"]["Resources/data.txt"]
    del seal["files"]["Resources/data.txt"]
    app.main.seal.write_bytes(plistlib.dumps(seal))


def modify_main_executable(app: App) -> None:
    flip_before_signature(app.main.path)


TAMPERING = [
    (modify_resource, "file modified: Resources/data.txt"),
    (add_resource, "file added: Resources/new.txt"),
    (remove_resource, "file missing: Resources/data.txt"),
    (remove_base_localization, "file missing: Resources/Base.lproj/x.nib"),
    (retarget_symlink, "file modified: Resources/link.txt"),
    (replace_symlink_with_file, "file modified: Resources/link.txt"),
    (modify_nested_dylib, "Frameworks/libloose.dylib: code page"),
    (resign_nested_dylib, "nested code modified: Frameworks/libloose.dylib"),
    (modify_framework_resource, "Frameworks/Lib.framework: file modified: Resources/lib-data.txt"),
    (modify_deeply_nested_framework,
     "Helpers/H.app: Frameworks/Inner.framework: file modified: Resources/lib-data.txt"),
    (remove_nested_bundle, "file missing: PlugIns/P.bundle"),
    (modify_info_plist, "special slot 1 has been modified"),
    (modify_seal, "special slot 3 has been modified"),
    (modify_main_executable, "has been modified"),
]  # fmt: skip


@pytest.mark.parametrize(("tamper", "problem"), TAMPERING, ids=[t.__name__ for t, _ in TAMPERING])
def test_check_bundle_detects(tamper, problem, signed_copy):
    assert all_problems(signed_copy.root) == []

    tamper(signed_copy)

    problems = all_problems(signed_copy.root)
    assert any(problem in p for p in problems), problems
    assert not check_bundle(signed_copy.root).valid


def test_a_missing_localization_is_allowed(signed_copy):
    (signed_copy.contents / "Resources" / "en.lproj" / "Localizable.strings").unlink()

    assert all_problems(signed_copy.root) == []


def test_a_nested_frameworks_modified_resource_makes_the_framework_invalid(signed_copy):
    framework = signed_copy.contents / "Frameworks" / "Lib.framework"
    assert check_bundle(framework).valid

    modify_framework_resource(signed_copy)

    assert not check_bundle(framework).valid
    assert "file modified: Resources/lib-data.txt" in check_bundle(framework).problems


def rewrite_seal(app: App, change) -> None:
    seal = app.seal()
    change(seal)
    app.main.seal.write_bytes(plistlib.dumps(seal))


def truncate_seal(app: App) -> None:
    app.main.seal.write_bytes(app.main.seal.read_bytes()[:-40])


def remove_seal(app: App) -> None:
    app.main.seal.unlink()


def seal_with_a_bad_pattern(app: App) -> None:
    rewrite_seal(app, lambda seal: seal["rules2"].update({"^(unclosed": True}))


def seal_with_rules2_as_a_list(app: App) -> None:
    rewrite_seal(app, lambda seal: seal.update(rules2=["^.*"]))


def seal_with_an_entry_that_is_no_dict(app: App) -> None:
    rewrite_seal(app, lambda seal: seal["files2"].update({"Resources/data.txt": "hash"}))


DAMAGED_SEALS = [
    (truncate_seal, "CodeResources is damaged"),
    (remove_seal, "not signed at all"),
    (seal_with_a_bad_pattern, "(^(unclosed) is not valid"),
    (seal_with_rules2_as_a_list, "rules"),
    (seal_with_an_entry_that_is_no_dict, "entry for Resources/data.txt is damaged"),
]


@pytest.mark.parametrize(
    ("damage", "problem"), DAMAGED_SEALS, ids=[d.__name__ for d, _ in DAMAGED_SEALS]
)
def test_check_bundle_reports_a_damaged_seal_as_a_problem(damage, problem, signed_copy):
    damage(signed_copy)

    check = check_bundle(signed_copy.root)

    assert not check.valid
    assert any(problem in p for p in check.problems), check.problems


# --- Nested code already signed ---------------------------------------------------------------


@pytest.fixture
def presigned(builder, ca_signer):
    """An app whose loose dylib is ad-hoc signed and whose plug-in is CMS signed already."""
    app = builder.app()
    dylib = app.contents / "Frameworks" / "libloose.dylib"
    dylib.write_bytes(sign_macho(dylib.read_bytes(), None, SigningOptions("com.example.kept")))
    sign_bundle(app.contents / "PlugIns" / "P.bundle", ca_signer, OPTIONS)
    return app


def test_nested_code_already_signed_is_kept_without_deep(presigned, apple_signer):
    app = presigned
    dylib = app.contents / "Frameworks" / "libloose.dylib"
    plugin = app.contents / "PlugIns" / "P.bundle" / "Contents" / "MacOS" / "P"
    before = {path: path.read_bytes() for path in (dylib, plugin)}

    count = sign_bundle(app.root, apple_signer, OPTIONS)

    assert count == len(app.machos) - 2
    assert {path: path.read_bytes() for path in before} == before
    files2 = app.seal()["files2"]
    plugin_check = check_macho(before[plugin])[0]
    assert (
        files2["Frameworks/libloose.dylib"]["cdhash"] == check_macho(before[dylib])[0].best.cdhash()
    )
    assert files2["PlugIns/P.bundle"] == {
        "cdhash": plugin_check.best.cdhash(),
        "requirement": requirement_text(plugin_check.requirements[RequirementType.DESIGNATED]),
    }
    assert all_problems(app.root) == []


def test_deep_signing_refuses_nested_code_already_signed_without_force(presigned, apple_signer):
    before = snapshot(presigned.root)

    with pytest.raises(AlreadySigned, match="-f"):
        sign_bundle(presigned.root, apple_signer, OPTIONS, deep=True)

    assert snapshot(presigned.root) == before


def test_deep_signing_with_force_re_signs_nested_code(presigned, apple_signer):
    app = presigned
    dylib = app.contents / "Frameworks" / "libloose.dylib"
    plugin = app.contents / "PlugIns" / "P.bundle" / "Contents" / "MacOS" / "P"
    before = {path: path.read_bytes() for path in (dylib, plugin)}

    count = sign_bundle(app.root, apple_signer, SigningOptions("", force=True), deep=True)

    assert count == len(app.machos)
    for path, old in before.items():
        assert path.read_bytes() != old
        check = check_macho(path.read_bytes())[0]
        assert check.kind == "cms"
        assert check.primary.team_id == "ABCDE12345"
    files2 = app.seal()["files2"]
    assert (
        files2["Frameworks/libloose.dylib"]["cdhash"]
        == check_macho(dylib.read_bytes())[0].best.cdhash()
    )
    assert all_problems(app.root) == []


def test_re_signing_a_signed_app_needs_force(signed_copy):
    before = snapshot(signed_copy.root)

    with pytest.raises(AlreadySigned, match="-f"):
        sign_bundle(signed_copy.root, None, OPTIONS)
    assert snapshot(signed_copy.root) == before

    sign_bundle(signed_copy.root, None, SigningOptions("", force=True))
    assert all_problems(signed_copy.root) == []


# --- Bad bundles and failures ---------------------------------------------------------------


def remove_main_executable(app: App) -> None:
    app.main.path.unlink()


def remove_info_plist(app: App) -> None:
    (app.contents / "Info.plist").unlink()


def damage_info_plist(app: App) -> None:
    (app.contents / "Info.plist").write_bytes(b"<plist><dict><key>oops</dict>")


def list_info_plist(app: App) -> None:
    (app.contents / "Info.plist").write_bytes(plistlib.dumps(["not", "a", "dict"]))


BAD_BUNDLES = [
    (remove_main_executable, r"executable .*MacOS/X is missing"),
    (remove_info_plist, r"is not a bundle \(no Info\.plist\)"),
    (damage_info_plist, r"Info\.plist is not a readable property list"),
    (list_info_plist, r"Info\.plist is not a dictionary"),
]


@pytest.mark.parametrize(
    ("damage", "message"), BAD_BUNDLES, ids=[d.__name__ for d, _ in BAD_BUNDLES]
)
def test_a_bad_bundle_is_refused_with_a_clear_message(damage, message, builder):
    app = builder.app()
    damage(app)
    before = snapshot(app.root)

    with pytest.raises(BundleError, match=message):
        sign_bundle(app.root, None, OPTIONS)

    assert snapshot(app.root) == before


def test_a_folder_without_a_bundle_extension_is_not_a_bundle(tmp_path):
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "Info.plist").write_bytes(info_plist("com.example.plain", "plain"))

    with pytest.raises(BundleError, match="not a bundle"):
        sign_bundle(folder, None, OPTIONS)


def text_as_main_executable(app: App) -> None:
    app.main.path.write_text("#!/bin/sh\necho not Mach-O\n")


def truncated_nested_dylib(app: App) -> None:
    path = app.contents / "Frameworks" / "libloose.dylib"
    path.write_bytes(path.read_bytes()[:200])


def unwritable_plugin_seal(app: App) -> None:
    # A file where the plug-in's _CodeSignature folder must go: writing fails after the
    # Mach-O files of the tree have gone to temporary files.
    (app.contents / "PlugIns" / "P.bundle" / "Contents" / "_CodeSignature").write_text("x")


FAILURES = [text_as_main_executable, truncated_nested_dylib, unwritable_plugin_seal]


@pytest.mark.parametrize("damage", FAILURES)
def test_a_failure_midway_leaves_every_file_untouched(damage, builder):
    app = builder.app()
    damage(app)
    before = snapshot(app.root)

    with pytest.raises(SigningManagerError):
        sign_bundle(app.root, None, OPTIONS)

    assert temporary_files(app.root) == []
    assert snapshot(app.root) == before


@pytest.mark.parametrize("signer_name", ["apple", "ca"])
def test_a_signer_failing_in_its_batch_leaves_every_file_untouched(
    signer_name, signer_named, builder
):
    signer = CountingSigner(signer_named(signer_name), SigningManagerError("Service down."))
    app = builder.app()
    before = snapshot(app.root)

    with pytest.raises(SigningManagerError, match="Service down"):
        sign_bundle(app.root, signer, OPTIONS)

    assert len(signer.batches) == 1
    assert temporary_files(app.root) == []
    assert snapshot(app.root) == before


def test_signing_keeps_every_files_mode(builder):
    app = builder.app()
    (app.contents / "Frameworks" / "libloose.dylib").chmod(0o700)
    modes = {p: p.stat().st_mode for p in app.machos}

    sign_bundle(app.root, None, OPTIONS)

    assert {p: p.stat().st_mode for p in app.machos} == modes
    assert (app.main.seal.stat().st_mode & 0o777) == 0o644
