import subprocess
import sys
from pathlib import Path

import pytest

from signing_manager import __version__
from signing_manager.cli import main

COMMAND = str(Path(sys.executable).with_name("signing-manager"))


def test_the_installed_command_reports_its_version():
    result = subprocess.run([COMMAND, "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == f"signing-manager {__version__}"


def test_the_client_does_not_depend_on_django():
    code = "import sys, signing_manager.cli; sys.exit('django' in sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


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

    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith(usage)
    assert message in error
