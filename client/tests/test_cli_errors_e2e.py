"""The mistakes a new user makes, each answered by the real CLI in one sentence that says what
to do: exit status 1, nothing else on stderr, no traceback. Against a real service, a plain-HTTP
server, a port that answers nothing, a port where nothing listens, and broken settings.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import socket
import stat
import threading
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from signing_service.test import CLIENT_FIRST_USE_NOTICES, free_port, make_identity

pytestmark = pytest.mark.e2e

MEND = "fix it, or delete it and save the settings again with -s."


def one_sentence(result) -> str:
    """The command failed with exit status 1 and one sentence (first-use notices aside)."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    lines = [
        line for line in result.stderr.splitlines() if not line.startswith(CLIENT_FIRST_USE_NOTICES)
    ]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("signing-manager: ")
    return lines[0].removeprefix("signing-manager: ")


@pytest.fixture(scope="module")
def served(module_service, module_ops):
    """The module's service with one identity and an API key for these tests."""
    made = make_identity("CLI errors")
    module_ops.import_identity(made)
    return module_service, module_ops.create_api_key("CLI errors"), made


# --- Settings on disk -----------------------------------------------------------------------------


def test_settings_that_are_not_an_object_are_named_with_the_mend(new_cli):
    cli = new_cli("smk_0123456789_" + "k" * 43)
    cli.config_dir.mkdir(parents=True)
    for content, problem in [
        ("[1, 2]", "are not a JSON object"),
        ('{"api_host": ', "are not valid JSON (Expecting value: line 1 column 14 (char 13))"),
        ('{"trust_self_signed": "yes"}', None),
    ]:
        cli.config_file.write_text(content)
        sentence = one_sentence(cli.run("-r"))
        if problem:
            assert sentence == f"The settings in {cli.config_file} {problem}: {MEND}"
        else:
            assert sentence == (
                f"The setting “trust_self_signed” in {cli.config_file} must be a JSON true or "
                f"false: {MEND}"
            )


