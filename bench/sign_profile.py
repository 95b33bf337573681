"""Where a sign request's time goes inside the service: CPU per request, and a profile.

Sets the service up in this process on a temporary data directory (SQLite, or a fresh database
on ``--database-url``), imports an RSA-2048 and an EC P-256 identity, registers a client, then
sends ``POST /api/v1/sign`` and ``/api/v1/sign/batch`` through Django's WSGI handler (no TLS, no
HTTP server: what the service itself costs) and prints the CPU time per request and per
signature, next to the raw signing time of ``cryptography`` measured in the same run; on a
PostgreSQL server of this machine also its CPU time per request (the connection's backend
process: the statements, the chain's hashing, the commit). With ``--profile`` it also prints
cProfile's top functions for each load.

    .venv/bin/python bench/sign_profile.py [--requests 2000] [--batch 100] [--profile]
        [--database-url postgres://postgres@127.0.0.1:5432]

Not a test: nothing here passes or fails on timing.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import cProfile
import hashlib
import io
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils

PROFILE_LINES = 40
ALGORITHMS = {"rsa": ("rsa2048", "rsa-pkcs1v15-sha256"), "ec": ("ec256", "ecdsa-sha256")}


def set_up_django(data_dir: Path, database_url: str | None) -> None:
    os.environ["SIGNING_SERVICE_DATA_DIR"] = str(data_dir)
    os.environ["SIGNING_SERVICE_LOG_LEVEL"] = "WARNING"
    os.environ.pop("DATABASE_URL", None)
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "signing_service.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def set_up_callers() -> tuple[str, dict]:
    """A client token, and per kind the identity's made key and fingerprint."""
    from signing_service.access.models import ApiKey
    from signing_service.identities.models import Identity
    from signing_service.identities.p12 import parse_p12
    from signing_service.test import make_client, make_identity

    identities = {}
    for kind, (key_kind, _) in ALGORITHMS.items():
        made = make_identity(key_kind=key_kind)
        identity = Identity()
        identity.fill_from(parse_p12(made.p12, made.password))
        identity.save()
        identities[kind] = made
    api_key, _ = ApiKey.create("profile")
    _, token = make_client(api_key, is_approved=True)
    return token, identities


def body_for(made, algorithm: str, count: int | None) -> bytes:
    digest = base64.b64encode(hashlib.sha256(b"profile").digest()).decode()
    item = {"certificate": made.sha1, "algorithm": algorithm, "digest": digest}
    return json.dumps(item if count is None else {"requests": [item] * count}).encode()


def run_load(
    token: str, path: str, body: bytes, requests: int, profile: str | None
) -> tuple[float, float | None]:
    """CPU seconds per request over ``requests`` requests (after a warm-up), in this process and
    in the database server where it can be read."""
    from django.test import Client

    client = Client(headers={"Authorization": f"Bearer {token}"}, HTTP_HOST="localhost")

    def send():
        response = client.post(path, body, content_type="application/json")
        if response.status_code != 200:
            sys.exit(f"{path}: {response.status_code} {response.content[:300]!r}")

    for _ in range(min(50, requests)):
        send()
    profiler = cProfile.Profile() if profile else None
    database_started = database_cpu()
    started = time.process_time()
    with profiler or contextlib.nullcontext():
        for _ in range(requests):
            send()
    spent = (time.process_time() - started) / requests
    database_spent, database_ended = None, database_cpu()
    # Only if it was the same backend all along (a connection kept open).
    if database_started and database_ended and database_ended[0] == database_started[0]:
        database_spent = (database_ended[1] - database_started[1]) / requests
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(profile).print_stats(PROFILE_LINES)
        print(out.getvalue())
    return spent, database_spent


def database_cpu() -> tuple[int, float] | None:
    """The process id and CPU seconds so far of this thread's PostgreSQL backend, if the server
    runs on this machine (its /proc entry readable); None for SQLite or a remote server."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return pid, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raw_seconds(made, kind: str, count: int = 2000) -> float:
    """CPU seconds of one signature by ``cryptography`` with the identity's own key."""
    digest, prehashed = hashlib.sha256(b"profile").digest(), utils.Prehashed(hashes.SHA256())
    key = made.private_key
    if kind == "rsa":
        sign = lambda: key.sign(digest, padding.PKCS1v15(), prehashed)  # noqa: E731
    else:
        sign = lambda: key.sign(digest, ec.ECDSA(prehashed))  # noqa: E731
    started = time.process_time()
    for _ in range(count):
        sign()
    return (time.process_time() - started) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument(
        "--profile",
        nargs="?",
        const="tottime",
        choices=["tottime", "cumulative"],
        help="print cProfile's top functions, by their own time (default) or with callees",
    )
    parser.add_argument("--database-url", help="PostgreSQL server; default: SQLite")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory, contextlib.ExitStack() as stack:
        database_url = None
        if arguments.database_url:
            from signing_service.test import fresh_postgres_database

            database_url = stack.enter_context(fresh_postgres_database(arguments.database_url))
        set_up_django(Path(directory), database_url)
        token, identities = set_up_callers()
        for kind, (_, algorithm) in ALGORITHMS.items():
            made = identities[kind]
            raw = raw_seconds(made, kind)
            single, single_database = run_load(
                token, "/api/v1/sign", body_for(made, algorithm, None), arguments.requests,
                arguments.profile,
            )  # fmt: skip
            batches = max(1, arguments.requests // arguments.batch)
            batch, batch_database = run_load(
                token, "/api/v1/sign/batch", body_for(made, algorithm, arguments.batch), batches,
                arguments.profile,
            )  # fmt: skip
            per_item = batch / arguments.batch
            print(
                f"{algorithm:<20} raw {raw * 1e3:6.3f} ms   single request {single * 1e3:6.3f} ms"
                f" (raw share {raw / single:4.2f})   batch item {per_item * 1e3:6.3f} ms"
                f" (raw share {raw / per_item:4.2f})"
            )
            if single_database is not None and batch_database is not None:
                print(
                    f"{'':<20} the database server: single request "
                    f"{single_database * 1e3:6.3f} ms   batch item "
                    f"{batch_database / arguments.batch * 1e3:6.3f} ms"
                )


if __name__ == "__main__":
    main()
