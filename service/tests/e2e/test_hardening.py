"""Security hardening found by a penetration test (issue 18), against the running service over
real TLS: nothing Django answers may be stored by a cache, and what a client calls itself is
plain text."""

from __future__ import annotations

import base64
import collections
import datetime
import hashlib
import html
import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from signing_manager.algorithms import Algorithm
from signing_service.test import make_identity

pytestmark = pytest.mark.e2e


def test_no_page_or_api_answer_may_be_stored(running_service, new_admin, new_client_api, new_ops):
    ops = new_ops(running_service)
    made = make_identity()
    _, (key,) = ops.set_up([made], ["build machines"])
    api = new_client_api(running_service)
    admin = new_admin(running_service)

    registered = api.register(key, "machine-1", "build-1")  # carries the client token
    token = registered.json()["client_token"]
    answers = {
        "POST /api/v1/clients": registered,
        "GET /api/v1/certificates": api.certificates(token),
        "GET /api/v1/version": api.version(),
    }
    for path in ["/", "/identities/", "/audit/", "/api-keys/", "/accounts/users/", "/settings/"]:
        answers[f"GET {path}"] = admin.get(path)
    answers["GET /audit/export/"] = admin.get(
        "/audit/export/?date_from=2026-01-01&date_to=2030-12-31&format=csv"
    )

    for name, response in answers.items():
        assert response.status_code in (200, 201), (name, response.status_code)
        assert "no-store" in response.headers.get("cache-control", ""), name
    static = admin.get("/static/signing_service/app.css")
    assert "no-store" not in static.headers.get("cache-control", "")  # files may be cached


def test_client_names_are_trimmed_and_control_characters_refused(
    running_service, new_client_api, new_ops
):
    _, (key,) = new_ops(running_service).set_up([], ["build machines"])
    api = new_client_api(running_service)

    for bad in ["build\r\nX-Injected: 1", "build\t1", "\u202ebuild"]:
        api.assert_error(api.register(key, "machine-bad", bad), 422, "bad_parameters")
    trimmed = api.register(key, "machine-1", "  build-1  ")

    assert trimmed.status_code == 201, trimmed.text
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    exported = running_service.manage(
        "audit", "export", "--from", today, "--to", today, "--format", "json"
    )
    records = json.loads(exported.stdout)["records"]
    rows = [row for row in records if row["request_type"] != "admin"]
    assert [r["client_hostname"] for r in rows if r["status"] == "success"] == ["build-1"]
    assert sorted(r["reason"] for r in rows if r["status"] == "failure") == ["bad_parameters"] * 3


def test_a_chunked_request_body_is_read(running_service, new_client_api, new_ops):
    # Issue 18 item 8: without Content-Length, Django read the body as empty (422).
    made = make_identity()
    _, (key,) = new_ops(running_service).set_up([made], ["build machines"])
    api = new_client_api(running_service)
    token = api.register_client(key, "machine-1", "build-1")
    body = json.dumps(
        {
            "certificate": made.sha1,
            "algorithm": "rsa-pkcs1v15-sha256",
            "digest": base64.b64encode(hashlib.sha256(b"chunked").digest()).decode(),
        }
    ).encode()

    def chunks():
        yield body[:10]
        yield body[10:]

    response = api.call(
        "POST", "/sign", token, content=chunks(), headers={"Content-Type": "application/json"}
    )
    oversize = api.call(
        "POST",
        "/sign/batch",
        token,
        content=(b"x" * 65536 for _ in range(64)),  # 4 MiB, past Django's 2.5 MiB
        headers={"Content-Type": "application/json"},
    )

    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert response.status_code == 200, response.text
    assert "signature" in response.json()
    api.assert_error(oversize, 413, "request_too_large")


def test_a_flood_without_tokens_adds_a_few_audit_rows_and_signing_goes_on(
    running_service, new_client_api, new_ops
):
    # Issue 18 item 1, over real TLS with gunicorn's workers: counts, never timings.
    made = make_identity()
    _, (key,) = new_ops(running_service).set_up([made], ["build machines"])
    api = new_client_api(running_service)
    token = api.register_client(key, "machine-1", "build-1")
    digest = hashlib.sha256(b"flood").digest()
    flood, signs = 200, 20

    def forged(n: int):
        return api.sign(f"smc_{n:010d}_forged", made.sha1, Algorithm.RSA_PKCS1V15_SHA256, digest)

    def genuine(_):
        return api.sign(token, made.sha1, Algorithm.RSA_PKCS1V15_SHA256, digest)

    with ThreadPoolExecutor(max_workers=8) as pool:
        refused = list(pool.map(forged, range(flood)))
        signed = list(pool.map(genuine, range(signs)))

    statuses = collections.Counter(response.status_code for response in refused)
    assert set(statuses) <= {401, 429}, statuses
    assert statuses[429] >= flood - 2 * 30  # the default limit is 30 an interval per address
    assert all(r.headers.get("retry-after") for r in refused if r.status_code == 429)
    assert [response.status_code for response in signed] == [200] * signs
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    rows = json.loads(
        running_service.manage(
            "audit", "export", "--from", today, "--to", today, "--format", "json"
        ).stdout
    )["records"]
    failures = [row for row in rows if row["reason"] == "bad_credentials"]
    assert 1 <= len(failures) <= 4, failures  # one per interval (a race may add one)
    assert sum(int(row["count"]) for row in failures) == flood
    assert (
        sum(1 for row in rows if row["status"] == "success" and row["request_type"] == "sign")
        == signs
    )


def test_with_approval_on_a_new_machine_signs_only_once_approved(
    running_service, new_admin, new_client_api, new_ops
):
    # Issue 18 item 9: a leaked API key cannot silently add a machine that signs.
    made = make_identity()
    _, (key,) = new_ops(running_service).set_up([made], ["build machines"])
    admin = new_admin(running_service)
    page = admin.get("/settings/")
    agreement = re.search(r"<textarea[^>]*>(.*?)</textarea>", page.text, re.S).group(1)
    saved = admin.post_form(
        "/settings/",
        {
            "audit_retention_days": "365",
            "clients_need_approval": "on",
            "agreement_text": html.unescape(agreement).strip(),
        },
    )
    assert saved.status_code == 302, admin.page_text(saved)
    api = new_client_api(running_service)
    registered = api.register(key, "machine-9", "stranger")
    client_id, token = registered.json()["client_id"], registered.json()["client_token"]
    digest = hashlib.sha256(b"approval").digest()

    pending = api.sign(token, made.sha1, Algorithm.RSA_PKCS1V15_SHA256, digest)
    approved = running_service.manage("client", "approve", str(client_id))
    signed = api.sign(token, made.sha1, Algorithm.RSA_PKCS1V15_SHA256, digest)

    assert registered.status_code == 201, registered.text
    api.assert_error(pending, 403, "pending_client")
    assert approved.stdout == f"Approved client {client_id} (stranger).\n", approved.stderr
    assert signed.status_code == 200, signed.text


def test_routing_errors_under_the_api_are_json_over_tls(running_service, new_client_api):
    api = new_client_api(running_service)

    api.assert_error(api.call("GET", "/no-such-call"), 404, "not_found")
    wrong_method = api.call("DELETE", "/sign")
    api.assert_error(wrong_method, 405, "method_not_allowed")
    assert wrong_method.headers["allow"] == "POST"
