"""``signing-service identity|apikey|audit`` against a running service's data and database.

The .p12 files are real ones written by the openssl command line (``make_identity``), in each
encoding the service accepts; what the commands store is then checked through the commands
themselves and through the web interface of the running service.
"""

from __future__ import annotations

import csv
import datetime
import getpass
import hashlib
import io
import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from signing_service.test import make_identity

# What each row of an audit export holds, in this order (the CSV header).
AUDIT_FIELDS = [
    "sequence",
    "hash",
    "created",
    "request_type",
    "status",
    "reason",
    "message",
    "source",
    "api_key_name",
    "client_hostname",
    "identity_common_name",
    "identity_sha1",
    "username",
    "algorithm",
    "digest",
    "address",
    "action",
    "changes",
    "count",
]


def write_file(path, content: bytes | str):
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    path.chmod(0o600)
    return str(path)


def assert_one_line_error(result, expected: str, label="") -> None:
    """The command failed, saying why on one line of stderr, without a traceback."""
    assert result.returncode != 0, (label, result)
    assert "Traceback" not in result.stderr + result.stdout, (label, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, (label, result.stderr)
    assert expected in lines[0], (label, expected, result.stderr)


def run_all(service, commands):
    """Run ``signing-service`` commands side by side (each starts Django, about a second)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda args: service.manage(*args, input_text=""), commands))


def identity_list(service) -> str:
    result = service.manage("identity", "list")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


@pytest.mark.e2e
def test_identity_import_prints_name_and_fingerprint_and_lists_it(
    running_service, tmp_path, new_admin
):
    service = running_service
    made = {
        "aes": make_identity(encoding="aes"),
        "legacy": make_identity(encoding="legacy"),
        "3des": make_identity(encoding="3des"),
        "ec": make_identity(key_kind="ec256"),
    }
    key_labels = {"aes": "RSA 2048", "legacy": "RSA 2048", "3des": "RSA 2048", "ec": "EC 256"}
    password_file = write_file(tmp_path / "p12-password.txt", made["aes"].password + "\n")
    files = {name: write_file(tmp_path / f"{name}.p12", item.p12) for name, item in made.items()}
    assert identity_list(service) == ""

    results = run_all(
        service,
        [("identity", "import", files[name], "--password-file", password_file) for name in made],
    )
    for (name, item), result in zip(made.items(), results, strict=True):
        assert result.returncode == 0, (name, result.stderr)
        assert result.stderr == "", name
        assert result.stdout == f"{item.common_name}\t{item.sha1.upper()}\n", name

    listing = identity_list(service).splitlines()
    assert len(listing) == len(made), listing
    rows = {line.split("\t")[0]: line.split("\t") for line in listing}
    for name, item in made.items():
        _, state, expires, key, location, common_name = rows[item.sha1.upper()]
        assert (state, key, location, common_name) == (
            "active",
            key_labels[name],
            "database",
            item.common_name,
        )
        assert expires == f"{item.certificate.not_valid_after_utc:%Y-%m-%d}"

    # An admin signing in for the first time finds them on the Signing Certificates page.
    admin = new_admin(service)
    page = admin.get("/identities/")
    assert page.status_code == 200
    for item in made.values():
        assert item.common_name in admin.page_text(page)
        assert item.sha1.upper() in page.text


@pytest.mark.e2e
def test_identity_import_refuses_bad_input_with_one_line_and_changes_nothing(
    running_service, tmp_path
):
    service = running_service
    existing = make_identity()
    password_file = write_file(tmp_path / "p12-password.txt", existing.password + "\n")
    existing_file = write_file(tmp_path / "existing.p12", existing.p12)
    result = service.manage("identity", "import", existing_file, "--password-file", password_file)
    assert result.returncode == 0, result.stderr
    before = identity_list(service)
    assert existing.sha1.upper() in before

    fresh = make_identity()
    expired = make_identity(expired=True)
    wrong_password = write_file(tmp_path / "wrong.txt", "not the p12 password\n")
    fresh_file = write_file(tmp_path / "fresh.p12", fresh.p12)
    missing = str(tmp_path / "missing.p12")
    missing_password = str(tmp_path / "missing-password.txt")
    expiry = expired.certificate.not_valid_after_utc
    cases = {
        "wrong password": (
            [fresh_file, "--password-file", wrong_password],
            "The password is wrong",
        ),
        "truncated file": (
            [write_file(tmp_path / "truncated.p12", fresh.p12[: len(fresh.p12) // 2])],
            "The file is truncated or corrupt: it ends too early.",
        ),
        "PEM file": (
            [write_file(tmp_path / "identity.pem", fresh.pem() + fresh.key_pem())],
            "This is a PEM file, not a .p12.",
        ),
        "empty file": ([write_file(tmp_path / "empty.p12", b"")], "The file is empty."),
        "missing file": ([missing], f"Cannot read {missing}: No such file or directory."),
        "expired certificate": (
            [write_file(tmp_path / "expired.p12", expired.p12)],
            f"The certificate expired on {expiry:%Y-%m-%d %H:%M} UTC",
        ),
        "duplicate": (
            [write_file(tmp_path / "again.p12", existing.p12)],
            f"This identity is already imported as “{existing.common_name}”.",
        ),
        "missing password file": (
            [fresh_file, "--password-file", missing_password],
            f"Cannot read the password file {missing_password}",
        ),
    }
    commands = []
    for arguments, _ in cases.values():
        if "--password-file" not in arguments:
            arguments = [*arguments, "--password-file", password_file]
        commands.append(("identity", "import", *arguments))
    # No password file and no terminal to ask on: refused, not read from the pipe.
    cases["no password file, no terminal"] = (None, "Give --password-file")
    commands.append(("identity", "import", fresh_file))

    results = run_all(service, commands)
    for (label, (_, expected)), result in zip(cases.items(), results, strict=True):
        assert_one_line_error(result, expected, label)
        assert result.stdout == "", label

    assert identity_list(service) == before


@pytest.mark.e2e
def test_apikey_create_prints_the_secret_once_and_list_never_shows_it(running_service, new_admin):
    service = running_service
    names = ["build-mac-1", "release builders"]
    secrets = []
    for name in names:
        result = service.manage("apikey", "create", name)
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        lines = result.stdout.splitlines()
        assert len(lines) == 1, result.stdout
        # smk_<id>_<random>: the id names the key in listings, the random part is the secret.
        assert re.fullmatch(r"smk_[0-9a-f]{10}_[A-Za-z0-9_-]{40,}", lines[0]), lines[0]
        secrets.append(lines[0])
    assert len(set(secrets)) == len(secrets)
    random_parts = [secret[len("smk_") + 11 :] for secret in secrets]

    listing = service.manage("apikey", "list")
    assert listing.returncode == 0, listing.stderr
    rows = [line.split("\t") for line in listing.stdout.splitlines()]
    assert sorted(row[-1] for row in rows) == sorted(names)
    assert all(row[1:3] == ["active", "0 clients"] for row in rows), rows
    by_name = {row[-1]: row[0] for row in rows}
    for name, secret, random_part in zip(names, secrets, random_parts, strict=True):
        assert secret.startswith(by_name[name].rstrip("…")), (by_name[name], secret)
        assert secret not in listing.stdout
        assert random_part not in listing.stdout
        assert random_part[:12] not in listing.stdout

    # Nor does the web interface show a secret made on the command line.
    admin = new_admin(service)
    page = admin.get("/api-keys/")
    assert page.status_code == 200
    for name in names:
        assert name in admin.page_text(page)
    for random_part in random_parts:
        assert random_part[:12] not in page.text

    for name, error in [
        ("", "An API key needs a name."),
        ("   ", "An API key needs a name."),
        ("x" * 101, "The name has 101 characters; use at most 100 characters."),
        ("Build-Mac-1", "An API key named “build-mac-1” exists already; choose another name."),
    ]:
        assert_one_line_error(service.manage("apikey", "create", name), error, name)
    assert service.manage("apikey", "list").stdout == listing.stdout


def utc_day(row: dict[str, str]) -> datetime.date:
    return datetime.datetime.fromisoformat(row["created"]).astimezone(datetime.UTC).date()


def export(service, start: str, end: str, form: str):
    return service.manage("audit", "export", "--from", start, "--to", end, "--format", form)


@pytest.mark.e2e
def test_audit_export_writes_web_sign_records_as_csv_and_json(running_service, tmp_path, new_admin):
    service = running_service
    rsa_identity, ec_identity = make_identity(), make_identity(key_kind="ec256")
    password_file = write_file(tmp_path / "p12-password.txt", rsa_identity.password + "\n")
    for number, item in enumerate([rsa_identity, ec_identity]):
        path = write_file(tmp_path / f"{number}.p12", item.p12)
        result = service.manage("identity", "import", path, "--password-file", password_file)
        assert result.returncode == 0, result.stderr

    # Test-sign on the web as the admin: each signature is an audit record.
    admin = new_admin(service)
    signed = [
        (rsa_identity, "rsa-pss-sha256", "hello from the e2e tests"),
        (ec_identity, "ecdsa-sha384", 'a "quoted", comma, text\nwith a new line'),
    ]
    for item, algorithm, text in signed:
        response = admin.sign_on_web(admin.identity_pk(item.common_name), text, algorithm)
        assert response.status_code == 200
        assert "Verified with the certificate's public key" in admin.page_text(response)

    today = datetime.datetime.now(datetime.UTC).date()
    around = [str(today - datetime.timedelta(days=1)), str(today + datetime.timedelta(days=1))]
    as_csv, as_json = export(service, *around, "csv"), export(service, *around, "json")
    for result in (as_csv, as_json):
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""

    reader = csv.DictReader(io.StringIO(as_csv.stdout, newline=""))
    csv_rows = list(reader)
    assert reader.fieldnames == AUDIT_FIELDS
    json_rows = json.loads(as_json.stdout)["records"]
    # Each export is recorded before its first row, so the JSON export holds what the CSV one
    # did (its own record included) and then its own record. The same records: JSON's hold the
    # values the hash chain encodes (numbers, null), so compare their places in the chain.
    *before_json_export, json_export = json_rows
    assert [(row["sequence"], row["hash"]) for row in before_json_export] == [
        (int(row["sequence"]), row["hash"]) for row in csv_rows
    ]
    assert json_export["action"] == "audit.export"
    assert json_export["changes"] == {"from": around[0], "to": around[1], "format": "json"}
    # The imports and exports on the command line are recorded as the OS user's.
    imports = [row for row in json_rows if row["action"] == "identity.import"]
    assert [(row["source"], row["username"], row["identity_sha1"]) for row in imports] == [
        ("cli", getpass.getuser(), item.sha1) for item in (rsa_identity, ec_identity)
    ]
    assert json_export["source"] == "cli"

    sign_rows = [row for row in csv_rows if row["request_type"] == "sign"]
    assert len(sign_rows) == len(signed), csv_rows
    # Oldest first.
    for row, (item, algorithm, text) in zip(sign_rows, signed, strict=True):
        hash_name = algorithm.rsplit("-", 1)[1]
        assert row["status"] == "success"
        assert row["source"] == "web"
        assert row["username"] == admin.DEFAULT_USERNAME
        assert row["identity_common_name"] == item.common_name
        assert row["identity_sha1"].lower() == item.sha1.lower()
        assert row["algorithm"] == algorithm
        assert row["digest"] == hashlib.new(hash_name, text.encode()).hexdigest()
        assert row["address"] == "127.0.0.1"
        assert row["api_key_name"] == row["client_hostname"] == ""

    # One day, both ends included: the day the records were made has them, the day before none.
    day = utc_day(sign_rows[0])
    same_day = export(service, str(day), str(day), "json")
    assert same_day.returncode == 0, same_day.stderr
    same_day_rows = json.loads(same_day.stdout)["records"]
    assert all(utc_day(row) == day for row in same_day_rows), same_day_rows
    assert [row["hash"] for row in same_day_rows if row["request_type"] == "sign"] == [
        row["hash"] for row in sign_rows if utc_day(row) == day
    ]
    day_before = str(day - datetime.timedelta(days=1))
    empty_csv = export(service, day_before, day_before, "csv")
    assert empty_csv.returncode == 0, empty_csv.stderr
    assert list(csv.reader(io.StringIO(empty_csv.stdout))) == [AUDIT_FIELDS]
    empty_json = export(service, day_before, day_before, "json")
    assert empty_json.returncode == 0, empty_json.stderr
    assert json.loads(empty_json.stdout)["records"] == []

    # Bad dates and a range the wrong way round: one line, nothing written.
    bad = {
        ("2026-02-30", "2026-03-01"): "'2026-02-30' is not a date; write YYYY-MM-DD.",
        ("yesterday", "2026-03-01"): "'yesterday' is not a date; write YYYY-MM-DD.",
        ("2026-01-01", "2026/12/31"): "'2026/12/31' is not a date; write YYYY-MM-DD.",
        ("", "2026-12-31"): "'' is not a date; write YYYY-MM-DD.",
        ("2026-03-02", "2026-03-01"): "--from is after --to.",
    }
    commands = [
        ("audit", "export", "--from", start, "--to", end, "--format", ("csv", "json")[index % 2])
        for index, (start, end) in enumerate(bad)
    ]
    results = run_all(service, commands)
    for command, expected, result in zip(commands, bad.values(), results, strict=True):
        assert_one_line_error(result, expected, command)
        assert result.stdout == "", command


@pytest.mark.e2e
def test_audit_export_of_the_last_calendar_day_is_answered_not_crashed(running_service, new_admin):
    service = running_service
    # The command line: an (empty) export, or at worst a one-line error; never a traceback.
    for form in ("csv", "json"):
        result = export(service, "9999-12-31", "9999-12-31", form)
        assert "Traceback" not in result.stderr, result.stderr
        if result.returncode == 0:
            first_line = result.stdout.splitlines()[0]
            assert first_line == ",".join(AUDIT_FIELDS) or first_line.startswith('{"format"')
        else:
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    # The web: the Audit page's filter and the export form take the same dates.
    admin = new_admin(service)
    for path in (
        "/audit/?date_to=9999-12-31",
        "/audit/export/?date_from=9999-12-31&date_to=9999-12-31&format=csv",
    ):
        response = admin.get(path)
        assert response.status_code in {200, 400}, (path, response.status_code)
