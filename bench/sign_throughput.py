"""Sign throughput of the Signing Service, measured against this machine's own limit.

Starts ``signing-service run`` (gunicorn over HTTPS, one worker per core) on a temporary data
directory, imports an RSA-2048 and an EC P-256 identity, and an RSA-2048 identity whose key is
kept in a SoftHSM2 token, registers a client, then drives ``POST /api/v1/sign`` and
``POST /api/v1/sign/batch`` with wrk from a second process over N keep-alive connections. In the
same run it measures the raw signing rates of ``cryptography`` and of the token (python-pkcs11
alone) on all cores, and prints the end-to-end rates, latency p50/p99 and their ratios to the
raw rates.

It reads each gunicorn worker's resident memory (VmRSS) before the loads, after each, and during a
long run of batches that takes the signatures given out to ``--rss-signatures`` in all, and says
whether it stayed flat over the run's second half. A summary ends the run: each target of issue
20 with its figure and whether it is met.

    .venv/bin/python bench/sign_throughput.py [--connections 32] [--seconds 10] [--batch 100]
        [--rss-signatures 100000] [--database-url postgres://postgres@127.0.0.1:5432]
        [--baseline CHECKOUT [--rounds N] [--only ec-batch …]]

``--baseline`` names a checkout of another version (set up, with its ``.venv``), e.g. the commit
before the audit's hash chain: both services are then started side by side, each load is driven
on one and at once on the other, round after round, and a row per load gives this version's
rate as a share of the baseline's (the chain's cost).
``--only`` drives only the loads named, for more rounds of one comparison in the same time.

Needs wrk (Debian package ``wrk``), the openssl command line and softhsm2 (without it the token
row is left out). Not a test: nothing here passes or fails on timing.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import hashlib
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from signing_service.test import (
    SERVICE_COMMAND,
    SOFTHSM_MODULE,
    RunningService,
    SoftHsm,
    fresh_postgres_database,
    make_identity,
)

TARGETS = {
    "single": 0.40,  # single-digest sign/s ÷ raw, at least
    "batch": 0.90,  # batch sign/s ÷ raw, at least
    "p99_ms": 20.0,  # at most, single digests at 32 connections
    "p99_connections": 32,
    "rss_mb": 150.0,  # each worker's, at most
    "flat_mb": 5.0,  # a worker's growth over the long run's second half, at most
    "baseline": 0.90,  # this version's rate ÷ the baseline's, at least
}
ALGORITHMS = {
    "rsa": "rsa-pkcs1v15-sha256",
    "ec": "ecdsa-sha256",
    "rsa-token": "rsa-pkcs1v15-sha256",  # where softhsm2 is installed
}
NAMES = {"rsa": "RSA-2048", "ec": "ECDSA P-256", "rsa-token": "RSA-2048 in the token"}

WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
wrk.body = [[%(body)s]]
done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format("RESULT %%d %%d %%d %%d %%f %%f\\n", summary.requests, summary.duration,
    errors.status, errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def token_signer(token: SoftHsm):
    """A function signing a SHA-256 DigestInfo with a fresh RSA-2048 key in the token, as the
    service's Pkcs11Signer does (CKM_RSA_PKCS), with a session of this process's own."""
    import pkcs11
    from asn1crypto import algos

    session = pkcs11.lib(SOFTHSM_MODULE).get_token(token_label=token.label).open(user_pin=token.pin)
    _, key = session.generate_keypair(pkcs11.KeyType.RSA, 2048, store=False)
    digest_info = algos.DigestInfo(
        {"digest_algorithm": {"algorithm": "sha256"}, "digest": hashlib.sha256(b"x").digest()}
    ).dump()
    return lambda: key.sign(digest_info, mechanism=pkcs11.Mechanism.RSA_PKCS)


def raw_rate_worker(
    kind: str, seconds: float, results, opening, token: SoftHsm | None = None
) -> None:
    digest = hashlib.sha256(b"benchmark").digest()
    prehashed = utils.Prehashed(hashes.SHA256())
    if kind == "rsa-token":
        # One process at a time: SoftHSM2's file store is rewritten as a session logs in, and a
        # process reading it at that moment finds no token (or fails) now and then.
        with opening:
            sign = token_signer(token)
    elif kind == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

        def sign():
            return key.sign(digest, padding.PKCS1v15(), prehashed)
    else:
        key = ec.generate_private_key(ec.SECP256R1())

        def sign():
            return key.sign(digest, ec.ECDSA(prehashed))

    count, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        sign()
        count += 1
    results.put(count / seconds)


def raw_rate(kind: str, seconds: float = 3.0, token: SoftHsm | None = None) -> float:
    """Signatures per second of cryptography (or the token) alone, one process per core."""
    results, opening = multiprocessing.Queue(), multiprocessing.Lock()
    workers = [
        multiprocessing.Process(
            target=raw_rate_worker, args=(kind, seconds, results, opening, token)
        )
        for _ in range(os.cpu_count() or 1)
    ]
    for worker in workers:
        worker.start()
    total = sum(results.get() for _ in workers)
    for worker in workers:
        worker.join()
    return total


def wrk(url: str, token: str, body: dict, connections: int, seconds: int) -> dict:
    """One wrk run; its rate, the requests answered with 2xx, errors and latency."""
    script = WRK_SCRIPT % {"token": token, "body": json.dumps(body)}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    # wrk leaves requests slower than its timeout (2 s by default) out of the latency figures,
    # counted as socket errors: a long timeout keeps them in the p99.
    command = ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "30s"]
    try:
        output = subprocess.run(
            [*command, "-s", handle.name, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(handle.name)
    line = next(line for line in output.splitlines() if line.startswith("RESULT"))
    requests, duration_us, status_errors, socket_errors, p50_us, p99_us = line.split()[1:]
    return {
        "requests_per_s": int(requests) / (int(duration_us) / 1e6),
        "answered": int(requests) - int(status_errors),
        "non_2xx": int(status_errors),
        "socket_errors": int(socket_errors),
        "p50_ms": float(p50_us) / 1000,
        "p99_ms": float(p99_us) / 1000,
    }


# --- The workers' memory -------------------------------------------------------------------------


def resident_mb(pid: int) -> float:
    """VmRSS of a process, in MB (10^6 bytes; the kernel counts in KiB)."""
    for status_line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if status_line.startswith("VmRSS:"):
            return int(status_line.split()[1]) * 1024 / 1e6
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (/proc/PID/stat, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass
class MemoryTrace:
    """Each worker's resident memory at points of a run, with the signatures given out by then."""

    service: RunningService
    points: list[tuple[str, int, dict[int, float]]] = dataclasses.field(default_factory=list)
    cpu: dict[int, float] = dataclasses.field(default_factory=dict)

    def sample(self, label: str, signatures: int) -> None:
        """Print each worker's RSS, and its share of the workers' CPU time since the last
        sample: one worker doing most of a load's work shows that gunicorn gave it most of
        the connections, which halves the rate on two cores."""
        pids = self.service.worker_pids()
        rss = {pid: resident_mb(pid) for pid in pids}
        cpu = {pid: cpu_seconds(pid) for pid in pids}
        used = {pid: cpu[pid] - self.cpu.get(pid, 0.0) for pid in pids}
        total = sum(used.values()) or 1.0
        self.cpu = cpu
        self.points.append((label, signatures, rss))
        workers = "   ".join(
            f"pid {pid} {mb:6.1f} MB {used[pid] / total:4.0%} CPU" for pid, mb in rss.items()
        )
        print(f"  RSS {label:<36} {signatures:>9,} signatures   {workers}", flush=True)

    @property
    def signatures(self) -> int:
        return self.points[-1][1]

    def largest_mb(self) -> float:
        return max(self.points[-1][2].values())

    def growth_over_second_half(self) -> float | None:
        """The largest growth of a worker from the first point at half the signatures to the
        last; None if the workers changed in between (a restarted worker hides growth)."""
        half = next(rss for _, count, rss in self.points if count >= self.signatures / 2)
        last = self.points[-1][2]
        if set(half) != set(last):
            return None
        return max(last[pid] - half[pid] for pid in last)


