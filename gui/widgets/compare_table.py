"""The comparison table: one row per model for the selected photo, sortable by number.

It holds plain data: the registry spec of each model, the measured
``core.compare.ModelRow`` once it arrives, and an ``Evaluation`` when a
labelled folder was scored. The top-1 cell is coloured by agreement with the
majority label of the shown photo (green: with the majority, red: against it,
amber: no majority). Sorting goes through a ``QSortFilterProxyModel`` on
``SortRole``, which holds numbers for the numeric columns.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from enum import IntEnum

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView

from core.compare import agreement
from core.textout import human_count, human_size
from gui.style import state_background, state_color

SortRole = Qt.ItemDataRole.UserRole + 20
ModelRole = Qt.ItemDataRole.UserRole + 21


class Col(IntEnum):
    MODEL = 0
    TOP1 = 1
    TOP5 = 2
    LATENCY = 3
    PARAMS = 4
    GFLOPS = 5
    SIZE = 6
    ACC1 = 7
    FOLDER1 = 8
    FOLDER5 = 9
    WEIGHTS = 10


HEADERS = {
    Col.MODEL: ("Model", "The network (hover for its family and paper)"),
    Col.TOP1: ("Top-1", "Its best guess for the shown photo; green agrees with the majority, red does not"),
    Col.TOP5: ("Top-5", "Its five best guesses with their probabilities"),
    Col.LATENCY: ("Latency (ms)", "Median time of one forward pass for one photo on this device, first run excluded"),
    Col.PARAMS: ("Params", "Number of parameters"),
    Col.GFLOPS: ("GFLOPs", "Multiply-adds for one 224x224 image, in billions (torchvision's convention)"),
    Col.SIZE: ("Weights", "Size of the pretrained weights file"),
    Col.ACC1: ("ImageNet acc@1", "Top-1 accuracy on ImageNet-1k validation of the pretrained weights, from the "
                                 "registry; — where the model ran untrained (the figure is not for those weights)"),
    Col.FOLDER1: ("Folder top-1", "Top-1 accuracy on your labelled folder"),
    Col.FOLDER5: ("Folder top-5", "Top-5 accuracy on your labelled folder"),
    Col.WEIGHTS: ("Weights used", "Pretrained (ImageNet) or untrained (random weights)"),
}


def prob_text(p: float) -> str:
    """62%, or 0.4% for the small probabilities of an untrained model."""
    return f"{p:.0%}" if p >= 0.01 else f"{p:.1%}"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} %"


@dataclass
class Entry:
    """One model's line: registry facts (``spec``) plus what was measured."""

    spec: object  # core.zoo.ModelSpec
    row: object | None = None  # core.compare.ModelRow
    evaluation: object | None = None  # core.compare.Evaluation
    error: str | None = None

    @property
    def untrained(self) -> bool | None:
        source = self.row or self.evaluation
        return None if source is None else source.untrained

    def acc1(self) -> float | None:
        """The registry's ImageNet acc@1, but None once the model ran untrained (it is not for those weights)."""
        return None if self.untrained else self.spec.acc1

    def weights_note(self) -> str:
        if self.untrained is None:
            return ""
        if not self.untrained:
            used = getattr(self.row or self.evaluation, "weights_used", None)  # core.weights_store.WeightsInfo
            return used.label if used is not None else "pretrained"
        return "untrained (no file)" if self.spec.pretrained else "untrained (none exist)"


