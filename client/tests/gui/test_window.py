"""The certificates window: first launch, Preferences, pinning, refresh, the table, and every
operation by its menu item, its shortcut and the context menu (offscreen, a fake service)."""

from __future__ import annotations

import logging

import keyring.errors
import pytest

pytest.importorskip("PySide6", reason="the window's tests need PySide6 (the gui extra)")

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QKeySequence
from PySide6.QtWidgets import QApplication

from signing_manager.config import Secrets, Settings, config_dir
from signing_manager.errors import CertificateChanged, ConnectionFailed, ServiceRefused
from signing_manager.gui.dialogs import Dialogs
from signing_manager.gui.window import CertificateDialog, CertificatesWindow
from signing_manager.logs import log_path
from signing_manager.service import PIN_FILE, colon_hex, sha256_of_pem

WAIT_MS = 20_000
KEY = "smk_0123456789_" + "k" * 43


def fill_preferences(window, qtbot, url: str, key: str = "", trust: bool = False) -> None:
    dialog = window.preferences
    assert dialog is not None
    assert dialog.isVisible()
    dialog.url.setText(url)
    dialog.api_key.setText(key)
    dialog.trust.setChecked(trust)


def press_ok(window) -> None:
    window.preferences.save()


def sha1(identity) -> str:
    return identity.sha1.upper()


def shown_texts(window) -> list[list[str]]:
    return [
        [window.proxy.index(row, column).data() for column in range(4)]
        for row in range(window.proxy.rowCount())
    ]


# --- First launch and Preferences ---------------------------------------------------------


def test_first_launch_opens_preferences_and_saving_them_refreshes(window, qtbot, home, backend):
    window.start()
    assert window.preferences is not None
    assert window.preferences.isVisible()
    assert window.preferences.key_state.text() == "Not set"
    fill_preferences(window, qtbot, "https://signing.test:8443/api/v1/", KEY)
    press_ok(window)
    qtbot.waitUntil(lambda: window.model.rowCount() == 3, timeout=WAIT_MS)
    settings = Settings.load()
    assert settings.api_host == "https://signing.test:8443"  # as -s takes it: /api/v1 off
    assert Secrets().api_key() == KEY
    assert KEY not in (config_dir() / "config.json").read_text()
    assert window.preferences is None
    assert window.service_label.text() == "Service: https://signing.test:8443"


def test_preferences_show_a_saved_key_as_set_and_keep_it(refreshed, qtbot, home):
    refreshed.operations["preferences"].trigger()
    dialog = refreshed.preferences
    assert dialog.key_state.text() == "Set"
    assert dialog.api_key.text() == ""  # the key itself is never shown
    assert dialog.api_key.placeholderText() == "Set"
    dialog.debug.setChecked(True)
    press_ok(refreshed)
    assert Settings.load().debug is True
    logging.getLogger("signing_manager.test").debug("a debug line")  # logged from now on
    assert "DEBUG signing_manager.test: a debug line" in log_path().read_text()
    assert Secrets().api_key() == KEY  # kept


@pytest.mark.parametrize(
    ("url", "key", "sentence"),
    [
        (
            "http://signing.test:8080",
            KEY,
            "The service URL must look like https://host:port, not http://signing.test:8080.",
        ),
        (
            "https://signing.test",
            "",
            "Enter the API key that the Signing Service's API Keys page gave you.",
        ),
    ],
)
def test_preferences_say_what_is_wrong_and_save_nothing(window, qtbot, home, url, key, sentence):
    window.start()
    fill_preferences(window, qtbot, url, key)
    press_ok(window)
    assert window.preferences.isVisible()
    assert window.preferences.problem.text() == sentence
    assert not (config_dir() / "config.json").exists()


def test_preferences_without_a_keyring_say_how_to_set_the_key(window, qtbot, home, monkeypatch):
    import keyring.backends.fail

    monkeypatch.setattr("keyring.get_keyring", lambda: keyring.backends.fail.Keyring())
    window.start()
    fill_preferences(window, qtbot, "https://signing.test", KEY)
    press_ok(window)
    assert window.preferences.problem.text() == (
        "No keyring is available on this machine to keep the API key: set the environment "
        "variable SIGNING_MANAGER_API_KEY (and SIGNING_MANAGER_URL) instead."
    )