# --- The service under load ----------------------------------------------------------------------


def set_up(service: RunningService, folder: Path, with_token: bool) -> tuple[str, dict[str, str]]:
    """Import the identities (one into the token) and register a client; its token and the
    fingerprints."""
    fingerprints = {}
    kinds = [("rsa", "rsa2048", []), ("ec", "ec256", [])]
    kinds += [("rsa-token", "rsa2048", ["--token"])] if with_token else []
    for kind, key_kind, where in kinds:
        made = make_identity(key_kind=key_kind)
        (folder / f"{kind}.p12").write_bytes(made.p12)
        (folder / "password").write_text(made.password)
        result = service.manage(
            "identity",
            "import",
            str(folder / f"{kind}.p12"),
            "--password-file",
            str(folder / "password"),
            *where,
        )
        if result.returncode:
            sys.exit(result.stderr)
        fingerprints[kind] = made.sha1
    api_key = service.manage("apikey", "create", "benchmark").stdout.strip()
    with httpx.Client(base_url=service.url, verify=service.ssl_context()) as client:
        response = client.post(
            "/api/v1/clients",
            json={
                "hostname": "bench",
                "os": "linux",
                "client_version": "bench",
                "machine_id": "bench",
            },
            headers={"Authorization": f"Bearer {api_key}"},
        )
        response.raise_for_status()
    return response.json()["client_token"], fingerprints


