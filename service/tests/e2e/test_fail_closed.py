"""No signature without its audit record (DESIGN.md, "Audit": fail closed), under a real fault.

Nothing is mocked: the running service loses the right to write audit records in its database
while it serves, and must then refuse every audited call with 503 ``audit_unavailable`` and
release no signature; once the database accepts audit records again, signing works again, and
the audit holds exactly the signatures that were released.

- PostgreSQL: the service runs as a login role that owns nothing and has only the privileges
  it needs; mid-test ``REVOKE INSERT ON audit_auditevent`` from that role, later GRANT it back.
- SQLite (the service runs as root here, so file modes would not stop its writes): a trigger
  that aborts every insert into the audit table, as a full disk would, created in the database
  file while the service runs, and dropped again.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from signing_manager.algorithms import Algorithm, verify_digest
from signing_service.pytest_plugin import suite_database_url
from signing_service.test import make_identity

ON_POSTGRES = suite_database_url().startswith("postgres")
AUDIT_TABLE = "audit_auditevent"
REFUSAL_LOGGED = "Writing audit records failed; the request is refused."


def digest_of(algorithm: Algorithm, data: bytes) -> bytes:
    return hashlib.new(algorithm.hash_algorithm.name, data).digest()


def assert_fails_closed_then_recovers(
    service,
    api,
    ops,
    break_audit: Callable[[], None],
    repair_audit: Callable[[], None],
) -> None:
    """The common part: sign, break the audit, see every call refused, repair, sign again."""
    rsa, ec = make_identity(key_kind="rsa2048"), make_identity(key_kind="ec256")
    ops.import_identities(rsa, ec)
    key = ops.create_api_key("fail closed")
    released: list[str] = []  # the digests whose signatures the service handed out

    def sign_one(token: str, made, algorithm: Algorithm, label: bytes) -> None:
        digest = digest_of(algorithm, label)
        response = api.sign(token, made.sha1, algorithm, digest)
        assert response.status_code == 200, response.text
        signature = base64.b64decode(response.json()["signature"])
        assert verify_digest(made.certificate.public_key(), algorithm, digest, signature)
        released.append(digest.hex())

    def sign_batch(token: str, label: bytes) -> None:
        jobs = [
            (rsa, Algorithm.RSA_PSS_SHA256, digest_of(Algorithm.RSA_PSS_SHA256, label + b"1")),
            (ec, Algorithm.ECDSA_SHA256, digest_of(Algorithm.ECDSA_SHA256, label + b"2")),
        ]
        response = api.sign_batch(
            token,
            [api.sign_request(made.sha1, algorithm, digest) for made, algorithm, digest in jobs],
        )
        assert response.status_code == 200, response.text
        for (made, algorithm, digest), result in zip(jobs, response.json()["results"], strict=True):
            signature = base64.b64decode(result["signature"])
            assert verify_digest(made.certificate.public_key(), algorithm, digest, signature)
            released.append(digest.hex())

    # Before the fault: register, list, sign alone and in a batch.
    token = api.register_client(key, "machine-1", "host-1")
    assert api.certificates(token).status_code == 200
    sign_one(token, rsa, Algorithm.RSA_PKCS1V15_SHA256, b"before")
    sign_batch(token, b"before")

    break_audit()

    # Every audited call is refused with 503, and no signature leaves the service.
    refused_digests = []
    for made, algorithm in [(rsa, Algorithm.RSA_PKCS1V15_SHA256), (ec, Algorithm.ECDSA_SHA256)]:
        digest = digest_of(algorithm, b"during the fault")
        refused_digests.append(digest.hex())
        api.assert_error(api.sign(token, made.sha1, algorithm, digest), 503, "audit_unavailable")
    batch = [
        api.sign_request(rsa.sha1, Algorithm.RSA_PSS_SHA512, b"\1" * 64),
        api.sign_request(ec.sha1, Algorithm.ECDSA_SHA384, b"\2" * 48),
    ]
    refused_digests += [(b"\1" * 64).hex(), (b"\2" * 48).hex()]
    api.assert_error(api.sign_batch(token, batch), 503, "audit_unavailable")
    api.assert_error(api.certificates(token), 503, "audit_unavailable")
    # A registration is not kept either: its audit record could not be written.
    api.assert_error(api.register(key, "machine-2", "host-2"), 503, "audit_unavailable")
    # Refusals are audited too, so they cannot be answered as such: 503 again.
    api.assert_error(
        api.sign(token, "ab" * 20, Algorithm.ECDSA_SHA256, b"\3" * 32), 503, "audit_unavailable"
    )
    api.assert_error(api.certificates("smc_unknown"), 503, "audit_unavailable")
    # The version needs no audit and still answers.
    assert api.version().status_code == 200
    assert REFUSAL_LOGGED in service.log()

    repair_audit()

    # Signing works again; the machine refused during the fault registers now (no 409).
    sign_one(token, ec, Algorithm.ECDSA_SHA512, b"after")
    sign_batch(token, b"after")
    assert api.certificates(token).status_code == 200
    second = api.register_client(key, "machine-2", "host-2")
    sign_one(second, rsa, Algorithm.RSA_PSS_SHA384, b"after, second client")

    # The audit holds a record for each released signature, and none for a refused call.
    rows = ops.audit_export()
    assert [(row["request_type"], row["status"]) for row in rows] == [
        ("register", "success"),
        ("index", "success"),
        *[("sign", "success")] * 3,
        *[("sign", "success")] * 3,
        ("index", "success"),
        ("register", "success"),
        ("sign", "success"),
    ]
    assert [row["digest"] for row in rows if row["request_type"] == "sign"] == released
    assert not set(refused_digests) & {row["digest"] for row in rows}
    assert [row["client_hostname"] for row in rows if row["request_type"] == "register"] == [
        "host-1",
        "host-2",
    ]


# --- PostgreSQL: a least-privilege role loses INSERT on the audit table -------------------------


@contextlib.contextmanager
def least_privilege_role(database_url: str) -> Iterator[tuple[str, Callable[[str], None]]]:
    """A login role owning nothing, granted what the service needs on the database.

    Yields the database URL for the role and a function running SQL there as the superuser.
    The role is dropped afterwards (its service must be stopped by then).
    """
    import psycopg

    role = f"signing_e2e_{secrets.token_hex(6)}"
    password = secrets.token_urlsafe(18)
    parts = urlsplit(database_url)
    database = parts.path.lstrip("/")
    netloc = parts.netloc.rpartition("@")[2]
    role_url = urlunsplit(parts._replace(netloc=f"{role}:{password}@{netloc}"))

    def as_superuser(sql: str) -> None:
        with psycopg.connect(database_url, autocommit=True) as connection:
            connection.execute(sql)

    as_superuser(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'")
    try:
        for grant in [
            f'GRANT CONNECT ON DATABASE "{database}" TO "{role}"',
            f'GRANT USAGE ON SCHEMA public TO "{role}"',
            f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"',
            f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{role}"',
        ]:
            as_superuser(grant)
        yield role_url, as_superuser
    finally:
        with psycopg.connect(database_url, autocommit=True) as connection:
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (role,),
            )
            connection.execute(f'DROP OWNED BY "{role}"')
            connection.execute(f'DROP ROLE "{role}"')
            assert (
                connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
                is None
            )


@pytest.mark.e2e
@pytest.mark.skipif(
    not ON_POSTGRES,
    reason="PostgreSQL variant (REVOKE INSERT from the service's role); SQLite has its own test",
)
def test_postgres_no_signature_while_the_role_may_not_insert_audit_records(
    start_service, new_ops, new_client_api
):
    # The first start, as the superuser, creates the schema (migrations), the admin and TLS.
    service = start_service()
    assert service.stop() == 0
    with least_privilege_role(service.env["DATABASE_URL"]) as (role_url, as_superuser):
        role = urlsplit(role_url).username
        service.env["DATABASE_URL"] = role_url
        try:
            service.start()
            assert_fails_closed_then_recovers(
                service,
                new_client_api(service),
                new_ops(service),
                break_audit=lambda: as_superuser(f'REVOKE INSERT ON {AUDIT_TABLE} FROM "{role}"'),
                repair_audit=lambda: as_superuser(f'GRANT INSERT ON {AUDIT_TABLE} TO "{role}"'),
            )
            assert "permission denied for table audit_auditevent" in service.log()
        finally:
            service.stop()


# --- SQLite: inserts into the audit table abort, as on a full disk ------------------------------


@pytest.mark.e2e
@pytest.mark.skipif(
    ON_POSTGRES,
    reason="SQLite variant (a trigger aborts audit inserts); PostgreSQL has its own test",
)
def test_sqlite_no_signature_while_audit_inserts_fail(running_service, new_ops, new_client_api):
    service = running_service
    database = service.data_dir / "signing-service.sqlite3"
    assert database.is_file()

    def run_sql(sql: str) -> None:
        with contextlib.closing(sqlite3.connect(database, timeout=30)) as connection:
            connection.execute(sql)
            connection.commit()

    assert_fails_closed_then_recovers(
        service,
        new_client_api(service),
        new_ops(service),
        break_audit=lambda: run_sql(
            f"CREATE TRIGGER audit_disk_full BEFORE INSERT ON {AUDIT_TABLE} "
            "BEGIN SELECT RAISE(ABORT, 'audit disk full'); END"
        ),
        repair_audit=lambda: run_sql("DROP TRIGGER audit_disk_full"),
    )
    assert "audit disk full" in service.log()
