"""The client API under sustained load, on the real service (two gunicorn workers of four
threads, real TLS, the suite's database): 16 threads, each with a keep-alive connection of its
own, send a fixed number of single-digest and batch sign requests for an RSA and an EC identity,
every digest a new one. Every answer is 200, every signature verifies over its digest with the
identity's public key, the audit holds exactly one success record per signature given out and
no other signing record, and its hash chain verifies without a gap.

It counts, never times: the rates are ``bench/sign_throughput.py``'s."""

from __future__ import annotations

import base64
import datetime
import hashlib
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import pytest

from signing_manager.algorithms import Algorithm, verify_digest
from signing_service.test import RunningService, TestIdentity, make_identity

THREADS = 16
REQUESTS_PER_THREAD = 32
BATCH_EVERY = 4  # every fourth request of a thread is a batch
BATCH_SIZE = 20
BATCHES_PER_THREAD = REQUESTS_PER_THREAD // BATCH_EVERY
# Each thread 24 single digests and 8 batches of 20: 2,944 signatures in all.
SIGNATURES = THREADS * (REQUESTS_PER_THREAD - BATCHES_PER_THREAD + BATCHES_PER_THREAD * BATCH_SIZE)


@dataclass(frozen=True)
class Wanted:
    """One digest to sign: with which identity and algorithm."""

    identity: TestIdentity
    algorithm: Algorithm
    digest: bytes

    def request(self) -> dict:
        digest = base64.b64encode(self.digest).decode()
        return {
            "certificate": self.identity.sha1,
            "algorithm": str(self.algorithm),
            "digest": digest,
        }

    def audited(self) -> tuple[str, str, str, str]:
        """The audit record this signature must leave: identity, algorithm, digest, status."""
        return self.identity.sha1, self.algorithm.value, self.digest.hex(), "success"


@dataclass(frozen=True)
class Answer:
    """A request's digests and what the service answered to it."""

    wanted: list[Wanted]
    status: int
    body: str  # what the service said, where it refused the request or an item of it
    signatures: list[str]  # base64, in the order of ``wanted``; empty unless all were signed


@pytest.fixture
def two_worker_service(service_environment, tmp_path) -> Iterator[RunningService]:
    """A service of this test's own with two workers, so that the audit chain is written by
    two processes at once."""
    environment = {**service_environment, "SIGNING_SERVICE_WORKERS": "2"}
    service = RunningService(tmp_path / "data", environment).start()
    yield service
    assert service.stop() == 0


def test_sustained_signing_answers_every_request_and_audits_every_signature(
    two_worker_service, new_ops, new_client_api
):
    service = two_worker_service
    ops = new_ops(service)
    rsa, ec = make_identity(key_kind="rsa2048"), make_identity(key_kind="ec256")
    _, (api_key,) = ops.set_up([rsa, ec], ["load"])
    token = new_client_api(service).register_client(api_key, "load-1", "load-1")
    plan = [
        (rsa, Algorithm.RSA_PKCS1V15_SHA256),
        (rsa, Algorithm.RSA_PSS_SHA256),
        (ec, Algorithm.ECDSA_SHA256),
    ]
    callers = [new_client_api(service) for _ in range(THREADS)]
    started = datetime.datetime.now(datetime.UTC).date()

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        threads = pool.map(partial(drive, token, plan), callers, range(THREADS))
        answers = [answer for answers in threads for answer in answers]

    refused = [(answer.status, answer.body) for answer in answers if not answer.signatures]
    assert not refused, (len(refused), refused[:3])
    signed = [
        (wanted, signature)
        for answer in answers
        for wanted, signature in zip(answer.wanted, answer.signatures, strict=True)
    ]
    assert len(signed) == SIGNATURES
    assert len({wanted.digest for wanted, _ in signed}) == SIGNATURES
    bad = [wanted.audited() for wanted, signature in signed if not verifies(wanted, signature)]
    assert not bad, (len(bad), bad[:3])

    # Exactly one success record per signature given out, and no other signing record.
    rows = ops.audit_export(started, datetime.datetime.now(datetime.UTC).date())
    audited = Counter(
        (row["identity_sha1"], row["algorithm"], row["digest"], row["status"])
        for row in rows
        if row["request_type"] == "sign"
    )
    given_out = Counter(wanted.audited() for wanted, _ in signed)
    missing, extra = given_out - audited, audited - given_out
    assert not missing, (len(missing), list(missing)[:3])
    assert not extra, (len(extra), list(extra)[:3])

    # The chain holds every record, numbered 1 to N without a gap, and verifies.
    result = service.manage("audit", "verify")
    assert result.returncode == 0, result.stdout + result.stderr
    (verdict,) = [line for line in result.stdout.splitlines() if line.startswith("The audit")]
    count = int(verdict.split()[3])
    assert count > SIGNATURES  # the signatures and the set-up's records
    assert verdict == f"The audit verifies: {count} records, up to record {count}."


def drive(token: str, plan: list[tuple], api, thread: int) -> list[Answer]:
    """One thread's requests, one after the other on its own connection: single digests, and
    every ``BATCH_EVERY``-th a batch; the identities and algorithms of ``plan`` in turns."""
    answers = []
    for number in range(REQUESTS_PER_THREAD):
        batch = number % BATCH_EVERY == BATCH_EVERY - 1
        wanted = [
            Wanted(*plan[(thread + number + item) % len(plan)], digest_of(thread, number, item))
            for item in range(BATCH_SIZE if batch else 1)
        ]
        answers.append(send(api, token, wanted, batch))
    return answers


def digest_of(thread: int, number: int, item: int) -> bytes:
    return hashlib.sha256(f"load {thread}/{number}/{item}".encode()).digest()


def send(api, token: str, wanted: list[Wanted], batch: bool) -> Answer:
    """One sign request (a batch, or a single digest) and what came back."""
    if batch:
        body = {"requests": [one.request() for one in wanted]}
        response = api.call("POST", "/sign/batch", token, json=body)
    else:
        response = api.call("POST", "/sign", token, json=wanted[0].request())
    if response.status_code != 200:
        return Answer(wanted, response.status_code, response.text, [])
    results = response.json()["results"] if batch else [response.json()]
    if any("signature" not in result for result in results):  # an item refused in a batch
        return Answer(wanted, response.status_code, response.text, [])
    return Answer(wanted, response.status_code, "", [result["signature"] for result in results])


def verifies(wanted: Wanted, signature: str) -> bool:
    public_key = wanted.identity.certificate.public_key()
    encoded = base64.b64decode(signature, validate=True)
    return verify_digest(public_key, wanted.algorithm, wanted.digest, encoded)
