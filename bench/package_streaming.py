"""Signing and checking large packages: peak memory against input size, and speed against this
machine's hashing limit.

Starts ``signing-service run`` on a temporary data directory (SQLite), imports an installer
identity and sets ``signing-manager`` up as a build machine does (``-s -i URL -a KEY -u``; no
keyring, the key from the environment). Then, for packages of each size (one file of
random-looking bytes, stored uncompressed by ``bsdtar --format xar``), in the same run:

- the limit: hashlib's SHA-256 over the package, read 1 MiB at a time, on one thread — every
  command below reads and hashes each byte once and cannot do less; SHA-1 too, which is what
  bsdtar's packages use for their files' checksums (and so what productsign and pkgutil hash);
- ``signing-manager productsign`` (read, check each file's checksum, write, one round trip
  for both signatures), ``pkgutil --check-signature`` of what it wrote, and ``sign`` of the
  package as a plain file (SHA-256, a detached CMS signature);

each command a fresh process, best of N, each round writing a new output (the last one
removed before the clock starts): MB/s end to end (process start and the service's
round trip included) and its ratio to the SHA-256 rate; its peak resident memory, and how far
that is above the peak of ``signing-manager --version`` (the interpreter with the client's
modules loaded). The peak must not grow with the package.

    .venv/bin/python bench/package_streaming.py [--mib 64 256 1024] [--rounds 3]

Needs bsdtar (libarchive-tools, scripts/system-packages). Not a test: nothing here passes or
fails on timing.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from signing_service.test import RunningService, make_identity, run_measuring_peak

MiB = 1 << 20
SIGNING_MANAGER = str(Path(sys.executable).with_name("signing-manager"))


class Client:
    """``signing-manager`` in a home of its own, configured for the service."""

    def __init__(self, home: Path, api_key: str):
        self.home = home
        self.env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("SIGNING_", "XDG_", "PYTHON_KEYRING"))
        }
        self.env.update(
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / "config"),
            XDG_STATE_HOME=str(home / "state"),
            PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
            SIGNING_MANAGER_API_KEY=api_key,
        )

    def run(self, *args: str) -> tuple[float, int]:
        """Seconds and peak resident bytes of one run, which must succeed."""
        started = time.perf_counter()
        result, peak = run_measuring_peak(
            [SIGNING_MANAGER, *args], env=self.env, capture_output=True, text=True, check=False
        )
        elapsed = time.perf_counter() - started
        if result.returncode:
            sys.exit(f"bench: signing-manager {' '.join(args)} failed: {result.stderr}")
        return elapsed, peak


def set_up(service: RunningService, folder: Path) -> tuple[Client, str]:
    """An installer identity in the service and a client configured for it; the client and
    the identity's SHA-1."""
    made = make_identity("Developer ID Installer: Benchmark (ABCDE12345)", installer=True)
    imported = service.import_identity(made, folder / "ops")
    if imported.returncode:
        sys.exit(imported.stderr)
    api_key = service.manage("apikey", "create", "benchmark").stdout.strip()
    client = Client(folder / "home", api_key)
    client.run("-s", "-i", service.url, "-a", api_key, "-u")
    client.run("-r")  # pins the service's certificate
    return client, made.sha1


def build_package(folder: Path, mib: int) -> Path:
    """A package holding one file of ``mib`` MiB, stored (xar's compression would be the
    bottleneck, and productsign copies stored data as it is)."""
    tree = folder / "tree"
    tree.mkdir()
    block = random.Random(mib).randbytes(MiB)  # noqa: S311 - filler, made again from its size
    with (tree / "payload.bin").open("wb") as output:
        for turn in range(mib):
            output.write(block[turn:] + block[:turn])
    package = folder / "package.pkg"
    command = ["bsdtar", "--format", "xar", "--options", "xar:compression=none", "-cf",
               str(package), "-C", str(tree), "payload.bin"]  # fmt: skip
    subprocess.run(command, check=True, timeout=600)
    shutil.rmtree(tree)
    return package