def test_preferences_shortcut_is_ctrl_comma(refreshed, qtbot):
    assert refreshed.operations["preferences"].shortcut() == QKeySequence("Ctrl+,")
    press(refreshed, qtbot, Qt.Key.Key_Comma, Qt.KeyboardModifier.ControlModifier)
    assert refreshed.preferences is not None
    assert refreshed.preferences.isVisible()


# --- Pinning a self-signed service ----------------------------------------------------------


def test_a_self_signed_service_is_pinned_only_after_the_user_says_so(
    window, qtbot, home, backend, dialogs
):
    window.start()
    fill_preferences(window, qtbot, "https://signing.test:8443", KEY, trust=True)
    dialogs.answer = False
    press_ok(window)
    qtbot.waitUntil(lambda: bool(dialogs.shown), timeout=WAIT_MS)
    fingerprint = colon_hex(sha256_of_pem(backend.presented))
    kind, title, text = dialogs.shown[0]
    assert (kind, title) == ("confirm", "Trust this service's certificate?")
    assert fingerprint in text
    assert fingerprint.count(":") == 31
    assert not (config_dir() / PIN_FILE).exists()
    assert backend.listings == 0
    assert window.refresh_label.text() == "Not refreshed: the certificate was not trusted"

    dialogs.answer = True
    window.operations["refresh"].trigger()
    qtbot.waitUntil(lambda: window.model.rowCount() == 3, timeout=WAIT_MS)
    assert (config_dir() / PIN_FILE).read_text() == backend.presented
    assert Settings.load().pinned_sha256 == sha256_of_pem(backend.presented)
    assert window.pin_label.text() == f"Pinned SHA-256: {fingerprint}"
    assert len(dialogs.shown) == 2  # asked once more, then never again
    window.operations["refresh"].trigger()
    qtbot.waitUntil(lambda: backend.listings == 2, timeout=WAIT_MS)
    assert len(dialogs.shown) == 2


def test_the_real_pinning_question_is_a_box_that_pins_on_trust(ui, qtbot, home, backend):
    window = CertificatesWindow(backend=backend, apple_forms=False)
    qtbot.addWidget(window)
    window.show()
    window.start()
    fill_preferences(window, qtbot, "https://signing.test:8443", KEY, trust=True)
    press_ok(window)
    box = ui.wait_for_box(window, "Trust this service's certificate?")
    assert colon_hex(sha256_of_pem(backend.presented)) in box.informativeText()
    trust = next(b for b in box.buttons() if b.text() == "Trust")
    trust.click()
    qtbot.waitUntil(lambda: window.model.rowCount() == 3, timeout=WAIT_MS)
    assert (config_dir() / PIN_FILE).exists()


def test_a_changed_certificate_is_a_warning_naming_both_fingerprints(refreshed, qtbot, backend):
    sentence = (
        "The service presented a certificate with SHA-256 AA:BB, not the pinned CC:DD. If it "
        "was replaced on purpose, trust the new one with `signing-manager -s -i URL -a "
        "API_KEY -u`."
    )
    backend.error = CertificateChanged(sentence)
    refreshed.dialogs.shown.clear()
    refreshed.operations["refresh"].trigger()
    qtbot.waitUntil(lambda: bool(refreshed.dialogs.shown), timeout=WAIT_MS)
    assert refreshed.dialogs.shown == [
        (
            "warning",
            "The service's certificate changed",
            f"{sentence}\n\nIn this window, Preferences and OK trust the certificate presented "
            "next.",
        )
    ]


# --- Refresh ------------------------------------------------------------------------------