class CompareTableModel(QAbstractTableModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._entries: list[Entry] = []
        self._photo = 0

    # -- data in --------------------------------------------------------------------

    def clear(self) -> None:
        self.beginResetModel()
        self._entries = []
        self.endResetModel()

    def _entry(self, spec) -> tuple[int, Entry]:
        for i, entry in enumerate(self._entries):
            if entry.spec.name == spec.name:
                return i, entry
        self.beginInsertRows(QModelIndex(), len(self._entries), len(self._entries))
        self._entries.append(Entry(spec))
        self.endInsertRows()
        return len(self._entries) - 1, self._entries[-1]

    def set_row(self, spec, row) -> None:
        """Add or update a model's measured row; agreement colours of every row may change."""
        _, entry = self._entry(spec)
        entry.row, entry.error = row, None
        self._all_changed()

    def set_evaluation(self, spec, evaluation) -> None:
        i, entry = self._entry(spec)
        entry.evaluation = evaluation
        self.dataChanged.emit(self.index(i, 0), self.index(i, len(Col) - 1))

    def clear_evaluations(self) -> None:
        """Forget folder scores; models that only had a score leave the table."""
        self.beginResetModel()
        self._entries = [e for e in self._entries if e.row is not None or e.error]
        for entry in self._entries:
            entry.evaluation = None
        self.endResetModel()

    def set_photo(self, index: int) -> None:
        self._photo = index
        self._all_changed()

    def _all_changed(self) -> None:
        if self._entries:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._entries) - 1, len(Col) - 1))

    # -- data out -------------------------------------------------------------------

    def entries(self) -> list[Entry]:
        return list(self._entries)

    def measured_rows(self) -> list:
        return [e.row for e in self._entries if e.row is not None]

    def has_evaluations(self) -> bool:
        return any(e.evaluation is not None for e in self._entries)

    def votes(self) -> dict[str, int]:
        """Top-1 label -> number of models giving it, for the shown photo (majority first)."""
        rows = [r for r in self.measured_rows() if self._photo < len(r.predictions)]
        return agreement(rows, self._photo) if rows else {}

    def majority(self) -> str | None:
        """The label most models give, if exactly one label has the most votes."""
        votes = list(self.votes().items())
        if not votes or (len(votes) > 1 and votes[0][1] == votes[1][1]):
            return None
        return votes[0][0]

    def summary(self) -> str:
        """"4 of 6 models say “tabby”", or where they split."""
        votes = self.votes()
        voters = sum(votes.values())
        if not voters:
            return ""
        label, count = next(iter(votes.items()))
        if voters == 1:
            return f"1 model says “{label}”."
        if count == 1:
            return f"The {voters} models give {voters} different answers."
        if self.majority() is None:
            split = ", ".join(f"{n} say{'s' * (n == 1)} “{lab}”" for lab, n in list(votes.items())[:3])
            return f"No majority among {voters} models: {split}."
        if count == voters:
            return f"All {voters} models say “{label}”."
        others = ", ".join(f"“{lab}” ({n})" for lab, n in list(votes.items())[1:4])
        return f"{count} of {voters} models say “{label}”; the others: {others}."

    def _prediction(self, entry: Entry):
        if entry.row is None or self._photo >= len(entry.row.predictions):
            return None
        return entry.row.predictions[self._photo]

    # -- Qt model -------------------------------------------------------------------

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008 - Qt signature
        return 0 if parent.isValid() else len(self._entries)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(Col)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation != Qt.Orientation.Horizontal or section >= len(Col):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[Col(section)][0]
        if role == Qt.ItemDataRole.ToolTipRole:
            return HEADERS[Col(section)][1]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        entry, col = self._entries[index.row()], Col(index.column())
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(entry, col)
        if role == SortRole:
            return self._sort_key(entry, col)
        if role == ModelRole:
            return entry.spec.name
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(entry, col)
        if role == Qt.ItemDataRole.TextAlignmentRole and col not in (Col.MODEL, Col.TOP1, Col.TOP5, Col.WEIGHTS):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role in (Qt.ItemDataRole.BackgroundRole, Qt.ItemDataRole.ForegroundRole):
            return self._colour(entry, col, role)
        return None

    def _text(self, entry: Entry, col: Col) -> str:
        spec, pred = entry.spec, self._prediction(entry)
        if col == Col.MODEL:
            return spec.display_name
        if col in (Col.TOP1, Col.TOP5):
            if entry.error and entry.row is None:
                return "failed"
            if pred is None:
                return ""
            if not pred.ok:
                return "could not read the photo"
            if col == Col.TOP1:
                return f"{pred.topk[0].label} · {prob_text(pred.topk[0].prob)}"
            return " · ".join(f"{t.label} {prob_text(t.prob)}" for t in pred.topk)
        if col == Col.LATENCY:
            ms = entry.row.latency_ms if entry.row is not None else math.nan
            return "" if math.isnan(ms) else f"{ms:.1f}"
        if col == Col.PARAMS:
            return human_count(spec.params)
        if col == Col.GFLOPS:
            return f"{spec.gflops:.2f}"
        if col == Col.SIZE:
            return human_size(spec.weights_size)
        if col == Col.ACC1:
            return percent(entry.acc1())
        if col in (Col.FOLDER1, Col.FOLDER5):
            ev = entry.evaluation
            return "" if ev is None else percent(100 * (ev.top1 if col == Col.FOLDER1 else ev.top5))
        return entry.weights_note()

    def _sort_key(self, entry: Entry, col: Col):
        spec, pred = entry.spec, self._prediction(entry)
        missing = -math.inf
        if col == Col.MODEL:
            return spec.display_name.lower()
        if col in (Col.TOP1, Col.TOP5):
            if pred is None or not pred.ok:
                return missing
            return pred.topk[0].prob if col == Col.TOP1 else sum(t.prob for t in pred.topk)
        if col == Col.LATENCY:
            ms = entry.row.latency_ms if entry.row is not None else math.nan
            return missing if math.isnan(ms) else float(ms)
        if col == Col.PARAMS:
            return float(spec.params)
        if col == Col.GFLOPS:
            return float(spec.gflops)
        if col == Col.SIZE:
            return float(spec.weights_size or missing)
        if col == Col.ACC1:
            return missing if entry.acc1() is None else float(entry.acc1())
        if col in (Col.FOLDER1, Col.FOLDER5):
            ev = entry.evaluation
            return missing if ev is None else float(ev.top1 if col == Col.FOLDER1 else ev.top5)
        return entry.weights_note()

    def _tooltip(self, entry: Entry, col: Col) -> str | None:
        spec, pred = entry.spec, self._prediction(entry)
        if col == Col.MODEL:
            return f"{spec.display_name} — {spec.family}, {spec.year}\n{spec.paper}"
        if col in (Col.TOP1, Col.TOP5):
            if entry.error and entry.row is None:
                return entry.error
            if pred is not None and not pred.ok:
                return pred.error
            if pred is not None:
                return "\n".join(f"{t.prob:6.1%}  {t.label}" for t in pred.topk)
        if col == Col.ACC1 and entry.untrained and spec.acc1 is not None:
            return f"Published: {spec.acc1:.1f}% for the pretrained weights, not for the random weights this run used."
        if col == Col.WEIGHTS and entry.untrained:
            if spec.pretrained:
                return ("Its pretrained weights are not on this computer, so it ran with random weights; "
                        "its guesses mean nothing. Download them from the main window (Classify ▸ Download Weights).")
            return "No ImageNet weights exist for this architecture; it ran with random weights."
        return None

    def _colour(self, entry: Entry, col: Col, role):
        palette = QGuiApplication.palette()
        if col == Col.WEIGHTS and entry.untrained:
            return state_color("warning", palette) if role == Qt.ItemDataRole.ForegroundRole else None
        pred = self._prediction(entry)
        if col != Col.TOP1 or pred is None or not pred.ok or len(self.measured_rows()) < 2:
            return None
        majority = self.majority()
        kind = "warning" if majority is None else ("ok" if pred.topk[0].label == majority else "error")
        if role == Qt.ItemDataRole.BackgroundRole:
            return state_background(kind, palette, 0.28)
        return None


