"""``_CodeSignature/CodeResources``: the seal over a bundle's files (reference section 8).

An XML property list with four keys. ``rules`` and ``rules2`` map regular expressions (matched
against paths relative to the bundle's content folder, with ``/``) to ``true`` or to a dict of
``omit``, ``optional``, ``nested`` and ``weight`` (default 1; the matching rule of highest
weight decides). ``files`` (version 1, SHA-1) and ``files2`` (version 2) map each sealed path to
its hashes: ``files`` to ``<data>`` or ``{hash, optional}``; ``files2`` to ``{hash2}`` (plus
``hash``, SHA-1, when the code also carries SHA-1 CodeDirectories), ``{symlink: target}``, or,
for nested code, ``{cdhash, requirement}``. The defaults below are codesign's (rcodesign
``code_resources.rs``).
"""

from __future__ import annotations

import hashlib
import os
import plistlib
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import re2

from signing_manager.codesign.plist import PLIST_ERRORS
from signing_manager.errors import SigningManagerError

NESTED_FOLDERS = (
    r"^(Frameworks|SharedFrameworks|PlugIns|Plug-ins|XPCServices|Helpers|MacOS"
    r"|Library/(Automator|Spotlight|LoginItems))/"
)
LPROJ_RULES = {
    r"^Resources/.*\.lproj/": {"optional": True, "weight": 1000.0},
    r"^Resources/Base\.lproj/": {"weight": 1010.0},
    r"^Resources/.*\.lproj/locversion.plist$": {"omit": True, "weight": 1100.0},
}
RULES = {r"^version.plist$": True, r"^Resources/": True, **LPROJ_RULES}
RULES2 = {
    r"^.*": True,
    r"^[^/]+$": {"nested": True, "weight": 10.0},
    NESTED_FOLDERS: {"nested": True, "weight": 10.0},
    r".*\.dSYM($|/)": {"weight": 11.0},
    r"^(.*/)?\.DS_Store$": {"omit": True, "weight": 2000.0},
    r"^Info\.plist$": {"omit": True, "weight": 20.0},
    r"^version\.plist$": {"weight": 20.0},
    r"^embedded\.provisionprofile$": {"weight": 20.0},
    r"^PkgInfo$": {"omit": True, "weight": 20.0},
    r"^Resources/": {"weight": 20.0},
    **LPROJ_RULES,
}
# A bundle without a Resources folder (shallow, as on iOS) seals everything the same way.
SHALLOW_LPROJ_RULES = {
    pattern.replace("^Resources/", "^"): value for pattern, value in LPROJ_RULES.items()
}
SHALLOW_RULES = {r"^.*": True, **SHALLOW_LPROJ_RULES, r"^version.plist$": True}
SHALLOW_RULES2 = {
    key: value
    for key, value in RULES2.items()
    if not key.startswith("^Resources/") and key not in LPROJ_RULES
} | SHALLOW_LPROJ_RULES
# Never sealed: the signature itself, a stapled ticket, App Store receipts.
EXCLUDED = re.compile(r"^(_CodeSignature(/|$)|CodeResources$|_MASReceipt(/|$))")


RE2_OPTIONS = re2.Options()
RE2_OPTIONS.log_errors = False  # the error is reported to the user in one sentence instead

# Bounds on the work a hostile bundle can ask for: every path is matched against every rule.
# Apple's seals carry about a dozen rules; the biggest apps hold a few hundred thousand files.
MAX_RULES = 100
MAX_ENTRIES = 500_000


class ResourcesError(SigningManagerError):
    pass


@dataclass(frozen=True)
class Rule:
    pattern: re2._Regexp
    omit: bool = False
    optional: bool = False
    nested: bool = False
    weight: float = 1.0


def compile_rules(rules: dict) -> list[Rule]:
    if len(rules) > MAX_RULES:
        raise ResourcesError(
            f"The seal has {len(rules):,} resource rules; more than {MAX_RULES:,} are refused."
        )
    compiled = []
    for pattern, value in rules.items():
        options = value if isinstance(value, dict) else {}
        weight = options.get("weight", 1.0)
        if not isinstance(weight, int | float) or isinstance(weight, bool):
            raise ResourcesError(f"A resource rule ({pattern}) has a weight that is no number.")
        compiled.append(
            Rule(
                compile_pattern(pattern),
                bool(options.get("omit")),
                bool(options.get("optional")),
                bool(options.get("nested")),
                float(weight),
            )
        )
    return compiled


def compile_pattern(pattern: str):
    """A rule's regular expression, compiled by RE2: rules come from the seal being checked, so
    they are hostile input, and RE2 matches in linear time where a backtracking engine takes
    exponential time on ``(a+)+b``. RE2 refuses what POSIX extended expressions (Apple's
    rules) cannot say either, such as back-references."""
    try:
        return re2.compile(pattern, RE2_OPTIONS)
    except re2.error as error:
        reason = error.args[0].decode(errors="replace") if error.args else "invalid"
        raise ResourcesError(f"A resource rule ({pattern}) is not valid: {reason}.") from None
    except TypeError:
        raise ResourcesError("A resource rule is not a string.") from None


def matching_rule(rules: list[Rule], relative: str) -> Rule | None:
    best = None
    for rule in rules:
        if rule.pattern.search(relative) and (best is None or rule.weight > best.weight):
            best = rule
    return best


@dataclass(frozen=True)
class Resource:
    """One path a seal covers: a file, a symlink, or nested code (a bundle or a Mach-O)."""

    relative: str
    path: Path
    kind: str  # "file", "symlink" or "nested"
    optional: bool = False


