"""Signing Mach-O files: thin and universal, built and real, ad-hoc and with a CMS; every
output checked by openssl, llvm-objdump and our verifier, and what the signature holds checked
against reference sections 4 and 7 (CodeDirectory fields, special slots, CMS attributes)."""

from __future__ import annotations

import hashlib
import plistlib

import pytest
from asn1crypto import algos, cms, core
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from signing_manager.codesign.blobs import BlobMagic, Slot, SuperBlob, blob
from signing_manager.codesign.code_directory import CodeDirectory, CodeDirectoryFlag, HashType
from signing_manager.codesign.entitlements import ExecSegmentFlag, parse_der_entitlements
from signing_manager.codesign.macho import FileType, MachO
from signing_manager.codesign.requirements import (
    RequirementType,
    parse_requirements_set,
    requirement_text,
)
from signing_manager.codesign.signing import AlreadySigned, SigningOptions, sign_macho
from signing_manager.codesign.universal import is_universal, parse_universal
from signing_manager.codesign.verify import check_macho

BUILT = [
    "arm64-exe",
    "x86_64-exe",
    "x86_64-exe-10.9",
    "arm64-dylib",
    "x86_64-dylib",
    "arm64-bundle",
    "universal-exe",
    "universal-dylib",
]
REAL = [
    "x86_64-thin",
    "arm64-thin",
    "universal2",
    "adhoc",
    "linker-signed",
    "universal2-adhoc-sha1",
    "universal2-execute",
    "cms",
]
IDENTIFIER = "com.example.test"
TEAM_ID = "ABCDE12345"
ENTITLEMENTS = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>com.apple.security.cs.allow-jit</key>
	<true/>
	<key>get-task-allow</key>
	<true/>
	<key>keychain-access-groups</key>
	<array><string>ABCDE12345.com.example.test</string></array>
</dict>
</plist>
"""
CDHASHES_PLIST = "1.2.840.113635.100.9.1"
CDHASHES_DIGESTS = "1.2.840.113635.100.9.2"


# --- helpers --------------------------------------------------------------------------------


def sign(data: bytes, signer, **options) -> bytes:
    return sign_macho(data, signer, SigningOptions(identifier=IDENTIFIER, **options))


def machos_of(data: bytes) -> list[MachO]:
    pieces = [p.data for p in parse_universal(data)] if is_universal(data) else [data]
    return [MachO.parse(piece) for piece in pieces]


def signatures_of(data: bytes) -> list[tuple[MachO, dict[int, bytes]]]:
    """Each slice with the blobs of its embedded signature."""
    return [
        (m, SuperBlob.parse(m.signature_data, BlobMagic.EMBEDDED_SIGNATURE).entries)
        for m in machos_of(data)
    ]


def directories_of(entries: dict[int, bytes]) -> list[tuple[int, CodeDirectory]]:
    slots = [slot for slot in entries if slot == 0 or 0x1000 <= slot < 0x1005]
    return [(slot, CodeDirectory.parse(entries[slot])) for slot in sorted(slots)]


def primary(data: bytes) -> CodeDirectory:
    (_, entries), *_ = signatures_of(data)
    return CodeDirectory.parse(entries[Slot.CODE_DIRECTORY])


def signer_info_of(entries: dict[int, bytes]):
    content = entries[Slot.SIGNATURE][8:]
    return cms.ContentInfo.load(content)["content"]["signer_infos"][0]


def attribute(signer_info, oid: str) -> list:
    return [
        value
        for a in signer_info["signed_attrs"]
        if a["type"].dotted == oid
        for value in a["values"]
    ]


class DigestPair(core.Sequence):
    """A value of the 9.2 attribute: the hash algorithm and a CD's full digest."""

    _fields = [("algorithm", algos.DigestAlgorithmId), ("digest", core.OctetString)]