def hash_seconds(path: Path, algorithm: str) -> float:
    """Seconds for hashlib to hash the file, read 1 MiB at a time, on one thread."""
    started = time.perf_counter()
    running = hashlib.new(algorithm)
    with path.open("rb") as handle:
        while chunk := handle.read(MiB):
            running.update(chunk)
    return time.perf_counter() - started


def measure(client: Client, sha1: str, package: Path, rounds: int) -> dict[str, tuple[float, int]]:
    """Each command's best time and highest peak over ``rounds`` runs."""
    signed, signature = package.with_name("signed.pkg"), package.with_name("package.p7s")
    commands = {
        "productsign": ("productsign", "--sign", sha1, str(package), str(signed)),
        "pkgutil --check-signature": ("pkgutil", "--check-signature", str(signed)),
        "sign (SHA-256, CMS)": ("sign", "--identity", sha1, "-o", str(signature), str(package)),
    }
    results = {}
    for label, args in commands.items():
        runs = []
        for _ in range(rounds):
            fresh_start(signed if label == "productsign" else None)
            runs.append(client.run(*args))
        results[label] = (min(seconds for seconds, _ in runs), max(peak for _, peak in runs))
    return results


def fresh_start(output: Path | None) -> None:
    """Each round as the first: the last round's output removed (replacing a 1 GiB file costs
    the rename up to a second here, freeing the old file's pages, which is the file system's
    work, not the command's), and earlier rounds' writes flushed, not competing with this one."""
    if output is not None:
        output.unlink(missing_ok=True)
    if hasattr(os, "sync"):
        os.sync()


def report(mib: int, size: int, limits: dict[str, float], results, baseline: int) -> None:
    print(f"\npackage of {mib} MiB ({size / 1e6:.0f} MB)")
    print(f"{'':34} {'MB/s':>7} {'÷ SHA-256':>10} {'peak RSS':>10} {'above --version':>16}")
    for algorithm, seconds in limits.items():
        label = f"hashlib {algorithm}, 1 MiB reads"
        print(f"{label:34} {size / seconds / 1e6:7.0f} {limits['SHA-256'] / seconds:10.2f}")
    for label, (seconds, peak) in results.items():
        print(
            f"{label:34} {size / seconds / 1e6:7.0f} {limits['SHA-256'] / seconds:10.2f} "
            f"{peak / MiB:7.0f} MiB {(peak - baseline) / MiB:12.0f} MiB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--mib", type=int, nargs="+", default=[64, 256, 1024], help="Package sizes (MiB)."
    )
    parser.add_argument("--rounds", type=int, default=3, help="Best of this many runs.")
    arguments = parser.parse_args()
    if not shutil.which("bsdtar"):
        sys.exit("bench: bsdtar is needed (scripts/system-packages installs libarchive-tools).")
    with (
        tempfile.TemporaryDirectory(prefix="package-bench-") as name,
        contextlib.ExitStack() as stack,
    ):
        folder = Path(name)
        env = {key: value for key, value in os.environ.items() if not key.startswith("SIGNING_")}
        env.pop("DATABASE_URL", None)
        env["SIGNING_SERVICE_LOG_LEVEL"] = "WARNING"
        service = RunningService(folder / "data", env).start()
        stack.callback(service.stop)
        client, sha1 = set_up(service, folder)
        _, baseline = client.run("--version")
        print(f"{os.cpu_count()} cores, best of {arguments.rounds}; peak RSS of "
              f"signing-manager --version: {baseline / MiB:.0f} MiB")  # fmt: skip
        for mib in arguments.mib:
            work = folder / f"{mib}-mib"
            work.mkdir()
            package = build_package(work, mib)
            size = package.stat().st_size
            limits = {
                label: min(hash_seconds(package, algorithm) for _ in range(arguments.rounds))
                for label, algorithm in (("SHA-256", "sha256"), ("SHA-1", "sha1"))
            }
            report(mib, size, limits, measure(client, sha1, package, arguments.rounds), baseline)
            shutil.rmtree(work)


if __name__ == "__main__":
    main()
