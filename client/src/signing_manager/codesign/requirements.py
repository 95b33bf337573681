"""Code requirements: the Requirement blob and the Requirements set of an embedded signature.

Specified by Apple Security ``OSX/libsecurity_codesigning/lib/requirement.h`` (opcodes and match
operations), ``RequirementParser.cpp`` (how the compiler nests them) and ``reqdumper.cpp`` (the
text ``codesign -d -r-`` prints); see ``reference/apple-signing-formats.md`` section 5. Layout,
all big-endian:

    Requirement   magic 0xFADE0C00 | length u32 | kind u32 (1 = expression form) | expression
    expression    opcode u32, then its operands in prefix order: ``and``/``or`` are followed by
                  two expressions, ``not`` by one; strings, hashes and OIDs are length u32 +
                  bytes + zero padding to 4; certificate slots are i32 (0 leaf, -1 root, n the
                  n-th certificate up from the leaf); OIDs are DER content bytes (no tag, length)
    match         match operation u32, then nothing (exists, absent), an i64 date (seconds since
                  2001-01-01 UTC) for the date comparisons, or a string for the others
    Requirements  a SuperBlob 0xFADE0C01 of Requirement blobs keyed by type (1 host, 2 guest,
                  3 designated, 4 library, 5 plugin)

Expressions are modelled by the small frozen dataclasses below; ``encode``/``decode`` convert
them, ``requirement_text`` renders Apple's text syntax.
"""

from __future__ import annotations

import datetime
import functools
import string
from dataclasses import dataclass
from enum import IntEnum

from asn1crypto.core import ObjectIdentifier

from signing_manager.codesign.blobs import (
    BlobMagic,
    MalformedSignature,
    SuperBlob,
    blob,
    blob_payload,
)

LEAF = 0
ROOT = -1  # the anchor: the last certificate of the chain

# Apple's marker extensions: on the Developer ID intermediate CA, and on a Developer ID
# Application leaf certificate.
DEVELOPER_ID_CA_OID = "1.2.840.113635.100.6.2.6"
DEVELOPER_ID_APPLICATION_OID = "1.2.840.113635.100.6.1.13"

# Far beyond anything a compiler writes; it keeps hostile nesting from exhausting the stack.
_MAX_DEPTH = 128


class RequirementType(IntEnum):
    HOST = 1
    GUEST = 2
    DESIGNATED = 3
    LIBRARY = 4
    PLUGIN = 5


class RequirementKind(IntEnum):
    EXPRESSION = 1
    LIGHTWEIGHT = 2  # the DER form of launch constraints, not read here


class Opcode(IntEnum):
    FALSE = 0
    TRUE = 1
    IDENT = 2
    ANCHOR_APPLE = 3
    ANCHOR_HASH = 4
    INFO_KEY_VALUE = 5
    AND = 6
    OR = 7
    CDHASH = 8
    NOT = 9
    INFO_KEY_FIELD = 10
    CERT_FIELD = 11
    TRUSTED_CERT = 12
    ANCHOR_TRUSTED = 13
    CERT_GENERIC = 14
    ANCHOR_APPLE_GENERIC = 15
    ENTITLEMENT_FIELD = 16
    CERT_POLICY = 17
    NAMED_ANCHOR = 18
    NAMED_CODE = 19
    PLATFORM = 20
    NOTARIZED = 21
    CERT_FIELD_DATE = 22
    LEGACY_DEVID = 23


class MatchOp(IntEnum):
    EXISTS = 0
    EQUAL = 1
    CONTAINS = 2
    BEGINS_WITH = 3
    ENDS_WITH = 4
    LESS_THAN = 5
    GREATER_THAN = 6
    LESS_EQUAL = 7
    GREATER_EQUAL = 8
    ON = 9
    BEFORE = 10
    AFTER = 11
    ON_OR_BEFORE = 12
    ON_OR_AFTER = 13
    ABSENT = 14


_VALUELESS = frozenset({MatchOp.EXISTS, MatchOp.ABSENT})
_DATES = frozenset(
    {MatchOp.ON, MatchOp.BEFORE, MatchOp.AFTER, MatchOp.ON_OR_BEFORE, MatchOp.ON_OR_AFTER}
)


def _check_op(expr: object, op: Opcode, allowed: frozenset[Opcode]) -> None:
    if op not in allowed:
        raise ValueError(f"{type(expr).__name__} cannot hold opcode {op!r}.")


