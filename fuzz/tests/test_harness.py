"""The fuzzing harness catches what it is there to catch: each rule is broken on purpose by a
small action, and the harness must say so (a harness that finds nothing proves nothing)."""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

import pytest

from fuzz.campaign import Plan, Report, try_one
from fuzz.harness import (
    ESCAPED,
    Finding,
    Limits,
    expect_clean,
    expect_unchanged,
    run_engine,
    run_isolated,
    snapshot,
)
from signing_manager.errors import SigningManagerError

LIMITS = Limits(seconds=5, memory=64 << 20)


def says(*lines: str, status: int = 1, stream=None):
    def action() -> int:
        for line in lines:
            print(line, file=stream or sys.stderr)
        return status

    return action


def test_a_run_reports_status_and_output():
    outcome = run_isolated(says("one sentence.", status=1), LIMITS)
    assert (outcome.status, outcome.stderr, outcome.stdout) == (1, "one sentence.\n", "")
    assert expect_clean(outcome, LIMITS, "x") is outcome


def test_a_traceback_is_a_finding():
    def action() -> int:
        raise KeyError("boom")

    outcome = run_isolated(action, LIMITS)
    assert outcome.status == ESCAPED
    with pytest.raises(Finding, match="a traceback"):
        expect_clean(outcome, LIMITS, "x")


def test_a_hang_is_killed_and_is_a_finding():
    started = time.monotonic()
    outcome = run_isolated(lambda: time.sleep(60) or 0, Limits(seconds=0.5))
    assert time.monotonic() - started < 10
    assert outcome.status is None
    with pytest.raises(Finding, match=r"killed by the time limit \(0.5 s\)"):
        expect_clean(outcome, LIMITS, "x")


def test_memory_growth_past_the_limit_is_a_finding():
    def action() -> int:
        ballast = b"x" * (200 << 20)  # written, so resident
        return len(ballast) and 0

    outcome = run_isolated(action, LIMITS)
    # Counted from the anonymous memory the child shares with the harness at the fork: a few
    # MiB either way, also in a process that has big libraries (Qt) mapped.
    assert 150 << 20 <= outcome.memory <= 210 << 20
    with pytest.raises(Finding, match="grew by"):
        expect_clean(outcome, LIMITS, "x")


def test_a_crash_is_a_finding():
    outcome = run_isolated(lambda: os.abort(), LIMITS)
    assert outcome.killed_by == "SIGABRT"
    with pytest.raises(Finding, match="killed by SIGABRT"):
        expect_clean(outcome, LIMITS, "x")


@pytest.mark.parametrize(
    ("action", "problem"),
    [
        (says("unexpected error: ...", status=2), "exit status 2"),
        (says("first line,", "second line."), "2 lines instead of one sentence"),
        (says(status=1), "exit 1 without a word"),
    ],
)
def test_other_statuses_several_lines_and_silence_are_findings(action, problem):
    with pytest.raises(Finding, match=problem):
        expect_clean(run_isolated(action, LIMITS), LIMITS, "x")


def test_a_checker_may_list_problems_each_naming_the_file():
    listing = says("app: first problem", "app: second problem")
    expect_clean(run_isolated(listing, LIMITS), LIMITS, "x", line_prefix="app: ")
    stray = says("app: first problem", "something else")
    with pytest.raises(Finding, match="lines not about the file"):
        expect_clean(run_isolated(stray, LIMITS), LIMITS, "x", line_prefix="app: ")


def test_an_engine_call_refusing_is_one_line_and_anything_else_escapes():
    def refuse():
        raise SigningManagerError("The file is damaged.")

    def crash():
        raise IndexError("index out of range")

    refused = run_engine(refuse, LIMITS)
    assert (refused.status, refused.stderr) == (1, "The file is damaged.\n")
    with pytest.raises(Finding, match="a traceback"):
        expect_clean(run_engine(crash, LIMITS), LIMITS, "x")


def test_snapshots_see_changes_and_never_open_special_files(tmp_path):
    (tmp_path / "file").write_bytes(b"a")
    (tmp_path / "link").symlink_to("file")
    os.mkfifo(tmp_path / "fifo")  # opening it would wait for a writer forever
    before = snapshot(tmp_path)
    expect_unchanged(before, snapshot(tmp_path), "nothing")

    (tmp_path / "file").write_bytes(b"b")
    with pytest.raises(Finding, match=r"1 entries changed: \['file'\]"):
        expect_unchanged(before, snapshot(tmp_path), "changed")
    (tmp_path / "new").write_bytes(b"")
    assert "new" in snapshot(tmp_path)
    assert "new" not in snapshot(tmp_path, leave_out=tmp_path / "new")


class BrokenTarget:
    """A target whose every mutant breaks a rule, leaving a FIFO behind."""

    name = "broken"

    def make(self, rng: random.Random, folder: Path):
        os.mkfifo(folder / "fifo")
        (folder / "input").write_bytes(rng.randbytes(8))
        return "eight random bytes", self.check

    def check(self) -> None:
        raise Finding("rule broken")


def test_a_finding_is_kept_with_how_to_make_it_again(tmp_path):
    report = Report()
    plan = Plan(seed=3, findings=tmp_path / "findings")
    trials = tmp_path / "trials"
    trials.mkdir()

    try_one(plan, BrokenTarget(), 5, trials, report)

    assert report.tried == {"broken": 1}
    [found] = report.findings
    assert (found.target, found.number, found.problem) == ("broken", 5, "rule broken")
    kept = tmp_path / "findings" / "broken-seed3-5"
    assert found.kept_in == kept
    assert (kept / "input").read_bytes() == random.Random("3:broken:5").randbytes(8)
    assert not (kept / "fifo").exists()  # special files are not copied
    assert "scripts/fuzz --seed 3 --target broken --only 5" in (kept / "FINDING.txt").read_text()
    assert list(trials.iterdir()) == []  # the trial's own folder is gone


def test_a_finding_is_made_again_alone_from_its_number(capsys):
    from fuzz.__main__ import main

    assert main(["--target", "p12", "--seed", "3", "--only", "150"]) == 0

    assert capsys.readouterr().out.splitlines()[-1] == "1 mutants (p12 1), 0 findings"


@pytest.mark.parametrize("option", ["--jobs=0", "--mutants=-3", "--minutes=0", "--seconds-limit=0"])
def test_a_budget_that_is_not_positive_is_refused_before_any_work(option, capsys):
    from fuzz.__main__ import main

    with pytest.raises(SystemExit) as exit_:
        main([option])

    assert exit_.value.code == 2
    assert "must be above zero" in capsys.readouterr().err