def test_a_config_folder_that_cannot_be_written_is_named(new_cli, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # a folder below a file cannot exist, even for root
    cli = new_cli("smk_0123456789_" + "k" * 43)
    folder = blocker / "signing-manager"
    result = cli.run(
        "-s", "-i", "https://signing.example", "-a", cli.api_key,
        env={"SIGNING_MANAGER_CONFIG_DIR": str(folder)},
    )  # fmt: skip
    assert one_sentence(result) == (
        f"Cannot write the settings in {folder}: Not a directory; make it writable, or set "
        "SIGNING_MANAGER_CONFIG_DIR to a folder you can write."
    )


# --- The service's address ------------------------------------------------------------------------


def test_the_api_s_own_path_on_the_url_is_taken_off(served, new_cli):
    service, api_key, made = served
    cli = new_cli(api_key)
    cli.ok("-s", "-i", service.url + "/api/v1/", "-a", api_key, "-u")
    assert json.loads(cli.config_file.read_text())["api_host"] == service.url
    assert made.sha1.upper() in cli.ok("-r").stdout


def test_an_address_without_the_client_api_says_so(served, new_cli):
    service, api_key, _ = served
    cli = new_cli(api_key)
    cli.ok("-s", "-i", service.url + "/somewhere", "-a", api_key, "-u")
    assert one_sentence(cli.run("-r")) == (
        f"{service.url}/somewhere has no client API (HTTP 404): use the Signing Service's "
        "address as its main page shows it."
    )


@contextlib.contextmanager
def plain_http_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_a_plain_http_port_says_it_does_not_speak_https(new_cli):
    with plain_http_server() as port:
        for trust in (True, False):
            cli = new_cli("smk_0123456789_" + "k" * 43)
            cli.configure(f"https://127.0.0.1:{port}", trust=trust)
            assert one_sentence(cli.run("-r")) == (
                f"127.0.0.1:{port} does not speak HTTPS (a plain-HTTP port?): use the https:// "
                "address the service's main page shows."
            )


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def test_a_server_that_never_answers_is_named_after_the_wait(new_cli):
    with silent_port() as port:
        cli = new_cli("smk_0123456789_" + "k" * 43)
        cli.configure(f"https://127.0.0.1:{port}", trust=False)
        assert one_sentence(cli.run("-r")) == (
            f"https://127.0.0.1:{port} did not answer within 10 s: check that the Signing "
            "Service runs there and that this machine can reach it (firewall, proxy)."
        )


def test_a_port_where_nothing_listens_asks_whether_the_service_runs(new_cli):
    port = free_port()
    cli = new_cli("smk_0123456789_" + "k" * 43)
    cli.configure(f"https://127.0.0.1:{port}")
    assert one_sentence(cli.run("-r")) == (
        f"Nothing answers at 127.0.0.1:{port} (connection refused): check that the Signing "
        "Service runs there and that the URL's port is right."
    )


# --- A CI runner that keeps nothing between runs ------------------------------------------------


def test_a_runner_trusts_the_certificate_its_variable_names_and_no_other(served, new_cli):
    service, api_key, made = served
    cli = new_cli(api_key)
    fingerprint = service_fingerprint(service)
    variables = {"SIGNING_MANAGER_URL": service.url, "SIGNING_MANAGER_SERVICE_SHA256": fingerprint}
    listed = cli.run("-r", env=variables)
    assert listed.returncode == 0, listed.stderr
    assert made.sha1.upper() in listed.stdout
    assert not (cli.config_dir / "pinned-certificate.pem").exists()
    # Lower case without colons is the same fingerprint.
    same = {**variables, "SIGNING_MANAGER_SERVICE_SHA256": fingerprint.replace(":", "").lower()}
    assert cli.run("-r", env=same).returncode == 0

    other = "AB:" * 31 + "AB"
    assert one_sentence(
        cli.run("-r", env={**variables, "SIGNING_MANAGER_SERVICE_SHA256": other})
    ) == (
        f"The service presented a certificate with SHA-256 {fingerprint}, not the {other} that "
        "SIGNING_MANAGER_SERVICE_SHA256 names: if it was replaced on purpose, set the variable "
        "to the fingerprint its main page shows."
    )
    assert one_sentence(
        cli.run("-r", env={**variables, "SIGNING_MANAGER_SERVICE_SHA256": "AB:CD"})
    ) == (
        "SIGNING_MANAGER_SERVICE_SHA256 must be the service certificate's SHA-256 as its main "
        "page shows it (64 hex digits, colons allowed)."
    )
    # Without it (and without -u), the self-signed certificate is not trusted: the sentence
    # names both ways to trust it.
    assert "a CI runner: set SIGNING_MANAGER_SERVICE_SHA256 to its fingerprint" in one_sentence(
        cli.run("-r", env={"SIGNING_MANAGER_URL": service.url})
    )


def service_fingerprint(service) -> str:
    certificate = x509.load_pem_x509_certificate(service.cert_path.read_bytes())
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


# --- Without a keyring ----------------------------------------------------------------------------


def test_without_a_keyring_the_sentences_name_the_variables(new_cli):
    cli = new_cli()
    assert one_sentence(cli.run("-r", api_key=None)) == (
        "No service is configured: run `signing-manager -s -i URL -a API_KEY` first, or set "
        "SIGNING_MANAGER_URL."
    )
    assert one_sentence(
        cli.run("-r", api_key=None, env={"SIGNING_MANAGER_URL": "https://signing.example"})
    ) == (
        "No API key is set (this machine has no keyring: set the environment variable "
        "SIGNING_MANAGER_API_KEY)."
    )
    assert one_sentence(
        cli.run("-s", "-i", "https://signing.example", "-a", "smk_0123456789_k", api_key=None)
    ) == (
        "Settings saved, but this machine has no keyring to keep the API key: set the "
        "environment variable SIGNING_MANAGER_API_KEY to it (and SIGNING_MANAGER_URL if you like)."
    )


# --- Output ---------------------------------------------------------------------------------------


def test_the_listing_fits_the_terminal_and_a_pipe_gets_a_row_per_identity(served, new_cli):
    service, api_key, made = served
    cli = new_cli(api_key)
    cli.configure(service.url)
    narrow = cli.ok("-r", env={"COLUMNS": "80"}).stdout
    assert max(len(line) for line in narrow.splitlines()) <= 80
    piped = cli.ok("-r").stdout
    (row,) = [line for line in piped.splitlines() if made.sha1.upper() in line]
    assert made.common_name in row


def test_p_and_r_together_print_both(served, new_cli):
    service, api_key, made = served
    cli = new_cli(api_key)
    cli.configure(service.url)
    shown = cli.ok("-p", "-r").stdout
    assert shown.startswith(f"api_host: {service.url}\n")
    assert made.sha1.upper() in shown


def fake_clipboard(folder) -> dict[str, str]:
    """An ``xclip`` on PATH that keeps what it is given, as X11's clipboard would."""
    tool = folder / "bin" / "xclip"
    tool.parent.mkdir()
    tool.write_text(f'#!/bin/sh\ncat > "{folder}/clipboard"\n')
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    return {"PATH": f"{tool.parent}:{os.environ['PATH']}", "DISPLAY": ":99"}


def test_copy_puts_the_line_on_the_clipboard_where_there_is_one(served, new_cli, tmp_path):
    service, api_key, made = served
    cli = new_cli(api_key)
    cli.configure(service.url)
    cli.ok("-r")  # the first use, with its notices
    clipboard = fake_clipboard(tmp_path)
    copied = cli.run("identity", "codesign", made.common_name, "--copy", env=clipboard)
    assert copied.returncode == 0, copied.stderr
    line = f'signing-manager codesign -f -s "{made.sha1.upper()}"'
    assert copied.stdout == line + "\n"
    assert copied.stderr == "Copied to the clipboard.\n"
    assert (tmp_path / "clipboard").read_text() == line

    without = cli.run("identity", "sha1", made.common_name, "--copy", env={"DISPLAY": ""})
    assert without.stdout == made.sha1.upper() + "\n"  # printed, whatever the clipboard
    assert one_sentence(without) == (
        "There is no clipboard to copy to here (no pbcopy, clip, wl-copy, xclip or xsel for "
        "this session): copy the line printed above instead."
    )


# --- The log --------------------------------------------------------------------------------------


def test_codesign_runs_reach_the_log_with_their_result_and_duration(new_cli, tmp_path):
    cli = new_cli()
    unsigned = tmp_path / "notes.txt"
    unsigned.write_text("not code")
    result = cli.run("codesign", "-v", str(unsigned), api_key=None)
    assert result.returncode == 1
    log = cli.log_file.read_text()
    assert f"Started: signing-manager codesign -v {unsigned}" in log
    assert f"codesign: {unsigned}: " in log
    assert f"with status 1: signing-manager codesign -v {unsigned}" in log


def test_the_api_key_given_with_a_never_reaches_the_log(new_cli):
    api_key = "smk_0123456789_" + "k" * 43
    cli = new_cli()
    cli.run("-s", "-i", "https://signing.example", "-a", api_key, "-a" + api_key, api_key=api_key)
    log = cli.log_file.read_text()
    assert "Started: signing-manager -s -i https://signing.example -a (API key)" in log
    assert "k" * 20 not in log