def test_refresh_lists_the_identities_sorted_with_expiry_marked(refreshed, made_identities):
    rows = shown_texts(refreshed)
    names = [row[0] for row in rows]
    assert names == sorted(names, key=str.casefold)
    by_name = {row[0]: row for row in rows}
    valid, soon, expired = (made_identities[k][0] for k in ("valid", "soon", "expired"))
    assert by_name[valid.common_name][1] == sha1(valid)
    assert by_name[valid.common_name][2] == "RSA 2048"
    assert by_name[valid.common_name][3] == f"{valid.not_after:%Y-%m-%d}"
    assert by_name[soon.common_name][3].endswith("(in 10 days)")
    assert by_name[expired.common_name][3].endswith("(expired)")
    assert refreshed.refresh_label.text().startswith("Refreshed at ")
    assert refreshed.refresh_label.text().endswith(": 3 identities")


def test_the_table_sorts_by_expiry_as_dates(refreshed, made_identities):
    refreshed.table.sortByColumn(3, Qt.SortOrder.AscendingOrder)
    names = [row[0] for row in shown_texts(refreshed)]
    order = [made_identities[k][0].common_name for k in ("expired", "soon", "valid")]
    assert names == order


def test_the_filter_matches_any_column_in_any_case(refreshed, made_identities):
    refreshed.filter.setText("developer id")
    assert len(shown_texts(refreshed)) == 2
    valid = made_identities["valid"][0]
    refreshed.filter.setText(valid.sha1[:12])  # lower case, as typed
    assert [row[0] for row in shown_texts(refreshed)] == [valid.common_name]


def test_the_detail_pane_shows_the_selected_certificate(ui, refreshed, made_identities):
    valid = made_identities["valid"][0]
    ui.select(refreshed, valid)
    text = refreshed.detail.toPlainText()
    assert f"SHA-1:       {sha1(valid)}" in text
    assert "-----BEGIN CERTIFICATE-----" in text


@pytest.mark.parametrize(
    "error",
    [
        ConnectionFailed(
            "Nothing answers at signing.test:8443 (connection refused): check that the Signing "
            "Service runs there and that the URL's port is right."
        ),
        ServiceRefused(403, "inactive_key", "The service refused: This API key is inactive."),
    ],
)
def test_a_refresh_error_is_a_dialog_with_the_clis_sentence(refreshed, qtbot, backend, error):
    backend.error = error
    refreshed.dialogs.shown.clear()
    press(refreshed, qtbot, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: bool(refreshed.dialogs.shown), timeout=WAIT_MS)
    assert refreshed.dialogs.shown == [("error", "Refresh failed", str(error))]
    assert refreshed.refresh_label.text().startswith("Refresh failed at ")
    assert refreshed.refresh_label.toolTip() == str(error)
    assert refreshed.model.rowCount() == 3  # the last listing stays


def test_a_refresh_error_shows_in_a_real_message_box(ui, qtbot, home, configured, backend):
    backend.error = ConnectionFailed("The host signing.test is unknown: check the URL.")
    window = CertificatesWindow(backend=backend, apple_forms=False)
    qtbot.addWidget(window)
    window.show()
    window.start()
    box = ui.wait_for_box(window, "Refresh failed")
    assert box.informativeText() == "The host signing.test is unknown: check the URL."
    assert isinstance(window.dialogs, Dialogs)


def test_the_refresh_does_not_block_the_window(refreshed, qtbot, backend):
    """The listing is asked on another thread: the window answers while it waits."""
    import threading

    release = threading.Event()
    answered = backend.identities

    def slow(settings):
        assert release.wait(WAIT_MS / 1000)
        return answered(settings)

    backend.identities = slow
    refreshed.operations["refresh"].trigger()
    assert refreshed.refresh_label.text() == "Refreshing…"
    assert not refreshed.operations["refresh"].isEnabled()
    refreshed.filter.setText("Valid")  # the UI still works
    QApplication.processEvents()
    assert len(shown_texts(refreshed)) == 1
    release.set()
    qtbot.waitUntil(lambda: refreshed.operations["refresh"].isEnabled(), timeout=WAIT_MS)