@dataclass(frozen=True)
class Match:
    """How a certificate field, Info.plist key or entitlement must compare.

    ``value`` is None for exists/absent, seconds since 2001-01-01 UTC for the date operations,
    and a string for the others.
    """

    op: MatchOp
    value: str | int | None = None

    def __post_init__(self) -> None:
        if self.op in _VALUELESS:
            valid, wanted = self.value is None, "no value"
        elif self.op in _DATES:
            valid, wanted = type(self.value) is int, "an int (seconds since 2001)"
        else:
            valid, wanted = isinstance(self.value, str), "a string"
        if not valid:
            raise ValueError(f"Match operation {self.op!r} takes {wanted}.")


_CONSTANTS = frozenset(
    {
        Opcode.FALSE,
        Opcode.TRUE,
        Opcode.ANCHOR_APPLE,
        Opcode.ANCHOR_TRUSTED,
        Opcode.ANCHOR_APPLE_GENERIC,
        Opcode.NOTARIZED,
        Opcode.LEGACY_DEVID,
    }
)
_TEXTS = frozenset({Opcode.IDENT, Opcode.NAMED_ANCHOR, Opcode.NAMED_CODE})
_KEY_MATCHES = frozenset({Opcode.INFO_KEY_FIELD, Opcode.ENTITLEMENT_FIELD})
_CERT_OIDS = frozenset({Opcode.CERT_GENERIC, Opcode.CERT_POLICY, Opcode.CERT_FIELD_DATE})


@dataclass(frozen=True)
class Constant:
    """An operation without operands: false, true, anchor apple [generic], anchor trusted, ..."""

    op: Opcode

    def __post_init__(self) -> None:
        _check_op(self, self.op, _CONSTANTS)


@dataclass(frozen=True)
class Text:
    """``identifier "X"``, ``anchor apple X`` (named anchor) or ``(X)`` (named code)."""

    op: Opcode
    value: str

    def __post_init__(self) -> None:
        _check_op(self, self.op, _TEXTS)


@dataclass(frozen=True)
class AnchorHash:
    """``certificate <slot> = H"<SHA-1 of the certificate>"``."""

    slot: int
    digest: bytes


@dataclass(frozen=True)
class InfoKeyValue:
    """``info[key] = value``, the legacy form of an Info.plist comparison."""

    key: str
    value: str


@dataclass(frozen=True)
class And:
    left: Expression
    right: Expression


@dataclass(frozen=True)
class Or:
    left: Expression
    right: Expression


@dataclass(frozen=True)
class Not:
    operand: Expression


@dataclass(frozen=True)
class CDHash:
    digest: bytes


@dataclass(frozen=True)
class KeyMatch:
    """``info[key] <match>`` or ``entitlement[key] <match>``."""

    op: Opcode
    key: str
    match: Match

    def __post_init__(self) -> None:
        _check_op(self, self.op, _KEY_MATCHES)


@dataclass(frozen=True)
class CertField:
    """``certificate <slot>[subject.OU] <match>``: a named field of a certificate."""

    slot: int
    field: str
    match: Match


@dataclass(frozen=True)
class CertOid:
    """``certificate <slot>[field.<oid>]`` (extension), ``[policy.<oid>]`` or
    ``[timestamp.<oid>]``, then a match; ``oid`` is dotted."""

    op: Opcode
    slot: int
    oid: str
    match: Match

    def __post_init__(self) -> None:
        _check_op(self, self.op, _CERT_OIDS)
        _oid_contents(self.oid)


@dataclass(frozen=True)
class TrustedCert:
    """``certificate <slot> trusted``."""

    slot: int


@dataclass(frozen=True)
class Platform:
    """``platform = <n>``."""

    platform: int


Expression = (
    Constant
    | Text
    | AnchorHash
    | InfoKeyValue
    | And
    | Or
    | Not
    | CDHash
    | KeyMatch
    | CertField
    | CertOid
    | TrustedCert
    | Platform
)


# -- encoding ---------------------------------------------------------------------------------


def _u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


def _i32(value: int) -> bytes:
    return value.to_bytes(4, "big", signed=True)


def _data(value: bytes | str) -> bytes:
    if isinstance(value, str):
        # surrogateescape gives back exactly the bytes a decoded non-UTF-8 string came from
        value = value.encode("utf-8", "surrogateescape")
    return _u32(len(value)) + value + bytes(-len(value) % 4)


def _oid_contents(dotted: str) -> bytes:
    try:
        contents = ObjectIdentifier(dotted).contents
    except ValueError:
        contents = b""
    if not contents:
        raise ValueError(f"{dotted!r} is not a dotted object identifier.")
    return contents


