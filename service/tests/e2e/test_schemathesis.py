"""Schemathesis against the live OpenAPI document of a running service, over verified HTTPS.

Every operation of ``/api/v1/openapi.json`` is called with generated requests, bounded per
operation: data that fits the schema and data that does not, with real credentials (a client
token, or the API key for registering) and without any. The service must never answer 5xx,
must answer as its own document says (status codes, content types, response schemas), and
every 4xx body must be exactly the contract's ``{"error": {"code", "message"}}``.

Generated sign requests name a real identity's fingerprint (or an unknown one) half of the
time, with digests of plausible lengths, so they also reach the signing path; each signature
returned is verified with the identity's certificate.
"""

from __future__ import annotations

import base64
import collections

import pytest
import schemathesis
from cryptography.hazmat.primitives import hashes
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from signing_manager.algorithms import Algorithm, verify_digest
from signing_service.test import make_identity

MAX_EXAMPLES = 50
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
UNAUTHENTICATED = {"/api/v1/version"}
DIGEST_SIZES = [20, 32, 48, 64]
UNKNOWN_SHA1 = "0123456789abcdef0123456789abcdef01234567"


def assert_error_form(response) -> None:
    """A 4xx body is the contract's error form and nothing else."""
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.startswith("application/json"), (response.status_code, response.headers)
    body = response.json()
    assert isinstance(body, dict), body
    assert set(body) == {"error"}, body
    assert isinstance(body["error"], dict), body
    assert set(body["error"]) == {"code", "message"}, body
    assert isinstance(body["error"]["code"], str), body
    assert body["error"]["code"], body
    assert isinstance(body["error"]["message"], str), body
    assert body["error"]["message"].strip(), body


class Fuzzer:
    """Runs bounded Schemathesis generation over one operation and collects what went wrong."""

    def __init__(self, identities, headers_for):
        self.by_fingerprint = {}
        self.fingerprints = [UNKNOWN_SHA1]  # for the 404 of an authorized caller
        for made in identities:
            sha256 = made.certificate.fingerprint(hashes.SHA256()).hex()
            self.by_fingerprint.update({made.sha1: made, sha256: made})
            self.fingerprints += [made.sha1, made.sha1.upper(), sha256]
        self.headers_for = headers_for
        self.failures: list[str] = []
        self.statuses: collections.Counter = collections.Counter()

    def aim_at_real_identities(self, body, data) -> None:
        """Point some generated sign requests at real identities, with plausible digests."""
        items = body.get("requests") if isinstance(body, dict) else None
        items = items if isinstance(items, list) else [body]
        for item in items:
            if not isinstance(item, dict) or not data.draw(st.booleans(), label="aim"):
                continue
            item["certificate"] = data.draw(st.sampled_from(self.fingerprints), label="cert")
            size = data.draw(st.sampled_from(DIGEST_SIZES), label="digest size")
            digest = data.draw(st.binary(min_size=size, max_size=size), label="digest")
            item["digest"] = base64.b64encode(digest).decode()

    def check_signatures(self, case, response) -> None:
        """Every signature the service returned is the identity's signature of the digest."""
        if response.status_code != 200 or case.operation.path not in {
            "/api/v1/sign",
            "/api/v1/sign/batch",
        }:
            return
        body = case.body
        requests = body["requests"] if case.operation.path.endswith("batch") else [body]
        results = response.json().get("results", [response.json()])
        assert len(results) == len(requests), (requests, results)
        for request, result in zip(requests, results, strict=True):
            if "signature" not in result:
                assert set(result) == {"error"}, result
                continue
            made = self.by_fingerprint[request["certificate"].strip().lower().replace(":", "")]
            algorithm = Algorithm(request["algorithm"])
            digest = base64.b64decode(request["digest"])
            signature = base64.b64decode(result["signature"])
            assert verify_digest(made.certificate.public_key(), algorithm, digest, signature)

    def run(
        self,
        operation,
        mode: GenerationMode,
        authenticated: bool,
        max_examples: int = MAX_EXAMPLES,
    ) -> None:
        label = f"{operation.label} [{mode.value}, {'auth' if authenticated else 'no auth'}]"
        headers = self.headers_for(operation) if authenticated else {}
        aim = mode is GenerationMode.POSITIVE and operation.path.startswith("/api/v1/sign")

        @settings(
            max_examples=max_examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
        )
        @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
        def call(case, data):
            if not authenticated and case.headers:
                case.headers = {
                    name: value
                    for name, value in case.headers.items()
                    if name.lower() != "authorization"
                }
            if aim:
                self.aim_at_real_identities(case.body, data)
            response = case.call(headers=headers)
            self.statuses[(label, response.status_code)] += 1
            case.validate_response(response, checks=CHECKS, headers=headers)
            if 400 <= response.status_code < 500:
                assert_error_form(response)
            if not authenticated and operation.path not in UNAUTHENTICATED:
                # 401, or 429 once this fuzzer's calls without a token pass the service's limit.
                assert response.status_code in (401, 429), (response.status_code, response.text)
                if response.status_code == 429:
                    assert response.json()["error"]["code"] == "too_many_failures"
                    assert response.headers.get("retry-after")
            self.check_signatures(case, response)

        try:
            call()
        except Unsatisfiable:
            # Nothing to break in a request without parameters or body (GET /version).
            assert mode is GenerationMode.NEGATIVE, label
        except Exception as error:  # every operation runs; all failures are reported together
            self.failures.append(f"{label}:\n{error}")


@pytest.mark.e2e
def test_schemathesis_finds_no_server_error_and_only_the_error_form(
    running_service, new_ops, new_client_api
):
    service = running_service
    ops, api = new_ops(service), new_client_api(service)
    rsa, ec = make_identity(key_kind="rsa2048"), make_identity(key_kind="ec256")
    _, (key,) = ops.set_up([rsa, ec], ["schemathesis"])
    token = api.register_client(key, "schemathesis-machine", "schemathesis")
    schema = schemathesis.openapi.from_url(
        service.url + "/api/v1/openapi.json", verify=str(service.cert_path), timeout=30
    )
    schema.config.update(tls_verify=str(service.cert_path), request_timeout=60)

    def headers_for(operation) -> dict[str, str]:
        secret = key if operation.path == "/api/v1/clients" else token
        return {"Authorization": f"Bearer {secret}"}

    fuzzer = Fuzzer([rsa, ec], headers_for)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert sorted(operation.label for operation in operations) == [
        "GET /api/v1/certificates",
        "GET /api/v1/version",
        "POST /api/v1/clients",
        "POST /api/v1/sign",
        "POST /api/v1/sign/batch",
    ]
    for operation in operations:
        fuzzer.run(operation, GenerationMode.POSITIVE, authenticated=True)
        fuzzer.run(operation, GenerationMode.NEGATIVE, authenticated=True)
        # Without credentials everything but the version is refused first: fewer examples do.
        fuzzer.run(operation, GenerationMode.POSITIVE, authenticated=False, max_examples=20)

    assert not fuzzer.failures, "\n\n".join(fuzzer.failures)
    # The runs reached the service, and the aimed sign requests reached the signing path.
    answered = collections.Counter()
    for (label, status), count in fuzzer.statuses.items():
        answered[label.split(" [")[0], status] += count
    assert answered["POST /api/v1/clients", 201] > 0, answered
    assert answered["GET /api/v1/certificates", 200] > 0, answered
    assert answered["POST /api/v1/sign", 200] + answered["POST /api/v1/sign/batch", 200] > 0
    assert answered["POST /api/v1/sign", 401] + answered["POST /api/v1/sign", 429] > 0, answered
    assert "Traceback" not in service.log()
