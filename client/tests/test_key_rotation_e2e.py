"""Changing the API key, as admins rotate them: on a desktop with a keyring, and on a CI runner
without one (the key in ``SIGNING_MANAGER_API_KEY``). The real CLI against a real service.

A client token belongs to the key it was registered with: another key registers afresh (and
says so), a key used before finds its own token again, a bogus key or none is refused in a
sentence that says how to set one, and a saved token never stands in for a missing key.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

import pytest

from signing_manager.config import key_id
from signing_service.test import CLIENT_FIRST_USE_NOTICES, make_identity

pytestmark = pytest.mark.e2e

REGISTERING = CLIENT_FIRST_USE_NOTICES[1]
BOGUS = "smk_0000000000_" + "x" * 43


@dataclass
class Rotation:
    service: object
    admin: object
    sha1: str
    tag: str

    def new_key(self, name: str) -> tuple[str, str]:
        name = f"{name} {self.tag}"
        return name, self.admin.create_api_key(name)


@pytest.fixture(scope="module")
def rotation(module_service, module_ops, module_admin) -> Rotation:
    tag = secrets.token_hex(3)
    sha1 = module_ops.import_identity(make_identity(f"Rotation {tag}"))
    return Rotation(module_service, module_admin, sha1, tag)


def lists(cli, sha1: str, **kwargs) -> str:
    """``-r`` succeeds and lists the identity; its stderr."""
    result = cli.run("-r", **kwargs)
    assert result.returncode == 0, result.stderr
    assert sha1 in result.stdout
    return result.stderr


def refused(result) -> str:
    """Exit 1 and one sentence on stderr (after any first-use notices); the sentence."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    notices = CLIENT_FIRST_USE_NOTICES
    lines = [line for line in result.stderr.splitlines() if not line.startswith(notices)]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_ci_runner_follows_the_key_in_its_variable(rotation, new_cli):
    old_name, old_key = rotation.new_key("runner old")
    cli = new_cli(old_key)
    cli.configure(rotation.service.url)  # -s with the same key the variable holds
    assert REGISTERING + old_key[:14] + "…" in lists(cli, rotation.sha1)

    # The admin switches the old key off and hands out a new one: only the variable changes.
    rotation.admin.toggle_api_key(old_name)
    _, new_key = rotation.new_key("runner new")
    stderr = lists(cli, rotation.sha1, api_key=new_key)
    assert stderr == f"{REGISTERING}{new_key[:14]}… (its first use on this machine).\n"
    assert (cli.config_dir / "client-tokens" / key_id(new_key)).is_file()
    # The old key's client is not used any more: its refusal names that key, not the new one.
    sentence = refused(cli.run("-r", api_key=old_key))
    assert f"“{old_name}” is inactive" in sentence
    assert "Ask an admin to switch it on, or set another key" in sentence

    # A bogus key is refused by name and source, and no token stands in for a missing one.
    assert refused(cli.run("-r", api_key=BOGUS)) == (
        "signing-manager: The service does not accept the API key smk_0000000000… from "
        "SIGNING_MANAGER_API_KEY: it is mistyped, deleted or of another service; set the right "
        "one (this machine has no keyring: set the environment variable "
        "SIGNING_MANAGER_API_KEY)."
    )
    assert refused(cli.run("-r", api_key=None)) == (
        "signing-manager: No API key is set (this machine has no keyring: set the environment "
        "variable SIGNING_MANAGER_API_KEY)."
    )
    assert "API key: Not set" in cli.ok("-p", api_key=None).stdout

    # Back to the old key, switched on again: its own token, no new registration.
    rotation.admin.toggle_api_key(old_name)
    assert lists(cli, rotation.sha1, api_key=old_key) == ""
    assert rotation.admin.client_pks(old_name)  # still the one client of that key


def test_a_desktop_keeps_the_key_in_its_keyring_and_follows_s(rotation, new_cli):
    first_name, first_key = rotation.new_key("desktop first")
    cli = new_cli(keyring=True)
    saved = cli.run("-s", "-i", rotation.service.url, "-a", first_key, "-u", api_key=None)
    assert saved.returncode == 0, saved.stderr
    assert saved.stdout == "Settings saved; the API key is in the keyring.\n"
    lists(cli, rotation.sha1, api_key=None)
    entries = cli.keyring_entries()
    assert entries["api_key"] == first_key
    assert entries[f"client_token.{key_id(first_key)}"].startswith("smc_")
    assert not (cli.config_dir / "client-tokens").exists()  # nothing secret in files
    assert first_key not in cli.files_text().replace(json.dumps(entries), "")

    # A new key saved with -s: the next run registers with it.
    rotation.admin.toggle_api_key(first_name)
    _, second_key = rotation.new_key("desktop second")
    cli.ok("-s", "-i", rotation.service.url, "-a", second_key, "-u", api_key=None)
    assert lists(cli, rotation.sha1, api_key=None).startswith(REGISTERING + second_key[:14])
    shown = cli.ok("-p", api_key=None).stdout
    assert f"API key: Set\nAPI key from: the keyring ({second_key[:14]}…)\n" in shown

    # The variable, when set, wins over the keyring; -s says so instead of staying silent.
    warned = cli.run("-s", "-i", rotation.service.url, "-a", second_key, "-u", api_key=BOGUS)
    assert warned.returncode == 0
    assert warned.stderr == (
        "signing-manager: warning: SIGNING_MANAGER_API_KEY is set here, to another key "
        "(smk_0000000000…), and wins over the keyring: unset it to use the key just saved.\n"
    )
    assert "The service does not accept the API key smk_0000000000… from SIGNING_MANAGER" in (
        refused(cli.run("-r", api_key=BOGUS))
    )

    # Without any key, the saved tokens are not used; the sentence says how to set one here.
    entries = json.loads(cli.keyring_file.read_text())
    del entries["signing-manager"]["api_key"]
    cli.keyring_file.write_text(json.dumps(entries))
    assert refused(cli.run("-r", api_key=None)) == (
        "signing-manager: No API key is set (`signing-manager -s -i URL -a API_KEY` keeps it in "
        "the keyring)."
    )


def test_a_token_of_an_earlier_version_is_kept_for_its_key(rotation, new_cli):
    """Before tokens were filed by key, the one token lay in ``client-token``: the key it was
    registered with goes on using it; there is no second registration."""
    name, api_key = rotation.new_key("upgrade")
    cli = new_cli(api_key)
    cli.configure(rotation.service.url)
    lists(cli, rotation.sha1)
    token_file = cli.config_dir / "client-tokens" / key_id(api_key)
    (cli.config_dir / "client-token").write_text(token_file.read_text())
    token_file.unlink()

    assert lists(cli, rotation.sha1).startswith(REGISTERING)  # tried, the service said 409
    assert len(rotation.admin.client_pks(name)) == 1
    assert not (cli.config_dir / "client-token").exists()
    assert token_file.is_file()
