"""``signing-manager audit-verify``: an audit export checked offline. The files here are made by
following the README's recipe (not the service's code), so the recipe is tested too."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from signing_manager.cli import main

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUBLIC_KEY = base64.b64encode(
    KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
).decode()


def encoded(fields: dict) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def record(sequence: int, previous: str, **fields) -> dict:
    made = {
        "sequence": sequence, "created": f"2026-03-12T10:00:0{sequence}.000000Z",
        "request_type": "sign", "status": "success", "reason": "", "message": "",
        "source": "api", "api_key_name": "ci", "client_hostname": "build-1",
        "identity_common_name": "Developer ID Application: Example", "identity_sha1": "ab" * 20,
        "username": "", "algorithm": "ecdsa-sha256", "digest": f"{sequence:064x}",
        "address": "10.0.0.5", "action": "", "changes": {}, "count": 1, **fields,
    }  # fmt: skip
    made["hash"] = hashlib.sha256(previous.encode() + encoded(made)).hexdigest()
    return made


def checkpoint(sequence: int, hash_: str, kind: str = "export") -> dict:
    signed = {"created": "2026-03-12T11:00:00.000000Z", "hash": hash_, "kind": kind}
    signed["sequence"] = sequence
    signature = base64.b64encode(KEY.sign(encoded(signed))).decode()
    return {**signed, "signature": signature}


def export(count: int = 3, first: int = 10) -> dict:
    previous = "f" * 64  # the hash of record first - 1, outside the file
    records = []
    for sequence in range(first, first + count):
        records.append(record(sequence, previous, message="Schlüssel" if sequence == 11 else ""))
        previous = records[-1]["hash"]
    return {
        "format": "signing-service audit export 1",
        "public_key": PUBLIC_KEY,
        "records": records,
        "previous_hash": "f" * 64,
        "checkpoints": [checkpoint(records[-1]["sequence"], previous)],
    }


@pytest.fixture
def verify(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SIGNING_MANAGER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("SIGNING_MANAGER_LOG_DIR", str(tmp_path / "log"))

    def run(content: dict | bytes, *options: str) -> tuple[int, list[str], str]:
        path = tmp_path / "audit.json"
        path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
        status = main(["audit-verify", str(path), *options])
        out, err = capsys.readouterr()
        return status, [line.replace(str(path), "FILE") for line in out.splitlines()], err

    return run


def test_a_file_made_by_the_recipe_verifies(verify):
    assert verify(export(), "--public-key", PUBLIC_KEY)[:2] == (
        0,
        ["FILE verifies: 3 records (records 10 to 12)."],
    )


def test_an_edited_record_does_not(verify):
    edited = export()
    edited["records"][1]["digest"] = "00" * 32
    status, lines, _ = verify(edited, "--public-key", PUBLIC_KEY)
    assert (status, lines) == (
        1,
        [
            "record 11: does not match its hash (edited).",
            "FILE does not verify: 1 problem(s).",
        ],
    )


def test_a_record_removed_from_the_middle_does_not(verify):
    cut = export(4)
    del cut["records"][1]
    status, lines, _ = verify(cut, "--public-key", PUBLIC_KEY)
    assert status == 1
    assert lines[0] == "record 12: follows record 10 (a gap or reorder)."


def test_a_recomputed_chain_does_not_get_past_the_checkpoint(verify):
    forged = export()
    previous = forged["previous_hash"]
    for item in forged["records"]:
        fields = {name: value for name, value in item.items() if name not in ("sequence", "hash")}
        item.update(record(item["sequence"], previous, **{**fields, "status": "failure"}))
        previous = item["hash"]
    status, lines, _ = verify(forged, "--public-key", PUBLIC_KEY)
    assert status == 1
    assert lines[0] == "record 12: differs from its checkpoint."


def test_a_counter_s_growing_count_is_not_chained(verify):
    counted = export(1)
    counter = record(10, "f" * 64, reason="bad_credentials", api_key_name="", count=None,
                     message=None)  # fmt: skip
    counted["records"] = [{**counter, "count": 57, "message": "57 calls without a valid token."}]
    counted["checkpoints"] = [checkpoint(10, counter["hash"])]
    assert verify(counted, "--public-key", PUBLIC_KEY)[0] == 0


def test_another_key_does_not_verify_and_no_key_says_what_it_proved(verify):
    other = base64.b64encode(bytes(32)).decode()
    status, lines, _ = verify(export(), "--public-key", other)
    assert status == 1
    assert "its signature is not the service's" in lines[0]
    status, lines, _ = verify(export())
    assert status == 0
    assert "--public-key" in " ".join(lines)


def test_what_is_not_an_export_is_refused_in_one_sentence(verify):
    for content in (b"[]", b"{", json.dumps({**export(), "records": None}).encode()):
        status, lines, err = verify(content, "--public-key", PUBLIC_KEY)
        assert (status, lines) == (1, [])
        assert err.startswith("signing-manager: "), err
        assert len(err.strip().splitlines()) == 1, err
