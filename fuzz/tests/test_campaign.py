"""The fuzzing campaign CI runs: every target, seed 1, a fixed number of mutants each (about
a minute of both cores in all). A finding fails the test with what broke which rule and how to
make the mutant again (``scripts/fuzz --seed 1 --target T --only N``)."""

from __future__ import annotations

import pytest

from fuzz.campaign import TARGETS, Plan, run

MUTANTS = {"macho": 150, "bundle": 100, "package": 150, "p12": 150}


@pytest.mark.fuzz
@pytest.mark.parametrize("target", TARGETS)
def test_no_mutant_breaks_a_rule(target, tmp_path):
    plan = Plan(targets=(target,), seed=1, mutants=MUTANTS[target], findings=tmp_path)

    report = run(plan, say=lambda line: None)

    assert report.tried == {target: MUTANTS[target]}
    assert report.findings == [], "\n".join(map(str, report.findings))