def _encode_match(match: Match) -> bytes:
    if match.value is None:
        return _u32(match.op)
    if isinstance(match.value, int):
        return _u32(match.op) + match.value.to_bytes(8, "big", signed=True)
    return _u32(match.op) + _data(match.value)


def encode(expr: Expression) -> bytes:
    """The expression's opcodes and operands in prefix order (no blob header)."""
    match expr:
        case Constant(op):
            return _u32(op)
        case Text(op, value):
            return _u32(op) + _data(value)
        case AnchorHash(slot, digest):
            return _u32(Opcode.ANCHOR_HASH) + _i32(slot) + _data(digest)
        case InfoKeyValue(key, value):
            return _u32(Opcode.INFO_KEY_VALUE) + _data(key) + _data(value)
        case And(left, right):
            return _u32(Opcode.AND) + encode(left) + encode(right)
        case Or(left, right):
            return _u32(Opcode.OR) + encode(left) + encode(right)
        case Not(operand):
            return _u32(Opcode.NOT) + encode(operand)
        case CDHash(digest):
            return _u32(Opcode.CDHASH) + _data(digest)
        case KeyMatch(op, key, match):
            return _u32(op) + _data(key) + _encode_match(match)
        case CertField(slot, field, match):
            return _u32(Opcode.CERT_FIELD) + _i32(slot) + _data(field) + _encode_match(match)
        case CertOid(op, slot, oid, match):
            return _u32(op) + _i32(slot) + _data(_oid_contents(oid)) + _encode_match(match)
        case TrustedCert(slot):
            return _u32(Opcode.TRUSTED_CERT) + _i32(slot)
        case Platform(platform):
            return _u32(Opcode.PLATFORM) + _u32(platform)
    raise TypeError(f"Not a requirement expression: {expr!r}")


# -- decoding ---------------------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes):
        self.buffer = data
        self.position = 0

    def take(self, count: int) -> bytes:
        if count > len(self.buffer) - self.position:
            raise MalformedSignature("A code requirement ends in the middle of an expression.")
        chunk = self.buffer[self.position : self.position + count]
        self.position += count
        return chunk

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "big")

    def i32(self) -> int:
        return int.from_bytes(self.take(4), "big", signed=True)

    def i64(self) -> int:
        return int.from_bytes(self.take(8), "big", signed=True)

    def data(self) -> bytes:
        value = self.take(self.u32())
        if any(self.take(-len(value) % 4)):
            raise MalformedSignature("A code requirement has non-zero padding after a string.")
        return value

    def text(self) -> str:
        return self.data().decode("utf-8", "surrogateescape")

    def oid(self) -> str:
        contents = self.data()
        try:
            dotted = ObjectIdentifier(contents=contents).dotted
            canonical = ObjectIdentifier(dotted).contents
        except ValueError:
            canonical = None
        if not contents or canonical != contents:
            raise MalformedSignature(
                f"A code requirement holds a malformed object identifier ({contents.hex()})."
            )
        return dotted

    def match(self) -> Match:
        raw = self.u32()
        try:
            op = MatchOp(raw)
        except ValueError:
            raise MalformedSignature(
                f"A code requirement uses match operation {raw:#x}, which is not a known one."
            ) from None
        if op in _VALUELESS:
            return Match(op)
        return Match(op, self.i64() if op in _DATES else self.text())


def _decode(reader: _Reader, depth: int) -> Expression:
    if depth > _MAX_DEPTH:
        raise MalformedSignature(f"A code requirement nests deeper than {_MAX_DEPTH} levels.")
    raw = reader.u32()
    try:
        op = Opcode(raw)
    except ValueError:
        raise MalformedSignature(
            f"A code requirement uses opcode {raw:#x}, which is not a known requirement operation."
        ) from None
    if op in _CONSTANTS:
        return Constant(op)
    if op in _TEXTS:
        return Text(op, reader.text())
    operand = functools.partial(_decode, reader, depth + 1)
    match op:
        case Opcode.ANCHOR_HASH:
            return AnchorHash(reader.i32(), reader.data())
        case Opcode.INFO_KEY_VALUE:
            return InfoKeyValue(reader.text(), reader.text())
        case Opcode.AND:
            return And(operand(), operand())
        case Opcode.OR:
            return Or(operand(), operand())
        case Opcode.NOT:
            return Not(operand())
        case Opcode.CDHASH:
            return CDHash(reader.data())
        case Opcode.INFO_KEY_FIELD | Opcode.ENTITLEMENT_FIELD:
            return KeyMatch(op, reader.text(), reader.match())
        case Opcode.CERT_FIELD:
            return CertField(reader.i32(), reader.text(), reader.match())
        case Opcode.TRUSTED_CERT:
            return TrustedCert(reader.i32())
        case Opcode.PLATFORM:
            return Platform(reader.u32())
        case _:  # the three certificate OID operations
            return CertOid(op, reader.i32(), reader.oid(), reader.match())


