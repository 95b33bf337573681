"""Bundles: signing an app (or framework, plug-in, XPC service) inside-out, and checking it.

Layouts (reference section 8): ``X.app/Contents/{Info.plist, MacOS/<CFBundleExecutable>, ...}``;
a versioned framework ``X.framework/Versions/<Current>/{Resources/Info.plist, <executable>}``;
a shallow bundle with ``Info.plist`` and the executable at the top. Paths in the seal are
relative to that content folder.

Signing order: every nested bundle (deepest first), then the loose Mach-O files the nesting
rules cover, then the seal (``_CodeSignature/CodeResources``, which records each nested code's
cdhash and designated requirement), then the main executable, whose CodeDirectory binds the
Info.plist and the seal. A cdhash depends only on its CodeDirectory, not on the CMS, so every
CMS digest of the whole tree goes to the service in ONE batch once everything is laid out; the
files are written (each to a temporary file, then renamed) only when every signature is back
and verified.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from signing_manager.codesign.files import map_file, write_all
from signing_manager.codesign.plist import PlistError, read_plist
from signing_manager.codesign.requirements import RequirementType, requirement_text
from signing_manager.codesign.resources import (
    Resource,
    ResourcesError,
    code_resources,
    default_rules,
    files2_entry,
    load_code_resources,
    scan,
)
from signing_manager.codesign.signing import (
    PendingMachO,
    SigningOptions,
    designated_requirement,
    existing_signature,
    finish_all,
    first_slice,
    prepare,
    uses_sha1,
)
from signing_manager.codesign.verify import SliceCheck, check_macho
from signing_manager.errors import SigningManagerError

SEAL = "_CodeSignature/CodeResources"
HASH_KEYS = ("hash2", "hash")


class BundleError(SigningManagerError):
    pass


# The longest file name the file systems codesign runs on allow (NAME_MAX), in bytes.
NAME_MAX = 255


@dataclass(frozen=True)
class Bundle:
    root: Path
    content: Path  # the folder seal paths are relative to
    info_plist: Path
    info: dict

    @property
    def identifier(self) -> str:
        return str(self.info.get("CFBundleIdentifier") or self.root.stem)

    @property
    def executable(self) -> Path | None:
        name = self.info.get("CFBundleExecutable")
        if not name:
            return None
        macos = self.content / "MacOS"
        return (macos if macos.is_dir() else self.content) / str(name)

    @property
    def seal(self) -> Path:
        return self.content / SEAL


def check_executable_name(info: dict, info_plist: Path) -> None:
    """CFBundleExecutable is a file name in the bundle, never a path (``../../x``)."""
    name = info.get("CFBundleExecutable")
    if not name:
        return
    if (
        not isinstance(name, str)
        or name in {".", ".."}
        or "/" in name
        or "\0" in name
        or len(name.encode("utf-8", "surrogateescape")) > NAME_MAX
    ):
        shown = repr(name) if len(repr(name)) <= 80 else repr(name)[:77] + "..."
        raise BundleError(
            f"{info_plist} names an executable that is not a file name in the bundle: {shown}."
        )


def confine(bundle: Bundle) -> Bundle:
    """Refuse a bundle any of whose own paths leads out of it, through a symbolic link (a
    ``MacOS`` folder, ``Versions/Current``, ``_CodeSignature``): signing writes where they
    lead. Links among the bundle's resources are sealed as links and never followed."""
    root = bundle.root.resolve()
    named = {
        "content folder": bundle.content,
        "Info.plist": bundle.info_plist,
        "signature folder": bundle.seal.parent,
        "seal": bundle.seal,
        "executable": bundle.executable,
    }
    for what, path in named.items():
        if path is None:
            continue
        try:
            resolved = path.resolve()
        except (OSError, RuntimeError):  # RuntimeError: a loop of symbolic links
            raise BundleError(f"The bundle's {what} {path} is a loop of symbolic links.") from None
        if not resolved.is_relative_to(root):
            raise BundleError(f"The bundle's {what} {path} leads outside the bundle {root}.")
    return bundle


def open_bundle(path: Path) -> Bundle | None:
    """The bundle at ``path``, or None when the folder is not one (a bundle's name has an
    extension: .app, .framework, .bundle, .appex, .xpc, ...)."""
    if not path.suffix:
        return None
    for content, info in (
        (path / "Contents", path / "Contents" / "Info.plist"),
        (path / "Versions" / "Current", path / "Versions" / "Current" / "Resources" / "Info.plist"),
        (path, path / "Resources" / "Info.plist"),
        (path, path / "Info.plist"),
    ):
        if info.is_file():
            try:
                document = read_plist(read(info), str(info))
            except PlistError as error:
                raise BundleError(str(error)) from None
            if not isinstance(document, dict):
                raise BundleError(f"{info} is not a dictionary.")
            check_executable_name(document, info)
            return confine(Bundle(path, content.resolve() if content.is_symlink() else content,
                                  info, document))  # fmt: skip
    return None


