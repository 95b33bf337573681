"""Apple's code requirement language, read into the expressions of ``requirements.py``.

The language is described in Apple's "Code Signing Requirement Language" (Code Signing Guide)
and compiled by Security's ``RequirementParser`` (an ANTLR grammar, ``requirements.grammar``):
``or`` binds loosest, then ``and``, then ``!``; parentheses group. Primaries:

    always | true | never | false | notarized | legacy
    identifier ["="] STRING            cdhash ["="] H"hex"          platform = NUMBER
    anchor apple [generic | NAME] | anchor trusted | anchor = H"hex"
    certificate SLOT = H"hex" | certificate SLOT trusted | certificate SLOT[FIELD] [MATCH]
    info[KEY] [MATCH] | entitlement[KEY] [MATCH]

SLOT is ``leaf``, ``root``/``anchor`` or a number (0 is the leaf, counting up the chain);
FIELD is ``subject.XX``, ``issuer.XX``, ``field.OID``, ``policy.OID`` or ``timestamp.OID``;
MATCH is ``exists`` (also when left out), ``absent``, or ``= ~ < > <= >=`` and a value, with
``*`` before or after it for "ends with" / "begins with". ``/* comments */`` are skipped, so the
text ``codesign -d -r-`` prints reads back as the same expression. A requirement set is written
``designated => EXPR library => EXPR``. Date comparisons are not read.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from signing_manager.codesign.requirements import (
    LEAF,
    ROOT,
    AnchorHash,
    And,
    CDHash,
    CertField,
    CertOid,
    Constant,
    Expression,
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
)
from signing_manager.errors import SigningManagerError

TOKEN = re.compile(
    r"""
    (?P<space>\s+|/\*.*?\*/)
    | (?P<hash>H"(?P<hex>[0-9A-Fa-f]*)")
    | (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<punct>=>|<=|>=|[()\[\]!=<>~*])
    | (?P<word>[A-Za-z0-9_.\-$]+)
    """,
    re.VERBOSE | re.DOTALL,
)
CONSTANTS = {
    "always": Opcode.TRUE,
    "true": Opcode.TRUE,
    "never": Opcode.FALSE,
    "false": Opcode.FALSE,
    "notarized": Opcode.NOTARIZED,
    "legacy": Opcode.LEGACY_DEVID,
}
SLOTS = {"leaf": LEAF, "root": ROOT, "anchor": ROOT}
CERT_OID_FIELDS = {
    "field": Opcode.CERT_GENERIC,
    "policy": Opcode.CERT_POLICY,
    "timestamp": Opcode.CERT_FIELD_DATE,
}
COMPARISONS = {
    "=": MatchOp.EQUAL,
    "~": MatchOp.CONTAINS,
    "<": MatchOp.LESS_THAN,
    ">": MatchOp.GREATER_THAN,
    "<=": MatchOp.LESS_EQUAL,
    ">=": MatchOp.GREATER_EQUAL,
}
TYPE_NAMES = {kind.name.lower(): kind for kind in RequirementType}


class RequirementSyntaxError(SigningManagerError):
    """The text is not a requirement; the message says where and what was expected."""


@dataclass(frozen=True)
class Token:
    kind: str  # "hash", "string", "punct", "word" or "end"
    text: str
    position: int


def tokens(text: str) -> list[Token]:
    found, position = [], 0
    while position < len(text):
        match = TOKEN.match(text, position)
        if match is None:
            raise RequirementSyntaxError(
                f"The requirement cannot be read at character {position + 1} "
                f"(“{text[position : position + 10]}”)."
            )
        if match.lastgroup != "space":
            kind = "hash" if match.group("hash") else match.lastgroup
            found.append(Token(kind, match.group(0), position))
        position = match.end()
    return [*found, Token("end", "", len(text))]


class Parser:
    def __init__(self, text: str):
        self.tokens = tokens(text)
        self.index = 0

    @property
    def next(self) -> Token:
        return self.tokens[self.index]

    def take(self) -> Token:
        token = self.next
        self.index += 1
        return token

    def accept(self, text: str) -> bool:
        if self.next.kind in ("punct", "word") and self.next.text == text:
            self.index += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.accept(text):
            self.fail(f"“{text}”")

    def fail(self, wanted: str):
        token = self.next
        found = f"“{token.text}”" if token.kind != "end" else "the end"
        raise RequirementSyntaxError(
            f"The requirement has {found} at character {token.position + 1} where {wanted} "
            "was expected."
        )

    # --- expressions ---

    def expression(self) -> Expression:
        terms = [self.conjunction()]
        while self.accept("or"):
            terms.append(self.conjunction())
        return functools.reduce(Or, terms)

    def conjunction(self) -> Expression:
        terms = [self.unary()]
        while self.accept("and"):
            terms.append(self.unary())
        return functools.reduce(And, terms)

    def unary(self) -> Expression:
        if self.accept("!"):
            return Not(self.unary())
        return self.primary()

    def primary(self) -> Expression:
        if self.accept("("):
            inner = self.expression()
            self.expect(")")
            return inner
        token = self.next
        word = token.text if token.kind == "word" else ""
        if word in CONSTANTS:
            self.take()
            return Constant(CONSTANTS[word])
        handlers = {
            "identifier": self.identifier,
            "cdhash": self.cdhash,
            "platform": self.platform,
            "anchor": self.anchor,
            "certificate": self.certificate,
            "cert": self.certificate,
            "info": lambda: self.key_match(Opcode.INFO_KEY_FIELD),
            "entitlement": lambda: self.key_match(Opcode.ENTITLEMENT_FIELD),
        }
        if word not in handlers:
            self.fail("a requirement (identifier, anchor, certificate, info, ...)")
        self.take()
        return handlers[word]()

    def identifier(self) -> Expression:
        self.accept("=")
        return Text(Opcode.IDENT, self.string())

    def cdhash(self) -> Expression:
        self.accept("=")
        return CDHash(self.hash())

    def platform(self) -> Expression:
        self.expect("=")
        return Platform(self.number())

    def anchor(self) -> Expression:
        if self.accept("apple"):
            if self.accept("generic"):
                return Constant(Opcode.ANCHOR_APPLE_GENERIC)
            if self.names_something():
                return Text(Opcode.NAMED_ANCHOR, self.string())
            return Constant(Opcode.ANCHOR_APPLE)
        if self.accept("trusted"):
            return Constant(Opcode.ANCHOR_TRUSTED)
        self.expect("=")
        return AnchorHash(ROOT, self.hash())

    def names_something(self) -> bool:
        """Whether a name follows (``anchor apple NAME``), not the next clause or requirement."""
        following = self.tokens[self.index + 1] if self.next.kind != "end" else self.next
        return (
            self.next.kind in ("string", "word")
            and self.next.text not in ("and", "or")
            and following.text != "=>"
        )

    def certificate(self) -> Expression:
        slot = self.slot()
        if self.accept("="):
            return AnchorHash(slot, self.hash())
        if self.accept("trusted"):
            return TrustedCert(slot)
        self.expect("[")
        field = self.string()
        self.expect("]")
        match = self.match()
        prefix, _, rest = field.partition(".")
        if prefix in CERT_OID_FIELDS and rest:
            return CertOid(CERT_OID_FIELDS[prefix], slot, rest, match)
        if prefix in ("subject", "issuer") and rest:
            return CertField(slot, field, match)
        raise RequirementSyntaxError(
            f"“{field}” is not a certificate field (subject.CN, field.OID, policy.OID, ...)."
        )

    def key_match(self, opcode: Opcode) -> Expression:
        self.expect("[")
        key = self.string()
        self.expect("]")
        return KeyMatch(opcode, key, self.match())

    # --- operands ---

    def slot(self) -> int:
        token = self.take()
        if token.text in SLOTS:
            return SLOTS[token.text]
        if token.kind == "word" and token.text.lstrip("-").isdigit():
            return int(token.text)
        self.index -= 1
        self.fail("a certificate (leaf, root, or a number)")

    def match(self) -> Match:
        if self.accept("exists"):
            return Match(MatchOp.EXISTS)
        if self.accept("absent"):
            return Match(MatchOp.ABSENT)
        operator = self.next.text if self.next.kind == "punct" else ""
        if operator not in COMPARISONS:
            return Match(MatchOp.EXISTS)  # a field named alone: it exists
        self.take()
        if operator != "=":
            return Match(COMPARISONS[operator], self.string())
        leading = self.accept("*")
        value = self.string()
        trailing = self.accept("*")
        if leading and trailing:
            return Match(MatchOp.CONTAINS, value)
        if leading:
            return Match(MatchOp.ENDS_WITH, value)
        return Match(MatchOp.BEGINS_WITH if trailing else MatchOp.EQUAL, value)

    def string(self) -> str:
        token = self.take()
        if token.kind == "string":
            return re.sub(r"\\(.)", r"\1", token.text[1:-1])
        if token.kind == "word" and token.text not in ("and", "or"):
            if token.text.startswith("0x") and len(token.text) % 2 == 0:
                try:
                    return bytes.fromhex(token.text[2:]).decode("utf-8", "surrogateescape")
                except ValueError:
                    pass
            return token.text
        self.index -= 1
        self.fail("a string")

    def hash(self) -> bytes:
        token = self.take()
        if token.kind == "hash" and len(token.text) > 3 and (len(token.text) - 3) % 2 == 0:
            return bytes.fromhex(token.text[2:-1])
        self.index -= 1
        self.fail('a hash (H"…")')

    def number(self) -> int:
        token = self.take()
        if token.kind == "word" and token.text.isdigit():
            return int(token.text)
        self.index -= 1
        self.fail("a number")

    def end(self) -> None:
        if self.next.kind != "end":
            self.fail("the end of the requirement")


def parse_requirement(text: str) -> Expression:
    """The expression ``text`` writes (a leading ``designated =>`` is allowed)."""
    parser = Parser(text)
    if parser.next.text in TYPE_NAMES and parser.tokens[1].text == "=>":
        parser.index = 2
    expression = parser.expression()
    parser.end()
    return expression


def parse_requirement_set(text: str) -> dict[RequirementType, Expression]:
    """``designated => EXPR [library => EXPR ...]``: each requirement by its type."""
    parser = Parser(text)
    found: dict[RequirementType, Expression] = {}
    while parser.next.kind != "end":
        name = parser.take().text
        if name not in TYPE_NAMES:
            parser.index -= 1
            parser.fail("a requirement type (designated, library, host, guest, plugin)")
        parser.expect("=>")
        found[TYPE_NAMES[name]] = parser.expression()
    if not found:
        parser.fail("“designated => …”")
    return found
