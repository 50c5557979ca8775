"""The gallery's data: one ``GalleryItem`` per photo in a QAbstractListModel.

Kept apart from the view (``gui.widgets.gallery``) so the window and the
status bar can read states without importing a widget module.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import IntEnum

from PySide6.QtCore import QAbstractListModel, QModelIndex, Qt


class State(IntEnum):
    QUEUED = 0
    CLASSIFYING = 1
    DONE = 2
    FAILED = 3
    STOPPED = 4


@dataclass
class GalleryItem:
    path: str
    state: State = State.QUEUED
    prediction: object | None = None  # core.inference.Prediction
    error: str | None = None

    @property
    def reason(self) -> str:
        """The failure reason without the path the core puts in front of it."""
        text = self.error or ""
        for prefix in (self.path + ": ", os.path.basename(self.path) + ": "):
            if text.startswith(prefix):
                return text[len(prefix):]
        return text


ItemRole = Qt.ItemDataRole.UserRole + 1


class GalleryModel(QAbstractListModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._items: list[GalleryItem] = []
        self._rows: dict[str, int] = {}

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008 - Qt signature
        return 0 if parent.isValid() else len(self._items)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self._items):
            return None
        item = self._items[index.row()]
        if role == ItemRole:
            return item
        if role == Qt.ItemDataRole.DisplayRole:
            return os.path.basename(item.path)
        if role == Qt.ItemDataRole.ToolTipRole:
            return _tooltip(item)
        return None

    def item(self, row: int) -> GalleryItem:
        return self._items[row]

    def row_of(self, path: str) -> int | None:
        return self._rows.get(path)

    def paths(self) -> list[str]:
        return [item.path for item in self._items]

    def items(self) -> list[GalleryItem]:
        return list(self._items)

    def add_paths(self, paths: list[str]) -> list[str]:
        """Append photos not already shown; returns the ones added."""
        fresh = list(dict.fromkeys(p for p in paths if p not in self._rows))
        if fresh:
            start = len(self._items)
            self.beginInsertRows(QModelIndex(), start, start + len(fresh) - 1)
            for offset, path in enumerate(fresh):
                self._rows[path] = start + offset
                self._items.append(GalleryItem(path))
            self.endInsertRows()
        return fresh

    def clear(self) -> None:
        self.beginResetModel()
        self._items.clear()
        self._rows.clear()
        self.endResetModel()

    def set_state(self, paths: list[str], state: State, *, only_from: tuple[State, ...] = ()) -> None:
        rows = []
        for path in paths:
            row = self._rows.get(path)
            if row is None:
                continue
            item = self._items[row]
            if only_from and item.state not in only_from:
                continue
            item.state = state
            if state in (State.QUEUED, State.CLASSIFYING):
                item.prediction, item.error = None, None
            rows.append(row)
        self._changed(rows)

    def requeue_all(self) -> list[str]:
        self.set_state(self.paths(), State.QUEUED)
        return self.paths()

    def stop_pending(self) -> int:
        pending = [i.path for i in self._items if i.state in (State.QUEUED, State.CLASSIFYING)]
        self.set_state(pending, State.STOPPED)
        return len(pending)

    def apply(self, prediction) -> int | None:
        """Record a Prediction on its photo; returns the row (None if not shown)."""
        row = self._rows.get(prediction.path)
        if row is None:
            return None
        item = self._items[row]
        item.prediction = prediction
        item.state = State.DONE if prediction.ok else State.FAILED
        item.error = None if prediction.ok else (prediction.error or "could not be classified")
        self._changed([row])
        return row

    def refresh(self, path: str) -> None:
        row = self._rows.get(path)
        if row is not None:
            self._changed([row])

    def counts(self) -> dict[State, int]:
        counts = {state: 0 for state in State}
        for item in self._items:
            counts[item.state] += 1
        return counts

    def finished_predictions(self) -> list:
        return [i.prediction for i in self._items if i.prediction is not None]

    def _changed(self, rows: list[int]) -> None:
        if rows:
            self.dataChanged.emit(self.index(min(rows)), self.index(max(rows)), [ItemRole])


def _tooltip(item: GalleryItem) -> str:
    lines = [item.path]
    if item.state == State.DONE and item.prediction is not None:
        lines += [f"{t.label}: {t.prob:.1%}" for t in item.prediction.topk[:3]]
        if item.prediction.untrained:
            lines.append("(untrained model: predictions are not meaningful)")
    elif item.state == State.FAILED:
        lines.append(item.reason)
    else:
        lines.append(item.state.name.capitalize())
    return "\n".join(lines)
