"""Running a command on a mutant in a forked child, and judging what it did.

Each run forks this process: the client, the service's PKCS#12 reader and their libraries are
imported once, so a run costs milliseconds instead of an interpreter start. The child writes
its stdout and stderr to memory files, runs under an address-space cap, and is killed past a
time limit. What a command may do with hostile input (issue "Hostile files"):

- exit 0, or exit 1 with one sentence on stderr (``codesign -v`` may give one line per
  problem, each naming the file; ``pkgutil`` may give its verdict on stdout instead);
- never a traceback, another exit status or a signal;
- answer within the time limit, and grow its resident memory by less than the memory limit;
- leave what it refused byte for byte as it was, and never write outside what it was given.

A broken rule raises ``Finding``; the campaign (``fuzz.campaign``) keeps the mutant.
"""

from __future__ import annotations

import hashlib
import os
import resource
import select
import signal
import stat
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from signing_manager import cli
from signing_manager.errors import SigningManagerError

# What a child exits with when the action escaped with an exception (its traceback is printed).
ESCAPED = 70


class Finding(Exception):
    """A mutant made a command break one of the rules above; the message says which."""


@dataclass(frozen=True)
class Limits:
    """How long a command may take, and how much resident memory it may add to the harness's
    own (its size when forking; a child starts a little under it, so growth is underestimated
    by tens of MiB at most). Mutants are at most a few MiB: a legitimate run needs a small part
    of either."""

    seconds: float = 20.0
    memory: int = 512 << 20


@dataclass(frozen=True)
class Outcome:
    """What a run did: exit status (None when killed), output, time and added memory."""

    status: int | None
    stdout: str
    stderr: str
    seconds: float
    memory: int
    killed_by: str | None = None

    def lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def run_isolated(action: Callable[[], int], limits: Limits) -> Outcome:
    """Run ``action`` (which returns an exit status) in a forked child, within ``limits``."""
    stdout, stderr = os.memfd_create("stdout"), os.memfd_create("stderr")
    baseline = resident_memory()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child never returns from here
        child(action, stdout, stderr, limits)
    killed_by = wait_for(pid, limits.seconds)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.monotonic() - started
    return Outcome(
        status=os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else None,
        stdout=read_all(stdout),
        stderr=read_all(stderr),
        seconds=seconds,
        memory=max(0, usage.ru_maxrss * 1024 - baseline),
        killed_by=killed_by
        or (signal.Signals(os.WTERMSIG(status)).name if os.WIFSIGNALED(status) else None),
    )


def child(action: Callable[[], int], stdout: int, stderr: int, limits: Limits) -> None:
    status = ESCAPED
    try:
        os.dup2(stdout, 1)
        os.dup2(stderr, 2)
        sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
        # A hard stop well past the memory limit, so that a bomb cannot take the machine.
        cap = address_space() + 4 * limits.memory
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        status = action()
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else ESCAPED
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def wait_for(pid: int, seconds: float) -> str | None:
    """Wait for the child to end; kill it past ``seconds`` (and say so)."""
    handle = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([handle], [], [], seconds)
    finally:
        os.close(handle)
    if ready:
        return None
    os.kill(pid, signal.SIGKILL)
    return f"the time limit ({seconds:g} s)"


def read_all(descriptor: int) -> str:
    with open(descriptor, "rb") as stream:  # closes the memory file
        stream.seek(0)
        return stream.read().decode("utf-8", "backslashreplace")


def resident_memory() -> int:
    """What of this process's resident memory a forked child starts with: its anonymous pages
    (and shared memory). Not the pages of mapped files (libraries): fork leaves those out of
    the child's page tables until it touches them, so counting them would hide the growth of a
    child of a process with big libraries loaded (Qt, in the window's tests)."""
    return status_field("RssAnon") + status_field("RssShmem")


def address_space() -> int:
    return status_field("VmSize")


def status_field(name: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{name}:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {name}")


# --- Running the client ----------------------------------------------------------------------


def run_cli(argv: list[str], limits: Limits) -> Outcome:
    """``signing-manager ARGV``, as a user runs it (settings from the environment)."""
    return run_isolated(lambda: cli.main(argv), limits)


def checked_cli(*arguments, limits: Limits, line_prefix: str | None = None) -> Outcome:
    """``signing-manager ARGUMENTS`` (the last one the input), held to ``expect_clean``."""
    argv = [str(argument) for argument in arguments]
    what = " ".join(argv[:-1])
    return expect_clean(run_cli(argv, limits), limits, what, line_prefix=line_prefix)


def run_engine(
    call: Callable[[], object], limits: Limits, refusals=(SigningManagerError,)
) -> Outcome:
    """A library call, judged like a command: its refusals (``refusals``) are exit 1 with the
    message on stderr, as the CLI and the web pages show them; anything else escapes."""

    def action() -> int:
        try:
            call()
        except refusals as error:
            print(error, file=sys.stderr)
            return 1
        return 0

    return run_isolated(action, limits)


# --- The rules -------------------------------------------------------------------------------


def expect_clean(
    outcome: Outcome, limits: Limits, what: str, *, line_prefix: str | None = None
) -> Outcome:
    """The rules every run keeps. With ``line_prefix``, exit 1 may give several lines, each
    starting with it (a checker's list of problems); otherwise at most one line on stderr.
    Returns the outcome, for the caller's own rules."""
    if outcome.killed_by:
        raise Finding(f"{what}: killed by {outcome.killed_by}")
    if outcome.memory > limits.memory:
        raise Finding(f"{what}: grew by {outcome.memory >> 20} MiB (limit {limits.memory >> 20})")
    if "Traceback (most recent call last)" in outcome.stderr + outcome.stdout:
        raise Finding(f"{what}: a traceback:\n{outcome.stderr}")
    if outcome.status not in (0, 1):
        raise Finding(f"{what}: exit status {outcome.status}: {outcome.stderr.strip()}")
    lines = outcome.lines()
    if line_prefix is not None:
        strays = [line for line in lines if not line.startswith(line_prefix)]
        if strays:
            raise Finding(f"{what}: lines not about the file: {strays}")
    elif len(lines) > 1:
        raise Finding(f"{what}: {len(lines)} lines instead of one sentence:\n{outcome.stderr}")
    if outcome.status == 1 and not (lines or outcome.stdout.strip()):
        raise Finding(f"{what}: exit 1 without a word")
    return outcome


def snapshot(folder: Path, leave_out: Path | None = None) -> dict[str, tuple]:
    """Everything under ``folder`` (but ``leave_out``): kinds, modes, link targets and
    content hashes. Special files are listed, never opened."""
    entries: dict[str, tuple] = {}
    for base, folders, files in os.walk(folder):
        for name in folders + files:
            path = Path(base, name)
            if leave_out is not None and (path == leave_out or leave_out in path.parents):
                continue
            entries[path.relative_to(folder).as_posix()] = describe_entry(path)
    return entries


def describe_entry(path: Path) -> tuple:
    status = path.lstat()
    mode = stat.S_IMODE(status.st_mode)
    if stat.S_ISLNK(status.st_mode):
        return ("link", os.readlink(path))
    if stat.S_ISREG(status.st_mode):
        return ("file", mode, hashlib.sha256(path.read_bytes()).hexdigest())
    return (stat.S_IFMT(status.st_mode), mode)


def expect_unchanged(before: dict[str, tuple], after: dict[str, tuple], what: str) -> None:
    if before == after:
        return
    changed = sorted(
        name for name in before.keys() | after.keys() if before.get(name) != after.get(name)
    )
    raise Finding(f"{what}: {len(changed)} entries changed: {changed[:5]}")
