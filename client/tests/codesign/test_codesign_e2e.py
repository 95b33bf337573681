"""``signing-manager codesign`` through the real CLI, signing with the real service.

Each test configures a CLI (its own API key) against one service for the module, which holds an
identity imported from a .p12 issued by the test CA. What the CLI writes is checked with tools we
did not write (``openssl cms -verify`` with the test CA as the only anchor, ``llvm-objdump``),
with ``codesign -v`` and ``-d -vvv``, with the client's debug log (every CMS digest of one
invocation in ONE ``sign/batch`` request) and with the service's audit export.
"""

from __future__ import annotations

import datetime
import functools
import html
import json
import os
import plistlib
import re
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization

from signing_service.test import CLIENT_FIRST_USE_NOTICES, fake_ca, make_identity

pytestmark = pytest.mark.e2e

TEAM = "ABCDE12345"
BATCH_ANSWERED = re.compile(r" DEBUG signing_manager\.service: POST /sign/batch -> 200$")
BATCH_ASKED = re.compile(r" DEBUG signing_manager\.service: POST /sign/batch$")
SINGLE_SIGN = re.compile(r" DEBUG signing_manager\.service: POST /sign( -> \d+)?$")
PATH_WITH_CLI = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


# --- Fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def developer(module_ops):
    made = make_identity(f"Developer ID Application: Codesign E2E {secrets.token_hex(3)} ({TEAM})")
    module_ops.import_identity(made)
    return made


@pytest.fixture
def cli(configured_cli):
    return configured_cli("codesign")


@pytest.fixture
def files(tmp_path) -> Path:
    """A folder for the code to sign (the CLI's home is elsewhere under tmp_path)."""
    folder = tmp_path / "files"
    folder.mkdir()
    return folder


# --- Helpers --------------------------------------------------------------------------------


def sha1_hex(certificate) -> str:
    return certificate.fingerprint(hashes.SHA1()).hex()  # noqa: S303


def designated_line(identifier: str, made) -> str:
    """The designated requirement codesign makes for a non-Apple chain that ends in its root."""
    return (
        f'designated => identifier "{identifier}" and certificate root = '
        f'H"{sha1_hex(made.ca_certificate)}"'
    )


def describe(cli, path: Path) -> str:
    """``codesign -d -vvv --all-architectures PATH``: what it prints on standard error, as
    Apple's tool; every architecture's block."""
    result = cli.run("codesign", "-d", "-vvv", "--all-architectures", str(path))
    assert result.returncode == 0, result.stderr
    return result.stderr


def requirements(cli, path: Path) -> str:
    """``codesign -d -r- --all-architectures PATH``: the requirements, on standard output."""
    result = cli.run("codesign", "-d", "-r-", "--all-architectures", str(path))
    assert result.returncode == 0, result.stderr
    return result.stdout


def signs(cli, *args: str):
    """``codesign -s ...`` succeeds; standard error holds nothing but blank lines and, on first
    use, the pin and registration lines (the stray blank line of bundle signing has its own
    test)."""
    result = cli.run("codesign", *args)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    others = [
        line
        for line in result.stderr.splitlines()
        if line and not line.startswith(CLIENT_FIRST_USE_NOTICES)
    ]
    assert others == [], result.stderr
    return result


@functools.cache
def anchor_file() -> str:
    """The test CA's certificate in a file: the anchor code signed here is trusted through."""
    folder = Path(tempfile.mkdtemp(prefix="anchor-"))
    (folder / "test-root.pem").write_bytes(fake_ca()[0].public_bytes(serialization.Encoding.PEM))
    return str(folder / "test-root.pem")


def verify(cli, path: Path) -> None:
    """``codesign -v --anchor TEST_ROOT PATH`` passes silently."""
    cli.ok("codesign", "-v", "--anchor", anchor_file(), str(path))


def assert_one_sentence(result, *fragments: str) -> None:
    """Exit status 1 and a one-line, one-sentence error; no traceback."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [
        line for line in result.stderr.splitlines() if not line.startswith(CLIENT_FIRST_USE_NOTICES)
    ]
    assert len(lines) == 1, result.stderr
    assert lines[0].endswith("."), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` (or the file itself): kind and bytes or symlink target."""
    paths = sorted(root.rglob("*")) if root.is_dir() else [root]
    entries: dict[str, tuple] = {}
    for path in paths:
        name = path.relative_to(root).as_posix() if root.is_dir() else path.name
        if path.is_symlink():
            entries[name] = ("symlink", os.readlink(path))
        elif path.is_dir():
            entries[name] = ("folder",)
        else:
            entries[name] = ("file", path.read_bytes(), path.stat().st_mode & 0o7777)
    return entries


