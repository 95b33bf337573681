"""Verifying the audit: walk the records in sequence order, recompute every hash and compare the
chain with the signed checkpoints (checkpoints.py); report every break, naming the record.

What each break looks like: an edited record no longer matches its hash; a deleted one leaves a
gap in the sequence; reordered records (sequence numbers swapped) match neither hash; a chain
rewritten with fresh hashes differs from a checkpoint; a removed tail ends before the last
checkpoint; a forged or altered checkpoint fails its signature.
Records after the last checkpoint are proven only by the chain itself, so checkpoints are
frequent. The walk streams the records (a chunk at a time): memory stays flat for any count.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable

from django.utils import timezone

from signing_service.audit import chain, checkpoints
from signing_service.audit.models import (
    AuditEvent,
    Checkpoint,
    CheckpointKind,
    Verification,
)

CHUNK_SIZE = 2000
PURGE = CheckpointKind.PURGE


@dataclasses.dataclass
class Outcome:
    last_sequence: int = 0  # the last record walked
    records: int = 0
    problems: int = 0
    first_problem: str = ""
    last_checkpoint: Checkpoint | None = None


def verify(
    first: int | None = None,
    last: int | None = None,
    report: Callable[[str], None] = lambda line: None,
) -> Outcome:
    """Verify records ``first`` to ``last`` (sequence numbers, both included; None: from the
    oldest, to the last), calling ``report`` with one line per problem."""
    outcome = Outcome()

    def problem(line: str) -> None:
        outcome.problems += 1
        outcome.first_problem = outcome.first_problem or line
        report(line)

    pinned = genuine_checkpoints(last, problem)
    end = last if last is not None else last_known_record(pinned)
    outcome.last_checkpoint = latest(pinned)
    events = AuditEvent.objects.filter(sequence__lte=end).order_by("sequence")
    if first is not None:
        events = events.filter(sequence__gte=first)
    values = events.values_list("hash", *chain.CHAINED_FIELDS)
    previous = start_of_walk(first)
    horizon = purge_horizon(pinned)
    for stored_hash, *chained in values.iterator(chunk_size=CHUNK_SIZE):
        fields = chain.encoded(dict(zip(chain.CHAINED_FIELDS, chained, strict=True)))
        check_record(previous, stored_hash, fields, pinned, horizon, problem)
        previous = (fields["sequence"], stored_hash)
        outcome.records += 1
    outcome.last_sequence = walked = max(previous[0], horizon)
    if walked < end:
        problem(f"{missing(walked + 1, end)} (the end was cut off: a checkpoint covers it).")
    return outcome


def latest(pinned) -> Checkpoint | None:
    made = (checkpoint for group in pinned.values() for checkpoint in group)
    return max(made, key=lambda checkpoint: (checkpoint.sequence, checkpoint.created), default=None)


def purge_horizon(pinned) -> int:
    """The last record the retention purge deleted (records up to it may be gone)."""
    purged = (s for s, made in pinned.items() if any(c.kind == PURGE for c in made))
    return max(purged, default=0)


def last_known_record(pinned) -> int:
    """The last record there must be: the last one stored, or the one the last checkpoint
    covers if it is gone."""
    stored = AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True)
    return max([*stored[:1], *pinned, 0])


def genuine_checkpoints(end: int | None, problem) -> dict[int, list[Checkpoint]]:
    """The checkpoints (up to record ``end``) whose signature is the service's, by sequence."""
    pinned = defaultdict(list)
    made = Checkpoint.objects.all() if end is None else Checkpoint.objects.filter(sequence__lte=end)
    for checkpoint in made.iterator(CHUNK_SIZE):
        if checkpoints.is_genuine(checkpoint):
            pinned[checkpoint.sequence].append(checkpoint)
        else:
            problem(
                f"checkpoint {checkpoint.pk} (record {checkpoint.sequence}): its signature is not"
                " the service's (forged or altered)."
            )
    return pinned


def start_of_walk(first: int | None) -> tuple[int, str | None]:
    """The record before the first one walked, and its hash (None: not known)."""
    if not first or first == 1:
        return 0, chain.GENESIS_HASH
    # A partial walk trusts the record before it as stored (the full walk checks it).
    before = AuditEvent.objects.filter(sequence=first - 1).values_list("hash", flat=True)
    return first - 1, before[0] if before else None


def missing(start: int, end: int) -> str:
    return f"record {start} is missing" if start == end else f"records {start} to {end} are missing"


def check_record(previous, stored_hash, fields, pinned, horizon, problem) -> None:
    """Check one record against the one before it and the checkpoints of it. Records up to the
    last retention purge's checkpoint (``horizon``) may be missing: the purge deleted them, and
    its checkpoint anchors the first record it kept."""
    previous_sequence, previous_hash = previous
    sequence = fields["sequence"]
    gap = sequence != previous_sequence + 1
    if gap and sequence - 1 > horizon:
        problem(f"{missing(max(previous_sequence, horizon) + 1, sequence - 1)} (deleted).")
    anchors = pinned.get(sequence - 1)
    link = anchors[0].hash if anchors else (None if gap else previous_hash)
    if link is not None and chain.next_hash(link, fields) != stored_hash:
        problem(f"record {sequence}: does not match its hash (edited, reordered or replaced).")
    for checkpoint in pinned.get(sequence, ()):
        if checkpoint.hash != stored_hash:
            problem(
                f"record {sequence}: differs from the checkpoint of"
                f" {checkpoint.created:%Y-%m-%d %H:%M:%S} UTC (the chain was rewritten)."
            )


def remember(outcome: Outcome) -> Verification:
    """Keep the outcome of a whole-chain verification for the Audit page."""
    return Verification.objects.create(
        finished=timezone.now(),
        sequence=outcome.last_sequence,
        problems=outcome.problems,
        first_problem=outcome.first_problem[:500],
    )


def last_verification() -> Verification | None:
    return Verification.objects.order_by("-finished", "-id").first()
