"""The certificates window: the guide's main interface ("Using Signing Manager").

A filterable, sortable table of the identities this API key may use with a detail pane, the
guide's operations in the menu bar, the toolbar and the table's context menu with the guide's
shortcuts (⌘ on macOS is Ctrl elsewhere, ⌥ is Alt: Qt maps "Ctrl" to ⌘ on a Mac), and a status
bar with the service URL, the pinned certificate's SHA-256 and the last refresh or its error.

Network work runs on a thread (``tasks``). Before the first connection to a service trusted as
self-signed, the window shows the SHA-256 of the certificate presented and pins it only if the
user says so; a certificate that later differs is refused with the CLI's warning naming both.
Files, bundles and packages dropped on the window are signed with the selected identity.
"""

from __future__ import annotations

import datetime
import functools
import logging
import sys
import threading
from pathlib import Path

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QAction, QFontDatabase, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QPlainTextEdit,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from signing_manager.config import Secrets, Settings
from signing_manager.errors import CertificateChanged, SigningManagerError
from signing_manager.gui.backend import Backend
from signing_manager.gui.dialogs import Dialogs, error_sentence
from signing_manager.gui.dropped import sign_dropped
from signing_manager.gui.identities import IdentityFilter, IdentityModel
from signing_manager.gui.log_window import LogWindow
from signing_manager.gui.preferences import PreferencesDialog
from signing_manager.gui.signing_panel import SigningPanel
from signing_manager.gui.tasks import Task
from signing_manager.logs import log_path, set_up_logging
from signing_manager.menu import (
    apple_codesign_command,
    apple_productsign_command,
    certificate_text,
    codesign_command,
    copied_line,
    productsign_command,
)
from signing_manager.service import RemoteIdentity, colon_hex, pin_needed, sha256_of_pem

log = logging.getLogger(__name__)
# What a changed certificate's warning adds to the CLI's sentence: how to do it here.
RETRUST_HERE = "In this window, Preferences and OK trust the certificate presented next."

# The guide's keyboard shortcuts ("Signing Manager Keyboard Shortcuts"), and Preferences (⌘,).
SHORTCUTS = {
    "copy_cn": "Ctrl+Alt+C",
    "copy_sha1": "Ctrl+Alt+S",
    "copy_codesign": "Ctrl+Alt+O",
    "copy_productsign": "Ctrl+Alt+P",
    "refresh": "Ctrl+R",
    "show_certificate": "Ctrl+Alt+E",
    "show_certificates_window": "Ctrl+1",
    "show_log": "Ctrl+L",
    "preferences": "Ctrl+,",
}
# Each copy operation: how its item is named, and the line it copies (``menu``).
COPIES = {
    "copy_cn": ("Copy Common Name", functools.partial(copied_line, what="cn")),
    "copy_sha1": ("Copy Fingerprint (SHA-1)", functools.partial(copied_line, what="sha1")),
    "copy_codesign": ("Copy “codesign” Command", codesign_command),
    "copy_productsign": ("Copy “productsign” Command", productsign_command),
}
# On macOS, also the lines for Apple's own tools, as the guide shows them.
APPLE_COPIES = {
    "copy_apple_codesign": ("Copy Apple's “codesign” Command", apple_codesign_command),
    "copy_apple_productsign": ("Copy Apple's “productsign” Command", apple_productsign_command),
}
# Shorter names on the toolbar, so that it fits a small window.
TOOLBAR_NAMES = {
    "copy_cn": "Copy Name",
    "copy_sha1": "Copy SHA-1",
    "copy_codesign": "Copy codesign",
    "copy_productsign": "Copy productsign",
    "show_certificate": "Certificate",
    "show_log": "Log",
    "preferences": "Preferences",
}


class CertificateDialog(QDialog):
    """Show Certificate: subject, issuer, validity, fingerprints, extensions, chain and PEM."""

    def __init__(self, identity: RemoteIdentity, parent=None):
        super().__init__(parent)
        self.setObjectName("certificate")
        self.setWindowTitle(identity.common_name)
        self.text = QPlainTextEdit(certificate_text(identity))
        self.text.setReadOnly(True)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        QVBoxLayout(self).addWidget(self.text)
        self.resize(820, 600)


