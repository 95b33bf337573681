"""Judging a checked signature as Apple's ``codesign -v`` does beyond its bytes: whether the
certificate chain is trusted (``trust.py``), whether the code satisfies its designated
requirement, and, with ``-R``, a requirement given on the command line (``evaluate.py``).

Code with no designated requirement (ad-hoc, linker-signed) has Apple's implicit one, its own
cdhash, which it satisfies. Ad-hoc code has no certificate, so no chain to trust.
"""

from __future__ import annotations

import plistlib
from dataclasses import dataclass, field

from cryptography import x509

from signing_manager.cms import common_name
from signing_manager.codesign.blobs import BlobMagic, Slot, blob_payload
from signing_manager.codesign.evaluate import CodeFacts, satisfies
from signing_manager.codesign.requirements import Expression, RequirementType
from signing_manager.codesign.verify import SliceCheck
from signing_manager.errors import SigningManagerError
from signing_manager.trust import judge


@dataclass(frozen=True)
class Judgement:
    """What was asked of the checks beyond the bytes."""

    anchors: tuple[x509.Certificate, ...]
    test_requirement: Expression | None = None


@dataclass
class Assessment:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what -vv and more print on success


def assess(check: SliceCheck, judgement: Judgement, info: dict | None) -> Assessment:
    """Trust, designated requirement and test requirement of one signed slice."""
    result = Assessment()
    chain, complete = (), False
    if check.kind == "cms" and check.certificates:
        leaf, anchors = check.certificates[0], judgement.anchors
        verdict = judge(leaf, check.certificates, anchors, check.timestamp)
        chain, complete = verdict.chain, verdict.complete
        if verdict.problem:
            result.problems.append(verdict.problem)
        else:
            through = "Apple's root" if verdict.apple else "an anchor given with --anchor"
            result.notes.append(f"chain trusted: it ends at “{common_name(chain[-1])}” ({through})")
    facts = CodeFacts(
        identifier=check.primary.identifier,
        cdhashes=tuple(directory.cdhash() for _, directory in check.code_directories),
        chain=chain,
        chain_complete=complete,
        anchors=judgement.anchors,
        info=info,
        entitlements=entitlements_of(check),
        platform=check.primary.platform,
    )
    designated = check.requirements.get(RequirementType.DESIGNATED)
    if designated is None or satisfies(designated, facts):
        result.notes.insert(0, "satisfies its Designated Requirement")
    else:
        result.problems.append("does not satisfy its designated Requirement")
    if judgement.test_requirement is not None:
        if satisfies(judgement.test_requirement, facts):
            result.notes.insert(1, "explicit requirement satisfied")
        else:
            result.problems.append("test-requirement: code failed to satisfy the requirement")
    return result


def entitlements_of(check: SliceCheck) -> dict | None:
    data = check.blobs.get(Slot.ENTITLEMENTS)
    if data is None:
        return None
    try:
        return plistlib.loads(blob_payload(data, BlobMagic.ENTITLEMENTS))
    except (SigningManagerError, plistlib.InvalidFileException, ValueError):
        return None  # the blob is bound and checked; its content just cannot be read
