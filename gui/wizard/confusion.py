"""The confusion matrix as a table: rows are the true classes, columns the predicted ones.

Each cell is shaded by its share of the row (the diagonal in the "ok" hue, the
mistakes in the highlight colour); clicking a cell emits ``cellChosen`` so the
results page can show the thumbnails of those images.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QColor, QPalette, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
)

from gui.style import mix, state_color


class ConfusionModel(QAbstractTableModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.classes: list[str] = []
        self.matrix = np.zeros((0, 0), dtype=np.int64)
        self.palette = QPalette()

    def set_matrix(self, classes: list[str], matrix: np.ndarray) -> None:
        self.beginResetModel()
        self.classes, self.matrix = list(classes), np.asarray(matrix)
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802, B008 - Qt name and signature
        return 0 if parent.isValid() else len(self.classes)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.classes)

    def _share(self, row: int, col: int) -> float:
        total = int(self.matrix[row].sum())
        return float(self.matrix[row, col]) / total if total else 0.0

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row, col = index.row(), index.column()
        count = int(self.matrix[row, col])
        if role == Qt.ItemDataRole.DisplayRole:
            return str(count) if count else ""
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignCenter)
        if role == Qt.ItemDataRole.BackgroundRole:
            base = self.palette.color(QPalette.ColorRole.Base)
            hue = state_color("ok", self.palette) if row == col else QColor("#d93b3b")
            return mix(base, hue, 0.85 * self._share(row, col)) if count else None
        if role == Qt.ItemDataRole.ForegroundRole and count and self._share(row, col) > 0.55:
            return QColor("white")
        if role == Qt.ItemDataRole.ToolTipRole:
            verb = "correctly classified" if row == col else f"predicted as '{self.classes[col]}'"
            return (f"{count} '{self.classes[row]}' image{'s' * (count != 1)} {verb} "
                    f"({100 * self._share(row, col):.0f}% of the class) — click to see them")
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(self.classes):
            return self.classes[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return "true class" if orientation == Qt.Orientation.Vertical else "predicted class"
        return None


class _FramedSelection(QStyledItemDelegate):
    """The chosen cell keeps its shade and gets a frame (a selection fill would hide the count's colour)."""

    def paint(self, painter, option, index) -> None:
        opt = QStyleOptionViewItem(option)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        opt.state &= ~QStyle.StateFlag.State_Selected
        opt.state &= ~QStyle.StateFlag.State_HasFocus
        super().paint(painter, opt, index)
        if selected:
            painter.save()
            painter.setPen(QPen(option.palette.color(QPalette.ColorRole.Highlight), 3))
            painter.drawRect(option.rect.adjusted(1, 1, -2, -2))
            painter.restore()


class ConfusionView(QTableView):
    cellChosen = Signal(int, int)  # true class, predicted class

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("confusionMatrix")
        self.confusion = ConfusionModel(self)
        self.confusion.palette = self.palette()
        self.setModel(self.confusion)
        self.setItemDelegate(_FramedSelection(self))
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.horizontalHeader().setMinimumSectionSize(28)
        self.verticalHeader().setMinimumSectionSize(20)
        self.setToolTip("Rows: true class · columns: predicted class. Click a cell to see its images.")
        self.clicked.connect(lambda index: self.cellChosen.emit(index.row(), index.column()))

    def set_matrix(self, classes: list[str], matrix: np.ndarray) -> None:
        self.confusion.set_matrix(classes, matrix)

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == event.Type.PaletteChange:
            self.confusion.palette = self.palette()
            self.viewport().update()