class CertificatesWindow(QMainWindow):
    def __init__(
        self,
        backend: Backend | None = None,
        dialogs: Dialogs | None = None,
        apple_forms: bool = sys.platform == "darwin",
    ):
        super().__init__()
        self.setWindowTitle("Signing Manager")
        self.backend = backend or Backend()
        self.dialogs = dialogs or Dialogs(self)
        self.settings = Settings()
        self.tasks: set[Task] = set()  # running; kept so that their signals arrive
        self.refreshing = False
        self.signing: threading.Event | None = None  # the running batch's cancel flag
        self.log_window: LogWindow | None = None
        self.preferences: PreferencesDialog | None = None
        self.certificate_dialogs: list[CertificateDialog] = []

        self.model = IdentityModel(self)
        self.proxy = IdentityFilter(self.model, self)
        self.build_table()
        self.operations = self.build_actions(apple_forms)
        self.build_menus()
        self.build_status_bar()
        self.setAcceptDrops(True)
        self.resize(1000, 620)
        self.selection_changed()

    # --- building ---------------------------------------------------------------------------

    def build_table(self) -> None:
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter by name, fingerprint, key or date")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2, 3):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self.show_context_menu)
        self.table.selectionModel().currentRowChanged.connect(self.selection_changed)
        self.table.doubleClicked.connect(lambda index: self.show_certificate())
        self.detail = QPlainTextEdit()
        self.detail.setObjectName("detail")
        self.detail.setReadOnly(True)
        self.detail.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.detail.setPlaceholderText("Select a certificate to see its details.")
        self.hint = QLabel("Drop files, .app bundles or .pkg packages here to sign them with the "
                           "selected certificate.")  # fmt: skip
        self.hint.setWordWrap(True)

        listing = QWidget()
        column = QVBoxLayout(listing)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.filter)
        column.addWidget(self.table)
        column.addWidget(self.hint)
        self.signing_panel = SigningPanel()
        self.signing_panel.hide()
        self.signing_panel.cancel.clicked.connect(self.cancel_signing)
        # One above the other, so the table has the window's width for names and SHA-1s.
        self.parts = QSplitter(Qt.Orientation.Vertical)
        for part in (listing, self.detail, self.signing_panel):
            self.parts.addWidget(part)
            self.parts.setCollapsible(self.parts.count() - 1, False)
        self.parts.setStretchFactor(0, 3)
        self.parts.setStretchFactor(1, 2)
        self.setCentralWidget(self.parts)

    def build_actions(self, apple_forms: bool) -> dict[str, QAction]:
        actions: dict[str, QAction] = {}

        def add(name: str, text: str, slot) -> None:
            action = QAction(text, self)
            action.setObjectName(name)
            if name in SHORTCUTS:
                action.setShortcut(QKeySequence(SHORTCUTS[name]))
                # ⌘1 and ⌘L work from the log and certificate windows too.
                action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
            action.triggered.connect(slot)
            self.addAction(action)
            actions[name] = action

        add("refresh", "Refresh", self.refresh)
        add("preferences", "Preferences…", self.open_preferences)
        actions["preferences"].setMenuRole(QAction.MenuRole.PreferencesRole)
        for name, (text, line_of) in (COPIES | (APPLE_COPIES if apple_forms else {})).items():
            add(name, text, lambda checked=False, line_of=line_of: self.copy(line_of))
        add("show_certificate", "Show Certificate", self.show_certificate)
        add("show_log", "Show Log", self.show_log)
        add("show_certificates_window", "Show Certificates Window", self.show_certificates_window)
        add("quit", "Quit Signing Manager", self.close)
        actions["quit"].setShortcut(QKeySequence.StandardKey.Quit)
        return actions

    def identity_actions(self) -> list[QAction]:
        """The operations on the selected certificate, in the guide's order."""
        names = [*COPIES, *(n for n in APPLE_COPIES if n in self.operations), "show_certificate"]
        return [self.operations[name] for name in names]

    def build_menus(self) -> None:
        menus = self.menuBar()
        application = menus.addMenu("Signing Manager")
        application.addAction(self.operations["preferences"])
        application.addSeparator()
        application.addAction(self.operations["quit"])
        certificate = menus.addMenu("Certificate")
        certificate.addAction(self.operations["refresh"])
        certificate.addSeparator()
        certificate.addActions(self.identity_actions())
        window = menus.addMenu("Window")
        window.addAction(self.operations["show_certificates_window"])
        window.addAction(self.operations["show_log"])
        toolbar = self.addToolBar("Operations")
        toolbar.setObjectName("operations")
        toolbar.setMovable(False)
        toolbar.addAction(self.operations["refresh"])
        toolbar.addSeparator()
        toolbar.addActions([self.operations[name] for name in (*COPIES, "show_certificate")])
        toolbar.addSeparator()
        toolbar.addAction(self.operations["show_log"])
        toolbar.addAction(self.operations["preferences"])
        for name, short in TOOLBAR_NAMES.items():
            self.operations[name].setIconText(short)

    def build_status_bar(self) -> None:
        self.service_label = QLabel()
        self.pin_label = QLabel()
        self.refresh_label = QLabel("Not refreshed yet")
        for label in (self.service_label, self.pin_label, self.refresh_label):
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.statusBar().addPermanentWidget(label)

    # --- starting and settings ------------------------------------------------------------------

    def start(self) -> None:
        """What a launch does: Preferences when nothing is configured (the guide's first
        launch), a refresh otherwise."""
        try:
            self.settings = Settings.load()
            configured = bool(self.settings.api_host and Secrets().api_key())
        except SigningManagerError as error:  # a broken settings file, a locked keyring
            self.dialogs.error("The settings cannot be read", error)
            return
        self.update_status()
        if configured:
            self.refresh()
        else:
            self.open_preferences()

    def open_preferences(self) -> None:
        if self.preferences is not None:
            self.preferences.raise_()
            return
        try:
            self.settings = Settings.load()
            self.preferences = PreferencesDialog(self.settings, Secrets(), self)
        except SigningManagerError as error:
            self.dialogs.error("The settings cannot be read", error)
            return
        self.preferences.finished.connect(self.preferences_closed)
        self.preferences.open()

    def preferences_closed(self, result: int) -> None:
        self.preferences.deleteLater()
        self.preferences = None
        if result == QDialog.DialogCode.Accepted:
            set_up_logging(self.settings.debug)  # as saved, from now on
            log.info("Preferences saved: %s", self.settings.api_host)
            self.update_status()
            self.refresh()

    def update_status(self) -> None:
        url = self.settings.api_host
        self.service_label.setText(f"Service: {url}" if url else "No service configured")
        pinned = self.settings.trust_self_signed and self.settings.pinned_sha256
        self.pin_label.setText(
            f"Pinned SHA-256: {colon_hex(self.settings.pinned_sha256)}" if pinned else ""
        )
        self.pin_label.setVisible(bool(pinned))

    # --- refresh ------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Ask the service for the identities on a thread; first, for a self-signed service
        not pinned yet, fetch its certificate to ask the user about."""
        if self.refreshing:
            return
        try:
            settings = Settings.load()
        except SigningManagerError as error:
            self.refresh_failed(error)
            return
        self.settings = settings
        self.update_status()
        if not settings.api_host:
            self.open_preferences()
            return
        self.refreshing = True
        self.operations["refresh"].setEnabled(False)
        self.refresh_label.setText("Refreshing…")

        def work(report):
            if pin_needed(settings):
                return self.backend.presented_certificate(settings.api_host)
            return self.backend.identities(settings)

        self.run(work, self.refreshed, self.refresh_failed)

    def refresh_done(self) -> None:
        self.refreshing = False
        self.operations["refresh"].setEnabled(True)

    def refreshed(self, result) -> None:
        self.refresh_done()
        if isinstance(result, str):
            self.ask_to_pin(result)
            return
        self.show_identities(result)
        count = f"{len(result)} identit{'y' if len(result) == 1 else 'ies'}"
        log.info("Refreshed: %s from %s", count, self.settings.api_host)
        self.refresh_label.setText(f"Refreshed at {now():%H:%M:%S}: {count}")

    def refresh_failed(self, error: BaseException) -> None:
        self.refresh_done()
        sentence = error_sentence(error)
        log.error("Refresh failed: %s", sentence)
        self.refresh_label.setText(f"Refresh failed at {now():%H:%M:%S}")
        self.refresh_label.setToolTip(sentence)
        if isinstance(error, CertificateChanged):
            self.dialogs.warning(
                "The service's certificate changed", f"{sentence}\n\n{RETRUST_HERE}"
            )
        else:
            self.dialogs.error("Refresh failed", error)

    def ask_to_pin(self, pem: str) -> None:
        settings = self.settings
        fingerprint = colon_hex(sha256_of_pem(pem))

        def answered(trusted: bool) -> None:
            if not trusted:
                self.refresh_label.setText("Not refreshed: the certificate was not trusted")
                return
            log.info("The user trusts %s's certificate, SHA-256 %s", settings.api_host, fingerprint)
            try:
                self.backend.pin(settings, pem)
            except SigningManagerError as error:
                self.refresh_failed(error)
                return
            self.refresh()

        self.dialogs.confirm(
            "Trust this service's certificate?",
            f"{settings.api_host} presents a self-signed certificate with SHA-256\n\n"
            f"{fingerprint}\n\nCompare it with the fingerprint on the service's API page (or "
            "in the log of its first start). Once trusted it is pinned: any other certificate "
            "will be refused.",
            "Trust",
            answered,
        )

    def show_identities(self, identities: list[RemoteIdentity]) -> None:
        """Fill the table, keeping the selected identity selected (else the first row)."""
        selected = self.selected_identity()
        self.model.set_identities(identities)
        rows = [
            self.proxy.identity(self.proxy.index(row, 0)) for row in range(self.proxy.rowCount())
        ]
        kept = [
            row for row, identity in enumerate(rows) if selected and identity.sha1 == selected.sha1
        ]
        if rows:
            self.table.selectRow(kept[0] if kept else 0)
        self.selection_changed()

    # --- the selected certificate ---------------------------------------------------------------

    def selected_identity(self) -> RemoteIdentity | None:
        index = self.table.selectionModel().currentIndex()
        selected = self.table.selectionModel().selectedRows()
        if not index.isValid() or not selected:
            return None
        return self.proxy.identity(index)

    def selection_changed(self, *ignored: QModelIndex) -> None:
        identity = self.selected_identity()
        for action in self.identity_actions():
            action.setEnabled(identity is not None)
        self.detail.setPlainText(certificate_text(identity) if identity else "")

    def copy(self, line_of) -> None:
        """Put the selected identity's line on the clipboard (the desktop's, through Qt)."""
        identity = self.selected_identity()
        if identity is not None:
            line = line_of(identity)
            QGuiApplication.clipboard().setText(line)
            self.statusBar().showMessage(f"Copied: {line}", 5000)

    def show_certificate(self) -> None:
        identity = self.selected_identity()
        if identity is None:
            return
        dialog = CertificateDialog(identity, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.destroyed.connect(lambda: self.certificate_dialogs.remove(dialog))
        self.certificate_dialogs.append(dialog)
        dialog.show()

    def show_context_menu(self, position) -> None:
        if self.selected_identity() is None:
            return
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.addActions(self.identity_actions())
        menu.popup(self.table.viewport().mapToGlobal(position))

    # --- windows -----------------------------------------------------------------------------

    def show_log(self) -> None:
        if self.log_window is None:
            self.log_window = LogWindow(log_path())
        self.log_window.show()
        self.log_window.raise_()
        self.log_window.activateWindow()

    def show_certificates_window(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    def closeEvent(self, event) -> None:
        if self.signing is not None:
            self.signing.set()
        if self.log_window is not None:
            self.log_window.close()
        super().closeEvent(event)

    # --- drag and drop ------------------------------------------------------------------------

    def dragEnterEvent(self, event) -> None:
        urls = event.mimeData().urls()
        if urls and all(url.isLocalFile() for url in urls):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls()]
        event.acceptProposedAction()
        self.sign_paths(paths)

    def sign_paths(self, paths: list[Path]) -> None:
        """Sign each path with the selected identity, on a thread, one row of progress each."""
        identity = self.selected_identity()
        if identity is None:
            self.dialogs.warning(
                "Select a certificate first",
                "Select the certificate to sign with in the table, then drop the files again.",
            )
            return
        if self.signing is not None:
            self.dialogs.warning(
                "Signing is under way",
                "Wait for the files being signed (or cancel them), then drop these again.",
            )
            return
        cancelled = self.signing = threading.Event()
        settings = self.settings
        self.signing_panel.start(paths, identity.common_name)
        listing, detail, panel = self.parts.sizes()
        if panel == 0:  # shown for the first time: half of the detail pane's height
            self.parts.setSizes([listing, detail - detail // 2, detail // 2])

        def work(report):
            with self.backend.signer(settings, identity) as signer:
                for index, path in enumerate(paths):
                    outcome = sign_dropped(
                        path,
                        signer,
                        cancelled,
                        lambda done, total, index=index: report(("progress", index, done, total)),
                    )
                    report(("outcome", index, outcome))

        def reported(event) -> None:
            if event[0] == "progress":
                self.signing_panel.progress(*event[1:])
                return
            outcome = event[2]
            log.info("Dropped %s, with %s: %s", outcome.path, identity.sha1, outcome.message)
            self.signing_panel.finish(*event[1:])

        self.run(work, self.signing_done, self.signing_failed, reported)

    def cancel_signing(self) -> None:
        if self.signing is not None:
            self.signing.set()

    def signing_done(self, result=None) -> None:
        self.signing = None
        self.signing_panel.done()

    def signing_failed(self, error: BaseException) -> None:
        self.signing_done()
        self.dialogs.error("Signing failed", error)

    # --- background work ----------------------------------------------------------------------

    def run(self, work, succeeded, failed, progressed=None) -> Task:
        task = Task(work, self)
        self.tasks.add(task)

        def finished(handler):
            def handle(value) -> None:
                self.tasks.discard(task)
                task.deleteLater()
                handler(value)

            return handle

        task.succeeded.connect(finished(succeeded))
        task.failed.connect(finished(failed))
        if progressed is not None:
            task.progressed.connect(progressed)
        return task.start()


def now() -> datetime.datetime:
    return datetime.datetime.now().astimezone()
