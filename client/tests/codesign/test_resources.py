"""The resource seal (``resources.py``): rules and their weights, the default and shallow rule
sets, what ``scan`` finds in small trees, the files/files2 entries, and damaged seals."""

from __future__ import annotations

import hashlib
import os
import plistlib
from pathlib import Path

import pytest

from signing_manager.codesign import resources
from signing_manager.codesign.resources import (
    MAX_RULES,
    RULES,
    RULES2,
    SHALLOW_RULES,
    SHALLOW_RULES2,
    Resource,
    ResourcesError,
    code_resources,
    compile_rules,
    default_rules,
    files2_entry,
    files_entries,
    load_code_resources,
    matching_rule,
    scan,
)

MACHO = b"\xcf\xfa\xed\xfe" + bytes(60)  # the magic is all scan looks at
UNIVERSAL = b"\xca\xfe\xba\xbe" + bytes(60)


def winner(rules: dict, relative: str) -> str | None:
    """The pattern of the rule that decides ``relative``."""
    rule = matching_rule(compile_rules(rules), relative)
    return None if rule is None else rule.pattern.pattern


def make_tree(root: Path, layout: dict) -> Path:
    """``{relative: bytes}`` files, ``{relative: ("->", target)}`` symlinks, ``{relative: None}``
    empty folders."""
    for relative, value in layout.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if value is None:
            path.mkdir(exist_ok=True)
        elif isinstance(value, tuple):
            path.symlink_to(value[1])
        else:
            path.write_bytes(value)
    return root


def scanned(root: Path, rules2: dict = RULES2, skip=(), bundles=()) -> dict[str, tuple]:
    found = scan(root, rules2, set(skip), lambda path: path.name in bundles)
    return {r.relative: (r.kind, r.optional) for r in found}


# --- Rules ----------------------------------------------------------------------------------


def test_the_matching_rule_of_highest_weight_wins():
    rules = {"^a/": True, "^a/b/": {"weight": 5.0, "omit": True}, "^a/b/c$": {"weight": 3.0}}

    assert winner(rules, "a/x") == "^a/"
    assert winner(rules, "a/b/x") == "^a/b/"
    assert winner(rules, "a/b/c") == "^a/b/"


def test_a_rule_without_a_weight_weighs_one():
    rules = compile_rules({"^x": True, "^x/y": {"optional": True}})

    assert [rule.weight for rule in rules] == [1.0, 1.0]
    assert rules[1].optional
    assert not rules[0].optional
    assert not rules[0].omit
    assert not rules[0].nested


def test_of_rules_of_equal_weight_the_first_wins():
    assert winner({"^a": True, "^ab": {"optional": True}}, "abc") == "^a"
    assert winner({"^ab": {"optional": True}, "^a": True}, "abc") == "^ab"


def test_no_rule_matches_a_path_no_pattern_covers():
    assert winner({"^Resources/": True}, "MacOS/X") is None


def test_an_invalid_pattern_is_refused_with_our_error():
    with pytest.raises(ResourcesError, match=r"A resource rule \(\^\(unclosed\) is not valid"):
        compile_rules({"^(unclosed": True})


DEFAULT_RULES2 = [
    ("Resources/data.txt", r"^Resources/"),
    ("Resources/en.lproj/Localizable.strings", r"^Resources/.*\.lproj/"),
    ("Resources/Base.lproj/x.nib", r"^Resources/Base\.lproj/"),
    ("Resources/en.lproj/locversion.plist", r"^Resources/.*\.lproj/locversion.plist$"),
    ("Resources/.DS_Store", r"^(.*/)?\.DS_Store$"),
    ("Frameworks/A.framework/.DS_Store", r"^(.*/)?\.DS_Store$"),
    ("Info.plist", r"^Info\.plist$"),
    ("PkgInfo", r"^PkgInfo$"),
    ("version.plist", r"^version\.plist$"),
    ("embedded.provisionprofile", r"^embedded\.provisionprofile$"),
    ("a-top-level-file", r"^[^/]+$"),
    ("MacOS/helper", None),
    ("Frameworks/A.framework", None),
    ("SharedFrameworks/B.framework", None),
    ("PlugIns/P.appex", None),
    ("Plug-ins/P.bundle", None),
    ("XPCServices/S.xpc", None),
    ("Helpers/H.app", None),
    ("Library/LoginItems/L.app", None),
    ("Library/Spotlight/I.mdimporter", None),
    ("Library/Automator/A.action", None),
    ("Library/SystemExtensions/E.systemextension/x", r"^.*"),
    ("Foo.dSYM/Contents/Info.plist", r".*\.dSYM($|/)"),
    ("Other/file.txt", r"^.*"),
]


