"""Opening the window: ``signing-manager-gui``, and ``signing-manager`` without arguments (the
window where there is a display, else the help); without PySide6, a sentence saying how to
install it. These run with or without PySide6 installed."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from signing_manager import cli
from signing_manager.gui import launch

# As if the gui extra were not installed: importing PySide6 fails.
WITHOUT_QT = "import sys; sys.modules['PySide6'] = None; "


@pytest.fixture
def no_display(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


@pytest.fixture
def window_opened(monkeypatch) -> list[list[str]]:
    """Calls to open the window, recorded instead of opening one."""
    calls: list[list[str]] = []
    monkeypatch.setattr(launch, "main", lambda argv=None: calls.append(argv) or 0)
    return calls


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", **env},
    )


def test_without_pyside6_the_window_command_says_how_to_install_it():
    result = run_python(
        WITHOUT_QT + "from signing_manager.gui.launch import main; sys.exit(main())"
    )
    assert result.returncode == 1
    assert result.stderr == (
        "signing-manager: the window needs PySide6: install the client with its gui extra "
        "(pipx install './signing_manager-VERSION-py3-none-any.whl[gui]', the wheel the Signing "
        "Service offers; or pip install 'signing-manager[gui]').\n"
    )


def test_without_pyside6_signing_manager_prints_its_help_and_the_sentence(tmp_path):
    result = run_python(
        WITHOUT_QT + "from signing_manager.cli import main; sys.exit(main([]))",
        DISPLAY=":0",
        SIGNING_MANAGER_CONFIG_DIR=str(tmp_path / "config"),
        SIGNING_MANAGER_LOG_DIR=str(tmp_path / "log"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: signing-manager")
    assert result.stderr == launch.MISSING_QT + "\n"


def test_signing_manager_without_arguments_opens_the_window_on_a_display(
    monkeypatch, window_opened
):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(launch, "qt_installed", lambda: True)
    assert cli.main([]) == 0
    assert window_opened == [[]]


@pytest.mark.parametrize("platform", ["darwin", "win32"])
def test_macos_and_windows_always_have_a_display(monkeypatch, no_display, platform):
    monkeypatch.setattr(sys, "platform", platform)
    assert launch.display_available()


def test_signing_manager_without_a_display_prints_its_help(no_display, window_opened, capsys):
    assert cli.main([]) == 0
    assert window_opened == []
    out, err = capsys.readouterr()
    assert out.startswith("usage: signing-manager")
    assert err == ""


def test_arguments_never_open_the_window(monkeypatch, window_opened, capsys):
    monkeypatch.setenv("DISPLAY", ":0")
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert window_opened == []


def test_the_window_command_is_installed():
    assert Path(sys.executable).with_name("signing-manager-gui").exists()


def test_the_window_command_opens_the_window_and_logs_it(tmp_path):
    pytest.importorskip("PySide6", reason="the window needs PySide6 (the gui extra)")
    log = tmp_path / "log" / "SigningManager.log"
    window = subprocess.Popen(
        [str(Path(sys.executable).with_name("signing-manager-gui"))],
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "QT_QPA_PLATFORM": "offscreen",
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
            "SIGNING_MANAGER_CONFIG_DIR": str(tmp_path / "config"),
            "SIGNING_MANAGER_LOG_DIR": str(log.parent),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "Started: the window" not in read(log):
            assert window.poll() is None, window.communicate()
            time.sleep(0.2)
        assert "Started: the window (signing-manager " in read(log)
        time.sleep(1)  # Preferences open (nothing is configured) and it keeps running
        assert window.poll() is None, window.communicate()
    finally:
        window.terminate()
        window.communicate(timeout=30)


def read(path: Path) -> str:
    return path.read_text() if path.exists() else ""