def decode(data: bytes) -> Expression:
    """Parse one whole expression; bytes left over after it are an error."""
    reader = _Reader(data)
    expr = _decode(reader, 0)
    if reader.position != len(data):
        raise MalformedSignature(
            f"A code requirement has {len(data) - reader.position} bytes after its expression."
        )
    return expr


# -- blobs ------------------------------------------------------------------------------------


def requirement_blob(expr: Expression) -> bytes:
    """The Requirement blob (0xFADE0C00) holding this expression."""
    return blob(BlobMagic.REQUIREMENT, _u32(RequirementKind.EXPRESSION) + encode(expr))


def parse_requirement_blob(data: bytes) -> Expression:
    """The expression of a Requirement blob."""
    payload = blob_payload(data, BlobMagic.REQUIREMENT)
    if len(payload) < 4:
        raise MalformedSignature("A code requirement blob is too short for its kind.")
    kind = int.from_bytes(payload[:4], "big")
    if kind != RequirementKind.EXPRESSION:
        raise MalformedSignature(
            f"A code requirement has kind {kind}; only the expression form (1) is supported."
        )
    return decode(payload[4:])


def requirements_set(entries: dict[RequirementType, Expression]) -> bytes:
    """The Requirements SuperBlob (0xFADE0C01); empty when there are no entries."""
    blobs = {int(kind): requirement_blob(expr) for kind, expr in entries.items()}
    return SuperBlob(BlobMagic.REQUIREMENTS, blobs).serialize()


def parse_requirements_set(data: bytes) -> dict[int, Expression]:
    """The expressions of a Requirements set by type (a RequirementType where it is known)."""
    entries = SuperBlob.parse(data, BlobMagic.REQUIREMENTS).entries
    known = set(RequirementType)
    return {
        RequirementType(kind) if kind in known else kind: parse_requirement_blob(whole)
        for kind, whole in entries.items()
    }


# -- the requirements codesign makes ----------------------------------------------------------


def all_of(first: Expression, *rest: Expression) -> Expression:
    """``a and b and c`` nested to the left, as Apple's compiler does: and(and(a, b), c)."""
    return functools.reduce(And, rest, first)


def developer_id_requirement(identifier: str, team_id: str) -> Expression:
    """The designated requirement of code signed with a Developer ID Application certificate."""
    return all_of(
        Text(Opcode.IDENT, identifier),
        Constant(Opcode.ANCHOR_APPLE_GENERIC),
        CertOid(Opcode.CERT_GENERIC, 1, DEVELOPER_ID_CA_OID, Match(MatchOp.EXISTS)),
        CertOid(Opcode.CERT_GENERIC, LEAF, DEVELOPER_ID_APPLICATION_OID, Match(MatchOp.EXISTS)),
        CertField(LEAF, "subject.OU", Match(MatchOp.EQUAL, team_id)),
    )


def pinned_requirement(identifier: str, certificate_sha1: bytes, slot: int) -> Expression:
    """``identifier "X" and certificate <slot> = H"<sha1>"``: the designated requirement codesign
    makes for a certificate Apple did not issue (slot ROOT when the chain includes its root,
    else LEAF)."""
    if len(certificate_sha1) != 20:
        raise ValueError("A pinned certificate is named by its 20-byte SHA-1 digest.")
    return And(Text(Opcode.IDENT, identifier), AnchorHash(slot, certificate_sha1))


# -- text -------------------------------------------------------------------------------------

_LEVEL_PRIMARY, _LEVEL_AND, _LEVEL_OR, _LEVEL_TOP = range(4)

