"""Code requirements: the bytes Apple's compiler writes, the text codesign prints, and parsing that
rejects damaged input with MalformedSignature only."""

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signing_manager.codesign.blobs import BlobMagic, MalformedSignature, SuperBlob, blob
from signing_manager.codesign.requirements import (
    LEAF,
    ROOT,
    AnchorHash,
    And,
    CDHash,
    CertField,
    CertOid,
    Constant,
    InfoKeyValue,
    KeyMatch,
    Match,
    MatchOp,
    Not,
    Opcode,
    Or,
    Platform,
    RequirementType,
    Text,
    TrustedCert,
    all_of,
    decode,
    developer_id_requirement,
    encode,
    parse_requirement_blob,
    parse_requirements_set,
    pinned_requirement,
    requirement_blob,
    requirement_text,
    requirements_set,
)

# reference/apple-signing-formats.md section 5: the set for ident rcodesign, team MK22MZP987,
# the size codesign -dvvv reported for that Developer ID-signed binary.
WORKED_EXAMPLE = bytes.fromhex(
    "fade0c01 000000ac 00000001 00000003 00000014"
    "fade0c00 00000098 00000001"
    "00000006 00000006 00000006 00000006"
    "00000002 00000009 72636f64657369676e000000"
    "0000000f"
    "0000000e 00000001 0000000a 2a864886f76364060206 0000 00000000"
    "0000000e 00000000 0000000a 2a864886f7636406010d 0000 00000000"
    "0000000b 00000000 0000000a 7375626a6563742e4f55 0000 00000001 0000000a"
    "4d4b32324d5a503938370000"
)
SHA1 = bytes.fromhex("611e5b662c593a08ff58d14ae22452d198df6c60")  # Apple Root CA's SHA-1

ident = Text(Opcode.IDENT, "com.example.app")
exists = Match(MatchOp.EXISTS)
always, never, notarized = (Constant(op) for op in (Opcode.TRUE, Opcode.FALSE, Opcode.NOTARIZED))


def u32(*values: int) -> bytes:
    return b"".join(struct.pack(">I", value) for value in values)


# One sample per opcode; every match operation appears in MATCHES.
EXPRESSIONS = [
    Constant(Opcode.FALSE),
    Constant(Opcode.TRUE),
    ident,
    Constant(Opcode.ANCHOR_APPLE),
    AnchorHash(ROOT, SHA1),
    InfoKeyValue("CFBundleIdentifier", "com.example.app"),
    And(ident, Constant(Opcode.ANCHOR_APPLE)),
    Or(ident, Constant(Opcode.TRUE)),
    CDHash(bytes(range(20))),
    Not(Constant(Opcode.NOTARIZED)),
    KeyMatch(Opcode.INFO_KEY_FIELD, "CFBundleShortVersionString", Match(MatchOp.EQUAL, "1.0")),
    CertField(LEAF, "subject.CN", Match(MatchOp.BEGINS_WITH, "Developer ID")),
    TrustedCert(2),
    Constant(Opcode.ANCHOR_TRUSTED),
    CertOid(Opcode.CERT_GENERIC, 1, "1.2.840.113635.100.6.2.6", exists),
    Constant(Opcode.ANCHOR_APPLE_GENERIC),
    KeyMatch(Opcode.ENTITLEMENT_FIELD, "com.apple.security.app-sandbox", exists),
    CertOid(Opcode.CERT_POLICY, LEAF, "1.2.840.113635.100.5.1", exists),
    Text(Opcode.NAMED_ANCHOR, "developer"),
    Text(Opcode.NAMED_CODE, "com.apple.Safari"),
    Platform(1),
    Constant(Opcode.NOTARIZED),
    CertOid(Opcode.CERT_FIELD_DATE, ROOT, "1.2.840.113635.100.6.1.33", Match(MatchOp.BEFORE, 0)),
    Constant(Opcode.LEGACY_DEVID),
]
MATCHES = [
    Match(MatchOp.EXISTS),
    Match(MatchOp.EQUAL, "MK22MZP987"),
    Match(MatchOp.CONTAINS, "Example"),
    Match(MatchOp.BEGINS_WITH, "com."),
    Match(MatchOp.ENDS_WITH, ".app"),
    Match(MatchOp.LESS_THAN, "2"),
    Match(MatchOp.GREATER_THAN, "1"),
    Match(MatchOp.LESS_EQUAL, "2"),
    Match(MatchOp.GREATER_EQUAL, "1"),
    Match(MatchOp.ON, 0),
    Match(MatchOp.BEFORE, 757382400),
    Match(MatchOp.AFTER, -86400),
    Match(MatchOp.ON_OR_BEFORE, 2**63 - 1),
    Match(MatchOp.ON_OR_AFTER, -(2**63)),
    Match(MatchOp.ABSENT),
]