@pytest.fixture
def signers(request):
    """Signers by name (None: ad-hoc), with the anchor openssl must trust for each."""

    def get(name: str | None):
        if name is None:
            return None, None
        anchor = "apple_root" if name == "apple_signer" else "test_ca"
        return request.getfixturevalue(name), request.getfixturevalue(anchor)

    return get


# --- every file, every signer ---------------------------------------------------------------


@pytest.mark.parametrize("name", BUILT + REAL)
def test_it_signs_with_a_developer_id_chain(
    name, machos, apple_signer, apple_root, independent, tmp_path
):
    data = machos.bytes(name)
    signed = sign_macho(
        data, apple_signer, SigningOptions(identifier="com.example.test", force=True)
    )
    checks = check_macho(signed)
    assert [c.problems for c in checks] == [[] for _ in checks]
    assert all(c.kind == "cms" for c in checks)
    assert independent.openssl_verifies(signed, apple_root) == len(checks)
    path = tmp_path / "signed"
    path.write_bytes(signed)
    assert len(independent.objdump_signature(path)) == len(checks)


@pytest.mark.parametrize("signer_name", ["ca_signer", "ec_signer", None])
@pytest.mark.parametrize("name", ["arm64-exe", "x86_64-exe-10.9", "universal-dylib", "adhoc"])
def test_it_signs_with_other_signers_and_ad_hoc(
    name, signer_name, machos, signers, independent, tmp_path
):
    signer, anchor = signers(signer_name)
    signed = sign(machos.bytes(name), signer, force=True)
    checks = check_macho(signed)
    assert [c.problems for c in checks] == [[] for _ in checks]
    assert {c.kind for c in checks} == {"cms" if signer else "adhoc"}
    if signer:
        assert independent.openssl_verifies(signed, anchor) == len(checks)
    else:
        assert all(
            e[Slot.SIGNATURE] == bytes.fromhex("fade0b01 00000008")
            for _, e in signatures_of(signed)
        )
    path = tmp_path / "signed"
    path.write_bytes(signed)
    assert len(independent.objdump_signature(path)) == len(checks)


def test_an_ec_signature_uses_ecdsa_with_sha256(machos, ec_signer, test_ca, independent):
    signed = sign(machos.bytes("arm64-dylib"), ec_signer)
    (_, entries), *_ = signatures_of(signed)
    signer_info = signer_info_of(entries)
    assert signer_info["signature_algorithm"]["algorithm"].native == "sha256_ecdsa"
    assert signer_info["digest_algorithm"]["algorithm"].native == "sha256"
    assert independent.openssl_verifies(signed, test_ca) == 1


# --- the CodeDirectory ----------------------------------------------------------------------


@pytest.mark.parametrize("signer_name", ["apple_signer", "ca_signer", "ec_signer", None])
def test_the_ad_hoc_flag_is_set_if_and_only_if_there_is_no_signer(signer_name, machos, signers):
    signer, _ = signers(signer_name)
    for _, entries in signatures_of(sign(machos.bytes("universal-exe"), signer)):
        for _, directory in directories_of(entries):
            assert bool(directory.flags & CodeDirectoryFlag.ADHOC) == (signer is None)
            assert not directory.flags & CodeDirectoryFlag.LINKER_SIGNED
            assert not directory.flags & CodeDirectoryFlag.RUNTIME
            assert directory.version == 0x20400
            assert directory.identifier == IDENTIFIER
            assert directory.page_size == 4096
            assert directory.platform == 0


@pytest.mark.parametrize("name", ["linker-signed", "arm64-exe", "x86_64-exe", "universal2"])
def test_the_hardened_runtime_uses_version_20500_with_the_sdk_of_lc_build_version(
    name, machos, apple_signer
):
    signed = sign(machos.bytes(name), apple_signer, runtime=True)
    for macho, entries in signatures_of(signed):
        for _, directory in directories_of(entries):
            assert directory.version == 0x20500
            assert directory.flags & CodeDirectoryFlag.RUNTIME
            assert directory.runtime == macho.target.sdk
            assert directory.runtime != 0
    assert check_macho(signed)[0].problems == []