def is_code_bundle(path: Path) -> bool:
    """A nested bundle with an executable is sealed as one entry; one without code (resources
    only) is sealed file by file, like any folder."""
    bundle = open_bundle(path)
    return bundle is not None and bundle.executable is not None


def bundle_of_executable(path: Path) -> Path | None:
    """The bundle whose main executable ``path`` is (``X.app/Contents/MacOS/X``, a framework's
    ``Versions/A/X``, a shallow bundle's ``X``): checks of it are checks of the bundle, as with
    Apple's codesign."""
    for candidate in (path.parent.parent.parent, path.parent.parent.parent.parent, path.parent):
        try:
            bundle = open_bundle(candidate)
        except BundleError:
            continue
        executable = bundle.executable if bundle else None
        if executable is not None and executable.resolve() == path.resolve():
            return candidate
    return None


def default_identifier(path: Path) -> str:
    """codesign's identifier for a bare file: its name without the last extension."""
    return path.stem or path.name


@dataclass
class Plan:
    """Everything laid out and hashed, waiting for the one batch of signatures."""

    signer: object
    pending: list[tuple[Path, PendingMachO]] = field(default_factory=list)
    seals: list[tuple[Path, bytes]] = field(default_factory=list)

    def write(self) -> None:
        """Sign every pending file in one batch, then write all files, each atomically."""
        signed = finish_all([item for _, item in self.pending], self.signer)
        outputs = [*zip((path for path, _ in self.pending), signed, strict=True), *self.seals]
        write_all(outputs)


def read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise BundleError(f"Cannot read {path}: {error.strerror}.") from None


class BundleSigner:
    """Plans the signing of one bundle tree with one signer (None: ad-hoc) and options."""

    def __init__(self, signer, options, progress: Callable[[Path], None], deep: bool):
        self.signer = signer
        self.deep = deep
        self.options = options
        self.progress = progress
        self.plan = Plan(signer)

    def sign_file(self, path: Path, identifier: str, **bindings) -> PendingMachO:
        self.progress(path)
        options = replace(self.options, identifier=identifier, **bindings)
        pending = prepare(map_file(path), self.signer, options)
        self.plan.pending.append((path, pending))
        return pending

    def nested_entry(self, pending: PendingMachO, identifier: str) -> tuple[bytes, str]:
        """What the parent's seal records of nested code: cdhash and designated requirement."""
        directory = pending.primary_code_directory()
        requirement = designated_requirement(identifier, self.signer)
        return directory.cdhash(), requirement_text_or_cdhash(requirement, directory.cdhash())

    def nested_code(self, resource: Resource) -> tuple[bytes, str] | None:
        inner = open_bundle(resource.path)
        executable = inner.executable if inner else resource.path
        if not self.deep and executable is not None and is_signed(executable):
            return recorded_entry(executable)  # kept as it is, as codesign does without --deep
        if inner is not None:
            pending, identifier = self.sign_bundle(inner, outer=False), inner.identifier
        else:
            identifier = default_identifier(resource.path)
            pending = self.sign_file(resource.path, identifier, **NESTED_BINDINGS)
        return None if pending is None else self.nested_entry(pending, identifier)

    def sign_bundle(self, bundle: Bundle, outer: bool = True) -> PendingMachO | None:
        """Plan ``bundle`` and everything in it; its main executable's pending signature."""
        executable = bundle.executable
        if executable is not None and not executable.is_file():
            raise BundleError(f"The bundle's executable {executable} is missing.")
        skip = {executable.relative_to(bundle.content).as_posix()} if executable else set()
        _, rules2 = default_rules(bundle.content)
        resources = scan(bundle.content, rules2, skip, is_code_bundle)
        nested = {}
        for resource in sorted(resources, key=lambda r: -r.relative.count("/")):
            entry = self.nested_code(resource) if resource.kind == "nested" else None
            if entry is not None:
                nested[resource.relative] = entry
        sealed = [r for r in resources if r.kind != "nested" or r.relative in nested]
        with_sha1 = executable is not None and uses_sha1(map_file(executable))
        seal = code_resources(bundle.content, sealed, with_sha1, nested)
        self.plan.seals.append((bundle.seal, seal))
        if executable is None:
            return None
        identifier = (self.options.identifier if outer else "") or bundle.identifier
        bindings = {} if outer else {"entitlements": None}
        info_plist = read(bundle.info_plist)
        return self.sign_file(
            executable, identifier, info_plist=info_plist, resources=seal, **bindings
        )


NESTED_BINDINGS = {"entitlements": None, "info_plist": None, "resources": None}


def requirement_text_or_cdhash(requirement, cdhash: bytes) -> str:
    """The designated requirement; ad-hoc code has none but its own cdhash."""
    return requirement_text(requirement) if requirement else f'cdhash H"{cdhash.hex()}"'