def test_the_samples_cover_every_opcode_and_match_operation():
    assert [encode(expr)[:4] for expr in EXPRESSIONS] == [u32(op) for op in Opcode]
    assert [match.op for match in MATCHES] == list(MatchOp)


@pytest.mark.parametrize("expr", EXPRESSIONS, ids=lambda expr: type(expr).__name__)
def test_every_opcode_survives_a_round_trip(expr):
    data = encode(expr)
    assert len(data) % 4 == 0
    assert decode(data) == expr
    assert encode(decode(data)) == data
    assert parse_requirement_blob(requirement_blob(expr)) == expr


@pytest.mark.parametrize("match", MATCHES, ids=lambda match: match.op.name)
@pytest.mark.parametrize("holder", ["info", "entitlement", "field", "oid"])
def test_every_match_operation_survives_a_round_trip(match, holder):
    expr = {
        "info": KeyMatch(Opcode.INFO_KEY_FIELD, "CFBundleVersion", match),
        "entitlement": KeyMatch(Opcode.ENTITLEMENT_FIELD, "com.example.key", match),
        "field": CertField(LEAF, "subject.OU", match),
        "oid": CertOid(Opcode.CERT_GENERIC, 1, "1.2.840.113635.100.6.2.6", match),
    }[holder]
    data = encode(expr)
    assert decode(data) == expr
    assert encode(decode(data)) == data


def test_the_developer_id_requirement_encodes_to_the_worked_example():
    expr = developer_id_requirement("rcodesign", "MK22MZP987")
    assert requirements_set({RequirementType.DESIGNATED: expr}) == WORKED_EXAMPLE
    assert len(WORKED_EXAMPLE) == 172
    assert parse_requirements_set(WORKED_EXAMPLE) == {RequirementType.DESIGNATED: expr}


def test_an_empty_requirements_set_is_just_its_header():
    assert requirements_set({}) == bytes.fromhex("fade0c01 0000000c 00000000")
    assert parse_requirements_set(requirements_set({})) == {}


def test_and_nests_to_the_left_as_apples_compiler_does():
    assert all_of(always, never, notarized) == And(And(always, never), notarized)
    assert encode(all_of(always, never, notarized)) == u32(6, 6, 1, 0, 21)
    assert all_of(always) == always


def test_a_set_with_several_types_keeps_them_all_in_slot_order():
    designated = developer_id_requirement("com.example.app", "ABCDE12345")
    host = Constant(Opcode.ANCHOR_APPLE)
    data = requirements_set({RequirementType.DESIGNATED: designated, RequirementType.HOST: host})
    assert list(SuperBlob.parse(data).entries) == [1, 3]
    assert parse_requirements_set(data) == {1: host, 3: designated}


def test_unknown_requirement_types_are_kept_as_numbers():
    data = SuperBlob(BlobMagic.REQUIREMENTS, {9: requirement_blob(ident)}).serialize()
    parsed = parse_requirements_set(data)
    assert parsed == {9: ident}
    assert type(next(iter(parsed))) is int


def test_a_pinned_requirement_names_the_certificate_by_its_sha1():
    expr = pinned_requirement("com.example.app", SHA1, ROOT)
    assert encode(expr) == (
        u32(6, 2, 15) + b"com.example.app\0" + u32(4) + struct.pack(">i", -1) + u32(20) + SHA1
    )
    text = requirement_text(pinned_requirement("x", SHA1, LEAF))
    assert text == f'identifier x and certificate leaf = H"{SHA1.hex()}"'


def test_a_pinned_requirement_needs_a_sha1_digest():
    with pytest.raises(ValueError, match="20-byte SHA-1"):
        pinned_requirement("com.example.app", bytes(32), ROOT)


def test_strings_that_are_not_utf8_keep_their_bytes():
    data = u32(2, 3) + b"a\xffb\0"
    assert encode(decode(data)) == data
    assert requirement_text(decode(data)) == "identifier 0x61ff62"


# -- text, as codesign -d -r- prints it -------------------------------------------------------


def test_the_developer_id_requirement_reads_as_codesign_prints_it():
    # reqdumper prints a string bare when it is letters and digits not starting with a digit,
    # so the team ID has no quotes, as in every Developer ID requirement codesign prints.
    assert requirement_text(developer_id_requirement("com.example.app", "MK22MZP987")) == (
        'identifier "com.example.app" and anchor apple generic and '
        "certificate 1[field.1.2.840.113635.100.6.2.6] /* exists */ and "
        "certificate leaf[field.1.2.840.113635.100.6.1.13] /* exists */ and "
        "certificate leaf[subject.OU] = MK22MZP987"
    )