def test_the_runtime_field_is_the_sdk_not_the_minimum(machos, apple_signer):
    macho = MachO.parse(machos.bytes("linker-signed"))
    assert macho.target.sdk != macho.target.minimum
    assert primary(sign(macho.data, apple_signer, runtime=True)).runtime == 0x1A0500  # 26.5


@pytest.mark.parametrize("name", [*BUILT, "universal2-execute", "cms"])
def test_the_exec_segment_is_text_and_main_binary_only_for_executables(name, machos):
    for macho, entries in signatures_of(sign(machos.bytes(name), None, force=True)):
        text = macho.segment("__TEXT")
        main = ExecSegmentFlag.MAIN_BINARY if macho.filetype == FileType.EXECUTE else 0
        for _, directory in directories_of(entries):
            assert (directory.exec_segment_base, directory.exec_segment_limit) == (
                text.fileoff,
                text.file_end,
            )
            assert directory.exec_segment_flags == main


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("arm64-exe", ExecSegmentFlag.MAIN_BINARY | ExecSegmentFlag.ALLOW_UNSIGNED),
        ("arm64-dylib", 0),
        ("arm64-bundle", 0),
    ],
)
def test_entitlements_add_exec_segment_flags_only_to_executables(name, expected, machos):
    directory = primary(sign(machos.bytes(name), None, entitlements=ENTITLEMENTS))
    assert directory.exec_segment_flags == expected


@pytest.mark.parametrize(
    ("name", "hash_types"),
    [
        ("x86_64-exe-10.9", [(0, HashType.SHA1), (0x1000, HashType.SHA256)]),
        ("x86_64-thin", [(0, HashType.SHA1), (0x1000, HashType.SHA256)]),  # macOS 10.9 too
        ("x86_64-exe", [(0, HashType.SHA256)]),
        ("arm64-exe", [(0, HashType.SHA256)]),
        ("x86_64-dylib", [(0, HashType.SHA256)]),  # 10.12
        ("linker-signed", [(0, HashType.SHA256)]),
    ],
)
def test_old_deployment_targets_get_a_sha1_cd_first_and_a_sha256_alternate(
    name, hash_types, machos, ca_signer
):
    signed = sign(machos.bytes(name), ca_signer)
    ((macho, entries),) = signatures_of(signed)
    directories = directories_of(entries)
    assert [(slot, cd.hash_type) for slot, cd in directories] == hash_types
    for _, directory in directories:
        assert directory.code_limit == macho.code_signature.dataoff
        requirements = entries[Slot.REQUIREMENTS]
        assert directory.special_hashes[Slot.REQUIREMENTS] == directory.hash_type.digest(
            requirements
        )
        assert all(len(h) == directory.hash_type.size for h in directory.code_hashes)


@pytest.fixture(scope="module")
def mobile_exe(toolchain):
    """Executables for other platforms, built once per module: ``mobile_exe(target)``."""
    built = {}

    def build(target: str) -> bytes:
        if target not in built:
            built[target] = toolchain.build(f"exe-{target}", target, "exe").read_bytes()
        return built[target]

    return build


@pytest.mark.parametrize(
    ("target", "hash_types"),
    [
        ("arm64-apple-ios10", [HashType.SHA1, HashType.SHA256]),
        ("arm64-apple-tvos10", [HashType.SHA1, HashType.SHA256]),
        ("arm64-apple-ios13", [HashType.SHA256]),
        ("arm64-apple-tvos13", [HashType.SHA256]),
    ],
)
def test_ios_and_tvos_before_11_get_a_sha1_cd_too(target, hash_types, mobile_exe):
    """Reference 4.4: SHA-256 CDs are understood from macOS 10.11.4 and iOS/tvOS 11 on."""
    signed = sign(mobile_exe(target), None)
    ((_, entries),) = signatures_of(signed)
    assert [cd.hash_type for _, cd in directories_of(entries)] == hash_types
    assert check_macho(signed)[0].problems == []


