"""A fuzzing campaign: seeds made once, then numbered mutants tried in turn on each target.

Mutant N of target T in a campaign with seed S is made by ``random.Random(f"{S}:{T}:{N}")``,
so ``--seed S --target T --only N`` makes and tries it again. Each trial has a fresh folder;
a trial that breaks a rule is a finding, kept (its folder, special files left out, and what
happened) under the findings folder. With several jobs, each takes every J-th number.
"""

from __future__ import annotations

import itertools
import os
import pickle
import random
import shutil
import stat
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

from fuzz import bundles, macho, p12, packages
from fuzz.harness import Finding, Limits
from signing_manager.local_key import LocalSigner
from signing_service.test import make_identity

TARGETS = ("macho", "bundle", "package", "p12")
PROGRESS_EVERY = 30.0  # seconds


@dataclass
class FoundProblem:
    target: str
    number: int
    mutant: str  # what the mutations did
    problem: str
    kept_in: Path | None = None

    def __str__(self) -> str:
        where = f"\n  kept in {self.kept_in}" if self.kept_in else ""
        return f"{self.target} #{self.number}: {self.problem}\n  mutant: {self.mutant}{where}"


@dataclass
class Report:
    tried: Counter = field(default_factory=Counter)
    findings: list[FoundProblem] = field(default_factory=list)

    def add(self, other: Report) -> None:
        self.tried.update(other.tried)
        self.findings += other.findings

    def summary(self) -> str:
        counts = ", ".join(f"{name} {count:,}" for name, count in sorted(self.tried.items()))
        return f"{sum(self.tried.values()):,} mutants ({counts}), {len(self.findings)} findings"


@dataclass(frozen=True)
class Plan:
    """What to run: targets, the campaign seed, and a budget (mutants per target or time)."""

    targets: tuple[str, ...] = TARGETS
    seed: int = 1
    mutants: int | None = None
    minutes: float | None = None
    only: int | None = None
    jobs: int = 1
    limits: Limits = field(default_factory=Limits)
    findings: Path | None = None
    extra_seeds: tuple[Path, ...] = ()


def prepare(plan: Plan, folder: Path) -> list:
    """The targets, with their seeds made in ``folder``."""
    identity = make_identity("Developer ID Installer: Fuzz (ABCDE12345)", installer=True)
    signer = LocalSigner(identity.certificate, identity.private_key, [identity.ca_certificate])
    extra = {path: magic_of(path) for path in files_under(plan.extra_seeds)}
    executables = macho.unsigned_seeds(folder) if {"macho", "bundle"} & set(plan.targets) else {}
    made = {}
    if "macho" in plan.targets:
        real = [path for path, magic in extra.items() if macho.is_macho(magic)]
        seeds = macho.make_seeds(executables, signer, real)
        made["macho"] = macho.MachOTarget(seeds, plan.limits)
    if "bundle" in plan.targets:
        seeds = bundles.make_seeds(folder / "bundles", executables, plan.limits)
        made["bundle"] = bundles.BundleTarget(seeds, executables["x86_64-exe"], plan.limits)
    if "package" in plan.targets:
        real = [path for path, magic in extra.items() if packages.is_package(magic)]
        seeds = packages.make_seeds(folder / "packages", signer, real)
        made["package"] = packages.PackageTarget(seeds, signer, plan.limits)
    if "p12" in plan.targets:
        made["p12"] = p12.P12Target(p12.make_seeds(), plan.limits)
    return [made[name] for name in plan.targets]


def run(plan: Plan, say: Callable[[str], None] = print) -> Report:
    """Run the campaign ``plan`` describes; findings are reported, not raised."""
    with tempfile.TemporaryDirectory(prefix="fuzz-") as scratch:
        folder = Path(scratch)
        for name in ("config", "logs", "seeds", "trials"):
            (folder / name).mkdir()
        # The client's settings and log of a throwaway user, never the person's own.
        client_folders = {
            "SIGNING_MANAGER_CONFIG_DIR": str(folder / "config"),
            "SIGNING_MANAGER_LOG_DIR": str(folder / "logs"),
        }
        with mock.patch.dict(os.environ, client_folders):
            targets = prepare(plan, folder / "seeds")
            say(f"seeds made; fuzzing {', '.join(plan.targets)} with seed {plan.seed}")
            return run_jobs(plan, targets, folder / "trials", say)