def test_an_xcode_designated_requirement_reads_as_codesign_printed_it():
    # codesign's output for a Developer ID app signed by Xcode 4.3, quoted at
    # www.mac.tightenapp.com/2012/06/apple-codesigning-certificates.html (one line there).
    expr = And(
        And(
            Constant(Opcode.ANCHOR_APPLE_GENERIC), Text(Opcode.IDENT, "com.genkiyooka.developerid")
        ),
        Or(
            CertOid(Opcode.CERT_GENERIC, LEAF, "1.2.840.113635.100.6.1.9", exists),
            all_of(
                CertOid(Opcode.CERT_GENERIC, 1, "1.2.840.113635.100.6.2.6", exists),
                CertOid(Opcode.CERT_GENERIC, LEAF, "1.2.840.113635.100.6.1.13", exists),
                CertField(LEAF, "subject.OU", Match(MatchOp.EQUAL, "MQK467HD9A")),
            ),
        ),
    )
    assert requirement_text(expr) == (
        'anchor apple generic and identifier "com.genkiyooka.developerid" and '
        "(certificate leaf[field.1.2.840.113635.100.6.1.9] /* exists */ or "
        "certificate 1[field.1.2.840.113635.100.6.2.6] /* exists */ and "
        "certificate leaf[field.1.2.840.113635.100.6.1.13] /* exists */ and "
        "certificate leaf[subject.OU] = MQK467HD9A)"
    )


@pytest.mark.parametrize(
    ("expr", "text"),
    [
        (
            And(Text(Opcode.IDENT, "com.apple.ls"), Constant(Opcode.ANCHOR_APPLE)),
            'identifier "com.apple.ls" and anchor apple',
        ),
        (
            And(ident, AnchorHash(ROOT, SHA1)),
            f'identifier "com.example.app" and certificate root = H"{SHA1.hex()}"',
        ),
        (CDHash(bytes.fromhex("0a" * 20)), 'cdhash H"' + "0a" * 20 + '"'),
        (Constant(Opcode.FALSE), "never"),
        (Constant(Opcode.TRUE), "always"),
        (Constant(Opcode.ANCHOR_TRUSTED), "anchor trusted"),
        (Constant(Opcode.NOTARIZED), "notarized"),
        (Constant(Opcode.LEGACY_DEVID), "legacy"),
        (Text(Opcode.NAMED_ANCHOR, "developer"), "anchor apple developer"),
        (Text(Opcode.NAMED_CODE, "com.apple.Safari"), '("com.apple.Safari")'),
        (Platform(2), "platform = 2"),
        (TrustedCert(2), "certificate 2 trusted"),
        (InfoKeyValue("CFBundleName", "Example App"), 'info[CFBundleName] = "Example App"'),
        (
            KeyMatch(Opcode.ENTITLEMENT_FIELD, "com.apple.security.app-sandbox", exists),
            'entitlement["com.apple.security.app-sandbox"] /* exists */',
        ),
        (
            KeyMatch(
                Opcode.INFO_KEY_FIELD, "CFBundleShortVersionString", Match(MatchOp.EQUAL, "1.0")
            ),
            'info[CFBundleShortVersionString] = "1.0"',
        ),
        (
            CertField(LEAF, "subject.CN", Match(MatchOp.EQUAL, "Developer ID Application: A (B)")),
            'certificate leaf[subject.CN] = "Developer ID Application: A (B)"',
        ),
        (
            CertOid(Opcode.CERT_POLICY, 3, "1.2.840.113635.100.5.1", exists),
            "certificate 3[policy.1.2.840.113635.100.5.1] /* exists */",
        ),
        (
            CertOid(Opcode.CERT_FIELD_DATE, ROOT, "1.2.3", Match(MatchOp.BEFORE, 757382400)),
            "certificate root[timestamp.1.2.3] < <2025-01-01 00:00:00 +0000>",
        ),
    ],
)
def test_expressions_read_as_codesign_prints_them(expr, text):
    assert requirement_text(expr) == text