@pytest.mark.parametrize(
    ("signer_name", "team"),
    [("apple_signer", TEAM_ID), ("ca_signer", None), ("ec_signer", None), (None, None)],
)
def test_the_team_id_comes_only_from_an_apple_issued_certificate(
    signer_name, team, machos, signers
):
    signer, _ = signers(signer_name)
    for _, entries in signatures_of(sign(machos.bytes("universal-exe"), signer)):
        assert [cd.team_id for _, cd in directories_of(entries)] == [team]


def test_the_designated_requirement_of_a_developer_id_signature(machos, apple_signer):
    ((_, entries),) = signatures_of(sign(machos.bytes("arm64-exe"), apple_signer))
    requirements = parse_requirements_set(entries[Slot.REQUIREMENTS])
    assert list(requirements) == [RequirementType.DESIGNATED]
    assert requirement_text(requirements[RequirementType.DESIGNATED]) == (
        f'identifier "{IDENTIFIER}" and anchor apple generic and '
        "certificate 1[field.1.2.840.113635.100.6.2.6] /* exists */ and "
        "certificate leaf[field.1.2.840.113635.100.6.1.13] /* exists */ and "
        f"certificate leaf[subject.OU] = {TEAM_ID}"
    )


def test_the_designated_requirement_of_another_ca_pins_its_root(machos, ca_signer, test_ca):
    ((_, entries),) = signatures_of(sign(machos.bytes("arm64-exe"), ca_signer))
    requirements = parse_requirements_set(entries[Slot.REQUIREMENTS])
    root = test_ca.fingerprint(hashes.SHA1()).hex()  # noqa: S303 - what the requirement pins
    assert requirement_text(requirements[RequirementType.DESIGNATED]) == (
        f'identifier "{IDENTIFIER}" and certificate root = H"{root}"'
    )


def test_an_ad_hoc_signature_has_an_empty_requirement_set(machos):
    ((_, entries),) = signatures_of(sign(machos.bytes("arm64-exe"), None))
    assert entries[Slot.REQUIREMENTS] == bytes.fromhex("fade0c01 0000000c 00000000")
    assert parse_requirements_set(entries[Slot.REQUIREMENTS]) == {}


@pytest.mark.parametrize(
    "name", ["arm64-exe", "x86_64-exe-10.9", "arm64-dylib", "arm64-bundle", "universal-exe"]
)
def test_entitlements_go_in_slot_5_always_and_in_der_slot_7_for_executables(
    name, machos, apple_signer
):
    signed = sign(machos.bytes(name), apple_signer, entitlements=ENTITLEMENTS)
    for macho, entries in signatures_of(signed):
        assert entries[Slot.ENTITLEMENTS] == blob(BlobMagic.ENTITLEMENTS, ENTITLEMENTS)
        executable = macho.filetype == FileType.EXECUTE
        assert (Slot.ENTITLEMENTS_DER in entries) == executable
        if executable:
            der = entries[Slot.ENTITLEMENTS_DER]
            assert der[:4] == bytes.fromhex("fade7172")
            assert parse_der_entitlements(der[8:]) == plistlib.loads(ENTITLEMENTS)
        for _, directory in directories_of(entries):
            digest = directory.hash_type.digest
            assert directory.special_hashes[5] == digest(entries[Slot.ENTITLEMENTS])
            if executable:
                assert directory.special_hashes[7] == digest(entries[Slot.ENTITLEMENTS_DER])
            assert directory.special_slot_count == (7 if executable else 5)
    assert all(c.problems == [] for c in check_macho(signed))


def test_the_embedded_info_plist_section_is_bound_in_slot_1(machos, apple_signer):
    data = machos.bytes("info-plist-exe")
    section = MachO.parse(data).section_data("__TEXT", "__info_plist")
    assert b"com.example.tool" in section
    directory = primary(sign(data, apple_signer))
    assert directory.special_hashes[Slot.INFO_PLIST] == hashlib.sha256(section).digest()