def files_under(folders: tuple[Path, ...]) -> list[Path]:
    return [path for folder in folders for path in sorted(folder.rglob("*")) if path.is_file()]


def magic_of(path: Path) -> bytes:
    with path.open("rb") as stream:
        return stream.read(8)


def run_jobs(plan: Plan, targets: list, folder: Path, say) -> Report:
    """Run the stripes, each in a forked process (which finds the targets, their seeds, keys
    and certificates, where this one left them), and add up their reports."""
    if plan.jobs == 1 or plan.only is not None:
        return run_stripe(plan, targets, folder, 0, say)
    children = [fork_stripe(plan, targets, folder, stripe, say) for stripe in range(plan.jobs)]
    total = Report()
    for pid, results in children:
        with open(results, "rb") as stream:
            data = stream.read()
        _, status = os.waitpid(pid, 0)
        if status != 0 or not data:
            raise RuntimeError(f"fuzzing job {pid} failed (status {status})")
        total.add(pickle.loads(data))  # noqa: S301 - our own child's report
    return total


def fork_stripe(plan: Plan, targets: list, folder: Path, stripe: int, say) -> tuple[int, int]:
    """A child running one stripe; its pid and the pipe its pickled report comes through."""
    results, writer = os.pipe()
    pid = os.fork()
    if pid:
        os.close(writer)
        return pid, results
    status = 1
    try:
        os.close(results)
        report = run_stripe(plan, targets, folder, stripe, say)
        with open(writer, "wb") as stream:
            pickle.dump(report, stream)
        status = 0
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(status)


def run_stripe(plan: Plan, targets: list, folder: Path, stripe: int, say) -> Report:
    report = Report()
    started = last_said = time.monotonic()
    deadline = started + plan.minutes * 60 if plan.minutes else None
    if plan.only is not None:
        numbers = [plan.only]
    elif plan.mutants is not None:
        numbers = range(stripe, plan.mutants, plan.jobs)
    else:
        numbers = itertools.count(stripe, plan.jobs)
    for number in numbers:
        for target in targets:
            if deadline and time.monotonic() > deadline:
                return report
            try_one(plan, target, number, folder, report)
        if time.monotonic() - last_said > PROGRESS_EVERY:
            last_said = time.monotonic()
            say(f"[job {stripe}] {time.monotonic() - started:.0f} s: {report.summary()}")
    return report


def try_one(plan: Plan, target, number: int, folder: Path, report: Report) -> None:
    rng = random.Random(f"{plan.seed}:{target.name}:{number}")
    trial_folder = Path(tempfile.mkdtemp(prefix=f"{target.name}-{number}-", dir=folder))
    mutant = "(not made)"
    try:
        mutant, check = target.make(rng, trial_folder)
        check()
    except Finding as finding:
        found = FoundProblem(target.name, number, printable(mutant), printable(str(finding)))
        found.kept_in = keep(plan, found, trial_folder)
        report.findings.append(found)
    finally:
        shutil.rmtree(trial_folder, ignore_errors=True)
    report.tried[target.name] += 1


def printable(text: str) -> str:
    """Text with the undecodable bytes of file names (surrogates) shown as escapes."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def keep(plan: Plan, found: FoundProblem, trial_folder: Path) -> Path | None:
    if plan.findings is None:
        return None
    destination = plan.findings / f"{found.target}-seed{plan.seed}-{found.number}"
    shutil.rmtree(destination, ignore_errors=True)
    shutil.copytree(trial_folder, destination, symlinks=True, ignore=special_files)
    (destination / "FINDING.txt").write_text(
        f"{found}\n\nAgain: scripts/fuzz --seed {plan.seed} --target {found.target} "
        f"--only {found.number}\n"
    )
    return destination


def special_files(folder: str, names: list[str]) -> list[str]:
    """FIFOs, sockets and devices: listed in FINDING.txt's mutant, never copied (or opened)."""
    kinds = (stat.S_ISFIFO, stat.S_ISSOCK, stat.S_ISCHR, stat.S_ISBLK)
    return [n for n in names if any(k(os.lstat(os.path.join(folder, n)).st_mode) for k in kinds)]