def is_macho(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError:
        return False
    return magic in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe")


def scan(content: Path, rules2: dict, skip: set[str], is_bundle) -> list[Resource]:
    """Every path of the bundle's content folder that ``rules2`` seals, sorted.

    ``skip`` holds relative paths never sealed (the main executable); ``is_bundle(path)``
    tells whether a folder is a nested bundle, sealed as one entry."""
    rules = compile_rules(rules2)
    found: list[Resource] = []
    entries = 0
    for folder, folders, files in os.walk(content):
        entries += len(folders) + len(files)
        if entries > MAX_ENTRIES:
            raise ResourcesError(
                f"The bundle holds more than {MAX_ENTRIES:,} files and folders; more are refused."
            )
        base = Path(folder)
        for name in sorted(folders):
            path = base / name
            relative = relative_name(path, content)
            rule = matching_rule(rules, relative)
            if path.is_symlink():
                files.append(name)  # a link to a folder is sealed as a link
                folders.remove(name)
            elif EXCLUDED.match(relative) or (rule and rule.omit):
                folders.remove(name)
            elif rule and rule.nested and is_bundle(path):
                folders.remove(name)
                found.append(Resource(relative, path, "nested", rule.optional))
        for name in files:
            path = base / name
            relative = relative_name(path, content)
            rule = matching_rule(rules, relative)
            if relative in skip or EXCLUDED.match(relative) or rule is None or rule.omit:
                continue
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                kind = "symlink"
            elif not stat.S_ISREG(mode):  # reading a FIFO would wait for a writer forever
                raise ResourcesError(
                    f"{relative} is {special_file_kind(mode)}: a bundle can hold only files, "
                    "folders and symbolic links."
                )
            elif rule.nested and is_macho(path):
                kind = "nested"
            else:
                kind = "file"
            found.append(Resource(relative, path, kind, rule.optional))
    return sorted(found, key=lambda resource: resource.relative)


def relative_name(path: Path, content: Path) -> str:
    """``path`` relative to the content folder, as the seal records it: in UTF-8, the only
    names macOS file systems (and property lists) hold."""
    relative = path.relative_to(content).as_posix()
    try:
        relative.encode("utf-8")
    except UnicodeEncodeError:
        shown = relative.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise ResourcesError(f"{shown} has a name that is not valid UTF-8.") from None
    return relative


def special_file_kind(mode: int) -> str:
    kinds = {stat.S_ISFIFO: "a FIFO", stat.S_ISSOCK: "a socket", stat.S_ISCHR: "a device",
             stat.S_ISBLK: "a device"}  # fmt: skip
    return next((name for test, name in kinds.items() if test(mode)), "not a regular file")


def file_hashes(path: Path) -> tuple[bytes, bytes]:
    """SHA-1 and SHA-256 of a file, read once."""
    sha1, sha256 = hashlib.sha1(), hashlib.sha256()  # noqa: S324 - the format's v1 hash
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            sha1.update(chunk)
            sha256.update(chunk)
    return sha1.digest(), sha256.digest()


def files2_entry(resource: Resource, with_sha1: bool, nested: dict[str, tuple[bytes, str]]):
    """The files2 value for one resource; ``nested`` maps relative paths to (cdhash, DR text)."""
    if resource.kind == "symlink":
        entry: dict = {"symlink": os.readlink(resource.path)}
    elif resource.kind == "nested":
        cdhash, requirement = nested[resource.relative]
        entry = {"cdhash": cdhash, "requirement": requirement}
    else:
        sha1, sha256 = file_hashes(resource.path)
        entry = {"hash2": sha256, **({"hash": sha1} if with_sha1 else {})}
    if resource.optional:
        entry["optional"] = True
    return entry


def files_entries(content: Path, rules: dict, resources: list[Resource]) -> dict:
    """Version-1 ``files``: the regular files the old rules seal, by SHA-1."""
    compiled = compile_rules(rules)
    entries = {}
    for resource in resources:
        rule = matching_rule(compiled, resource.relative)
        if resource.kind != "file" or rule is None or rule.omit:
            continue
        sha1 = file_hashes(resource.path)[0]
        entries[resource.relative] = {"hash": sha1, "optional": True} if rule.optional else sha1
    return entries


def default_rules(content: Path) -> tuple[dict, dict]:
    """``(rules, rules2)`` for a bundle: the Resources-folder form, or the shallow one."""
    return (RULES, RULES2) if (content / "Resources").is_dir() else (SHALLOW_RULES, SHALLOW_RULES2)


def code_resources(content: Path, resources: list[Resource], with_sha1: bool, nested) -> bytes:
    """The CodeResources file for the content folder, as bytes."""
    rules, rules2 = default_rules(content)
    document = {
        "files": files_entries(content, rules, resources),
        "files2": {r.relative: files2_entry(r, with_sha1, nested) for r in resources},
        "rules": rules,
        "rules2": rules2,
    }
    return plistlib.dumps(document, sort_keys=True)


def load_code_resources(data: bytes) -> dict:
    try:
        document = plistlib.loads(data)
    except PLIST_ERRORS as error:
        raise ResourcesError(f"_CodeSignature/CodeResources is damaged ({error}).") from None
    if not isinstance(document, dict):
        raise ResourcesError("_CodeSignature/CodeResources is not a resource seal.")
    for key in ("files", "files2", "rules", "rules2"):
        if not isinstance(document.get(key, {}), dict):
            raise ResourcesError(
                f"_CodeSignature/CodeResources is not a resource seal (its {key} is no dictionary)."
            )
    return document
