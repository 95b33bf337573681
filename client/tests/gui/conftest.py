"""Fixtures for the window's tests (pytest-qt, Qt's offscreen platform).

- ``home``: the client's config and log folders in the test's tmp_path, and an in-memory
  keyring (a desktop's), so Preferences can keep the API key.
- ``FakeBackend`` (fixture ``backend``): the service as the window sees it, with identities
  whose keys are at hand (``LocalSigner``), a certificate to present for pinning, and an error
  to raise instead of answering. ``gate`` holds signing until a test lets it go.
- ``Recorder`` (fixture ``dialogs``): the window's dialogs, recording what they were asked and
  answering a confirmation as told.
- ``window``: a ``CertificatesWindow`` on both, shown.
- ``toolchain`` and ``machos``: the codesign tests' Mach-O files (``codesign/conftest.py``),
  loaded from there rather than copied.

Every wait has a timeout (``WAIT_MS``): a window that never answers fails the test.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import keyring
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from keyring.backend import KeyringBackend

from signing_manager.local_key import LocalSigner
from signing_manager.service import RemoteIdentity
from signing_service.test import cached_key, fake_ca, make_certificate

# Before pytest-qt makes the QApplication: no display needed.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

WAIT_MS = 20_000

_codesign = importlib.util.spec_from_file_location(
    "codesign_fixtures_for_gui", Path(__file__).parents[1] / "codesign" / "conftest.py"
)
codesign_fixtures = importlib.util.module_from_spec(_codesign)
_codesign.loader.exec_module(codesign_fixtures)
toolchain = codesign_fixtures.toolchain
machos = codesign_fixtures.machos


class MemoryKeyring(KeyringBackend):
    priority = 1

    def __init__(self):
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):
        return self.entries.get((service, username))

    def set_password(self, service, username, password):
        self.entries[(service, username)] = password

    def delete_password(self, service, username):
        if (service, username) not in self.entries:
            raise keyring.errors.PasswordDeleteError(username)
        del self.entries[(service, username)]


@pytest.fixture
def home(tmp_path, monkeypatch) -> Iterator[MemoryKeyring]:
    """The client's folders under tmp_path and an empty keyring; the keyring is returned."""
    for name in list(os.environ):
        if name.startswith("SIGNING_MANAGER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SIGNING_MANAGER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("SIGNING_MANAGER_LOG_DIR", str(tmp_path / "log"))
    before = keyring.get_keyring()
    memory = MemoryKeyring()
    keyring.set_keyring(memory)
    yield memory
    keyring.set_keyring(before)
    logger = logging.getLogger("signing_manager")  # the window may have set up the log
    for handler in logger.handlers:
        handler.close()
    logger.handlers.clear()
    logger.setLevel(logging.NOTSET)


def remote_identity(common_name: str, index: int, *, days: int = 365, expired: bool = False):
    """An identity as the service lists it, and the signer with its key (the ``index``th
    shared test key)."""
    key = cached_key("rsa2048", index)
    certificate = make_certificate(
        key, common_name, valid_days=days, expired=expired, installer=True
    )
    ca_certificate, _ = fake_ca()
    identity = RemoteIdentity(
        sha1=certificate.fingerprint(hashes.SHA1()).hex(),  # noqa: S303 - a name
        sha256=certificate.fingerprint(hashes.SHA256()).hex(),
        common_name=common_name,
        certificate=certificate,
        chain=(ca_certificate,),
        key_type="RSA",
        key_size=2048,
        not_after=certificate.not_valid_after_utc,
    )
    return identity, LocalSigner(certificate, key, (ca_certificate,))


@pytest.fixture(scope="session")
def made_identities() -> dict[str, tuple[RemoteIdentity, LocalSigner]]:
    """Three identities: valid for a year, expiring in 10 days, expired."""
    return {
        "valid": remote_identity("Developer ID Application: Valid (ABCDE12345)", 0),
        "soon": remote_identity("Apple Development: Soon (ABCDE12345)", 1, days=12),
        "expired": remote_identity("Developer ID Installer: Old (ABCDE12345)", 2, expired=True),
    }


def self_signed_pem() -> str:
    """A TLS certificate as a service presents one."""
    certificate, _ = fake_ca()
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


class FakeBackend:
    def __init__(self, made: dict[str, tuple[RemoteIdentity, LocalSigner]]):
        self.made = made
        self.error: BaseException | None = None  # raised by identities() when set
        self.presented = self_signed_pem()
        self.listings = 0
        self.signer_for = lambda identity, signer: signer  # tests wrap the signer
        self.gate: threading.Event | None = None  # when set up, signing waits for it
        self.asked = threading.Event()  # a signature was asked for

    def identities(self, settings):
        self.listings += 1
        if self.error is not None:
            raise self.error
        return [identity for identity, _ in self.made.values()]

    def presented_certificate(self, url: str) -> str:
        return self.presented

    def pin(self, settings, pem: str) -> None:
        from signing_manager.gui.backend import Backend

        Backend().pin(settings, pem)

    @contextmanager
    def signer(self, settings, identity):
        local = next(signer for made, signer in self.made.values() if made == identity)
        yield GatedSigner(self.signer_for(identity, local), self)


class GatedSigner:
    """A signer that says it was asked, and waits for the backend's gate when there is one."""

    def __init__(self, signer, backend: FakeBackend):
        self.signer = signer
        self.backend = backend
        self.certificate = signer.certificate
        self.chain = signer.chain

    def default_algorithm(self):
        return self.signer.default_algorithm()

    def sign_digest(self, digest, algorithm):
        return self.sign_digests([(digest, algorithm)])[0]

    def sign_digests(self, requests):
        self.backend.asked.set()
        if self.backend.gate is not None:
            assert self.backend.gate.wait(WAIT_MS / 1000), "the test never opened the gate"
        return self.signer.sign_digests(requests)


class Recorder:
    """Dialogs that record (kind, title, text) and answer confirmations with ``answer``."""

    def __init__(self):
        self.shown: list[tuple[str, str, str]] = []
        self.answer = True

    def error(self, title, error):
        from signing_manager.gui.dialogs import error_sentence

        self.shown.append(("error", title, error_sentence(error)))

    def warning(self, title, text):
        self.shown.append(("warning", title, text))

    def confirm(self, title, text, yes, on_answer):
        self.shown.append(("confirm", title, text))
        on_answer(self.answer)


@pytest.fixture
def backend(made_identities) -> FakeBackend:
    return FakeBackend(made_identities)


@pytest.fixture
def dialogs() -> Recorder:
    return Recorder()


@pytest.fixture
def configured(home, tmp_path):
    """Settings saved for a service whose certificate is pinned, and an API key set."""
    from signing_manager.cli import save_settings
    from signing_manager.config import Secrets, Settings

    settings = Settings.load()
    save_settings(settings, "https://signing.test:8443", trust_self_signed=False, debug=False)
    Secrets().set_api_key("smk_0123456789_" + "k" * 43)
    return settings


@pytest.fixture
def window(qtbot, home, backend, dialogs):
    from signing_manager.gui.window import CertificatesWindow

    shown = CertificatesWindow(backend=backend, dialogs=dialogs, apple_forms=False)
    qtbot.addWidget(shown)
    shown.show()
    qtbot.waitExposed(shown)
    return shown


@pytest.fixture
def refreshed(window, configured, qtbot):
    """The window, started with settings and refreshed: three identities listed."""
    window.start()
    qtbot.waitUntil(lambda: window.model.rowCount() == 3, timeout=WAIT_MS)
    return window


class Ui:
    """Acting on a window as a person does: selecting a row, dropping files, finding a box."""

    def __init__(self, qtbot):
        self.qtbot = qtbot

    @staticmethod
    def row_sha1(window, row: int) -> str:
        return window.proxy.identity(window.proxy.index(row, 0)).sha1

    def listed(self, window, sha1: str) -> bool:
        return any(self.row_sha1(window, row) == sha1 for row in range(window.proxy.rowCount()))

    def select(self, window, identity) -> None:
        """Select the row of ``identity`` (a ``RemoteIdentity``, or anything with a sha1)."""
        for row in range(window.proxy.rowCount()):
            if self.row_sha1(window, row) == identity.sha1:
                window.table.selectRow(row)
                return
        raise AssertionError(f"{identity.sha1} is not listed")

    @staticmethod
    def drop(window, paths) -> None:
        """Drag the files over the window and drop them, as a file manager does."""
        from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
        from PySide6.QtGui import QDragEnterEvent, QDropEvent
        from PySide6.QtWidgets import QApplication

        data = QMimeData()
        data.setUrls([QUrl.fromLocalFile(str(path)) for path in paths])
        arguments = (
            QPointF(40, 40),
            Qt.DropAction.CopyAction,
            data,
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
        )
        enter = QDragEnterEvent(*arguments)
        QApplication.sendEvent(window, enter)
        assert enter.isAccepted(), "the window refused the drag"
        QApplication.sendEvent(window, QDropEvent(*arguments))

    def wait_for_box(self, window, title: str):
        """The message box of that title, once it shows."""
        from PySide6.QtWidgets import QMessageBox

        self.qtbot.waitUntil(
            lambda: window.findChild(QMessageBox, title) is not None, timeout=WAIT_MS
        )
        box = window.findChild(QMessageBox, title)
        self.qtbot.waitUntil(box.isVisible, timeout=WAIT_MS)
        return box


@pytest.fixture
def ui(qtbot) -> Ui:
    return Ui(qtbot)
