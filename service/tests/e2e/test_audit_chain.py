"""The audit's hash chain on real services: two instances (two workers each) on one database
sign side by side, and the records form one chain without gaps or forks; stopping a service
signs a checkpoint of the chain's head; the live stream both write has every record; the
day's export verifies offline."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from signing_service.test import RunningService, make_identity

SIGNATURES_PER_INSTANCE = 30


def test_two_instances_signing_at_once_write_one_gapless_chain(
    service_environment, new_ops, new_client_api, tmp_path
):
    # Both stream the records they write to one file, as a SIEM's shipper would follow it.
    stream = tmp_path / "audit.jsonl"
    first = RunningService(
        tmp_path / "data", {**service_environment, "SIGNING_SERVICE_AUDIT_LOG": str(stream)}
    )
    first.start()
    environment = {**first.env, "SIGNING_SERVICE_WORKERS": "2"}
    second = RunningService(first.data_dir, environment).start()  # same master key, database
    try:
        ops = new_ops(first)
        sha1 = ops.import_identity(make_identity())
        token = new_client_api(first).register_client(ops.create_api_key("ci"), "m-1", "build-1")
        callers = [new_client_api(first), new_client_api(second)]

        def sign(number: int) -> int:
            digest = hashlib.sha256(b"%d" % number).digest()
            api = callers[number % 2]
            return api.sign(token, sha1, "rsa-pkcs1v15-sha256", digest).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(sign, range(2 * SIGNATURES_PER_INSTANCE)))
        assert statuses == [200] * len(statuses)
    finally:
        assert second.stop() == 0
        assert first.stop() == 0

    result = first.manage("audit", "verify")
    assert result.returncode == 0, result.stdout + result.stderr
    # Every record is there, numbered 1 to N: the count of records is the last number.
    (verdict,) = [line for line in result.stdout.splitlines() if line.startswith("The audit")]
    count = int(verdict.split()[3])
    assert count >= 2 * SIGNATURES_PER_INSTANCE + 1  # the signatures and the registration
    assert verdict == f"The audit verifies: {count} records, up to record {count}."
    # Stopping signed the head: the last checkpoint is of the last record.
    assert f"Last checkpoint: record {count} (shutdown," in result.stdout

    # The day's export verifies offline with the client, against the key the service shows;
    # changed, it does not.
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    exported = first.manage("audit", "export", "--from", today, "--to", today, "--format", "json")
    key = first.manage("audit", "public-key").stdout.strip()
    path = tmp_path / "audit.json"
    path.write_text(exported.stdout)
    # The live stream has every record once, as the database has it.
    streamed = [json.loads(line) for line in stream.read_text().splitlines()]
    assert (
        sorted(streamed, key=lambda line: line["sequence"])
        == json.loads(exported.stdout)["records"]
    )

    checked = audit_verify(path, key, tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    exported_count = count + 1  # the export's own record, written before its rows
    assert f"{path} verifies: {exported_count} records (records 1 to {exported_count})." in (
        checked.stdout
    )
    path.write_text(exported.stdout.replace('"status": "success"', '"status": "failure"', 1))
    assert audit_verify(path, key, tmp_path).returncode == 1


def audit_verify(path: Path, key: str, home: Path) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("signing-manager")), "audit-verify"]
    return subprocess.run(
        [*command, str(path), "--public-key", key],
        env={**os.environ, "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
