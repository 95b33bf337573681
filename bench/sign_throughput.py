"""Sign throughput of the Signing Service, measured against this machine's own limit.

Starts ``signing-service run`` (gunicorn over HTTPS, one worker per core) on a temporary data
directory, imports an RSA-2048 and an EC P-256 identity, and an RSA-2048 identity whose key is
kept in a SoftHSM2 token, registers a client, then drives ``POST /api/v1/sign`` and
``POST /api/v1/sign/batch`` with wrk from a second process over N keep-alive connections. In the
same run it measures the raw signing rates of ``cryptography`` and of the token (python-pkcs11
alone) on all cores, and prints the end-to-end rates, latency p50/p99 and their ratios to the
raw rates.

    .venv/bin/python bench/sign_throughput.py [--connections 32] [--seconds 10] [--batch 100]
        [--database-url postgres://postgres@127.0.0.1:5432] [--baseline CHECKOUT]

``--baseline`` names a checkout of another version (set up, with its ``.venv``), e.g. the commit
before the audit's hash chain: the same load then runs on it too, in turns with this one, and a
row per load gives this version's rate as a share of the baseline's (the chain's cost).

Needs wrk (Debian package ``wrk``), the openssl command line and softhsm2 (without it the token
row is left out). Not a test: nothing here passes or fails on timing.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import multiprocessing
import os
import shutil
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

TARGETS = {"single": 0.40, "batch": 0.90, "p99_ms": 20.0, "baseline": 0.90}
ALGORITHMS = {
    "rsa": "rsa-pkcs1v15-sha256",
    "ec": "ecdsa-sha256",
    "rsa-token": "rsa-pkcs1v15-sha256",  # where softhsm2 is installed
}

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


def raw_rate_worker(kind: str, seconds: float, results, token: SoftHsm | None = None) -> None:
    digest = hashlib.sha256(b"benchmark").digest()
    prehashed = utils.Prehashed(hashes.SHA256())
    if kind == "rsa-token":
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
    results = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(target=raw_rate_worker, args=(kind, seconds, results, token))
        for _ in range(os.cpu_count() or 1)
    ]
    for worker in workers:
        worker.start()
    total = sum(results.get() for _ in workers)
    for worker in workers:
        worker.join()
    return total


def wrk(url: str, token: str, body: dict, connections: int, seconds: int) -> dict:
    script = WRK_SCRIPT % {"token": token, "body": json.dumps(body)}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        output = subprocess.run(
            ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "-s", handle.name, url],
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
        "non_2xx": int(status_errors),
        "socket_errors": int(socket_errors),
        "p50_ms": float(p50_us) / 1000,
        "p99_ms": float(p99_us) / 1000,
    }


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--database-url", help="PostgreSQL server; default: SQLite")
    parser.add_argument("--baseline", type=Path, help="A checkout of another version to compare")
    parser.add_argument("--rounds", type=int, default=1, help="With --baseline: turns each")
    arguments = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("bench: wrk is needed (apt-get install wrk).")

    cores = os.cpu_count() or 1
    print(f"machine: {cores} cores; {arguments.connections} connections; {arguments.seconds}s each")
    with tempfile.TemporaryDirectory() as directory:
        # A baseline may predate keys in a token: compared runs leave the token row out.
        softhsm = shutil.which("softhsm2-util") and not arguments.baseline
        token = SoftHsm(Path(directory) / "softhsm").initialise() if softhsm else None
        raw = raw_rates(token)
        if not arguments.baseline:
            report(measure(SERVICE_COMMAND, arguments, token), raw, arguments)
            return
    baseline_command = str(arguments.baseline.absolute() / ".venv" / "bin" / "signing-service")
    ours, theirs = [], []
    turns = [(ours, SERVICE_COMMAND), (theirs, baseline_command)]
    for round_number in range(arguments.rounds):  # in turns, each going first every other round
        for results, command in turns[:: 1 if round_number % 2 == 0 else -1]:
            results.append(measure(command, arguments))
    report(best(ours), raw, arguments)
    compare(best(ours), best(theirs), arguments)


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


def measure(command: str, arguments, token: SoftHsm | None = None) -> dict:
    """Start the service of ``command`` on a fresh database and drive each load once."""
    with tempfile.TemporaryDirectory() as directory, contextlib.ExitStack() as stack:
        folder = Path(directory)
        env = {key: value for key, value in os.environ.items() if not key.startswith("SIGNING_")}
        env.pop("DATABASE_URL", None)
        cores = os.cpu_count() or 1
        env.update(SIGNING_SERVICE_WORKERS=str(cores), SIGNING_SERVICE_LOG_LEVEL="WARNING")
        env.update(token.environment() if token else {})
        if arguments.database_url:
            env["DATABASE_URL"] = stack.enter_context(
                fresh_postgres_database(arguments.database_url)
            )
        service = RunningService(folder / "data", env, command=command).start()
        stack.callback(service.stop)
        client_token, fingerprints = set_up(service, folder, with_token=token is not None)
        url = service.url + "/api/v1/sign"
        results = {}
        for kind in fingerprints:
            body = sign_body(fingerprints[kind], ALGORITHMS[kind])
            results[kind, "single"] = wrk(
                url, client_token, body, arguments.connections, arguments.seconds
            )
            batch_body = {"requests": [body] * arguments.batch}
            batch_connections = max(2, arguments.connections // 8)
            batch = wrk(
                url + "/batch", client_token, batch_body, batch_connections, arguments.seconds
            )
            batch["requests_per_s"] *= arguments.batch  # signatures, not requests
            results[kind, "batch"] = batch
        return results


def best(runs: list[dict]) -> dict:
    """Each load's fastest run (the one the machine's other work disturbed least)."""
    return {
        load: max((run[load] for run in runs), key=lambda r: r["requests_per_s"])
        for load in runs[0]
    }


def line(label: str, rate: float, raw: float, target: float, result: dict) -> str:
    errors = result["non_2xx"] + result["socket_errors"]
    return (
        f"  {label:<13} {rate:8.0f} sign/s   ratio to raw {rate / raw:5.2f} (target {target:.2f})"
        f"   p50 {result['p50_ms']:6.1f} ms   p99 {result['p99_ms']:6.1f} ms   errors {errors}"
    )


def report(results: dict, raw: dict, arguments) -> None:
    for kind in dict.fromkeys(kind for kind, _ in results):
        single, batch = results[kind, "single"], results[kind, "batch"]
        where = ", key in the SoftHSM2 token" if kind == "rsa-token" else ""
        print(f"\n{ALGORITHMS[kind]}{where} (p99 target {TARGETS['p99_ms']:.0f} ms for single):")
        print(line("single", single["requests_per_s"], raw[kind], TARGETS["single"], single))
        label = f"batch of {arguments.batch}"
        print(line(label, batch["requests_per_s"], raw[kind], TARGETS["batch"], batch))


def compare(ours: dict, theirs: dict, arguments) -> None:
    print(f"\nthis version against {arguments.baseline} (target {TARGETS['baseline']:.2f}):")
    for (kind, load), result in ours.items():
        rate, baseline = result["requests_per_s"], theirs[kind, load]["requests_per_s"]
        print(
            f"  {ALGORITHMS[kind]:<20} {load:<7} {rate:8.0f} sign/s   baseline {baseline:8.0f}"
            f" sign/s   ratio {rate / baseline:5.2f}"
        )


if __name__ == "__main__":
    main()