@pytest.mark.parametrize(("relative", "pattern"), DEFAULT_RULES2)
def test_the_default_rules2_decide(relative, pattern):
    rule = matching_rule(compile_rules(RULES2), relative)

    if pattern is None:  # the nesting folders' rule
        assert rule.nested, relative
        assert rule.weight == 10.0
        assert rule.pattern.pattern.startswith("^(Frameworks|")
    else:
        assert rule.pattern.pattern == pattern


@pytest.mark.parametrize(
    ("relative", "omit", "optional", "nested"),
    [
        ("Resources/data.txt", False, False, False),
        ("Resources/en.lproj/Localizable.strings", False, True, False),
        ("Resources/Base.lproj/x.nib", False, False, False),
        ("Resources/fr.lproj/locversion.plist", True, False, False),
        ("Resources/.DS_Store", True, False, False),
        ("Info.plist", True, False, False),
        ("PkgInfo", True, False, False),
        ("MacOS/helper", False, False, True),
        ("helper", False, False, True),
    ],
)
def test_the_default_rules2_give(relative, omit, optional, nested):
    rule = matching_rule(compile_rules(RULES2), relative)

    assert (rule.omit, rule.optional, rule.nested) == (omit, optional, nested)


@pytest.mark.parametrize(
    ("relative", "pattern"),
    [
        ("Resources/data.txt", r"^Resources/"),
        ("Resources/en.lproj/x.strings", r"^Resources/.*\.lproj/"),
        ("version.plist", r"^version.plist$"),
        ("MacOS/X", None),
        ("Info.plist", None),
    ],
)
def test_the_default_version_1_rules_cover_only_resources_and_version_plist(relative, pattern):
    assert winner(RULES, relative) == pattern


def test_a_bundle_with_a_resources_folder_gets_the_default_rules(tmp_path):
    (tmp_path / "Resources").mkdir()

    assert default_rules(tmp_path) == (RULES, RULES2)


def test_a_bundle_without_a_resources_folder_gets_the_shallow_rules(tmp_path):
    (tmp_path / "Resources").write_text("a file, not a folder")

    assert default_rules(tmp_path) == (SHALLOW_RULES, SHALLOW_RULES2)


def test_the_shallow_rules_have_no_resources_prefix():
    assert not [pattern for pattern in SHALLOW_RULES2 if "Resources" in pattern]
    assert SHALLOW_RULES[r"^.*"] is True
    assert SHALLOW_RULES2[r"^.*\.lproj/"] == {"optional": True, "weight": 1000.0}
    assert SHALLOW_RULES2[r"^Base\.lproj/"] == {"weight": 1010.0}


@pytest.mark.parametrize(
    ("relative", "pattern"),
    [
        ("en.lproj/Localizable.strings", r"^.*\.lproj/"),
        ("Base.lproj/x.nib", r"^Base\.lproj/"),
        ("en.lproj/locversion.plist", r"^.*\.lproj/locversion.plist$"),
        ("Info.plist", r"^Info\.plist$"),
        ("sub/x.txt", r"^.*"),
        ("Resources/x.txt", r"^.*"),
    ],
)
def test_the_shallow_rules2_decide(relative, pattern):
    assert winner(SHALLOW_RULES2, relative) == pattern


def test_the_shallow_version_1_rules_seal_every_file():
    assert winner(SHALLOW_RULES, "sub/x.txt") == r"^.*"
    assert matching_rule(compile_rules(SHALLOW_RULES), "fr.lproj/x").optional


# --- scan -----------------------------------------------------------------------------------


def test_scan_finds_files_sorted_with_their_kind(tmp_path):
    make_tree(tmp_path, {
        "Resources/b.txt": b"b", "Resources/a.txt": b"a", "Resources/sub/c.txt": b"c",
        "Resources/empty": None,
    })  # fmt: skip

    assert scan(tmp_path, RULES2, set(), lambda path: False) == [
        Resource("Resources/a.txt", tmp_path / "Resources/a.txt", "file"),
        Resource("Resources/b.txt", tmp_path / "Resources/b.txt", "file"),
        Resource("Resources/sub/c.txt", tmp_path / "Resources/sub/c.txt", "file"),
    ]