def log_since(cli, offset: int) -> list[str]:
    """The lines the CLI added to its log file since it was ``offset`` bytes long."""
    path = Path(cli.ok("log", "--path").stdout.strip())
    assert path == cli.log_file
    return path.read_bytes()[offset:].decode("utf-8", "replace").splitlines()


def log_size(cli) -> int:
    return cli.log_file.stat().st_size if cli.log_file.exists() else 0


def sign_records(service, made) -> list[dict]:
    """The audit export's ``sign`` records of this identity (yesterday to tomorrow, UTC)."""
    today = datetime.datetime.now(datetime.UTC).date()
    export = service.manage(
        "audit",
        "export",
        "--from",
        (today - datetime.timedelta(days=1)).isoformat(),
        "--to",
        (today + datetime.timedelta(days=1)).isoformat(),
        "--format",
        "json",
    )
    assert export.returncode == 0, export.stderr
    return [
        row
        for row in json.loads(export.stdout)["records"]
        if row["request_type"] == "sign" and row["identity_sha1"] == made.sha1
    ]


def info_plist(identifier: str, executable: str, package_type: str) -> bytes:
    return plistlib.dumps(
        {
            "CFBundleIdentifier": identifier,
            "CFBundleExecutable": executable,
            "CFBundleName": executable,
            "CFBundlePackageType": package_type,
            "CFBundleVersion": "1.0",
        }
    )


def lay_out_app(machos, folder: Path) -> tuple[Path, list[Path]]:
    """App.app with nested code: a loose dylib, a versioned framework, a plug-in; the app and
    every Mach-O file in it (main executable first)."""
    app = folder / "App.app"
    contents = app / "Contents"
    (contents / "MacOS").mkdir(parents=True)
    (contents / "Info.plist").write_bytes(info_plist("com.example.app", "App", "APPL"))
    main = machos.copy("arm64-exe", contents / "MacOS", "App")

    frameworks = contents / "Frameworks"
    frameworks.mkdir()
    dylib = machos.copy("arm64-dylib", frameworks, "libx.dylib")
    framework = frameworks / "Lib.framework"
    version = framework / "Versions" / "A"
    (version / "Resources").mkdir(parents=True)
    (version / "Resources" / "Info.plist").write_bytes(info_plist("com.example.lib", "Lib", "FMWK"))
    library = machos.copy("arm64-dylib", version, "Lib")
    (framework / "Versions" / "Current").symlink_to("A")
    (framework / "Lib").symlink_to("Versions/Current/Lib")
    (framework / "Resources").symlink_to("Versions/Current/Resources")

    plugin = contents / "PlugIns" / "P.bundle" / "Contents"
    (plugin / "MacOS").mkdir(parents=True)
    (plugin / "Info.plist").write_bytes(info_plist("com.example.plugin", "P", "BNDL"))
    plugin_executable = machos.copy("arm64-bundle", plugin / "MacOS", "P")

    (contents / "Resources").mkdir()
    (contents / "Resources" / "data.txt").write_text("Some data.\n")
    return app, [main, dylib, library, plugin_executable]


def identity_pk(admin, common_name: str) -> int:
    """The identity's id, from the Signing Certificates page."""
    page = admin.client.get("/identities/")
    assert page.status_code == 200, page.status_code
    links = {
        html.unescape(name): int(pk)
        for pk, name in re.findall(r'<a href="/identities/(\d+)/">([^<]*)</a>', page.text)
    }
    assert common_name in links, f"{common_name!r} not among {sorted(links)}"
    return links[common_name]


def authorize_only(admin, common_name: str, key_names: list[str]) -> None:
    """The identity's Authorize form: only the chosen API keys may use it."""
    path = f"/identities/{identity_pk(admin, common_name)}/authorize/"
    response = admin.post(
        path,
        {
            "authorize_all_keys": "False",
            "authorized_keys": [str(admin.api_key_pk(name)) for name in key_names],
        },
    )
    assert response.status_code == 302, html.unescape(response.text)


# --- Signing files with the service's identity ----------------------------------------------

FILES = ["arm64-exe", "universal-exe", "universal2"]