# --- Operations and shortcuts ---------------------------------------------------------------

COPIES = [
    ("copy_cn", "Ctrl+Alt+C", Qt.Key.Key_C, lambda m: m.common_name),
    ("copy_sha1", "Ctrl+Alt+S", Qt.Key.Key_S, lambda m: m.sha1.upper()),
    (
        "copy_codesign",
        "Ctrl+Alt+O",
        Qt.Key.Key_O,
        lambda m: f'signing-manager codesign -f -s "{m.sha1.upper()}"',
    ),
    (
        "copy_productsign",
        "Ctrl+Alt+P",
        Qt.Key.Key_P,
        lambda m: (
            f'signing-manager productsign --sign "{m.sha1.upper()}" source.pkg destination.pkg'
        ),
    ),
]
CTRL_ALT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier


def press(window, qtbot, key, modifiers) -> None:
    window.activateWindow()
    window.table.setFocus()
    qtbot.keyClick(window.table, key, modifiers)


@pytest.mark.parametrize(("name", "shortcut", "key", "expected"), COPIES)
def test_each_copy_puts_the_line_on_the_clipboard_by_its_shortcut(
    ui, refreshed, qtbot, made_identities, name, shortcut, key, expected
):
    identity = made_identities["soon"][0]
    ui.select(refreshed, identity)
    QGuiApplication.clipboard().clear()
    assert refreshed.operations[name].shortcut() == QKeySequence(shortcut)
    press(refreshed, qtbot, key, CTRL_ALT)
    assert QGuiApplication.clipboard().text() == expected(identity)


@pytest.mark.parametrize(("name", "shortcut", "key", "expected"), COPIES)
def test_each_copy_is_in_the_menu_bar_toolbar_and_context_menu(
    ui, refreshed, made_identities, name, shortcut, key, expected
):
    action = refreshed.operations[name]
    menus = [m.menu() for m in refreshed.menuBar().actions() if m.menu()]
    assert any(action in menu.actions() for menu in menus)
    toolbar = refreshed.findChild(type(refreshed.addToolBar("probe")), "operations")
    assert action in toolbar.actions()
    assert action in refreshed.identity_actions()  # what the context menu shows
    identity = made_identities["valid"][0]
    ui.select(refreshed, identity)
    QGuiApplication.clipboard().clear()
    action.trigger()
    assert QGuiApplication.clipboard().text() == expected(identity)


def test_the_context_menu_offers_the_operations(ui, refreshed, qtbot, made_identities):
    from PySide6.QtWidgets import QMenu

    ui.select(refreshed, made_identities["valid"][0])
    rect = refreshed.table.visualRect(refreshed.proxy.index(0, 0))
    refreshed.show_context_menu(rect.center())
    menu = next(m for m in refreshed.findChildren(QMenu) if m.isVisible())
    texts = [a.text() for a in menu.actions()]
    assert texts == [
        "Copy Common Name",
        "Copy Fingerprint (SHA-1)",
        "Copy “codesign” Command",
        "Copy “productsign” Command",
        "Show Certificate",
    ]
    menu.close()


def test_operations_on_a_certificate_wait_for_one_to_be_selected(refreshed, qtbot):
    refreshed.table.clearSelection()
    refreshed.table.selectionModel().clearCurrentIndex()
    refreshed.selection_changed()
    assert not refreshed.operations["copy_cn"].isEnabled()
    QGuiApplication.clipboard().setText("unchanged")
    press(refreshed, qtbot, Qt.Key.Key_C, CTRL_ALT)
    assert QGuiApplication.clipboard().text() == "unchanged"


def test_apple_forms_are_offered_on_macos(qtbot, home, backend, dialogs, made_identities):
    window = CertificatesWindow(backend=backend, dialogs=dialogs, apple_forms=True)
    qtbot.addWidget(window)
    window.show_identities([made_identities["valid"][0]])
    identity = made_identities["valid"][0]
    window.operations["copy_apple_codesign"].trigger()
    assert QGuiApplication.clipboard().text() == f'codesign -fs "{sha1(identity)}"'
    window.operations["copy_apple_productsign"].trigger()
    assert QGuiApplication.clipboard().text() == (
        f'productsign --sign "{sha1(identity)}" source.pkg destination.pkg'
    )