def test_scan_refuses_a_bundle_past_the_entry_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(resources, "MAX_ENTRIES", 10)
    make_tree(tmp_path, {f"Resources/{number}.txt": b"x" for number in range(9)})
    assert len(scan(tmp_path, RULES2, set(), lambda path: False)) == 9  # 10 with Resources/

    (tmp_path / "Resources" / "one-more.txt").write_bytes(b"x")
    with pytest.raises(ResourcesError, match="holds more than 10 files and folders; more are"):
        scan(tmp_path, RULES2, set(), lambda path: False)


def test_a_seal_with_more_rules_than_the_limit_is_refused():
    assert len(compile_rules({f"^r{number}$": True for number in range(MAX_RULES)})) == MAX_RULES
    with pytest.raises(ResourcesError, match=f"101 resource rules; more than {MAX_RULES} are"):
        compile_rules({f"^r{number}$": True for number in range(MAX_RULES + 1)})


def test_scan_seals_symlinks_to_files_and_to_folders_as_symlinks(tmp_path):
    make_tree(tmp_path, {
        "Resources/real/x.txt": b"x",
        "Resources/file-link": ("->", "real/x.txt"),
        "Resources/folder-link": ("->", "real"),
        "Resources/dangling": ("->", "nowhere"),
    })  # fmt: skip

    assert scanned(tmp_path) == {
        "Resources/real/x.txt": ("file", False),
        "Resources/file-link": ("symlink", False),
        "Resources/folder-link": ("symlink", False),
        "Resources/dangling": ("symlink", False),
    }


def test_scan_seals_a_symlinked_nesting_folder_as_a_symlink(tmp_path):
    make_tree(tmp_path, {
        "Frameworks/Versions/A/lib.dylib": MACHO,
        "Frameworks/Current": ("->", "Versions/A"),
    })  # fmt: skip

    assert scanned(tmp_path) == {
        "Frameworks/Current": ("symlink", False),
        "Frameworks/Versions/A/lib.dylib": ("nested", False),
    }


def test_scan_leaves_out_omitted_and_excluded_paths(tmp_path):
    make_tree(tmp_path, {
        "Info.plist": b"i", "PkgInfo": b"APPL????", ".DS_Store": b"d",
        "Resources/.DS_Store": b"d", "Resources/deep/er/.DS_Store": b"d",
        "Resources/en.lproj/locversion.plist": b"l",
        "_CodeSignature/CodeResources": b"seal", "_CodeSignature/other": b"o",
        "CodeResources": b"ticket", "_MASReceipt/receipt": b"r",
        "Resources/kept.txt": b"k",
    })  # fmt: skip

    assert scanned(tmp_path) == {"Resources/kept.txt": ("file", False)}


def test_scan_does_not_look_inside_an_omitted_folder(tmp_path):
    make_tree(tmp_path, {"Resources/.DS_Store/inside.txt": b"x", "Resources/kept": b"k"})

    assert scanned(tmp_path) == {"Resources/kept": ("file", False)}


def test_scan_skips_what_it_is_told_to(tmp_path):
    make_tree(tmp_path, {"MacOS/X": MACHO, "MacOS/other": MACHO, "Resources/r": b"r"})

    assert scanned(tmp_path, skip={"MacOS/X"}) == {
        "MacOS/other": ("nested", False),
        "Resources/r": ("file", False),
    }


def test_scan_seals_a_nested_bundle_as_one_entry(tmp_path):
    make_tree(tmp_path, {
        "PlugIns/P.bundle/Contents/Info.plist": b"i",
        "PlugIns/P.bundle/Contents/MacOS/P": MACHO,
        "PlugIns/notes.txt": b"n",
    })  # fmt: skip

    assert scanned(tmp_path, bundles={"P.bundle"}) == {
        "PlugIns/P.bundle": ("nested", False),
        "PlugIns/notes.txt": ("file", False),
    }


def test_scan_looks_inside_a_nesting_folder_that_is_no_bundle(tmp_path):
    make_tree(tmp_path, {"Frameworks/plain/lib.dylib": MACHO, "Frameworks/plain/x.txt": b"x"})

    assert scanned(tmp_path) == {
        "Frameworks/plain/lib.dylib": ("nested", False),
        "Frameworks/plain/x.txt": ("file", False),
    }