def is_signed(executable: Path) -> bool:
    """Signed for real (ad-hoc or CMS): a linker's signature does not count."""
    data = map_file(executable)
    return existing_signature(first_slice(data)) in ("adhoc", "signed")


def recorded_entry(executable: Path) -> tuple[bytes, str]:
    check = check_macho(map_file(executable))[0]
    designated = check.requirements.get(RequirementType.DESIGNATED)
    cdhash = check.best.cdhash()
    return cdhash, requirement_text_or_cdhash(designated, cdhash)


def sign_bundle(
    path: Path,
    signer,
    options: SigningOptions,
    progress: Callable[[Path], None] = lambda path: None,
    *,
    deep: bool = False,
) -> int:
    """Sign the bundle at ``path`` in place, inside-out; the number of Mach-O files signed.

    Nested code already signed (ad-hoc or CMS) is kept unless ``deep``."""
    bundle = open_bundle(path)
    if bundle is None:
        raise BundleError(f"{path.name} is not a bundle (no Info.plist).")
    planner = BundleSigner(signer, options, progress, deep)
    planner.sign_bundle(bundle)
    planner.plan.write()
    return len(planner.plan.pending)


@dataclass
class BundleCheck:
    bundle: Bundle
    slices: list[SliceCheck]
    seal: dict | None
    problems: list[str]

    @property
    def valid(self) -> bool:
        return not self.problems and all(not s.problems for s in self.slices)


def check_bundle(path: Path, deep: bool = True) -> BundleCheck:
    """The main executable's signature (binding Info.plist and the seal) and the seal itself."""
    bundle = open_bundle(path)
    if bundle is None:
        raise BundleError(f"{path.name} is not a bundle (no Info.plist).")
    problems: list[str] = []
    seal_bytes = bundle.seal.read_bytes() if bundle.seal.is_file() else None
    seal = None
    if seal_bytes is None:
        problems.append("code object is not signed at all (no _CodeSignature/CodeResources)")
    else:
        try:
            seal = load_code_resources(seal_bytes)
        except ResourcesError as error:
            problems.append(str(error))
    slices: list[SliceCheck] = []
    executable = bundle.executable
    if executable is not None:
        slices = check_macho(
            map_file(executable), info_plist=read(bundle.info_plist), resources=seal_bytes
        )
    if seal is not None:
        problems += seal_problems(bundle, seal, deep)
    return BundleCheck(bundle, slices, seal, problems)


def seal_problems(bundle: Bundle, seal: dict, deep: bool) -> list[str]:
    """Every difference between the bundle's files and what its seal records."""
    executable = bundle.executable
    skip = {executable.relative_to(bundle.content).as_posix()} if executable else set()
    rules2 = seal.get("rules2") or default_rules(bundle.content)[1]
    try:
        resources = scan(bundle.content, rules2, skip, is_code_bundle)
    except ResourcesError as error:
        return [str(error)]
    recorded = dict(seal.get("files2", {}))
    problems = []
    for resource in resources:
        entry = recorded.pop(resource.relative, None)
        if entry is None:
            problems.append(f"file added: {resource.relative}")
            continue
        problems += entry_problems(resource, entry, deep)
    problems += [
        f"file missing: {relative}"
        for relative, entry in recorded.items()
        if not (isinstance(entry, dict) and entry.get("optional"))
    ]
    return problems


def entry_problems(resource, entry, deep: bool) -> list[str]:
    if not isinstance(entry, dict):
        return [f"the seal's entry for {resource.relative} is damaged"]
    if resource.kind == "nested":
        return nested_problems(resource, entry, deep)
    with_sha1 = "hash" in entry and "hash2" not in entry
    actual = files2_entry(resource, "hash" in entry, {})
    keys = ("symlink",) if resource.kind == "symlink" else ("hash",) if with_sha1 else HASH_KEYS
    if any(entry.get(key) != actual.get(key) for key in keys if key in entry or key in actual):
        return [f"file modified: {resource.relative}"]
    return []


def nested_problems(resource, entry, deep: bool) -> list[str]:
    inner = open_bundle(resource.path)
    try:
        if inner is not None:
            check = check_bundle(resource.path, deep)
            slices, problems = check.slices, [f"{resource.relative}: {p}" for p in check.problems]
        else:
            slices, problems = check_macho(map_file(resource.path)), []
    except SigningManagerError as error:
        return [f"{resource.relative}: {error}"]
    if not slices or not slices[0].signed:
        return [f"nested code is not signed: {resource.relative}"]
    if deep:
        many = len(slices) > 1
        problems += [
            f"{resource.relative}: {s.architecture + ': ' if many else ''}{p}"
            for s in slices
            for p in s.problems
        ]
    cdhashes = {cd.cdhash() for s in slices for _, cd in s.code_directories}
    if entry.get("cdhash") not in cdhashes:
        problems.append(f"nested code modified: {resource.relative}")
    return problems