def sign_body(fingerprint: str, algorithm: str) -> dict:
    digest = base64.b64encode(hashlib.sha256(b"benchmark").digest()).decode()
    return {"certificate": fingerprint, "algorithm": algorithm, "digest": digest}


@dataclasses.dataclass
class Load:
    """How one load drives the service: single digests or batches, and with what."""

    url: str
    token: str
    body: dict
    connections: int
    per_request: int  # signatures a request returns

    def run(self, seconds: int) -> dict:
        result = wrk(self.url, self.token, self.body, self.connections, seconds)
        result["signatures"] = result["answered"] * self.per_request
        result["signatures_per_s"] = result["requests_per_s"] * self.per_request
        return result


def loads_of(service: RunningService, token: str, fingerprints: dict, arguments) -> dict:
    """Each identity's single-digest and batch load, by (kind, "single" or "batch")."""
    url = service.url + "/api/v1/sign"
    loads = {}
    for kind, fingerprint in fingerprints.items():
        body = sign_body(fingerprint, ALGORITHMS[kind])
        loads[kind, "single"] = Load(url, token, body, arguments.connections, 1)
        batch = {"requests": [body] * arguments.batch}
        # A quarter of the connections: enough that the kernel's hash of connections over the
        # workers' sockets seldom leaves one worker with most of them (with 4, 7 loads of 72
        # went to one worker); few enough that each worker has a core's worth of work in
        # flight, not a queue of 100-signature requests.
        batch_connections = max(2, arguments.connections // 4)
        loads[kind, "batch"] = Load(
            url + "/batch", token, batch, batch_connections, arguments.batch
        )
    only = {tuple(name.split("-")) for name in arguments.only or ()}
    return {name: load for name, load in loads.items() if not only or name in only}


@dataclasses.dataclass
class Started:
    """A version's service, started and set up: its loads, and its workers' memory."""

    name: str
    loads: dict
    memory: MemoryTrace

    def run(self, name: tuple[str, str], seconds: int) -> dict:
        """Drive one load, then sample the workers' memory."""
        result = self.loads[name].run(seconds)
        kind, load = name
        label = f"{self.name}, after {NAMES[kind]} {load}"
        self.memory.sample(label, self.memory.signatures + result["signatures"])
        return result


def start(
    name: str, command: str, arguments, stack: contextlib.ExitStack, token: SoftHsm | None = None
) -> Started:
    """Start the service of ``command`` on a fresh database (stopped, and the database dropped,
    when ``stack`` closes) and set up its identities, client and loads."""
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
    env = {key: value for key, value in os.environ.items() if not key.startswith("SIGNING_")}
    env.pop("DATABASE_URL", None)
    env.update(SIGNING_SERVICE_WORKERS=str(arguments.workers), SIGNING_SERVICE_LOG_LEVEL="WARNING")
    if arguments.threads:
        env["SIGNING_SERVICE_THREADS"] = str(arguments.threads)
    env.update(token.environment() if token else {})
    if arguments.database_url:
        env["DATABASE_URL"] = stack.enter_context(fresh_postgres_database(arguments.database_url))
    service = RunningService(folder / "data", env, command=command).start()
    stack.callback(service.stop)
    client_token, fingerprints = set_up(service, folder, with_token=token is not None)
    memory = MemoryTrace(service)
    memory.sample(f"{name}, before the loads", 0)
    return Started(name, loads_of(service, client_token, fingerprints, arguments), memory)


def measure(arguments, token: SoftHsm | None) -> tuple[dict, MemoryTrace]:
    """This version: each load once, then batches until ``--rss-signatures`` were given out in
    all; each load's result and the workers' memory along the way."""
    with contextlib.ExitStack() as stack:
        ours = start("this version", SERVICE_COMMAND, arguments, stack, token)
        results = {name: ours.run(name, arguments.seconds) for name in ours.loads}
        long_run(ours, arguments.seconds, arguments.rss_signatures)
        return results, ours.memory


def measure_in_turns(arguments) -> tuple[list[dict], list[dict], MemoryTrace]:
    """This version and the baseline, both started once and side by side (the one waiting
    idles): each load driven on one, then at once on the other, each going first every other
    round, so that a slow spell of the machine falls on both of a pair. Each version's results
    by round, and this version's memory (its long run after the rounds)."""
    baseline_command = str(arguments.baseline.absolute() / ".venv" / "bin" / "signing-service")
    with contextlib.ExitStack() as stack:
        ours = start("this version", SERVICE_COMMAND, arguments, stack)
        theirs = start("the baseline", baseline_command, arguments, stack)
        our_rounds, their_rounds = [], []
        for round_number in range(arguments.rounds):
            print(f"\nround {round_number + 1}:")
            our_rounds.append({})
            their_rounds.append({})
            turns = [(ours, our_rounds[-1]), (theirs, their_rounds[-1])]
            for name in ours.loads:
                for started, results in turns[:: 1 if round_number % 2 == 0 else -1]:
                    results[name] = started.run(name, arguments.seconds)
        long_run(ours, arguments.seconds, arguments.rss_signatures)
        return our_rounds, their_rounds, ours.memory


def long_run(started: Started, seconds: int, signatures: int) -> None:
    """Batches of the identities in the database, in turns, until ``signatures`` were given
    out in all (wrk's count of answered requests times the batch size)."""
    kinds = [kind for kind in ("rsa", "ec") if (kind, "batch") in started.loads]
    turn = 0
    while started.memory.signatures < signatures:
        kind = kinds[turn % len(kinds)]
        result = started.run((kind, "batch"), seconds)
        if not result["signatures"]:
            sys.exit(f"bench: the long run's {NAMES[kind]} batches got no answer: {result}")
        turn += 1


def best(runs: list[dict]) -> dict:
    """Each load's fastest run (the one the machine's other work disturbed least)."""
    return {
        load: max((run[load] for run in runs), key=lambda r: r["signatures_per_s"])
        for load in runs[0]
    }


# --- Reporting -----------------------------------------------------------------------------------


def line(label: str, result: dict, raw: float, target: float) -> str:
    rate = result["signatures_per_s"]
    return (
        f"  {label:<13} {rate:8.0f} sign/s {result['requests_per_s']:8.0f} requests/s"
        f"   ÷ raw = {rate / raw:5.3f} (target ≥ {target:.2f})"
        f"   p50 {result['p50_ms']:6.1f} ms   p99 {result['p99_ms']:6.1f} ms"
        f"   non-2xx {result['non_2xx']}   socket errors {result['socket_errors']}"
    )


def report(results: dict, raw: dict, arguments) -> None:
    for kind in dict.fromkeys(kind for kind, _ in results):
        single, batch = results[kind, "single"], results[kind, "batch"]
        print(f"\n{NAMES[kind]} ({ALGORITHMS[kind]}), raw {raw[kind]:.0f} sign/s:")
        print(line("single", single, raw[kind], TARGETS["single"]))
        print(line(f"batch of {arguments.batch}", batch, raw[kind], TARGETS["batch"]))


def verdict(met: bool | None) -> str:
    return "not measured" if met is None else "met" if met else "NOT MET"


def summary(results: dict, raw: dict, memory: MemoryTrace, arguments) -> None:
    """Each target of issue 20 with this run's figure, as a Markdown table."""
    rows = [
        ratio_row(results, raw, "single", "single-digest sign/s ÷ raw RSA-2048 on all cores"),
        *latency_rows(results, arguments),
        ratio_row(
            results, raw, "batch", f"batch ({arguments.batch} a request) sign/s ÷ raw RSA-2048"
        ),
        *(ecdsa_row(results, load) for load in ("single", "batch")),
        *memory_rows(memory, arguments),
        errors_row(results),
    ]
    database = "PostgreSQL" if arguments.database_url else "SQLite"
    print(f"\nSummary ({database}; raw RSA-2048 {raw['rsa']:,.0f}/s on {os.cpu_count()} cores):\n")
    print("| what | figure | target | |\n|---|---:|---:|---|")
    for name, figure, target, met in rows:
        print(f"| {name} | {figure} | {target} | {verdict(met)} |")


def ratio_row(results: dict, raw: dict, load: str, name: str) -> tuple:
    """RSA-2048's end-to-end rate of a load as a share of the raw rate."""
    rate = results["rsa", load]["signatures_per_s"]
    figure = f"{rate:,.0f} ÷ {raw['rsa']:,.0f} = {rate / raw['rsa']:.3f}"
    return name, figure, f"≥ {TARGETS[load]:.2f}", rate / raw["rsa"] >= TARGETS[load]


def latency_rows(results: dict, arguments) -> list[tuple]:
    clients = f"{arguments.connections} concurrent single-digest clients"
    if arguments.connections != TARGETS["p99_connections"]:
        clients += f" (the target is for {TARGETS['p99_connections']})"
    return [
        (
            f"p99 latency, {clients}, {NAMES[kind]}",
            f"{results[kind, 'single']['p99_ms']:,.1f} ms",
            f"≤ {TARGETS['p99_ms']:.0f} ms",
            results[kind, "single"]["p99_ms"] <= TARGETS["p99_ms"],
        )
        for kind in ("rsa", "ec")
    ]


def ecdsa_row(results: dict, load: str) -> tuple:
    """ECDSA's requests/s of a load, which should be at least RSA's."""
    ours, rsa_rate = results["ec", load]["requests_per_s"], results["rsa", load]["requests_per_s"]
    return (
        f"ECDSA P-256 {load}: requests/s (RSA-2048's)",
        f"{ours:,.1f} ({rsa_rate:,.1f})",
        "≥ RSA's",
        ours >= rsa_rate,
    )


def errors_row(results: dict) -> tuple:
    """Answers other than 2xx, and wrk's socket errors, over the loads above: the figures
    stand only if there are none."""
    non_2xx = sum(result["non_2xx"] for result in results.values())
    sockets = sum(result["socket_errors"] for result in results.values())
    figure = f"{non_2xx} non-2xx, {sockets} socket errors"
    return "errors over the loads above", figure, "none", non_2xx + sockets == 0


def memory_rows(memory: MemoryTrace, arguments) -> list[tuple]:
    """The RSS target's rows: the largest worker at the end, and its growth over the second
    half of the run."""
    if not arguments.rss_signatures:
        return [("worker RSS (--rss-signatures 0)", "", f"≤ {TARGETS['rss_mb']:.0f} MB", None)]
    growth = memory.growth_over_second_half()
    return [
        (
            f"worker RSS after {memory.signatures:,} signatures (the largest worker)",
            f"{memory.largest_mb():.1f} MB",
            f"≤ {TARGETS['rss_mb']:.0f} MB",
            memory.largest_mb() <= TARGETS["rss_mb"],
        ),
        (
            "worker RSS growth over the second half of those signatures (flat)",
            "workers restarted" if growth is None else f"{growth:+.1f} MB",
            f"≤ {TARGETS['flat_mb']:.0f} MB",
            growth is not None and growth <= TARGETS["flat_mb"],
        ),
    ]


def compare(ours: list[dict], theirs: list[dict], arguments) -> None:
    """Each load's best rate ÷ the baseline's best, the median of the rounds' own ratios (each
    round runs both versions back to back, so a slow spell of the machine hits both) and the
    ratio of all the rounds' signatures together."""
    print(
        f"\nThis version ÷ the baseline {arguments.baseline} (target ≥ {TARGETS['baseline']:.2f}):"
    )
    best_ours, best_theirs = best(ours), best(theirs)
    for (kind, load), result in best_ours.items():
        rate, baseline = result["signatures_per_s"], best_theirs[kind, load]["signatures_per_s"]
        ratio = rate / baseline
        pairs = [
            (our[kind, load], their[kind, load]) for our, their in zip(ours, theirs, strict=True)
        ]
        rounds = sorted(our["signatures_per_s"] / their["signatures_per_s"] for our, their in pairs)
        median = statistics.median(rounds)
        total = sum(our["signatures"] for our, _ in pairs) / sum(
            their["signatures"] for _, their in pairs
        )
        print(
            f"  {NAMES[kind]:<12} {load:<7} {rate:8.0f} sign/s ÷ baseline {baseline:8.0f} sign/s"
            f" = {ratio:5.2f}   {verdict(ratio >= TARGETS['baseline'])};"
            f"  median of the rounds {median:5.2f} ({', '.join(f'{r:.2f}' for r in rounds)});"
            f"  all rounds' signatures {total:5.2f}"
        )


# --- The run -------------------------------------------------------------------------------------


def raw_rates(token: SoftHsm | None) -> dict[str, float]:
    """The machine's limits: cryptography's signing rates, and the token's where there is one."""
    if token:
        os.environ["SOFTHSM2_CONF"] = str(token.config_path)
    raw = {kind: raw_rate(kind) for kind in ("rsa", "ec")}
    print(
        f"raw cryptography, all cores: RSA-2048 {raw['rsa']:.0f}/s, ECDSA P-256 {raw['ec']:.0f}/s"
    )
    if token:
        raw["rsa-token"] = raw_rate("rsa-token", token=token)
        print(f"raw SoftHSM2 token, all cores: RSA-2048 {raw['rsa-token']:.0f}/s")
    return raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument(
        "--rss-signatures",
        type=int,
        default=100_000,
        help="Batches until this many signatures in all, for the workers' RSS (0: none)",
    )
    parser.add_argument("--database-url", help="PostgreSQL server; default: SQLite")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="gunicorn workers (default: cores)"
    )
    parser.add_argument("--threads", type=int, help="threads per worker (default: the service's)")
    parser.add_argument("--baseline", type=Path, help="A checkout of another version to compare")
    parser.add_argument("--rounds", type=int, default=1, help="With --baseline: turns each")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=[f"{kind}-{load}" for kind in ("rsa", "ec") for load in ("single", "batch")],
        help="With --baseline: compare these loads alone (no summary, no long run)",
    )
    arguments = parser.parse_args()
    if arguments.only and not arguments.baseline:
        parser.error("--only is for comparisons (--baseline): the summary needs every load.")
    if arguments.only:
        arguments.rss_signatures = 0
    if not shutil.which("wrk"):
        sys.exit("bench: wrk is needed (apt-get install wrk).")

    cores = os.cpu_count() or 1
    threads = arguments.threads or "the default number of"
    print(
        f"machine: {cores} cores; {arguments.connections} connections; {arguments.seconds}s each;"
        f" {arguments.workers} workers of {threads} threads"
    )
    with tempfile.TemporaryDirectory() as directory:
        # A baseline may predate keys in a token: compared runs leave the token row out.
        softhsm = shutil.which("softhsm2-util") and not arguments.baseline
        token = SoftHsm(Path(directory) / "softhsm").initialise() if softhsm else None
        raw = raw_rates(token)
        if not arguments.baseline:
            results, memory = measure(arguments, token)
            report(results, raw, arguments)
            summary(results, raw, memory, arguments)
            return
    ours, theirs, memory = measure_in_turns(arguments)
    if not arguments.only:
        report(best(ours), raw, arguments)
        summary(best(ours), raw, memory, arguments)
    compare(ours, theirs, arguments)


if __name__ == "__main__":
    main()
