"""The real window on a real X server (Debian's Xvfb), filled from the real service, captured at
two sizes for a person to look at: under ``$SIGNING_TEST_SCREENSHOTS`` when it is set, else
under ``/tmp/window-screenshots/`` (as the browser tests' layout screenshots). The test checks
that each picture has the size asked and is not blank."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("PySide6", reason="the window's tests need PySide6 (the gui extra)")

from PySide6.QtGui import QImage

from signing_service.test import make_identity

pytestmark = pytest.mark.e2e

SCREENSHOTS = Path(os.environ.get("SIGNING_TEST_SCREENSHOTS", "/tmp/window-screenshots"))
SIZES = ("1280x800", "900x560")
SCRIPT = Path(__file__).with_name("window_screenshots.py")
START_SECONDS = 30


@pytest.fixture(scope="module")
def x_display():
    """A display of a fresh Xvfb, stopped after the module."""
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is needed for the window's screenshots: scripts/system-packages")
    read_end, write_end = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
        pass_fds=(write_end,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], START_SECONDS)
        assert ready, "Xvfb did not start"
        number = os.read(read_end, 64).decode().strip()
        assert number.isdigit(), f"Xvfb said {number!r}"
        yield f":{number}"
    finally:
        os.close(read_end)
        server.terminate()
        server.wait(timeout=START_SECONDS)


def distinct_colours(image: QImage) -> int:
    """How many colours a grid of 40 by 40 points over the picture shows."""
    points = [
        (image.width() * i // 40, image.height() * j // 40) for i in range(40) for j in range(40)
    ]
    return len({image.pixel(x, y) for x, y in points})


def test_the_window_under_xvfb_is_captured_at_two_sizes(configured_cli, module_ops, x_display):
    for name in ("Developer ID Application: Example Corp", "Developer ID Installer: Example Corp"):
        module_ops.import_identity(make_identity(f"{name} (ABCDE12345)", installer=True))
    machine = configured_cli("window screenshots")
    machine.ok("-r")  # pins the service's certificate, as the window would after asking
    for old in SCREENSHOTS.glob("window-*.png"):
        old.unlink()
    shown = subprocess.run(
        [sys.executable, str(SCRIPT), str(SCREENSHOTS), *SIZES],
        env={
            **machine.environment(machine.api_key),
            "DISPLAY": x_display,
            "QT_QPA_PLATFORM": "xcb",
        },
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    for size in SIZES:
        image = QImage(str(SCREENSHOTS / f"window-{size}.png"))
        assert not image.isNull(), size
        assert f"{image.width()}x{image.height()}" == size
        assert distinct_colours(image) > 8, f"window-{size}.png looks blank"
    print(f"Screenshots in {SCREENSHOTS}")