@pytest.mark.parametrize("by", ["sha1", "common name"])
@pytest.mark.parametrize("name", FILES)
def test_codesign_signs_a_file_with_the_service_identity(
    name, by, cli, developer, machos, independent, test_ca, files
):
    assert sha1_hex(developer.ca_certificate) == sha1_hex(test_ca)
    path = machos.copy(name, files)
    wanted = developer.sha1.upper() if by == "sha1" else developer.common_name
    identifier = f"com.example.{name}"

    result = signs(cli, "-s", wanted, "-i", identifier, str(path))
    assert result.stdout == f"{path}: signed [{identifier}]\n"
    assert sorted(p.name for p in files.iterdir()) == [name]

    verify(cli, path)
    checked = independent.openssl_verifies(path.read_bytes(), developer.ca_certificate)
    assert checked == (2 if name.startswith("universal") else 1)
    found = independent.objdump_signature(path)
    assert len(found) == checked
    assert all(size > 0 for _, size in found)

    text = describe(cli, path)
    assert f"Identifier={identifier}\n" in text
    assert text.count(f"Authority={developer.common_name}\n") == checked
    assert text.count("Authority=Signing Manager Test CA\n") == checked
    assert requirements(cli, path).count(designated_line(identifier, developer) + "\n") == checked
    assert "Signature=adhoc" not in text
    assert "TeamIdentifier=not set\n" in text  # the test CA is not Apple


def test_codesign_with_a_timestamp(cli, developer, machos, independent, tsa, files):
    path = machos.copy("arm64-exe", files)
    before = tsa.requests
    signs(cli, "-s", developer.sha1, f"--timestamp={tsa.url}", str(path))
    assert tsa.requests == before + 1
    verify(cli, path)
    assert independent.openssl_verifies(path.read_bytes(), developer.ca_certificate) == 1
    text = describe(cli, path)
    assert re.search(r"^Timestamp=\w{3} \d\d?, \d{4} at \d\d?:\d\d:\d\d [AP]M$", text, re.M), text
    assert f"Authority={developer.common_name}\n" in text


