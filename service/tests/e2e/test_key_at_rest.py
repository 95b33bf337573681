"""Private keys at rest: the database (and the data directory, and the log) hold no key bytes.

Identities are imported through the command line and through the web form, one is used to sign,
the service is stopped, and then everything it stored is searched for each private key in every
form it could take: PKCS#8 and traditional (PKCS#1 / SEC1) DER, as raw bytes, hex and base64, the
lines of their PEM files, and the key's secret numbers (RSA d, p, q; the EC private value). The
certificates must be found in the same places, so the search is known to see the stored data.
"""

from __future__ import annotations

import base64
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from signing_service.test import make_identity

DATABASE_FILE = "signing-service.sqlite3"
NO_ENCRYPTION = serialization.NoEncryption()
KEY_FORMATS = {
    "PKCS#8": serialization.PrivateFormat.PKCS8,
    "traditional": serialization.PrivateFormat.TraditionalOpenSSL,
}
# PEM body lines shorter than this (the last line of a file) are too short to be telling.
MIN_PEM_LINE = 16
# SQLite stores a row longer than a page in pieces, on overflow pages that each start with a
# 4-byte pointer, so a value read from the file may be interrupted; it is looked for in pieces.
PIECE = 32


def big_endian(number: int, size: int | None = None) -> bytes:
    return number.to_bytes(size or (number.bit_length() + 7) // 8, "big")


def encodings(label: str, raw: bytes) -> dict[str, bytes]:
    """``raw`` as bytes, as hex (either case) and as base64 (standard and URL-safe)."""
    return {
        f"{label} (bytes)": raw,
        f"{label} (hex)": raw.hex().encode(),
        f"{label} (HEX)": raw.hex().upper().encode(),
        f"{label} (base64)": base64.b64encode(raw).rstrip(b"="),
        f"{label} (base64url)": base64.urlsafe_b64encode(raw).rstrip(b"="),
    }


def pieces(label: str, raw: bytes) -> dict[str, bytes]:
    """The whole ``PIECE``-byte pieces of ``raw``."""
    return {
        f"{label} (bytes {start}-{start + PIECE})": raw[start : start + PIECE]
        for start in range(0, len(raw) - PIECE + 1, PIECE)
    }


def key_needles(name: str, key) -> dict[str, bytes]:
    """Every form of ``key`` that must not be stored, by a label saying what it is."""
    needles: dict[str, bytes] = {}
    for format_name, private_format in KEY_FORMATS.items():
        der = key.private_bytes(serialization.Encoding.DER, private_format, NO_ENCRYPTION)
        needles |= encodings(f"{name}: {format_name} DER", der)
        pem = key.private_bytes(serialization.Encoding.PEM, private_format, NO_ENCRYPTION)
        body = [line for line in pem.splitlines() if not line.startswith(b"-----")]
        assert base64.b64decode(b"".join(body)) == der
        for number, line in enumerate(body):
            if len(line) >= MIN_PEM_LINE:
                needles[f"{name}: {format_name} PEM line {number + 1}"] = line
    numbers = key.private_numbers()
    if isinstance(key, rsa.RSAPrivateKey):
        secrets = {"d": numbers.d, "p": numbers.p, "q": numbers.q}
        for secret, value in secrets.items():
            needles |= encodings(f"{name}: RSA {secret}", big_endian(value))
        # The secret numbers, CRT exponents included, in pieces (none of them is public).
        secrets |= {"dP": numbers.dmp1, "dQ": numbers.dmq1, "qInv": numbers.iqmp}
        for secret, value in secrets.items():
            needles |= pieces(f"{name}: RSA {secret}", big_endian(value))
    else:
        size = (key.curve.key_size + 7) // 8
        needles |= encodings(f"{name}: EC private value", big_endian(numbers.private_value, size))
    return needles


def found_in(needles: dict[str, bytes], haystacks: dict[str, bytes]) -> list[str]:
    return [
        f"{label} in {where}"
        for where, haystack in haystacks.items()
        for label, needle in needles.items()
        if needle in haystack
    ]


def files_under(directory: Path) -> dict[str, bytes]:
    return {
        f"file {path.relative_to(directory)}": path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def sqlite_rows(database: Path) -> bytes:
    """Every value of every table, as stored: blobs as bytes, the rest as UTF-8 text."""
    values: list[bytes] = []
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        tables = [
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        assert "identities_identity" in tables, tables
        for table in tables:
            for row in connection.execute(f'SELECT * FROM "{table}"'):  # noqa: S608
                for value in row:
                    values.append(value if isinstance(value, bytes) else str(value).encode())
    finally:
        connection.close()
    return b"\n".join(values)


def postgres_dump(database_url: str) -> tuple[str, bytes]:
    """The service's PostgreSQL database as ``pg_dump`` writes it (plain SQL), or every column
    of every table as text when pg_dump is not installed."""
    if shutil.which("pg_dump"):
        dump = subprocess.run(
            ["pg_dump", "--format=plain", "--no-owner", "--dbname", database_url],
            capture_output=True,
            check=True,
            timeout=120,
            env={**os.environ, "PGCONNECT_TIMEOUT": "10"},
        )
        assert b"CREATE TABLE public.identities_identity" in dump.stdout
        return "pg_dump", dump.stdout
    import psycopg
    from psycopg import sql

    values: list[bytes] = []
    with psycopg.connect(database_url) as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )
        ]
        assert "identities_identity" in tables, tables
        for table in tables:
            query = sql.SQL("SELECT t::text FROM {} AS t").format(sql.Identifier(table))
            values.extend(row[0].encode() for row in connection.execute(query))
    return "PostgreSQL rows as text", b"\n".join(values)


@pytest.mark.e2e
def test_database_holds_no_private_key_bytes(running_service, tmp_path, new_admin):
    service = running_service
    # Made in this order so that the two RSA 2048 identities get different keys.
    on_cli = {
        "RSA 2048 (command line)": make_identity(key_kind="rsa2048"),
        "EC P-256 (command line)": make_identity(key_kind="ec256", encoding="3des"),
    }
    on_web = {
        "RSA 2048 (web)": make_identity(key_kind="rsa2048", encoding="legacy"),
        "RSA 4096 (web)": make_identity(key_kind="rsa4096"),
    }
    identities = on_cli | on_web
    assert len({item.key_pem() for item in identities.values()}) == len(identities)

    # Import through the command line ...
    outputs: dict[str, bytes] = {}
    for number, (name, item) in enumerate(on_cli.items()):
        p12_path = tmp_path / f"{number}.p12"
        p12_path.write_bytes(item.p12)
        password_file = tmp_path / f"{number}.txt"
        password_file.write_text(item.password + "\n")
        result = service.manage(
            "identity", "import", str(p12_path), "--password-file", str(password_file)
        )
        assert result.returncode == 0, result.stderr
        outputs[f"output of importing {name}"] = (result.stdout + result.stderr).encode()

    # ... and through the web form; then sign with one of each kind of key.
    admin = new_admin(service)
    for item in on_web.values():
        response = admin.import_identity(item.p12, item.password)
        assert response.status_code == 302, admin.page_text(response)
    for name in ["RSA 4096 (web)", "EC P-256 (command line)"]:
        item = identities[name]
        pk = admin.identity_pk(item.common_name)
        algorithm = "ecdsa-sha256" if name.startswith("EC") else "rsa-pkcs1v15-sha256"
        response = admin.sign_on_web(pk, "sign me", algorithm)
        assert response.status_code == 200
        assert "Verified with the certificate's public key" in admin.page_text(response)
        outputs[f"sign page of {name}"] = response.content
        outputs[f"detail page of {name}"] = admin.get(f"/identities/{pk}/").content
    listing = service.manage("identity", "list")
    assert len(listing.stdout.splitlines()) == len(identities), listing.stdout
    assert service.stop() == 0

    # Everything the service stored: the files of its data directory (for SQLite the database
    # with its -wal and -shm files, read as they are on disk, free pages included) and the
    # database's rows, as SQLite holds them or as pg_dump writes them.
    stored = files_under(service.data_dir)
    if "DATABASE_URL" in service.env:
        where, dump = postgres_dump(service.env["DATABASE_URL"])
        stored[where] = dump
        assert not any(name.startswith(f"file {DATABASE_FILE}") for name in stored), stored
    else:
        database = service.data_dir / DATABASE_FILE
        assert f"file {DATABASE_FILE}" in stored, sorted(stored)
        stored["SQLite rows"] = sqlite_rows(database)
    log = service.log().encode()
    assert b"Signing Service at" in log

    needles: dict[str, bytes] = {}
    for name, item in identities.items():
        needles |= key_needles(name, item.private_key)
        # The uploaded .p12 (the key under its weak password) is not kept either.
        needles |= encodings(f"{name}: the .p12 file", item.p12)
    assert found_in(needles, stored) == []
    assert found_in(needles, {"the service log": log}) == []
    assert found_in(needles, outputs) == []
    assert b"PRIVATE KEY" not in log
    for item in identities.values():
        assert item.password.encode() not in log

    # Not vacuous: each certificate is found where the database's rows were read, and (in
    # pieces, as long rows are split over pages) in the SQLite database file as it is on disk.
    for name, item in identities.items():
        der = item.certificate.public_bytes(serialization.Encoding.DER)
        for where, content in stored.items():
            if not where.startswith("file "):
                assert any(form in content for form in encodings("", der).values()), (name, where)
        if "DATABASE_URL" not in service.env:
            on_disk = b"".join(
                content
                for where, content in stored.items()
                if where.startswith(f"file {DATABASE_FILE}")
            )
            missing = [piece for piece in pieces("", der).values() if piece not in on_disk]
            assert len(missing) <= 2, (name, len(missing), len(der))
