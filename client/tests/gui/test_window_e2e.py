"""The window against the real service (a subprocess on loopback, real TLS, the suite's
database): configured through Preferences, the self-signed certificate pinned after the real
question box, the identities refreshed, a dropped Mach-O signed, and the result checked by
the CLI's ``codesign -v`` (with the test CA as the company's root)."""

from __future__ import annotations

import secrets
import ssl

import pytest

pytest.importorskip("PySide6", reason="the window's tests need PySide6 (the gui extra)")

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox

from signing_manager.config import Settings
from signing_manager.gui.window import CertificatesWindow
from signing_manager.service import colon_hex, sha256_of_pem
from signing_service.test import make_identity

pytestmark = pytest.mark.e2e

WAIT_MS = 120_000


def test_configure_refresh_and_sign_a_dropped_macho(
    qtbot, ui, home, module_service, module_ops, new_cli, machos, tmp_path
):
    made = make_identity(
        f"Developer ID Application: Window E2E {secrets.token_hex(3)} (ABCDE12345)"
    )
    module_ops.import_identity(made)
    api_key = module_ops.create_api_key(f"window {secrets.token_hex(3)}")
    window = CertificatesWindow(apple_forms=False)  # the real service client and dialogs
    qtbot.addWidget(window)
    window.show()
    window.start()

    preferences = window.preferences
    assert preferences is not None
    assert preferences.isVisible()
    preferences.url.setText(module_service.url)
    preferences.api_key.setText(api_key)
    preferences.trust.setChecked(True)
    qtbot.mouseClick(ok_button(preferences), Qt.MouseButton.LeftButton)

    presented = ssl.get_server_certificate(("127.0.0.1", module_service.port))
    box = ui.wait_for_box(window, "Trust this service's certificate?")
    assert colon_hex(sha256_of_pem(presented)) in box.informativeText()
    next(button for button in box.buttons() if button.text() == "Trust").click()

    qtbot.waitUntil(lambda: ui.listed(window, made.sha1), timeout=WAIT_MS)
    assert Settings.load().pinned_sha256 == sha256_of_pem(presented)
    ui.select(window, made)

    folder = tmp_path / "dropped"
    folder.mkdir()
    tool = machos.copy("universal-exe", folder, "tool")
    ui.drop(window, [tool])
    qtbot.waitUntil(lambda: window.signing is None, timeout=WAIT_MS)
    assert window.signing_panel.results() == ["Signed tool."]

    anchor = tmp_path / "test-ca.pem"
    anchor.write_bytes(made.pem(made.ca_certificate))
    checked = new_cli().run("codesign", "-v", "-v", "--anchor", str(anchor), str(tool))
    assert checked.returncode == 0, checked.stderr
    assert f"{tool}: valid on disk" in checked.stderr
    described = new_cli().run("codesign", "-d", "-vv", str(tool))
    assert f"Authority={made.common_name}" in described.stderr
    assert module_ops.signatures(made.sha1)  # the service audited what it signed


def ok_button(dialog):
    return dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