def test_a_build_scripts_codesign_lines_run_unchanged(cli, developer, machos, tsa, files):
    # As in a release script: a bare --timestamp (here served by the farm's own TSA), then
    # Apple's usual check. No argument is adapted for us.
    app, _ = lay_out_app(machos, files)
    before = tsa.requests
    environment = {
        "SIGNING_MANAGER_TSA_URL": tsa.url,
        "SIGNING_MANAGER_ANCHORS": anchor_file(),  # the company's root, trusted machine-wide
        "ID": developer.common_name,
    }
    script = (
        'signing-manager codesign --force --options runtime --timestamp --sign "$ID" "$1" && '
        'signing-manager codesign --verify --deep --strict --verbose=2 "$1"'
    )

    result = subprocess.run(
        ["sh", "-c", script, "sh", str(app)],
        env={**cli.environment(cli.api_key), "PATH": PATH_WITH_CLI, **environment},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert f"{app}: valid on disk\n" in result.stderr
    assert tsa.requests > before  # every signature was timestamped by the farm's TSA
    text = describe(cli, app)
    assert "flags=0x10000(runtime)" in text
    assert "Timestamp=" in text


def test_a_chain_that_ends_at_an_untrusted_root_fails_unless_it_is_given(
    cli, developer, machos, files
):
    path = machos.copy("arm64-exe", files)
    signs(cli, "-s", developer.sha1, str(path))

    untrusted = cli.run("codesign", "-v", str(path))
    trusted = cli.run("codesign", "-vvv", "--anchor", anchor_file(), str(path))
    pinned = cli.run(
        "codesign",
        "-vv",
        "--anchor",
        anchor_file(),
        "-R",
        f'=certificate root = H"{sha1_hex(developer.ca_certificate)}"',
        str(path),
    )

    assert untrusted.returncode == 1
    assert untrusted.stderr == (
        f"{path}: the certificate chain ends at “Signing Manager Test CA”, which is not a "
        "trusted anchor (Apple's roots, or a root given with --anchor FILE or "
        "SIGNING_MANAGER_ANCHORS)\n"
    )
    assert trusted.returncode == 0, trusted.stderr
    assert trusted.stderr.splitlines() == [
        f"{path}: valid on disk",
        f"{path}: satisfies its Designated Requirement",
        f"{path}: chain trusted: it ends at “Signing Manager Test CA” (an anchor given with "
        "--anchor)",
    ]
    assert pinned.returncode == 0, pinned.stderr
    assert f"{path}: explicit requirement satisfied\n" in pinned.stderr


# --- An app bundle with nested code, in one batch -------------------------------------------


def test_codesign_signs_an_app_bundle_in_one_batch(
    module_service, module_ops, cli, machos, independent, files
):
    made = make_identity(f"Developer ID Application: Bundle E2E {secrets.token_hex(3)} ({TEAM})")
    module_ops.import_identity(made)
    app, executables = lay_out_app(machos, files)
    assert sign_records(module_service, made) == []
    offset = log_size(cli)

    result = cli.run("-d", "codesign", "-s", made.sha1.upper(), str(app))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{app}: signed bundle ({len(executables)} Mach-O files)\n"
    assert "Traceback" not in result.stderr

    # The whole bundle: one batch request, answered 200, and no single-digest request.
    lines = log_since(cli, offset)
    assert sum(bool(BATCH_ASKED.search(line)) for line in lines) == 1, lines
    assert sum(bool(BATCH_ANSWERED.search(line)) for line in lines) == 1, lines
    assert not any(SINGLE_SIGN.search(line) for line in lines), lines
    echoed = result.stderr.splitlines()  # -d: the same debug lines on standard error
    assert sum(bool(BATCH_ANSWERED.search(line)) for line in echoed) == 1, result.stderr

    # The app and its nested bundles check (the loose dylib on its own too); openssl verifies
    # every Mach-O file inside.
    framework = app / "Contents" / "Frameworks" / "Lib.framework"
    plugin = app / "Contents" / "PlugIns" / "P.bundle"
    for target in (app, framework, plugin, executables[1]):
        verify(cli, target)
    slices = sum(
        independent.openssl_verifies(path.read_bytes(), made.ca_certificate) for path in executables
    )
    assert slices == len(executables)
    assert all(len(independent.objdump_signature(path)) == 1 for path in executables)

    # The audit holds one successful sign record per slice signed.
    records = sign_records(module_service, made)
    assert len(records) == slices, records
    assert all(row["status"] == "success" for row in records), records
    assert len({row["digest"] for row in records}) == slices

    text = describe(cli, app)
    assert "Identifier=com.example.app\n" in text
    assert "Format=app bundle with Mach-O thin (arm64)\n" in text
    assert f"Authority={made.common_name}\n" in text
    assert designated_line("com.example.app", made) + "\n" in requirements(cli, app)
    assert re.search(r"^Sealed Resources version=2 rules=\d+ files=[1-9]\d*$", text, re.M), text
    assert designated_line("com.example.lib", made) + "\n" in requirements(cli, framework)
    assert designated_line("com.example.plugin", made) + "\n" in requirements(cli, plugin)

    # A resource changed afterwards breaks the seal.
    (app / "Contents" / "Resources" / "data.txt").write_text("Changed.\n")
    broken = cli.run("codesign", "-v", str(app))
    assert broken.returncode == 1
    assert "file modified: Resources/data.txt" in broken.stderr


def test_a_signed_bundle_needs_force(cli, developer, machos, independent, files):
    app, executables = lay_out_app(machos, files)
    signs(cli, "-s", developer.sha1, str(app))
    before = snapshot(app)

    refused = cli.run("codesign", "-s", developer.sha1, str(app))
    assert refused.returncode == 1, refused.stderr
    assert "already signed" in refused.stderr
    assert "use -f to replace it" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert snapshot(app) == before

    signs(cli, "-f", "-s", developer.common_name, "-i", "com.example.other", str(app))
    verify(cli, app)
    assert "Identifier=com.example.other\n" in describe(cli, app)
    for path in executables:
        assert independent.openssl_verifies(path.read_bytes(), developer.ca_certificate) == 1


def test_signing_a_bundle_writes_nothing_on_standard_error(new_cli, machos, files):
    """What Apple's codesign does: a successful signing is silent on standard error (the
    progress shows on a terminal only)."""
    cli = new_cli()
    app, _ = lay_out_app(machos, files)
    result = cli.run("codesign", "-s", "-", str(app))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


# --- Refusals -------------------------------------------------------------------------------


def test_an_unknown_identity_is_refused_and_the_file_untouched(cli, developer, machos, files):
    path = machos.copy("arm64-exe", files)
    app, _ = lay_out_app(machos, files)
    before, app_before = path.read_bytes(), snapshot(app)
    for wanted in ("No Such Identity", "0" * 40, developer.common_name.lower()):
        for target in (path, app):
            result = cli.run("codesign", "-s", wanted, str(target))
            assert_one_sentence(result, f"No identity available to this API key matches “{wanted}”")
    assert path.read_bytes() == before
    assert snapshot(app) == app_before
    assert sorted(p.name for p in files.iterdir()) == ["App.app", "arm64-exe"]


def test_an_identity_the_key_is_not_authorized_for_is_refused(
    module_service, module_ops, module_admin, cli, new_cli, machos, independent, files
):
    restricted = make_identity(f"Developer ID Application: Restricted {secrets.token_hex(3)}")
    module_ops.import_identity(restricted)
    other_name = f"codesign other {secrets.token_hex(3)}"
    other = new_cli(module_ops.create_api_key(other_name))
    other.configure(module_service.url)
    authorize_only(module_admin, restricted.common_name, [other_name])

    path = machos.copy("arm64-exe", files)
    before = path.read_bytes()
    for wanted in (restricted.sha1.upper(), restricted.common_name):
        result = cli.run("codesign", "-s", wanted, str(path))
        assert_one_sentence(result, f"No identity available to this API key matches “{wanted}”")
        assert path.read_bytes() == before
    assert sorted(p.name for p in files.iterdir()) == ["arm64-exe"]
    assert sign_records(module_service, restricted) == []

    # The key it is authorized for signs with it.
    signs(other, "-s", restricted.sha1, str(path))
    assert independent.openssl_verifies(path.read_bytes(), restricted.ca_certificate) == 1


def test_a_stopped_service_leaves_the_files_untouched(
    start_service, new_cli, machos, independent, files, tmp_path
):
    service = start_service()
    made = make_identity(f"Developer ID Application: Stopped {secrets.token_hex(3)} ({TEAM})")
    imported = service.import_identity(made, tmp_path / "ops")
    assert imported.returncode == 0, imported.stderr
    created = service.manage("apikey", "create", "codesign stopped")
    assert created.returncode == 0, created.stderr
    cli = new_cli(created.stdout.strip())
    cli.configure(service.url)

    first = machos.copy("arm64-exe", files, "first")
    signs(cli, "-s", made.sha1, str(first))  # pins, registers and signs while it runs
    assert independent.openssl_verifies(first.read_bytes(), made.ca_certificate) == 1

    path = machos.copy("arm64-exe", files)
    app, _ = lay_out_app(machos, files)
    before, app_before = path.read_bytes(), snapshot(app)
    assert service.stop() == 0
    for target in (path, app):
        result = cli.run("codesign", "-s", made.sha1, str(target))
        where = service.url.removeprefix("https://")
        assert_one_sentence(result, f"Nothing answers at {where} (connection refused)")
    assert path.read_bytes() == before
    assert snapshot(app) == app_before
    assert sorted(p.name for p in files.iterdir()) == ["App.app", "arm64-exe", "first"]


def test_a_signed_file_needs_force(cli, developer, machos, independent, files):
    path = machos.copy("universal-exe", files)
    signs(cli, "-s", developer.sha1, "-i", "com.example.first", str(path))
    before = path.read_bytes()

    refused = cli.run("codesign", "-s", developer.sha1, "-i", "com.example.second", str(path))
    assert refused.returncode == 1, refused.stderr
    assert "already signed" in refused.stderr
    assert "use -f to replace it" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert path.read_bytes() == before
    assert sorted(p.name for p in files.iterdir()) == ["universal-exe"]

    signs(cli, "-f", "-s", developer.sha1, "-i", "com.example.second", str(path))
    assert path.read_bytes() != before
    verify(cli, path)
    assert independent.openssl_verifies(path.read_bytes(), developer.ca_certificate) == 2
    text = describe(cli, path)
    assert "Identifier=com.example.second\n" in text
    designated = designated_line("com.example.second", developer) + "\n"
    assert requirements(cli, path).count(designated) == 2


# --- Ad-hoc: no service at all --------------------------------------------------------------


def test_ad_hoc_signing_needs_no_service(new_cli, machos, independent, files):
    cli = new_cli()  # never configured: no URL, no API key
    path = machos.copy("universal-exe", files)
    app, executables = lay_out_app(machos, files)

    result = signs(cli, "-s", "-", "-i", "com.example.adhoc", str(path), str(app))
    assert result.stdout.splitlines() == [
        f"{path}: signed [com.example.adhoc]",
        f"{app}: signed bundle ({len(executables)} Mach-O files)",
    ]
    for target in (path, app, executables[1]):
        verify(cli, target)
    assert len(independent.objdump_signature(path)) == 2
    assert all(len(independent.objdump_signature(p)) == 1 for p in executables)
    text = describe(cli, path)
    assert text.count("Signature=adhoc\n") == 2
    assert "Authority=" not in text
    app_text = describe(cli, app)
    assert "Signature=adhoc\n" in app_text
    assert "Identifier=com.example.adhoc\n" in app_text

    assert not cli.config_file.exists()
    assert not cli.token_file.exists()
    log = cli.log_file.read_text() if cli.log_file.exists() else ""
    assert "POST" not in log
