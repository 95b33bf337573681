import subprocess
import sys
from pathlib import Path

from signing_manager import __version__

COMMAND = str(Path(sys.executable).with_name("signing-manager"))


def test_the_installed_command_reports_its_version():
    result = subprocess.run([COMMAND, "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == f"signing-manager {__version__}"


def test_the_client_does_not_depend_on_django():
    code = "import sys, signing_manager.cli; sys.exit('django' in sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)