def test_no_info_plist_leaves_slot_1_unbound(machos):
    directory = primary(sign(machos.bytes("arm64-exe"), None))
    assert not any(directory.special_hashes.get(Slot.INFO_PLIST, b""))


def test_a_given_info_plist_and_resources_are_bound_in_slots_1_and_3(machos):
    info, resources = b"<plist>info</plist>", b"<plist>resources</plist>"
    signed = sign(machos.bytes("arm64-exe"), None, info_plist=info, resources=resources)
    directory = primary(signed)
    assert directory.special_hashes[Slot.INFO_PLIST] == hashlib.sha256(info).digest()
    assert directory.special_hashes[Slot.RESOURCES] == hashlib.sha256(resources).digest()
    assert check_macho(signed, info_plist=info, resources=resources)[0].problems == []


# --- the CMS signature ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["x86_64-exe-10.9", "arm64-exe", "universal-dylib"])
def test_the_cms_signed_attributes_bind_every_code_directory(name, machos, apple_signer):
    for _, entries in signatures_of(sign(machos.bytes(name), apple_signer)):
        directories = [cd for _, cd in directories_of(entries)]
        signer_info = signer_info_of(entries)
        (plist,) = attribute(signer_info, CDHASHES_PLIST)
        cdhashes = plistlib.loads(core.OctetString.load(plist.dump()).native)["cdhashes"]
        assert cdhashes == [cd.cdhash() for cd in directories]
        assert cdhashes == [
            hashlib.new(cd.hash_type.hash_name, entries[slot]).digest()[:20]
            for slot, cd in directories_of(entries)
        ]
        pairs = [DigestPair.load(v.dump()) for v in attribute(signer_info, CDHASHES_DIGESTS)]
        digests = [(pair["algorithm"].native, pair["digest"].native) for pair in pairs]
        assert sorted(digests) == sorted(
            (cd.hash_type.hash_name, cd.digest()) for cd in directories
        )
        (message_digest,) = attribute(signer_info, "1.2.840.113549.1.9.4")
        assert message_digest.native == hashlib.sha256(entries[Slot.CODE_DIRECTORY]).digest()
        (content_type,) = attribute(signer_info, "1.2.840.113549.1.9.3")
        assert content_type.native == "data"
        assert attribute(signer_info, "1.2.840.113549.1.9.5")  # signing time


def test_the_cms_carries_the_leaf_and_the_whole_chain(machos, apple_signer):
    ((_, entries),) = signatures_of(sign(machos.bytes("arm64-exe"), apple_signer))
    signed_data = cms.ContentInfo.load(entries[Slot.SIGNATURE][8:])["content"]
    assert signed_data["encap_content_info"]["content"].native is None  # detached
    carried = [c.chosen.dump() for c in signed_data["certificates"]]
    expected = [
        c.public_bytes(Encoding.DER) for c in (apple_signer.certificate, *apple_signer.chain)
    ]
    assert sorted(carried) == sorted(expected)


# --- re-signing -----------------------------------------------------------------------------


def our_adhoc(machos) -> bytes:
    return sign(machos.bytes("arm64-dylib"), None)


ALREADY_SIGNED = {
    "real ad-hoc": (lambda machos: machos.bytes("adhoc"), "ad-hoc"),
    "real Developer ID": (lambda machos: machos.bytes("cms"), "with a certificate"),
    "real universal ad-hoc": (lambda machos: machos.bytes("universal2-adhoc-sha1"), "ad-hoc"),
    "our ad-hoc": (our_adhoc, "ad-hoc"),
}


@pytest.mark.parametrize(("make", "kind"), ALREADY_SIGNED.values(), ids=ALREADY_SIGNED.keys())
def test_a_signed_file_is_refused_without_force(make, kind, machos):
    with pytest.raises(AlreadySigned, match=rf"already signed \({kind}\); use -f"):
        sign(make(machos), None)