class CompareTable(QTableView):
    """The view: sortable through a proxy, folder columns hidden until a folder was scored."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.source = CompareTableModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.source)
        self.proxy.setSortRole(SortRole)
        self.setModel(self.proxy)
        self.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.setSortingEnabled(True)  # arrival order until a header is clicked
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.setWordWrap(True)  # the top-5 wraps onto more lines rather than being cut; rows grow to fit
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.verticalHeader().hide()
        self.setObjectName("compareTable")
        header = self.horizontalHeader()
        header.setHighlightSections(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        widths = {Col.MODEL: 104, Col.TOP1: 160, Col.TOP5: 300, Col.LATENCY: 88, Col.PARAMS: 70, Col.GFLOPS: 62,
                  Col.SIZE: 80, Col.ACC1: 106, Col.FOLDER1: 90, Col.FOLDER5: 90, Col.WEIGHTS: 150}
        for col, width in widths.items():
            self.setColumnWidth(col, width)
        header.setSectionResizeMode(Col.TOP5, QHeaderView.ResizeMode.Stretch)
        self.source.modelReset.connect(self._sync_columns)
        self.source.dataChanged.connect(self._sync_columns)
        self._sync_columns()

    def _sync_columns(self, *_args) -> None:
        hidden = not self.source.has_evaluations()
        for col in (Col.FOLDER1, Col.FOLDER5):
            self.setColumnHidden(col, hidden)

    def column_values(self, col: Col) -> list[str]:
        """Shown texts of one column, top to bottom (as sorted)."""
        return [self.proxy.index(r, col).data() for r in range(self.proxy.rowCount())]


def table_csv(entries: list[Entry], paths: list[str]) -> str:
    """One line per model and photo: predictions, measurements and registry facts."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["model", "display_name", "family", "photo", "top1_label", "top1_prob", "top5", "latency_ms",
                     "params", "gflops", "weights_bytes", "imagenet_acc1", "folder_top1", "folder_top5", "weights"])
    for entry in entries:
        spec, row, ev = entry.spec, entry.row, entry.evaluation
        predictions = list(row.predictions) if row is not None else [None]
        for i, pred in enumerate(predictions):
            ok = pred is not None and pred.ok
            writer.writerow([
                spec.name, spec.display_name, spec.family,
                paths[i] if pred is not None and i < len(paths) else "",
                pred.topk[0].label if ok else "", f"{pred.topk[0].prob:.6f}" if ok else "",
                "; ".join(f"{t.label}:{t.prob:.6f}" for t in pred.topk) if ok else ((pred.error or "") if pred else ""),
                "" if row is None or math.isnan(row.latency_ms) else f"{row.latency_ms:.3f}",
                spec.params, spec.gflops, spec.weights_size or "", "" if entry.acc1() is None else entry.acc1(),
                "" if ev is None else f"{ev.top1:.6f}", "" if ev is None else f"{ev.top5:.6f}",
                entry.weights_note(),
            ])
    return out.getvalue()
