"""Requirements judged against signed code: a real Developer ID chain (Apple's leaf, the
Developer ID CA, Apple Root CA), and chains we make."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from signing_manager.apple_pki import apple_certificates, apple_roots
from signing_manager.chains import complete_chain
from signing_manager.codesign.evaluate import CodeFacts, satisfies
from signing_manager.codesign.requirement_language import parse_requirement
from signing_manager.codesign.requirements import CertOid, Match, MatchOp, Opcode

LEAVES = Path(__file__).parents[1] / "data" / "apple-leaves"
TEAM = "MK22MZP987"
CDHASH = bytes(range(20))


def developer_id_facts(**changes) -> CodeFacts:
    leaf = x509.load_der_x509_certificate(
        (LEAVES / "apple-signed-developer-id-application.cer").read_bytes()
    )
    chain = complete_chain(leaf, apple_certificates())
    facts = {
        "identifier": "com.example.app",
        "cdhashes": (CDHASH,),
        "chain": (leaf, *chain.issuers),
        "chain_complete": chain.complete,
        "anchors": apple_roots(),
        "info": {"CFBundleVersion": "2.10.1", "CFBundleName": "Example App", "LSUIElement": True},
        "entitlements": {"com.apple.security.app-sandbox": True, "groups": ["a.b", "c.d"]},
        "platform": 0,
    }
    return CodeFacts(**{**facts, **changes})


DEVELOPER_ID_DR = (
    'identifier "com.example.app" and anchor apple generic and certificate '
    "1[field.1.2.840.113635.100.6.2.6] /* exists */ and certificate "
    f"leaf[field.1.2.840.113635.100.6.1.13] /* exists */ and certificate leaf[subject.OU] = {TEAM}"
)


def holds(text: str, facts: CodeFacts | None = None) -> bool:
    return satisfies(parse_requirement(text), facts or developer_id_facts())


def test_a_developer_id_designated_requirement_holds_for_its_code():
    assert holds(DEVELOPER_ID_DR)


@pytest.mark.parametrize(
    "changes",
    [
        {"identifier": "com.example.other"},
        {"anchors": ()},  # Apple's roots not trusted: still Apple-anchored, see below
        {"chain_complete": False},
    ],
    ids=["another identifier", "no anchors", "incomplete chain"],
)
def test_it_fails_for_other_code(changes):
    facts = developer_id_facts(**changes)
    expected = "anchors" in changes  # anchor apple generic names Apple's roots, not trust
    assert holds(DEVELOPER_ID_DR, facts) == expected


def test_another_team_fails():
    assert not holds(DEVELOPER_ID_DR.replace(TEAM, "ZZZZZZZZZZ"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("anchor apple generic", True),
        ("anchor apple", False),  # Apple's own software only
        ("anchor trusted", True),
        ("certificate root trusted", True),
        ("certificate leaf trusted", False),
        ('certificate 1[subject.CN] = "Developer ID Certification Authority"', True),
        ('certificate leaf[subject.CN] = "Developer ID Application"*', True),
        ('certificate leaf[subject.CN] = *"(MK22MZP987)"', True),
        ("certificate leaf[subject.CN] ~ Szorc", True),
        ("certificate leaf[subject.O] = Apple", False),
        ('certificate leaf[issuer.CN] = "Developer ID Certification Authority"', True),
        ("certificate leaf[subject.UID] = MK22MZP987", True),
        ("certificate leaf[subject.EMAIL] absent", True),
        ('certificate -2[subject.CN] = "Developer ID Certification Authority"', True),
        ("certificate 5[subject.CN]", False),
        ("certificate leaf[field.1.2.840.113635.100.6.1.14]", False),  # an installer marker
        ("certificate leaf[field.1.2.840.113635.100.6.1.14] absent", True),
        (f'cdhash H"{CDHASH.hex()}"', True),
        (f'cdhash H"{bytes(20).hex()}"', False),
        ("info[CFBundleVersion] >= 2.9", True),  # as versions: 2.10.1 is after 2.9
        ("info[CFBundleVersion] < 2.10.2", True),
        ('info[CFBundleName] = "Example App"', True),
        ("info[LSUIElement] = true", True),
        ("info[Missing] exists", False),
        ("entitlement[com.apple.security.app-sandbox] exists", True),
        ("entitlement[groups] = c.d", True),
        ("platform = 0", True),
        ("notarized", False),  # needs macOS and a ticket
        ("! anchor apple and identifier com.example.app", True),
        ("never or always", True),
    ],
)
def test_each_form_is_judged(text, expected):
    assert holds(text) == expected


def test_a_chain_pinned_by_hash_holds_for_that_root_only():
    facts = developer_id_facts()
    root_sha1 = facts.chain[-1].fingerprint(hashes.SHA1()).hex()  # noqa: S303
    assert holds(f'identifier com.example.app and certificate root = H"{root_sha1}"')
    assert not holds(f'certificate leaf = H"{root_sha1}"')


def test_ad_hoc_code_has_no_chain_to_satisfy_anchors():
    facts = CodeFacts(identifier="tool", cdhashes=(CDHASH,))
    assert holds(f'cdhash H"{CDHASH.hex()}"', facts)
    assert not holds("anchor apple generic", facts)
    assert not holds("certificate root trusted", facts)
    assert not holds("certificate leaf[subject.CN] exists", facts)


def test_date_comparisons_are_not_judged_true():
    # Expressions parsed from a blob may compare dates; they are never taken as satisfied.
    stamp = int((datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)).timestamp())
    expression = CertOid(Opcode.CERT_FIELD_DATE, 0, "1.2.3", Match(MatchOp.BEFORE, stamp))
    assert not satisfies(expression, developer_id_facts())