@pytest.mark.parametrize(
    ("match", "suffix"),
    [
        (Match(MatchOp.EXISTS), " /* exists */"),
        (Match(MatchOp.EQUAL, "x"), " = x"),
        (Match(MatchOp.CONTAINS, "x"), " ~ x"),
        (Match(MatchOp.BEGINS_WITH, "x"), " = x*"),
        (Match(MatchOp.ENDS_WITH, "x"), " = *x"),
        (Match(MatchOp.LESS_THAN, "x"), " < x"),
        (Match(MatchOp.GREATER_THAN, "x"), " > x"),
        (Match(MatchOp.LESS_EQUAL, "x"), " <= x"),
        (Match(MatchOp.GREATER_EQUAL, "x"), " >= x"),
        (Match(MatchOp.ON, 0), " = <2001-01-01 00:00:00 +0000>"),
        (Match(MatchOp.BEFORE, 0), " < <2001-01-01 00:00:00 +0000>"),
        (Match(MatchOp.AFTER, 0), " > <2001-01-01 00:00:00 +0000>"),
        (Match(MatchOp.ON_OR_BEFORE, 0), " <= <2001-01-01 00:00:00 +0000>"),
        (Match(MatchOp.ON_OR_AFTER, 2**62), f" >= <{2**62}>"),  # beyond year 9999
        (Match(MatchOp.ABSENT), " absent "),
    ],
)
def test_match_operations_read_as_codesign_prints_them(match, suffix):
    assert requirement_text(KeyMatch(Opcode.INFO_KEY_FIELD, "k", match)) == f"info[k]{suffix}"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("rcodesign", "rcodesign"),
        ("MK22MZP987", "MK22MZP987"),
        ("com.example.app", '"com.example.app"'),  # dots are bare only in keys and fields
        ("2BUA8C4S2C", '"2BUA8C4S2C"'),  # a bare word cannot start with a digit
        ("", '""'),
        ("with space", '"with space"'),
        ('say "hi" \\ bye', '"say \\"hi\\" \\\\ bye"'),
        ("café", "0x636166c3a9"),  # not ASCII: hex
        ("tab\there", '"tab\there"'),
        ("bell\a", "0x62656c6c07"),
    ],
)
def test_strings_are_bare_quoted_or_hex_as_codesign_prints_them(value, text):
    assert requirement_text(Text(Opcode.IDENT, value)) == f"identifier {text}"


@pytest.mark.parametrize(
    ("expr", "text"),
    [
        (Or(And(always, never), notarized), "always and never or notarized"),
        (And(Or(always, never), notarized), "(always or never) and notarized"),
        (And(notarized, Or(always, never)), "notarized and (always or never)"),
        (And(notarized, And(always, never)), "notarized and always and never"),
        (Or(Or(always, never), notarized), "always or never or notarized"),
        (Not(And(always, never)), "! (always and never)"),
        (And(Not(always), never), "! always and never"),
        (Not(Not(always)), "! ! always"),
    ],
)
def test_parentheses_appear_only_where_precedence_needs_them(expr, text):
    assert requirement_text(expr) == text


# -- construction mistakes --------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: Constant(Opcode.IDENT),
        lambda: Text(Opcode.TRUE, "x"),
        lambda: KeyMatch(Opcode.CERT_FIELD, "k", exists),
        lambda: CertOid(Opcode.CERT_FIELD, 0, "1.2.3", exists),
        lambda: CertOid(Opcode.CERT_GENERIC, 0, "not.an.oid", exists),
        lambda: CertOid(Opcode.CERT_GENERIC, 0, "7.1", exists),
        lambda: Match(MatchOp.EQUAL),
        lambda: Match(MatchOp.EXISTS, "x"),
        lambda: Match(MatchOp.ON, "2020-01-01"),
        lambda: Match(MatchOp.CONTAINS, 5),
    ],
)
def test_impossible_expressions_cannot_be_built(build):
    with pytest.raises(ValueError, match=r"cannot hold|takes|object identifier"):
        build()


# -- damaged input ----------------------------------------------------------------------------

DEVELOPER_ID = encode(developer_id_requirement("rcodesign", "MK22MZP987"))


def test_a_requirement_cut_short_anywhere_is_malformed():
    for end in range(len(DEVELOPER_ID)):
        with pytest.raises(MalformedSignature):
            decode(DEVELOPER_ID[:end])


