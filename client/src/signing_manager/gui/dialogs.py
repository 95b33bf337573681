"""The questions and messages the window shows, all window-modal and none blocking.

Each opens with ``open()`` and answers through a callback, so the window's event loop (and a
test's) keeps running; tests find the open box among the window's children, or give the window
another ``Dialogs`` that records what it was asked.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from signing_manager.errors import SigningManagerError, one_line

TITLE = "Signing Manager"


def error_sentence(error: BaseException) -> str:
    """The sentence the CLI prints for an error (without its ``signing-manager:``)."""
    if isinstance(error, SigningManagerError):
        return one_line(error)
    return f"Unexpected error: {one_line(error)} (SigningManager.log has the details)."


class Dialogs:
    def __init__(self, parent: QWidget):
        self.parent = parent

    def box(self, icon: QMessageBox.Icon, title: str, text: str) -> QMessageBox:
        box = QMessageBox(icon, TITLE, title, parent=self.parent)
        box.setInformativeText(text)
        box.setObjectName(title)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        return box

    def error(self, title: str, error: BaseException) -> None:
        self.box(QMessageBox.Icon.Critical, title, error_sentence(error)).open()

    def warning(self, title: str, text: str) -> None:
        self.box(QMessageBox.Icon.Warning, title, text).open()

    def confirm(self, title: str, text: str, yes: str, on_answer: Callable[[bool], None]) -> None:
        """Ask; ``on_answer(True)`` when the user chose ``yes``, ``on_answer(False)`` else."""
        box = self.box(QMessageBox.Icon.Question, title, text)
        accept = box.addButton(yes, QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.finished.connect(lambda _: on_answer(box.clickedButton() is accept))
        box.open()