def test_our_cms_signature_is_refused_without_force(machos, apple_signer):
    signed = sign(machos.bytes("arm64-exe"), apple_signer)
    with pytest.raises(AlreadySigned, match=r"arm64 code is already signed \(with a certificate\)"):
        sign(signed, apple_signer)


@pytest.mark.parametrize(("make", "kind"), ALREADY_SIGNED.values(), ids=ALREADY_SIGNED.keys())
def test_a_signed_file_is_re_signed_with_force(
    make, kind, machos, apple_signer, apple_root, independent
):
    signed = sign(make(machos), apple_signer, force=True)
    checks = check_macho(signed)
    assert [(c.kind, c.problems) for c in checks] == [("cms", []) for _ in checks]
    assert all(c.primary.identifier == IDENTIFIER for c in checks)
    assert independent.openssl_verifies(signed, apple_root) == len(checks)


@pytest.mark.parametrize("name", ["linker-signed", "arm64-thin", "arm64-exe", "universal2-execute"])
def test_a_linker_signed_file_is_re_signed_without_force(name, machos, apple_signer):
    before = [c.kind for c in check_macho(machos.bytes(name)) if c.signed]
    assert "linker-signed" in before
    signed = sign(machos.bytes(name), apple_signer)
    for check in check_macho(signed):
        assert check.problems == []
        assert check.kind == "cms"
        for _, directory in check.code_directories:
            assert not directory.flags & CodeDirectoryFlag.LINKER_SIGNED
            assert directory.special_slot_count >= Slot.REQUIREMENTS


@pytest.mark.parametrize("signer_name", ["apple_signer", "ec_signer", None])
@pytest.mark.parametrize("name", ["arm64-exe", "x86_64-exe", "universal-exe", "adhoc"])
def test_signing_again_with_force_verifies_and_keeps_the_same_size(
    name, signer_name, machos, signers
):
    signer, _ = signers(signer_name)
    first = sign(machos.bytes(name), signer, force=True)
    second = sign(first, signer, force=True)
    third = sign(second, signer, force=True)
    assert len(first) == len(second) == len(third)
    assert [c.problems for c in check_macho(third)] == [[] for _ in check_macho(third)]
    assert [m.code_signature for m in machos_of(first)] == [
        m.code_signature for m in machos_of(third)
    ]


def test_re_signing_an_ad_hoc_file_with_force_is_byte_identical(machos):
    first = sign(machos.bytes("universal-exe"), None)
    assert sign(first, None, force=True) == first


@pytest.mark.parametrize("name", ["x86_64-exe", "universal-exe", "cms"])
def test_the_input_is_not_modified(name, machos, apple_signer):
    data = machos.bytes(name)
    digest = hashlib.sha256(data).digest()
    mutable = bytearray(data)
    signed = sign(data, apple_signer, force=True)
    signed_from_mutable = sign(mutable, apple_signer, force=True)
    assert hashlib.sha256(data).digest() == digest
    assert bytes(mutable) == data
    assert isinstance(signed, bytes)
    assert len(signed_from_mutable) == len(signed)
    assert check_macho(signed_from_mutable)[0].problems == []


def test_a_large_file_signs_and_verifies(machos, apple_signer, apple_root, independent, tmp_path):
    data = machos.bytes("large-64")
    assert len(data) > 64 << 20
    signed = sign(data, apple_signer)
    ((macho, entries),) = signatures_of(signed)
    directory = CodeDirectory.parse(entries[Slot.CODE_DIRECTORY])
    assert len(directory.code_hashes) == -(-macho.code_signature.dataoff // 4096)
    assert check_macho(signed)[0].problems == []
    assert independent.openssl_verifies(signed, apple_root) == 1
    path = tmp_path / "large"
    path.write_bytes(signed)
    command = macho.code_signature
    assert independent.objdump_signature(path) == [(command.dataoff, command.datasize)]