def test_a_requirements_set_cut_short_anywhere_is_malformed():
    for end in range(len(WORKED_EXAMPLE)):
        with pytest.raises(MalformedSignature):
            parse_requirements_set(WORKED_EXAMPLE[:end])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (u32(24), "opcode 0x18"),
        (u32(0x80000002) + u32(1) + b"a\0\0\0", "opcode 0x80000002"),  # flags are not written
        (u32(0xFFFFFFFF), "opcode 0xffffffff"),
        (u32(10, 1) + b"k\0\0\0" + u32(15), "match operation 0xf"),
        (u32(2, 0xFFFFFFFF) + b"abcd", "ends in the middle"),
        (u32(8, 0x7FFFFFFF), "ends in the middle"),
        (u32(2, 1) + b"a\0\0\1", "non-zero padding"),
        (u32(1, 1), "4 bytes after"),
        (u32(14, 0, 2) + b"\x2a\x86\0\0" + u32(0), "malformed object identifier"),
        (u32(14, 0, 0) + u32(0), "malformed object identifier"),
        (u32(14, 0, 2) + b"\x80\x01\0\0" + u32(0), "malformed object identifier"),
        (u32(9) * 10_000 + u32(1), "nests deeper"),
        (u32(6) * 10_000 + u32(1) * 10_001, "nests deeper"),
        (b"", "ends in the middle"),
        (b"\0\0", "ends in the middle"),
    ],
)
def test_damaged_expressions_are_malformed(data, message):
    with pytest.raises(MalformedSignature, match=message):
        decode(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (blob(BlobMagic.REQUIREMENT, u32(2) + u32(1)), "kind 2"),
        (blob(BlobMagic.REQUIREMENT, b""), "too short"),
        (blob(BlobMagic.REQUIREMENTS, u32(1, 1)), "Expected blob magic"),
        (requirement_blob(ident)[:-1], "bad length"),
    ],
)
def test_damaged_requirement_blobs_are_malformed(data, message):
    with pytest.raises(MalformedSignature, match=message):
        parse_requirement_blob(data)


def test_a_requirements_set_with_another_magic_is_malformed():
    with pytest.raises(MalformedSignature, match="Expected a SuperBlob"):
        parse_requirements_set(requirement_blob(ident))


# -- properties -------------------------------------------------------------------------------

names = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
slots = st.integers(-(2**31), 2**31 - 1)
digests = st.binary(max_size=48)
oids = st.builds(
    lambda first, second, rest: ".".join(map(str, [first, second, *rest])),
    st.integers(0, 2),
    st.integers(0, 39),
    st.lists(st.integers(0, 2**70), max_size=5),
)
matches = st.one_of(
    st.builds(Match, st.sampled_from([MatchOp.EXISTS, MatchOp.ABSENT])),
    st.builds(Match, st.sampled_from([op for op in MatchOp if 1 <= op <= 8]), names),
    st.builds(
        Match,
        st.sampled_from([op for op in MatchOp if 9 <= op <= 13]),
        st.integers(-(2**63), 2**63 - 1),
    ),
)
leaves = st.one_of(
    st.builds(Constant, st.sampled_from([0, 1, 3, 13, 15, 21, 23]).map(Opcode)),
    st.builds(Text, st.sampled_from([Opcode.IDENT, Opcode.NAMED_ANCHOR, Opcode.NAMED_CODE]), names),
    st.builds(AnchorHash, slots, digests),
    st.builds(InfoKeyValue, names, names),
    st.builds(CDHash, digests),
    st.builds(
        KeyMatch, st.sampled_from([Opcode.INFO_KEY_FIELD, Opcode.ENTITLEMENT_FIELD]), names, matches
    ),
    st.builds(CertField, slots, names, matches),
    st.builds(
        CertOid,
        st.sampled_from([Opcode.CERT_GENERIC, Opcode.CERT_POLICY, Opcode.CERT_FIELD_DATE]),
        slots,
        oids,
        matches,
    ),
    st.builds(TrustedCert, slots),
    st.builds(Platform, st.integers(0, 2**32 - 1)),
)
expressions = st.recursive(
    leaves,
    lambda inner: (
        st.builds(And, inner, inner) | st.builds(Or, inner, inner) | st.builds(Not, inner)
    ),
    max_leaves=12,
)


@given(expressions)
def test_any_expression_survives_a_round_trip_and_can_be_printed(expr):
    data = encode(expr)
    assert decode(data) == expr
    assert encode(decode(data)) == data
    assert parse_requirements_set(requirements_set({RequirementType.DESIGNATED: expr})) == {3: expr}
    assert isinstance(requirement_text(expr), str)


@given(st.binary(max_size=64))
def test_arbitrary_bytes_decode_or_are_malformed(data):
    try:
        expr = decode(data)
    except MalformedSignature:
        return
    assert encode(expr) == data


@given(st.integers(0, len(DEVELOPER_ID) - 1), st.integers(1, 255))
def test_a_changed_byte_decodes_or_is_malformed(position, change):
    data = bytearray(DEVELOPER_ID)
    data[position] ^= change
    try:
        expr = decode(bytes(data))
    except MalformedSignature:
        return
    assert encode(expr) == data
