import subprocess
import sys
from pathlib import Path

import pytest

from signing_manager import __version__
from signing_manager.cli import find_identity, main
from signing_manager.errors import AmbiguousIdentity, IdentityNotFound
from signing_manager.service import RemoteIdentity

COMMAND = str(Path(sys.executable).with_name("signing-manager"))


def test_the_installed_command_reports_its_version():
    result = subprocess.run([COMMAND, "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == f"signing-manager {__version__}"


def test_the_client_does_not_depend_on_django():
    code = "import sys, signing_manager.cli; sys.exit('django' in sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_command_line_starts_without_what_only_some_commands_need():
    # Each of these takes tens of milliseconds to import, paid at every start: pkgutil on a
    # small package would spend most of its time importing them.
    slow = ("httpx", "rich", "signing_manager.codesign.command", "importlib.metadata")
    code = (
        "import sys, signing_manager.cli; "
        f"sys.exit(' '.join(m for m in {slow} if m in sys.modules) or None)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("argv", "usage", "message"),
    [
        (["--bogus"], "usage: signing-manager [-h]", "--bogus is not an option of signing-manager"),
        (
            ["productsign", "--sign", "x", "a.pkg", "b.pkg", "extra"],
            "usage: signing-manager productsign",
            "productsign does not take “extra”",
        ),
        (
            ["pkgutil", "--check-signature", "a.pkg", "--verbose=2"],
            "usage: signing-manager pkgutil",
            "--verbose is not an option of pkgutil here",
        ),
    ],
)
def test_what_a_command_does_not_take_is_refused_under_its_own_usage(argv, usage, message, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)

    assert exited.value.code == 1
    error = capsys.readouterr().err
    assert error.startswith(usage)
    assert message in error


def test_argparse_s_own_usage_errors_exit_1_but_codesign_s_2_as_apple_s(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["sign", "file.bin"])  # no --identity
    assert exited.value.code == 1
    assert "the following arguments are required: --identity" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["codesign", "-s", "-", "-d", "x"])  # -s and -d together
    assert exited.value.code == 2


@pytest.mark.parametrize(
    ("argv", "sentence"),
    [
        (["-d"], "-d alone does nothing: save it with -s"),
        (["--json"], "--json goes with -r: signing-manager -r --json"),
        (["-p", "--json"], "--json goes with -r"),
    ],
)
def test_options_that_do_nothing_alone_say_so(argv, sentence, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SIGNING_MANAGER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("SIGNING_MANAGER_LOG_DIR", str(tmp_path / "log"))
    assert main(argv) == 1
    sentences = [
        line for line in capsys.readouterr().err.splitlines() if line.startswith("signing-manager:")
    ]  # -d also copies the log's lines to stderr
    assert len(sentences) == 1
    assert sentences[0].startswith(f"signing-manager: {sentence}")


def remote(common_name: str, sha1: str) -> RemoteIdentity:
    """An identity as the service lists it; only the names matter to finding it."""
    return RemoteIdentity(sha1, sha1 * 2, common_name, None, (), "RSA", 2048, None)


APPLICATION = remote("Developer ID Application: Example Corp (TEAM123456)", "a" * 40)
INSTALLER = remote("Developer ID Installer: Example Corp (TEAM123456)", "b" * 40)
SHORT = remote("Developer ID", "c" * 40)


def test_a_part_of_the_name_only_one_identity_has_finds_it_as_apple_s_codesign_does():
    identities = [APPLICATION, INSTALLER]
    assert find_identity(identities, "Developer ID Application") is APPLICATION
    assert find_identity(identities, "Installer") is INSTALLER
    assert find_identity(identities, "B" * 40) is INSTALLER
    # The whole name wins over being a part of another's.
    assert find_identity([*identities, SHORT], "Developer ID") is SHORT


def test_a_part_several_have_is_ambiguous_and_lists_them():
    with pytest.raises(AmbiguousIdentity) as refused:
        find_identity([APPLICATION, INSTALLER], "Example Corp")
    assert str(refused.value) == (
        "2 identities match “Example Corp”; give one's SHA-1 or whole name: "
        f"“{APPLICATION.common_name}” ({'A' * 40}), “{INSTALLER.common_name}” ({'B' * 40})."
    )


def test_the_wrong_case_finds_nothing_but_names_the_close_candidates():
    with pytest.raises(IdentityNotFound) as refused:
        find_identity([APPLICATION, INSTALLER], "developer id application")
    assert str(refused.value) == (
        "No identity available to this API key matches “developer id application”; close: "
        f"“{APPLICATION.common_name}” ({'A' * 40})."
    )
    with pytest.raises(IdentityNotFound, match="`signing-manager -r` lists them"):
        find_identity([APPLICATION], "Nobody")