def test_scan_does_not_treat_a_bundle_outside_the_nesting_folders_as_nested(tmp_path):
    make_tree(tmp_path, {"Resources/R.bundle/Contents/Info.plist": b"i"})

    assert scanned(tmp_path, bundles={"R.bundle"}) == {
        "Resources/R.bundle/Contents/Info.plist": ("file", False)
    }


@pytest.mark.parametrize(
    ("relative", "content", "kind"),
    [
        ("MacOS/tool", MACHO, "nested"),
        ("MacOS/universal", UNIVERSAL, "nested"),
        ("MacOS/script.sh", b"#!/bin/sh\n", "file"),
        ("MacOS/empty", b"", "file"),
        ("Frameworks/lib.dylib", MACHO, "nested"),
        ("top-level-tool", MACHO, "nested"),
        ("Resources/tool", MACHO, "file"),
        ("Other/tool", MACHO, "file"),
    ],
)
def test_scan_treats_mach_o_files_under_the_nesting_rules_as_nested_code(
    relative, content, kind, tmp_path
):
    make_tree(tmp_path, {relative: content, "Resources/r": b"r"})

    assert scanned(tmp_path)[relative] == (kind, False)


def test_scan_marks_localizations_optional(tmp_path):
    make_tree(tmp_path, {
        "Resources/en.lproj/a.strings": b"a", "Resources/Base.lproj/b.nib": b"b",
    })  # fmt: skip

    assert scanned(tmp_path) == {
        "Resources/Base.lproj/b.nib": ("file", False),
        "Resources/en.lproj/a.strings": ("file", True),
    }


def test_scan_with_the_shallow_rules_nests_top_level_mach_o_files(tmp_path):
    make_tree(tmp_path, {
        "Info.plist": b"i", "Shallow": MACHO, "lib.dylib": MACHO, "data.txt": b"d",
        "sub/tool": MACHO, "en.lproj/x.strings": b"x",
    })  # fmt: skip

    assert scanned(tmp_path, SHALLOW_RULES2, skip={"Shallow"}) == {
        "data.txt": ("file", False),
        "en.lproj/x.strings": ("file", True),
        "lib.dylib": ("nested", False),
        "sub/tool": ("file", False),
    }


# --- Entries --------------------------------------------------------------------------------


@pytest.fixture
def file_resource(tmp_path) -> Resource:
    path = tmp_path / "data.txt"
    path.write_bytes(b"data")
    return Resource("Resources/data.txt", path, "file")


def test_a_files2_entry_holds_the_sha256(file_resource):
    assert files2_entry(file_resource, False, {}) == {"hash2": hashlib.sha256(b"data").digest()}


def test_a_files2_entry_holds_the_sha1_too_when_asked(file_resource):
    assert files2_entry(file_resource, True, {}) == {
        "hash": hashlib.sha1(b"data").digest(),
        "hash2": hashlib.sha256(b"data").digest(),
    }


def test_a_files2_entry_says_when_it_is_optional(tmp_path):
    path = tmp_path / "x.strings"
    path.write_bytes(b"x")
    resource = Resource("Resources/en.lproj/x.strings", path, "file", optional=True)

    assert files2_entry(resource, False, {}) == {
        "hash2": hashlib.sha256(b"x").digest(),
        "optional": True,
    }


def test_a_files2_entry_of_a_symlink_is_its_target(tmp_path):
    (tmp_path / "link").symlink_to("some/where")
    resource = Resource("Resources/link", tmp_path / "link", "symlink")

    assert files2_entry(resource, True, {}) == {"symlink": "some/where"}


def test_a_files2_entry_of_nested_code_is_its_cdhash_and_requirement(tmp_path):
    resource = Resource("Frameworks/A.framework", tmp_path, "nested")
    nested = {"Frameworks/A.framework": (b"\x01" * 20, 'identifier "a" and anchor apple')}

    assert files2_entry(resource, True, nested) == {
        "cdhash": b"\x01" * 20,
        "requirement": 'identifier "a" and anchor apple',
    }


