"""The certificates table's model: the identities this API key may use, one row each.

Columns: common name, SHA-1 (upper-case hex, as the web pages show it), key type and size, and
expiry, marked when the certificate has expired or expires within ``SOON`` (a colour and the
words, so the mark does not rest on colour alone). The proxy sorts by value (dates as dates)
and filters on any column.
"""

from __future__ import annotations

import datetime

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QBrush, QColor

from signing_manager.service import RemoteIdentity

SOON = datetime.timedelta(days=30)
COLUMNS = ("Common Name", "SHA-1", "Key", "Expires")
SORT_ROLE = Qt.ItemDataRole.UserRole
EXPIRED_COLOUR = QColor("#b00020")
SOON_COLOUR = QColor("#a05a00")


def expiry_text(identity: RemoteIdentity, now: datetime.datetime) -> str:
    date = f"{identity.not_after:%Y-%m-%d}"
    if identity.not_after <= now:
        return f"{date} (expired)"
    if identity.not_after - now <= SOON:
        days = (identity.not_after - now).days
        return f"{date} (in {days} day{'s' if days != 1 else ''})"
    return date


class IdentityModel(QAbstractTableModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.identities: list[RemoteIdentity] = []
        self.now = lambda: datetime.datetime.now(datetime.UTC)

    def set_identities(self, identities: list[RemoteIdentity]) -> None:
        self.beginResetModel()
        self.identities = list(identities)
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self.identities)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        identity, column = self.identities[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self.text(identity, column)
        if role == SORT_ROLE:
            return self.sort_key(identity, column)
        if role == Qt.ItemDataRole.ForegroundRole and column == 3:
            return self.expiry_brush(identity)
        if role == Qt.ItemDataRole.ToolTipRole:
            return identity.common_name
        return None

    def text(self, identity: RemoteIdentity, column: int) -> str:
        return (
            identity.common_name,
            identity.sha1.upper(),
            f"{identity.key_type} {identity.key_size}",
            expiry_text(identity, self.now()),
        )[column]

    @staticmethod
    def sort_key(identity: RemoteIdentity, column: int):
        return (
            identity.common_name.casefold(),
            identity.sha1,
            f"{identity.key_type} {identity.key_size:06d}",
            identity.not_after.isoformat(),
        )[column]

    def expiry_brush(self, identity: RemoteIdentity) -> QBrush | None:
        remaining = identity.not_after - self.now()
        if remaining <= datetime.timedelta(0):
            return QBrush(EXPIRED_COLOUR)
        return QBrush(SOON_COLOUR) if remaining <= SOON else None


class IdentityFilter(QSortFilterProxyModel):
    """Sorting by value and a filter that matches any column, in any case."""

    def __init__(self, source: IdentityModel, parent=None):
        super().__init__(parent)
        self.setSourceModel(source)
        self.setSortRole(SORT_ROLE)
        self.setFilterKeyColumn(-1)
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)

    def identity(self, index: QModelIndex) -> RemoteIdentity:
        return self.sourceModel().identities[self.mapToSource(index).row()]
