"""``python -m fuzz`` (or ``scripts/fuzz``): run a fuzzing campaign; exit 1 on any finding.

scripts/fuzz --minutes 30                   every target, both cores, until time is up
scripts/fuzz --mutants 200 --seed 7         200 mutants a target (what CI does, seed 1)
scripts/fuzz --target bundle --seed 1 --only 42    mutant 42 again, after a finding
scripts/fuzz --minutes 10 --seeds ~/real-files     real Mach-O files and packages as seeds
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from fuzz.campaign import TARGETS, Plan, run
from fuzz.harness import Limits


def positive(kind):
    """An argparse type: a number of ``kind`` above zero, or a one-line usage error."""

    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above zero, not {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its message
    return parse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/fuzz", description=__doc__.split("\n")[0])
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument(
        "--minutes", type=positive(float), help="run until this much time has passed"
    )
    budget.add_argument("--mutants", type=positive(int), help="mutants per target (default 100)")
    parser.add_argument("--seed", type=int, default=1, help="the campaign's seed (default 1)")
    parser.add_argument("--target", action="append", choices=TARGETS, help="default: all")
    parser.add_argument("--only", type=int, metavar="N", help="try mutant N alone")
    parser.add_argument("--jobs", type=positive(int), default=os.cpu_count() or 1)
    parser.add_argument(
        "--findings",
        type=Path,
        default=Path("fuzz-findings"),
        help="where findings are kept (default ./fuzz-findings)",
    )
    parser.add_argument(
        "--seeds",
        type=Path,
        action="append",
        default=[],
        help="a folder of real Mach-O files and packages to add as seeds",
    )
    parser.add_argument(
        "--seconds-limit",
        type=positive(float),
        default=Limits.seconds,
        help="how long one command may take (default %(default)s)",
    )
    arguments = parser.parse_args(argv)
    plan = Plan(
        targets=tuple(arguments.target or TARGETS),
        seed=arguments.seed,
        mutants=arguments.mutants if arguments.minutes is None else None,
        minutes=arguments.minutes,
        only=arguments.only,
        jobs=arguments.jobs,
        limits=Limits(seconds=arguments.seconds_limit),
        findings=arguments.findings,
        extra_seeds=tuple(arguments.seeds),
    )
    if plan.minutes is None and plan.mutants is None:
        plan = Plan(**{**plan.__dict__, "mutants": 100})
    report = run(plan, say=lambda line: print(line, flush=True))
    for finding in report.findings:
        print(finding, file=sys.stderr)
    print(report.summary())
    return 1 if report.findings else 0


if __name__ == "__main__":
    sys.exit(main())