def test_a_files2_entry_hashes_a_file_larger_than_one_read(tmp_path):
    data = os.urandom((1 << 20) + 12345)
    (tmp_path / "big").write_bytes(data)
    resource = Resource("Resources/big", tmp_path / "big", "file")

    assert files2_entry(resource, True, {}) == {
        "hash": hashlib.sha1(data).digest(),
        "hash2": hashlib.sha256(data).digest(),
    }


def test_the_version_1_files_hold_only_regular_files_the_old_rules_seal(tmp_path):
    make_tree(tmp_path, {
        "Resources/a.txt": b"a", "Resources/en.lproj/b.strings": b"b",
        "Resources/link": ("->", "a.txt"), "MacOS/script.sh": b"#!/bin/sh\n",
        "version.plist": b"v",
    })  # fmt: skip
    resources = scan(tmp_path, RULES2, set(), lambda path: False)

    assert files_entries(tmp_path, RULES, resources) == {
        "Resources/a.txt": hashlib.sha1(b"a").digest(),
        "Resources/en.lproj/b.strings": {"hash": hashlib.sha1(b"b").digest(), "optional": True},
        "version.plist": hashlib.sha1(b"v").digest(),
    }


def test_code_resources_writes_a_seal_that_loads_back(tmp_path):
    make_tree(tmp_path, {
        "Resources/a.txt": b"a", "Resources/link": ("->", "a.txt"), "MacOS/lib.dylib": MACHO,
    })  # fmt: skip
    resources = scan(tmp_path, RULES2, set(), lambda path: False)
    nested = {"MacOS/lib.dylib": (b"\x02" * 20, 'cdhash H"02"')}

    data = code_resources(tmp_path, resources, False, nested)

    assert data.startswith(b"<?xml")
    assert load_code_resources(data) == {
        "files": {"Resources/a.txt": hashlib.sha1(b"a").digest()},
        "files2": {
            "MacOS/lib.dylib": {"cdhash": b"\x02" * 20, "requirement": 'cdhash H"02"'},
            "Resources/a.txt": {"hash2": hashlib.sha256(b"a").digest()},
            "Resources/link": {"symlink": "a.txt"},
        },
        "rules": RULES,
        "rules2": RULES2,
    }


def test_code_resources_is_the_same_bytes_every_time(tmp_path):
    make_tree(tmp_path, {"Resources/b.txt": b"b", "Resources/a.txt": b"a"})
    resources = scan(tmp_path, RULES2, set(), lambda path: False)

    first = code_resources(tmp_path, resources, True, {})

    assert code_resources(tmp_path, list(reversed(resources)), True, {}) == first


# --- Damaged seals --------------------------------------------------------------------------


DAMAGED = {
    "empty": b"",
    "text": b"not a property list",
    "binary junk": b"\x00\x01\x02\x03" * 16,
    "bad binary plist": b"bplist00" + bytes(40),
    "truncated XML": plistlib.dumps({"files2": {"a": {"hash2": b"x"}}})[:-30],
    "mismatched XML tags": b"<plist><dict><key>files2</key><dict></plist>",
    "a key without a value": b"<plist><dict><key>files2</key></dict></plist>",
    "a bad integer": b"<plist><dict><key>x</key><integer>one</integer></dict></plist>",
    "a bad date": b"<plist><dict><key>x</key><date>yesterday</date></dict></plist>",
}
NOT_A_SEAL = {
    "an array": plistlib.dumps(["files2"]),
    "a string": plistlib.dumps("files2"),
    "an integer": plistlib.dumps(3),
    "files2 as an array": plistlib.dumps({"files2": ["Resources/a.txt"]}),
    "files2 as a string": plistlib.dumps({"files2": "x"}),
}


@pytest.mark.parametrize("data", DAMAGED.values(), ids=DAMAGED.keys())
def test_a_damaged_seal_is_refused_with_our_error(data):
    with pytest.raises(ResourcesError, match=r"_CodeSignature/CodeResources is damaged \("):
        load_code_resources(data)


@pytest.mark.parametrize("data", NOT_A_SEAL.values(), ids=NOT_A_SEAL.keys())
def test_a_property_list_that_is_not_a_seal_is_refused(data):
    with pytest.raises(ResourcesError, match="is not a resource seal"):
        load_code_resources(data)


def test_a_seal_without_files2_still_loads():
    assert load_code_resources(plistlib.dumps({"rules": {}})) == {"rules": {}}