_CONSTANT_TEXT = {
    Opcode.FALSE: "never",
    Opcode.TRUE: "always",
    Opcode.ANCHOR_APPLE: "anchor apple",
    Opcode.ANCHOR_APPLE_GENERIC: "anchor apple generic",
    Opcode.ANCHOR_TRUSTED: "anchor trusted",
    Opcode.NOTARIZED: "notarized",
    Opcode.LEGACY_DEVID: "legacy",
}
_CERT_OID_PREFIX = {
    Opcode.CERT_GENERIC: "field",
    Opcode.CERT_POLICY: "policy",
    Opcode.CERT_FIELD_DATE: "timestamp",
}
# The operator before the value, and a star after it for "begins with".
_MATCH_TEXT = {
    MatchOp.EQUAL: " = ",
    MatchOp.CONTAINS: " ~ ",
    MatchOp.BEGINS_WITH: " = ",
    MatchOp.ENDS_WITH: " = *",
    MatchOp.LESS_THAN: " < ",
    MatchOp.GREATER_THAN: " > ",
    MatchOp.LESS_EQUAL: " <= ",
    MatchOp.GREATER_EQUAL: " >= ",
    MatchOp.ON: " = ",
    MatchOp.BEFORE: " < ",
    MatchOp.AFTER: " > ",
    MatchOp.ON_OR_BEFORE: " <= ",
    MatchOp.ON_OR_AFTER: " >= ",
}
_EPOCH = datetime.datetime(2001, 1, 1, tzinfo=datetime.UTC)  # CFAbsoluteTime's zero
_SPACE = b" \t\n\v\f\r"
_NAME = frozenset(string.ascii_letters.encode() + string.digits.encode())
_DOTTED_NAME = _NAME | {ord(".")}


def _quote(value: str, dots: bool = False) -> str:
    """A string as reqdumper's ``data()`` prints it: bare if it is a plain identifier (ASCII
    letters and digits, not starting with a digit; dots too in keys and field names), quoted if
    it is printable ASCII, else hex."""
    raw = value.encode("utf-8", "surrogateescape")
    if not all(0x21 <= byte <= 0x7E or byte in _SPACE for byte in raw):
        return "0x" + raw.hex()
    plain = _DOTTED_NAME if dots else _NAME
    if raw and all(byte in plain for byte in raw) and not raw[:1].isdigit():
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _slot(slot: int) -> str:
    return {LEAF: "leaf", ROOT: "root"}.get(slot, str(slot))


def _hash(digest: bytes) -> str:
    return f'H"{digest.hex()}"'


def _date(seconds: int) -> str:
    try:
        moment = _EPOCH + datetime.timedelta(seconds=seconds)
    except OverflowError:
        return f"<{seconds}>"
    return moment.strftime("<%Y-%m-%d %H:%M:%S +0000>")


def _match_text(match: Match) -> str:
    if match.op == MatchOp.EXISTS:
        return " /* exists */"
    if match.op == MatchOp.ABSENT:
        return " absent "  # sic: reqdumper ends it with a space
    if isinstance(match.value, int):
        return _MATCH_TEXT[match.op] + _date(match.value)
    star = "*" if match.op == MatchOp.BEGINS_WITH else ""
    return _MATCH_TEXT[match.op] + _quote(str(match.value)) + star


def _text(expr: Expression, level: int) -> str:
    match expr:
        case Constant(op):
            return _CONSTANT_TEXT[op]
        case Text(Opcode.IDENT, value):
            return f"identifier {_quote(value)}"
        case Text(Opcode.NAMED_ANCHOR, value):
            return f"anchor apple {_quote(value)}"
        case Text(_, value):
            return f"({_quote(value)})"
        case AnchorHash(slot, digest):
            return f"certificate {_slot(slot)} = {_hash(digest)}"
        case InfoKeyValue(key, value):
            return f"info[{_quote(key, dots=True)}] = {_quote(value)}"
        case And(left, right) | Or(left, right):
            inner, word = (_LEVEL_AND, "and") if isinstance(expr, And) else (_LEVEL_OR, "or")
            text = f"{_text(left, inner)} {word} {_text(right, inner)}"
            return f"({text})" if level < inner else text
        case Not(operand):
            return f"! {_text(operand, _LEVEL_PRIMARY)}"
        case CDHash(digest):
            return f"cdhash {_hash(digest)}"
        case KeyMatch(op, key, match):
            where = "info" if op == Opcode.INFO_KEY_FIELD else "entitlement"
            return f"{where}[{_quote(key, dots=True)}]{_match_text(match)}"
        case CertField(slot, field, match):
            return f"certificate {_slot(slot)}[{_quote(field, dots=True)}]{_match_text(match)}"
        case CertOid(op, slot, oid, match):
            where = f"{_CERT_OID_PREFIX[op]}.{oid}"
            return f"certificate {_slot(slot)}[{where}]{_match_text(match)}"
        case TrustedCert(slot):
            return f"certificate {_slot(slot)} trusted"
        case Platform(platform):
            return f"platform = {platform}"
    raise TypeError(f"Not a requirement expression: {expr!r}")


def requirement_text(expr: Expression) -> str:
    """The expression in Apple's requirement language, as ``codesign -d -r-`` prints it."""
    return _text(expr, _LEVEL_TOP)