def test_show_certificate_by_its_shortcut(ui, refreshed, qtbot, made_identities):
    identity = made_identities["valid"][0]
    ui.select(refreshed, identity)
    assert refreshed.operations["show_certificate"].shortcut() == QKeySequence("Ctrl+Alt+E")
    press(refreshed, qtbot, Qt.Key.Key_E, CTRL_ALT)
    dialog = refreshed.findChild(CertificateDialog, "certificate")
    assert dialog is not None
    assert dialog.isVisible()
    text = dialog.text.toPlainText()
    for part in (
        f"Subject:     {identity.certificate.subject.rfc4514_string()}",
        f"Issuer:      {identity.certificate.issuer.rfc4514_string()}",
        f"SHA-1:       {sha1(identity)}",
        f"SHA-256:     {identity.sha256.upper()}",
        f"Valid:       {identity.certificate.not_valid_before_utc:%Y-%m-%d} to ",
        "Extensions:\n  basicConstraints (critical): ca=False, path_length=None",
        "extendedKeyUsage (critical): codeSigning, 1.2.840.113635.100.4.13",
        "Chain:\n  0: ",
        "  1: CN=Signing Manager Test CA  SHA-256 ",
        "-----BEGIN CERTIFICATE-----",
    ):
        assert part in text, part
    dialog.close()


def test_refresh_by_its_shortcut(refreshed, qtbot, backend):
    assert refreshed.operations["refresh"].shortcut() == QKeySequence("Ctrl+R")
    press(refreshed, qtbot, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: backend.listings == 2, timeout=WAIT_MS)


def test_show_log_follows_the_log_by_its_shortcut(refreshed, qtbot):
    assert refreshed.operations["show_log"].shortcut() == QKeySequence("Ctrl+L")
    log_path().parent.mkdir(parents=True, exist_ok=True)
    log_path().write_text("first line\n")
    press(refreshed, qtbot, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    log_window = refreshed.log_window
    assert log_window is not None
    assert log_window.isVisible()
    assert log_window.text.toPlainText() == "first line\n"
    with log_path().open("a") as log:
        log.write("a later line\n")
    qtbot.waitUntil(
        lambda: log_window.text.toPlainText() == "first line\na later line\n", timeout=WAIT_MS
    )
    log_path().write_text("new\n")  # replaced: read again from the start
    qtbot.waitUntil(lambda: log_window.text.toPlainText() == "new\n", timeout=WAIT_MS)
    log_window.close()


def test_show_certificates_window_by_its_shortcut(refreshed, qtbot):
    assert refreshed.operations["show_certificates_window"].shortcut() == QKeySequence("Ctrl+1")
    refreshed.showMinimized()
    press(refreshed, qtbot, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not refreshed.isMinimized(), timeout=WAIT_MS)
    assert refreshed.isVisible()


def test_broken_settings_are_a_dialog_with_the_clis_sentence(window, home, dialogs):
    config_dir().mkdir(parents=True)
    (config_dir() / "config.json").write_text("[1]")
    window.start()
    assert dialogs.shown == [
        (
            "error",
            "The settings cannot be read",
            f"The settings in {config_dir() / 'config.json'} are not a JSON object: fix it, or "
            "delete it and save the settings again with -s.",
        )
    ]
    window.operations["preferences"].trigger()
    assert window.preferences is None
    assert len(dialogs.shown) == 2


def test_a_keyring_that_cannot_be_read_is_a_dialog(window, home, dialogs, configured):
    def locked(service, name):
        raise keyring.errors.KeyringLocked("the keyring is locked")

    home.get_password = locked
    window.start()
    assert dialogs.shown == [
        (
            "error",
            "The settings cannot be read",
            "The keyring cannot be read: the keyring is locked.",
        )
    ]
