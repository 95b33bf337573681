"""Evaluating a code requirement against signed code, as Security's ``reqinterp.cpp`` does.

A requirement (``requirements.py``) is judged against what the signature says of the code:
its identifier, its CodeDirectories' cdhashes, its certificate chain (leaf first, completed to
its root and checked link by link, see ``trust.py``), the anchors trusted here (Apple's roots
and any given with ``--anchor``), the bound Info.plist and the entitlements.

``anchor apple generic`` holds when the chain ends at one of Apple's roots; ``anchor apple``
when, in addition, the leaf carries Apple's own software-signing marker; ``anchor trusted`` and
``certificate N trusted`` when that certificate is a trusted anchor. ``notarized``, ``legacy``
and named anchors or code cannot be judged without macOS and never hold here.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from signing_manager.apple_pki import apple_roots
from signing_manager.codesign.requirements import (
    AnchorHash,
    And,
    CDHash,
    CertField,
    CertOid,
    Constant,
    Expression,
    InfoKeyValue,
    KeyMatch,
    Match,
    MatchOp,
    Not,
    Opcode,
    Or,
    Platform,
    Text,
    TrustedCert,
)

APPLE_SOFTWARE_SIGNING = x509.ObjectIdentifier("1.2.840.113635.100.6.22")
# The subject fields a requirement may name (Security's certificate field names).
SUBJECT_FIELDS = {
    "CN": x509.NameOID.COMMON_NAME,
    "C": x509.NameOID.COUNTRY_NAME,
    "O": x509.NameOID.ORGANIZATION_NAME,
    "OU": x509.NameOID.ORGANIZATIONAL_UNIT_NAME,
    "L": x509.NameOID.LOCALITY_NAME,
    "ST": x509.NameOID.STATE_OR_PROVINCE_NAME,
    "STREET": x509.NameOID.STREET_ADDRESS,
    "UID": x509.NameOID.USER_ID,
    "EMAIL": x509.NameOID.EMAIL_ADDRESS,
    "E": x509.NameOID.EMAIL_ADDRESS,
}


@dataclass(frozen=True)
class CodeFacts:
    """What a requirement is judged against."""

    identifier: str
    cdhashes: tuple[bytes, ...]
    chain: tuple[x509.Certificate, ...] = ()  # leaf first; empty for ad-hoc code
    chain_complete: bool = False  # the last certificate is a root
    anchors: tuple[x509.Certificate, ...] = ()  # the roots trusted here
    info: dict | None = None
    entitlements: dict | None = None
    platform: int = 0


def satisfies(expression: Expression, facts: CodeFacts) -> bool:
    """Whether the code described by ``facts`` satisfies ``expression``."""
    match expression:
        case And(left, right):
            return satisfies(left, facts) and satisfies(right, facts)
        case Or(left, right):
            return satisfies(left, facts) or satisfies(right, facts)
        case Not(operand):
            return not satisfies(operand, facts)
        case Constant(op):
            return constant_holds(op, facts)
        case Text(Opcode.IDENT, value):
            return facts.identifier == value
        case CDHash(digest):
            return digest in facts.cdhashes
        case Platform(platform):
            return facts.platform == platform
        case AnchorHash(slot, digest):
            certificate = at_slot(facts, slot)
            return certificate is not None and sha1(certificate) == digest
        case TrustedCert(slot):
            certificate = at_slot(facts, slot)
            return certificate is not None and certificate in facts.anchors
        case CertField(slot, field, wanted):
            return matches(wanted, name_values(at_slot(facts, slot), field))
        case CertOid(op, slot, oid, wanted):
            return cert_oid_holds(op, at_slot(facts, slot), oid, wanted)
        case KeyMatch(op, key, wanted):
            table = facts.info if op == Opcode.INFO_KEY_FIELD else facts.entitlements
            return matches(wanted, dictionary_values(table, key))
        case InfoKeyValue(key, value):
            return matches(Match(MatchOp.EQUAL, value), dictionary_values(facts.info, key))
    return False  # named anchors and code: only macOS knows them


def constant_holds(op: Opcode, facts: CodeFacts) -> bool:
    if op == Opcode.TRUE:
        return True
    if op == Opcode.ANCHOR_APPLE_GENERIC:
        return apple_anchored(facts)
    if op == Opcode.ANCHOR_APPLE:
        leaf = extension_oids(facts.chain[0]) if facts.chain else set()
        return apple_anchored(facts) and APPLE_SOFTWARE_SIGNING in leaf
    if op == Opcode.ANCHOR_TRUSTED:
        return facts.chain_complete and facts.chain[-1] in facts.anchors
    return False  # false; notarized and legacy cannot be judged here


def apple_anchored(facts: CodeFacts) -> bool:
    return facts.chain_complete and len(facts.chain) > 1 and facts.chain[-1] in apple_roots()


def at_slot(facts: CodeFacts, slot: int) -> x509.Certificate | None:
    """Slot 0 is the leaf, 1 its issuer, ...; -1 the anchor (the chain's root), -2 below it."""
    if slot < 0 and not facts.chain_complete:
        return None  # no anchor to count from
    try:
        return facts.chain[slot]
    except IndexError:
        return None


def sha1(certificate: x509.Certificate) -> bytes:
    return certificate.fingerprint(hashes.SHA1())  # noqa: S303 - requirements name certs so


def name_values(certificate: x509.Certificate | None, field: str) -> list[str]:
    if certificate is None:
        return []
    which, _, short = field.partition(".")
    oid = SUBJECT_FIELDS.get(short.upper())
    if oid is None:
        return []
    name = certificate.subject if which == "subject" else certificate.issuer
    return [str(attribute.value) for attribute in name.get_attributes_for_oid(oid)]


def cert_oid_holds(op: Opcode, certificate, oid: str, wanted: Match) -> bool:
    """``field.OID`` (an extension) and ``policy.OID`` (a certificate policy): present or
    absent; their values and ``timestamp.OID`` dates are not compared here."""
    if certificate is None or wanted.op not in (MatchOp.EXISTS, MatchOp.ABSENT):
        return False
    try:
        identifier = x509.ObjectIdentifier(oid)
    except ValueError:  # an arc cryptography refuses, from a hostile blob: names nothing
        return False
    if op == Opcode.CERT_GENERIC:
        present = identifier in extension_oids(certificate)
    elif op == Opcode.CERT_POLICY:
        present = identifier in policies(certificate)
    else:
        return False
    return present == (wanted.op == MatchOp.EXISTS)


def extension_oids(certificate: x509.Certificate) -> set[x509.ObjectIdentifier]:
    try:
        return {extension.oid for extension in certificate.extensions}
    except (ValueError, x509.DuplicateExtension):  # damaged extensions: none can be relied on
        return set()


def policies(certificate: x509.Certificate) -> set[x509.ObjectIdentifier]:
    try:
        extension = certificate.extensions.get_extension_for_class(x509.CertificatePolicies)
    except (x509.ExtensionNotFound, ValueError, x509.DuplicateExtension):
        return set()
    return {policy.policy_identifier for policy in extension.value}


def dictionary_values(table: dict | None, key: str) -> list[str]:
    if not isinstance(table, dict) or key not in table:
        return []
    value = table[key]
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, str | int | float):
        return [str(value)]
    if isinstance(value, list):
        return [str(item) for item in value if isinstance(item, str | int | float)]
    return [""]  # a dictionary or data: it exists, but compares to nothing


def matches(wanted: Match, values: list[str]) -> bool:
    if wanted.op == MatchOp.EXISTS:
        return bool(values)
    if wanted.op == MatchOp.ABSENT:
        return not values
    return any(compares(wanted, value) for value in values)


def compares(wanted: Match, value: str) -> bool:
    if not isinstance(wanted.value, str):
        return False  # a date comparison: not judged here
    target = wanted.value
    simple = {
        MatchOp.EQUAL: value == target,
        MatchOp.CONTAINS: target in value,
        MatchOp.BEGINS_WITH: value.startswith(target),
        MatchOp.ENDS_WITH: value.endswith(target),
    }
    if wanted.op in simple:
        return simple[wanted.op]
    left, right = ordered(value), ordered(target)
    return {
        MatchOp.LESS_THAN: left < right,
        MatchOp.GREATER_THAN: left > right,
        MatchOp.LESS_EQUAL: left <= right,
        MatchOp.GREATER_EQUAL: left >= right,
    }.get(wanted.op, False)


def ordered(value: str) -> tuple:
    """Numbers compare as numbers (version strings part by part), other text as text."""
    parts = value.split(".")
    if all(part.isdigit() for part in parts):
        return (0, tuple(int(part) for part in parts))
    return (1, value)
