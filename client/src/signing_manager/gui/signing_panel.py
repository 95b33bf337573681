"""The list of dropped items being signed: a progress bar each, a result line each, and one
Cancel button for the batch (``dropped`` does the signing)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from signing_manager.gui.dropped import Outcome

COLUMNS = ("File", "Progress", "Result")


class SigningPanel(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("signing-panel")
        self.heading = QLabel()
        self.items = QTreeWidget()
        self.items.setHeaderLabels(COLUMNS)
        self.items.setRootIsDecorated(False)
        self.items.setColumnWidth(0, 260)
        self.items.setColumnWidth(1, 160)
        self.cancel = QPushButton("Cancel")
        self.cancel.setEnabled(False)
        row = QHBoxLayout()
        row.addWidget(self.heading, 1)
        row.addWidget(self.cancel)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.items)
        self.bars: list[QProgressBar] = []

    def start(self, paths: list[Path], identity_name: str) -> None:
        """Rows for a new batch (the last batch's results stay above them)."""
        self.heading.setText(f"Signing with “{identity_name}”")
        self.first = len(self.bars)
        for path in paths:
            item = QTreeWidgetItem([str(path), "", "Waiting"])
            self.items.addTopLevelItem(item)
            bar = QProgressBar()
            bar.setRange(0, 1)
            bar.setValue(0)
            self.items.setItemWidget(item, 1, bar)
            self.bars.append(bar)
        self.cancel.setEnabled(True)
        self.show()

    def progress(self, index: int, done: int, total: int) -> None:
        bar = self.bars[self.first + index]
        if total:
            bar.setRange(0, total)
            bar.setValue(done)
        else:
            bar.setRange(0, 0)  # busy: the amount of work is not known
        self.items.topLevelItem(self.first + index).setText(2, "Signing…")

    def finish(self, index: int, outcome: Outcome) -> None:
        bar = self.bars[self.first + index]
        bar.setRange(0, 1)
        bar.setValue(1 if outcome.signed else 0)
        item = self.items.topLevelItem(self.first + index)
        item.setText(2, outcome.message)
        item.setToolTip(2, outcome.message)

    def done(self) -> None:
        self.cancel.setEnabled(False)

    def results(self) -> list[str]:
        """Each row's result line, as shown."""
        return [self.items.topLevelItem(i).text(2) for i in range(self.items.topLevelItemCount())]
