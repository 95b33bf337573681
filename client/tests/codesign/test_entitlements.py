"""Entitlements: loading the XML, the DER form codesign writes (checked against known vectors and
openssl), its parser, and the executable-segment flags entitlements imply."""

import datetime
import plistlib
import shutil
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signing_manager.codesign.blobs import MalformedSignature
from signing_manager.codesign.entitlements import (
    EntitlementsError,
    ExecSegmentFlag,
    der_entitlements,
    entitlements_blob,
    entitlements_der_blob,
    exec_segment_flags,
    load_entitlements,
    parse_der_entitlements,
)

ALLOW_JIT_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
\t<key>com.apple.security.cs.allow-jit</key>
\t<true/>
</dict>
</plist>
"""
SAMPLE = {
    "com.apple.security.app-sandbox": True,
    "com.apple.security.application-groups": ["ABCDE12345.group", "ABCDE12345.other"],
    "com.apple.developer.team-identifier": "ABCDE12345",
    "com.example.limits": {"count": 300, "offset": -129, "zero": 0, "off": False},
    "com.example.long": "x" * 300,
}


def test_an_empty_dictionary_has_the_reference_encoding():
    assert der_entitlements({}) == bytes.fromhex("7005020101b000")


def test_allow_jit_has_the_reference_encoding():
    assert der_entitlements(load_entitlements(ALLOW_JIT_XML)) == bytes.fromhex(
        "702b020101b02630240c1f636f6d2e6170706c652e73656375726974792e63732e616c6c6f772d6a69740101ff"
    )


# DER that Apple's codesign wrote for these entitlements, as recorded in rcodesign's tests
# (apple-codesign/src/entitlements.rs).
@pytest.mark.parametrize(
    ("entitlements", "der"),
    [
        ({"key": False}, "700f020101b00a30080c036b6579010100"),
        ({"key": True}, "700f020101b00a30080c036b65790101ff"),
        ({"key": 0}, "700f020101b00a30080c036b6579020100"),
        ({"key": -1}, "700f020101b00a30080c036b65790201ff"),
        ({"key": 42}, "700f020101b00a30080c036b657902012a"),
        ({"key": ""}, "700e020101b00930070c036b65790c00"),
        ({"key": "value"}, "7013020101b00e300c0c036b65790c0576616c7565"),
        ({"key": []}, "700e020101b00930070c036b65793000"),
        ({"key": [True, "foo"]}, "7016020101b011300f0c036b657930080101ff0c03666f6f"),
        ({"key": {}}, "700e020101b00930070c036b6579b000"),
        ({"key": {"inner": False}}, "701a020101b01530130c036b6579b00c300a0c05696e6e6572010100"),
        (
            {"key3": 42, "key": False, "key2": True},
            "7025020101b02030080c036b657901010030090c046b6579320101ff30090c046b65793302012a",
        ),
    ],
)
def test_entitlements_encode_as_apples_codesign_wrote_them(entitlements, der):
    assert der_entitlements(entitlements) == bytes.fromhex(der)
    assert parse_der_entitlements(bytes.fromhex(der)) == entitlements


def test_keys_are_sorted_by_their_utf8_bytes():
    der = der_entitlements({"b": 1, "é": 2, "a": 3, "B": 4, "z": 5})
    keys = [key for key in parse_der_entitlements(der)]
    assert keys == ["B", "a", "b", "z", "é"]


@pytest.mark.parametrize(
    ("length", "header"),
    [(127, "0c7f"), (128, "0c8180"), (255, "0c81ff"), (256, "0c820100"), (70000, "0c83011170")],
)
def test_lengths_use_the_shortest_definite_form(length, header):
    der = der_entitlements({"k": "x" * length})
    assert bytes.fromhex(header) + b"x" * length in der
    assert parse_der_entitlements(der) == {"k": "x" * length}


@pytest.mark.parametrize(
    ("value", "content"),
    [
        (127, "7f"),
        (128, "0080"),
        (-128, "80"),
        (-129, "ff7f"),
        (2**63 - 1, "7fffffffffffffff"),
        (-(2**63), "8000000000000000"),
    ],
)
def test_integers_use_minimal_twos_complement(value, content):
    encoded = bytes.fromhex(content)
    assert bytes([2, len(encoded)]) + encoded in der_entitlements({"k": value})


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_openssl_parses_the_der_and_sees_the_same_structure(tmp_path):
    path = tmp_path / "entitlements.der"
    path.write_bytes(der_entitlements(SAMPLE))
    result = subprocess.run(
        ["openssl", "asn1parse", "-inform", "DER", "-in", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "cons: appl [ 16 ]" in lines[0]
    assert "prim: INTEGER           :01" in lines[1]
    assert "cons: cont [ 16 ]" in lines[2]
    assert any(line.endswith("UTF8STRING        :com.apple.security.app-sandbox") for line in lines)
    assert any(line.endswith("INTEGER           :-81") for line in lines)
    assert any(line.endswith("BOOLEAN           :255") for line in lines)


@pytest.mark.parametrize(
    ("entitlements", "path", "kind"),
    [
        ({"com.example.data": b"\0"}, "com.example.data", "data"),
        ({"com.example.when": datetime.datetime(2020, 1, 1)}, "com.example.when", "a date"),
        ({"com.example.real": 1.5}, "com.example.real", "a real"),
        ({"com.example.list": [1, 2, 0.5]}, "com.example.list/2", "a real"),
        ({"com.example.dict": {"inner": b""}}, "com.example.dict/inner", "data"),
        ({"com.example.uid": plistlib.UID(1)}, "com.example.uid", "a UID"),
    ],
)
def test_values_der_cannot_hold_are_refused_naming_the_entitlement(entitlements, path, kind):
    with pytest.raises(EntitlementsError, match=f"entitlement {path} holds {kind}, which cannot"):
        der_entitlements(entitlements)


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 10**30])
def test_integers_beyond_64_bits_are_refused(value):
    with pytest.raises(EntitlementsError, match=r"com\.example\.big is an integer too large"):
        der_entitlements({"com.example.big": value})


def test_the_xml_blob_holds_the_property_list_byte_for_byte():
    data = entitlements_blob(ALLOW_JIT_XML)
    assert data[:4] == bytes.fromhex("fade7171")
    assert int.from_bytes(data[4:8], "big") == len(data) == 8 + len(ALLOW_JIT_XML)
    assert data[8:] == ALLOW_JIT_XML


def test_the_der_blob_wraps_the_der():
    data = entitlements_der_blob({})
    assert data == bytes.fromhex("fade7172 0000000f 7005020101b000")


def test_entitlements_load_from_xml():
    assert load_entitlements(ALLOW_JIT_XML) == {"com.apple.security.cs.allow-jit": True}
    assert load_entitlements(plistlib.dumps(SAMPLE)) == SAMPLE


@pytest.mark.parametrize(
    "xml",
    [
        b"",
        b"not a property list",
        b"<plist><array/></plist>",
        b"<plist><string>x</string></plist>",
        b"<plist></plist>",
        b"<plist><dict><key>a</key></dict></plist>",
        b"<plist><dict><key>a</key><date>yesterday</date></dict></plist>",
        b'<!DOCTYPE p [<!ENTITY e "x">]>'
        b"<plist><dict><key>a</key><string>&e;</string></dict></plist>",
        plistlib.dumps({}, fmt=plistlib.FMT_BINARY),
    ],
)
def test_anything_but_an_xml_dictionary_is_refused_with_a_useful_message(xml):
    with pytest.raises(
        EntitlementsError, match="must be an XML property list whose root is a dictionary"
    ):
        load_entitlements(xml)


# -- parsing DER ------------------------------------------------------------------------------

SAMPLE_DER = der_entitlements(SAMPLE)


def test_parsing_gives_back_the_entitlements():
    assert parse_der_entitlements(SAMPLE_DER) == SAMPLE


def test_der_cut_short_anywhere_is_malformed():
    for end in range(len(SAMPLE_DER)):
        with pytest.raises(MalformedSignature):
            parse_der_entitlements(SAMPLE_DER[:end])


def element(tag: int, content: bytes) -> bytes:
    if len(content) < 0x80:
        return bytes([tag, len(content)]) + content
    size = (len(content).bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + len(content).to_bytes(size, "big") + content


def wrapped(*entries: bytes, version: bytes = b"\x02\x01\x01") -> bytes:
    return element(0x70, version + element(0xB0, b"".join(entries)))


def entry(key: bytes, value: bytes) -> bytes:
    return element(0x30, element(0x0C, key) + value)


@pytest.mark.parametrize(
    ("der", "message"),
    [
        (b"", "cut short"),
        (bytes.fromhex("3005020101b000"), "not one \\[APPLICATION 16\\]"),
        (bytes.fromhex("7005020101b00000"), "not one \\[APPLICATION 16\\]"),
        (wrapped(version=b"\x02\x01\x02"), "version 1"),
        (element(0x70, b"\x02\x01\x01"), "version 1"),
        (element(0x70, b"\x02\x01\x01" + element(0x30, b"")), "root is not a dictionary"),
        (bytes.fromhex("7080020101b00000"), "invalid length"),  # indefinite (BER)
        (bytes.fromhex("708105020101b000"), "invalid length"),  # long form below 128
        (bytes.fromhex("70820005020101b000"), "invalid length"),  # leading zero length byte
        (bytes.fromhex("7084ffffffff"), "cut short"),
        (wrapped(entry(b"k", b"\x01\x01\x01")), "boolean"),
        (wrapped(entry(b"k", b"\x01\x02\xff\xff")), "boolean"),
        (wrapped(entry(b"k", b"\x02\x02\x00\x01")), "minimal"),
        (wrapped(entry(b"k", b"\x02\x02\xff\x80")), "minimal"),
        (wrapped(entry(b"k", b"\x02\x00")), "minimal"),
        (wrapped(entry(b"k", b"\x02\x09\x00" + b"\xff" * 8)), "minimal 64-bit"),
        (wrapped(entry(b"k", b"\x0c\x01\xff")), "not UTF-8"),
        (wrapped(entry(b"k", b"\x04\x01\x00")), "unexpected tag 0x04"),
        (wrapped(entry(b"b", b"\x05\x00"), entry(b"a", b"\x05\x00")), "unexpected tag 0x05"),
        (wrapped(entry(b"b", b"\x01\x01\x00"), entry(b"a", b"\x01\x01\x00")), "out of order"),
        (wrapped(entry(b"a", b"\x01\x01\x00"), entry(b"a", b"\x01\x01\x00")), "out of order"),
        (wrapped(element(0x30, element(0x0C, b"k"))), "a key and a value"),
        (wrapped(element(0x31, element(0x0C, b"k") + b"\x01\x01\x00")), "a key and a value"),
        (wrapped(element(0x30, b"\x02\x01\x01\x01\x01\x00")), "a key and a value"),
        (wrapped(entry(b"k", b"\x30\x80\x00\x00")), "invalid length"),
    ],
)
def test_damaged_der_is_malformed(der, message):
    with pytest.raises(MalformedSignature, match=message):
        parse_der_entitlements(der)


def test_hostile_nesting_is_malformed():
    value = b"\x01\x01\x00"
    for _ in range(100):
        value = element(0x30, value)
    with pytest.raises(MalformedSignature, match="nest deeper"):
        parse_der_entitlements(wrapped(entry(b"k", value)))


# -- properties -------------------------------------------------------------------------------


def plists(texts: st.SearchStrategy[str]) -> st.SearchStrategy[dict]:
    values = st.recursive(
        st.booleans() | st.integers(-(2**63), 2**63 - 1) | texts,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
        max_leaves=20,
    )
    return st.dictionaries(texts, values, max_size=6)


# Any string DER can hold; XML cannot hold control characters (and turns CR into LF).
any_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
xml_text = st.text(st.characters(exclude_categories=["Cs", "Cc", "Cn"]), max_size=20)


@given(plists(any_text))
def test_any_entitlements_survive_a_der_round_trip(entitlements):
    der = der_entitlements(entitlements)
    assert parse_der_entitlements(der) == entitlements
    assert der_entitlements(parse_der_entitlements(der)) == der


@given(plists(xml_text))
def test_any_entitlements_survive_an_xml_round_trip(entitlements):
    xml = plistlib.dumps(entitlements)
    assert parse_der_entitlements(der_entitlements(load_entitlements(xml))) == entitlements


@given(st.binary(max_size=80))
def test_arbitrary_bytes_parse_or_are_malformed(data):
    try:
        entitlements = parse_der_entitlements(data)
    except MalformedSignature:
        return
    assert der_entitlements(entitlements) == data


@given(st.integers(0, len(SAMPLE_DER) - 1), st.integers(1, 255))
def test_a_changed_byte_parses_or_is_malformed(position, change):
    data = bytearray(SAMPLE_DER)
    data[position] ^= change
    try:
        entitlements = parse_der_entitlements(bytes(data))
    except MalformedSignature:
        return
    assert der_entitlements(entitlements) == data


# -- executable segment flags -----------------------------------------------------------------


def test_only_a_main_binary_gets_executable_segment_flags():
    assert exec_segment_flags({"get-task-allow": True}, main_binary=False) == 0
    assert exec_segment_flags({}, main_binary=True) == ExecSegmentFlag.MAIN_BINARY == 0x1


@pytest.mark.parametrize(
    ("key", "flag"),
    [
        ("get-task-allow", 0x10),
        ("run-unsigned-code", 0x10),
        ("com.apple.private.cs.debugger", 0x20),
        ("dynamic-codesigning", 0x40),
        ("com.apple.private.skip-library-validation", 0x80),
        ("com.apple.private.amfi.can-load-cdhash", 0x100),
        ("com.apple.private.amfi.can-execute-cdhash", 0x200),
    ],
)
def test_entitlements_set_to_true_add_their_flag(key, flag):
    assert exec_segment_flags({key: True}, main_binary=True) == 0x1 | flag


@pytest.mark.parametrize("value", [False, 1, "true", "YES", [True], {"": True}])
def test_entitlements_not_set_to_true_add_nothing(value):
    assert exec_segment_flags({"dynamic-codesigning": value}, main_binary=True) == 0x1


def test_flags_combine():
    entitlements = {"get-task-allow": True, "run-unsigned-code": True, "dynamic-codesigning": True}
    assert exec_segment_flags(entitlements, main_binary=True) == 0x51
