"""Apple's requirement language read back into expressions: what ``-d -r-`` prints reads back
as the same expression, every form of the language is understood, and bad text is refused
saying where."""

from __future__ import annotations

import pytest

from signing_manager.codesign.requirement_language import (
    RequirementSyntaxError,
    parse_requirement,
    parse_requirement_set,
)
from signing_manager.codesign.requirements import (
    LEAF,
    ROOT,
    AnchorHash,
    And,
    CDHash,
    CertField,
    CertOid,
    Constant,
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
    developer_id_requirement,
    pinned_requirement,
    requirement_text,
)

# The designated requirement of the real Developer ID app of test_apple_bundle, as printed.
APPLE_DR = (
    'anchor apple generic and identifier "org.mitmproxy.macos-redirector" and (certificate '
    "leaf[field.1.2.840.113635.100.6.1.9] /* exists */ or certificate "
    "1[field.1.2.840.113635.100.6.2.6] /* exists */ and certificate "
    "leaf[field.1.2.840.113635.100.6.1.13] /* exists */ and certificate leaf[subject.OU] = "
    "S8XHQB96PW)"
)
DIGEST = bytes(range(20))


@pytest.mark.parametrize(
    "expression",
    [
        developer_id_requirement("com.example.app", "ABCDE12345"),
        pinned_requirement("com.example.tool", DIGEST, ROOT),
        pinned_requirement("tool", DIGEST, LEAF),
        Or(Not(Constant(Opcode.ANCHOR_TRUSTED)), And(CDHash(DIGEST), Platform(2))),
        KeyMatch(Opcode.ENTITLEMENT_FIELD, "com.apple.security.app-sandbox", Match(MatchOp.EXISTS)),
        KeyMatch(Opcode.INFO_KEY_FIELD, "CFBundleVersion", Match(MatchOp.GREATER_EQUAL, "2.1")),
        CertField(LEAF, "subject.CN", Match(MatchOp.BEGINS_WITH, "Developer ID")),
        CertField(2, "subject.O", Match(MatchOp.ENDS_WITH, "Inc.")),
        CertField(LEAF, "subject.OU", Match(MatchOp.CONTAINS, "needs quoting ")),
        CertField(LEAF, "subject.CN", Match(MatchOp.ABSENT)),
        CertOid(Opcode.CERT_POLICY, 1, "1.2.840.113635.100.5.1", Match(MatchOp.EXISTS)),
        TrustedCert(ROOT),
        Text(Opcode.NAMED_ANCHOR, "Apple"),
        Text(Opcode.IDENT, "é non-ASCII"),
        Constant(Opcode.NOTARIZED),
    ],
    ids=repr,
)
def test_what_is_printed_reads_back_as_the_same_expression(expression):
    assert parse_requirement(requirement_text(expression)) == expression


def test_apples_own_designated_requirement_reads_back_exactly():
    assert requirement_text(parse_requirement(APPLE_DR)) == APPLE_DR


def test_and_binds_tighter_than_or_and_parentheses_group():
    a, b, c = (Text(Opcode.IDENT, name) for name in "abc")

    assert parse_requirement("identifier a or identifier b and identifier c") == Or(a, And(b, c))
    assert parse_requirement("(identifier a or identifier b) and identifier c") == And(Or(a, b), c)
    assert parse_requirement("! identifier a and identifier b") == And(Not(a), b)


@pytest.mark.parametrize(
    ("text", "expression"),
    [
        ("always", Constant(Opcode.TRUE)),
        ("false", Constant(Opcode.FALSE)),
        ("identifier = com.example.x", Text(Opcode.IDENT, "com.example.x")),
        (f'cdhash H"{DIGEST.hex()}"', CDHash(DIGEST)),
        (f'anchor = H"{DIGEST.hex()}"', AnchorHash(ROOT, DIGEST)),
        (f'cert anchor = H"{DIGEST.hex()}"', AnchorHash(ROOT, DIGEST)),
        ("anchor apple", Constant(Opcode.ANCHOR_APPLE)),
        ("certificate leaf[subject.CN]", CertField(LEAF, "subject.CN", Match(MatchOp.EXISTS))),
        ("certificate 1 trusted", TrustedCert(1)),
        (
            'info[CFBundleName] = "A \\"B\\""',
            KeyMatch(Opcode.INFO_KEY_FIELD, "CFBundleName", Match(MatchOp.EQUAL, 'A "B"')),
        ),
        ("identifier 0x6869", Text(Opcode.IDENT, "hi")),
    ],
)
def test_each_form_of_the_language(text, expression):
    assert parse_requirement(text) == expression


def test_a_requirement_set_names_each_requirement_by_type():
    text = f'designated => identifier x and certificate root = H"{DIGEST.hex()}" library => always'

    found = parse_requirement_set(text)

    assert found == {
        RequirementType.DESIGNATED: pinned_requirement("x", DIGEST, ROOT),
        RequirementType.LIBRARY: Constant(Opcode.TRUE),
    }
    assert parse_requirement("designated => identifier x") == Text(Opcode.IDENT, "x")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the end at character 1 where a requirement"),
        ("identifier", "the end at character 11 where a string"),
        ("identifier x and", "the end at character 17 where a requirement"),
        ("(identifier x", "where “)” was expected"),
        ("identifier x y", "“y” at character 14 where the end of the requirement"),
        ('cdhash H"abc"', 'where a hash (H"…") was expected'),
        ("certificate leaf[colour] = red", "“colour” is not a certificate field"),
        ('certificate top = H"00"', "where a certificate (leaf, root, or a number)"),
        ("identifier x & y", "cannot be read at character 14"),
        ("designated identifier x", "“identifier” at character 12"),
    ],
)
def test_bad_text_is_refused_saying_where(text, message):
    with pytest.raises(RequirementSyntaxError) as refused:
        parse_requirement_set(text) if text.startswith("designated") else parse_requirement(text)

    assert message in str(refused.value)
