"""The bake-off results page's views: the leaderboard table, the per-class heat table, every model's confusion
matrix, the gallery of images the models disagree on, and one image's Grad-CAM for each model.

They show a ``core.bakeoff.leaderboard.Leaderboard`` as it is (no figure is computed here); colours come
from the palette (``gui.style``), so they read in light and dark themes.
"""

from __future__ import annotations

import math
import os

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.textout import human_size
from gui.imaging import FitImage, rgb_image
from gui.painting import scaled_font
from gui.style import SPACING, is_dark, mix, state_background, state_color
from gui.wizard.confusion import ConfusionView
from gui.wizard.thumbs import ThumbStrip

ModelRole = Qt.ItemDataRole.UserRole + 1  # the registry name of a row's model
ValueRole = Qt.ItemDataRole.UserRole + 2  # a cell's figure as a number (what it sorts by)
RIGHT, WRONG = "✓", "✗"
COLUMNS = ("#", "Model", "Accuracy (95% CI)", "Macro-F1", "Train", "ms/img", "Params", "Size", "Status",
           "Kept as")
RANK, MODEL, ACCURACY, F1, TRAINING, LATENCY, PARAMS, SIZE, STATUS, KEPT = range(len(COLUMNS))


def percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def duration(seconds: float) -> str:
    if not seconds:
        return "—"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes // 60}h {minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m {secs:02d}s" if minutes \
        else f"{seconds:.1f}s"


def count(params: int) -> str:
    if not params:
        return "—"
    return f"{params / 1e6:.1f}M" if params >= 100_000 else f"{params / 1e3:.1f}k"


class SortItem(QTableWidgetItem):
    """A cell that sorts by its number (``ValueRole``), not its text; a missing figure sorts below every number."""

    def __lt__(self, other: QTableWidgetItem) -> bool:
        mine, theirs = self.data(ValueRole), other.data(ValueRole)
        if isinstance(mine, str) or isinstance(theirs, str):
            return str(mine) < str(theirs)
        return (-math.inf if mine is None else mine) < (-math.inf if theirs is None else theirs)


def _item(text: str, value, *, right: bool = True, tip: str = "") -> SortItem:
    item = SortItem(text)
    item.setData(ValueRole, value)
    if right:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    if tip:
        item.setToolTip(tip)
    return item


class LeaderboardTable(QTableWidget):
    """One row per model, best first; any column sorts by its figure; the winner's row stands out."""

    def __init__(self, parent=None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setObjectName("leaderboard")
        self.setHorizontalHeaderLabels(COLUMNS)
        self.verticalHeader().hide()
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setWordWrap(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(STATUS, QHeaderView.ResizeMode.Stretch)
        header.setSortIndicatorShown(True)
        for column, tip in ((RANK, "Rank: by accuracy, then macro-F1, then latency"),
                            (ACCURACY, "Validation accuracy, with its 95% bootstrap interval over the images"),
                            (F1, "Mean of the per-class F1 scores"), (TRAINING, "Wall time of the training"),
                            (LATENCY, "Latency: median milliseconds for one image on this device"),
                            (PARAMS, "Parameters"), (SIZE, "The saved model's size on disk")):
            self.horizontalHeaderItem(column).setToolTip(tip)
        self.winner: str | None = None

    def set_board(self, board, kept: dict[str, str], present: set[str]) -> None:
        """Fill from ``board``; ``kept`` maps a model to its saved name, ``present`` holds the models whose
        bundle is still in the bake-off's folder."""
        self.setSortingEnabled(False)
        self.winner = board.winner
        self.setRowCount(len(board.rows))
        for row, line in enumerate(board.rows):
            for column, item in enumerate(self._cells(line, kept, present)):
                item.setData(ModelRole, line.model)
                self.setItem(row, column, item)
        self.setSortingEnabled(True)
        self.sortByColumn(RANK, Qt.SortOrder.AscendingOrder)
        self.restyle()
        self.setMaximumHeight(self.fitted_height())

    def fitted_height(self) -> int:
        """Tall enough for every row (and a horizontal scroll bar), so the space below goes to the tabs."""
        rows = sum(self.rowHeight(r) for r in range(self.rowCount()))
        return (self.horizontalHeader().sizeHint().height() + rows + 2 * self.frameWidth()
                + self.horizontalScrollBar().sizeHint().height())

    def _cells(self, row, kept: dict[str, str], present: set[str]) -> list[SortItem]:
        interval = (f" ({100 * row.ci_low:.1f}–{100 * row.ci_high:.1f})"
                    if row.ci_low is not None and row.ci_high is not None else "")
        status = f"{row.status}: {row.message}" if row.message and not row.ranked else row.status
        where = kept.get(row.model) or ("" if row.model in present or not row.bundle else "discarded")
        model_tip = f"{row.model} · strategy {row.strategy or '?'} · {row.epochs_done} epochs"
        return [
            _item(str(row.rank) if row.rank else "—", row.rank if row.rank else math.inf),
            _item(row.display_name or row.model, row.display_name or row.model, right=False, tip=model_tip),
            _item(percent(row.accuracy) + interval, row.accuracy),
            _item("—" if row.macro_f1 is None else f"{row.macro_f1:.3f}", row.macro_f1),
            _item(duration(row.train_seconds), row.train_seconds or None),
            _item("—" if row.latency_ms is None else f"{row.latency_ms:.1f}", row.latency_ms),
            _item(count(row.params), row.params or None),
            _item(human_size(row.bundle_bytes) if row.bundle_bytes else "—", row.bundle_bytes or None),
            _item(status, status, right=False, tip=row.message or row.status),
            _item(where or "—", where, right=False),
        ]

    def model_at(self, row: int) -> str | None:
        item = self.item(row, 0)
        return item.data(ModelRole) if item is not None else None

    def row_of(self, model: str) -> int:
        return next((r for r in range(self.rowCount()) if self.model_at(r) == model), -1)

    def selected_model(self) -> str | None:
        rows = self.selectionModel().selectedRows()
        return self.model_at(rows[0].row()) if rows else None

    def select_model(self, model: str) -> None:
        row = self.row_of(model)
        if row >= 0:
            self.selectRow(row)

    def value(self, model: str, column: int):
        return self.item(self.row_of(model), column).data(ValueRole)

    def restyle(self) -> None:
        palette = self.palette()
        for r in range(self.rowCount()):
            winner = self.model_at(r) == self.winner
            for c in range(self.columnCount()):
                item = self.item(r, c)
                font = QFont(self.font())
                font.setBold(winner)
                item.setFont(font)
                item.setBackground(state_background("ok", palette, 0.22) if winner else QColor(0, 0, 0, 0))
            status = self.item(r, STATUS)
            failed = status.text().startswith(("failed", "cancelled"))
            status.setForeground(state_color("error", palette) if failed
                                 else palette.color(QPalette.ColorRole.Text))

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == event.Type.PaletteChange:
            self.restyle()


def heat_colour(value: float, palette: QPalette) -> tuple[QColor, QColor]:
    """(background, text) for an accuracy in [0, 1]: red below one half, green above, the base at one half."""
    base = palette.color(QPalette.ColorRole.Base)
    hue = state_color("ok" if value >= 0.5 else "error", palette)
    strength = min(1.0, abs(value - 0.5) * 2) * (0.75 if is_dark(palette) else 0.85)
    background = mix(base, hue, strength)
    text = palette.color(QPalette.ColorRole.Text)
    if strength > 0.5:
        text = QColor("white") if background.lightnessF() < 0.6 else QColor("black")
    return background, text


class HeatTable(QTableWidget):
    """Per-class accuracy: rows are the classes, columns the models, each cell coloured by its value."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("perClassHeat")
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.horizontalHeader().setMinimumSectionSize(72)
        self.setToolTip("Share of each class's validation images the model got right")

    def set_table(self, classes: list[str], models: list[tuple[str, str]], per_class: dict) -> None:
        """``models``: (registry name, display name) in rank order; ``per_class``: model -> class -> accuracy."""
        self.clear()
        self.setRowCount(len(classes))
        self.setColumnCount(len(models))
        self.setHorizontalHeaderLabels([name for _, name in models])
        self.setVerticalHeaderLabels(classes)
        for c, (model, _name) in enumerate(models):
            for r, cls in enumerate(classes):
                value = per_class.get(model, {}).get(cls)
                item = QTableWidgetItem(percent(value))
                item.setData(ValueRole, value)
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.setItem(r, c, item)
        self.restyle()

    def restyle(self) -> None:
        for r in range(self.rowCount()):
            for c in range(self.columnCount()):
                item = self.item(r, c)
                value = item.data(ValueRole) if item is not None else None
                if value is not None:
                    background, text = heat_colour(value, self.palette())
                    item.setBackground(background)
                    item.setForeground(text)

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == event.Type.PaletteChange:
            self.restyle()


class ConfusionGrid(QScrollArea):
    """Every ranked model's confusion matrix, side by side (rows wrap), each under its model's name."""

    COLUMNS = 3

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("confusionGrid")
        self.setWidgetResizable(True)
        self.views: dict[str, ConfusionView] = {}
        self._inner = QWidget()
        self._grid = QGridLayout(self._inner)
        self._grid.setSpacing(SPACING)
        self.setWidget(self._inner)

    def set_matrices(self, classes: list[str], models: list[tuple[str, str]], matrices: dict) -> None:
        for view in self.views.values():
            view.parent().deleteLater()
        self.views = {}
        columns = min(self.COLUMNS, max(1, len(models)))
        for i, (model, name) in enumerate(models):
            box = QWidget(self._inner)
            layout = QVBoxLayout(box)
            layout.setContentsMargins(0, 0, 0, 0)
            title = QLabel(name, box)
            title.setFont(scaled_font(self.font(), 1.0, bold=True))
            view = ConfusionView(box)
            view.setMinimumSize(200, 160)
            view.set_matrix(classes, matrices[model])
            layout.addWidget(title)
            layout.addWidget(view, 1)
            self._grid.addWidget(box, i // columns, i % columns)
            self.views[model] = view


class DisagreementStrip(ThumbStrip):
    """The validation images the models answer differently: true class and every model's answer, right or wrong."""

    chosen = Signal(int)  # position in the board's disagreements

    def __init__(self, loader, parent=None, *, icon: int = 64) -> None:
        super().__init__(loader, parent, icon=icon, rows=1)
        self.setObjectName("disagreements")
        self.itemClicked.connect(lambda item: self.chosen.emit(self.row(item)))
        self.itemActivated.connect(lambda item: self.chosen.emit(self.row(item)))

    def set_disagreements(self, board, names: dict[str, str]) -> None:
        classes = board.classes
        entries, lines = [], 1
        for d in board.disagreements:
            answers = [f"{RIGHT if pred == d.true else WRONG} {names.get(m, m)}: "
                       f"{classes[pred] if pred >= 0 else 'unreadable'}" for m, (pred, _c) in d.answers.items()]
            tip = "\n".join([d.path, f"true class: {classes[d.true]}",
                             *(f"{a} ({100 * conf:.0f}%)" for a, (_p, conf) in zip(answers, d.answers.values())),
                             "Click to see each model's Grad-CAM"])
            entries.append((d.path, "\n".join([f"true: {classes[d.true]}", *answers]), tip))
            lines = max(lines, 1 + len(answers))
        width = max(self.icon + 40, 150)
        self.setGridSize(QSize(width, self.icon + 14 + lines * self.fontMetrics().height()))
        self.set_items(entries)
        for i in range(self.count()):
            self.item(i).setTextAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)


class CamPanel(QWidget):
    """One image's Grad-CAM for each model, side by side, with what each model answered."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("camPanel")
        self.title = QLabel("Click an image to see where each model looked.", self)
        self.title.setWordWrap(True)
        self._row = QHBoxLayout()
        self._row.setSpacing(SPACING)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addLayout(self._row, 1)
        self.path = ""
        self.images: dict[str, FitImage] = {}
        self.captions: dict[str, QLabel] = {}

    def show_image(self, path: str, true_class: str, answers: list[tuple[str, str, str, bool]]) -> None:
        """``answers``: (model, display name, "predicted (confidence)", right) per model, Grad-CAM pending."""
        self.path = path
        self.title.setText(f"<b>{os.path.basename(path)}</b> · true class <b>{true_class}</b> · "
                           "Grad-CAM of each model's own answer")
        while self._row.count():
            widget = self._row.takeAt(0).widget()
            if widget is not None:
                widget.deleteLater()
        self.images, self.captions = {}, {}
        for model, name, answer, right in answers:
            box = QWidget(self)
            column = QVBoxLayout(box)
            column.setContentsMargins(0, 0, 0, 0)
            image = FitImage(box, smooth=True, minimum=96, hint=180)
            caption = QLabel(box)
            caption.setWordWrap(True)
            colour = state_color("ok" if right else "error", self.palette()).name()
            caption.setText(f"<b>{name}</b><br><span style='color:{colour}'>{RIGHT if right else WRONG} {answer}"
                            "</span><br><i>Computing Grad-CAM…</i>")
            column.addWidget(image, 1)
            column.addWidget(caption)
            self._row.addWidget(box, 1)
            self.images[model], self.captions[model] = image, caption

    def show_cam(self, cam) -> None:
        if cam.path != self.path or cam.model not in self.images:
            return
        caption = self.captions[cam.model]
        text = caption.text().rsplit("<br>", 1)[0]
        if cam.image is not None:
            self.images[cam.model].set_image(rgb_image(cam.image))
            caption.setText(text)
        else:
            caption.setText(f"{text}<br><span style='color:{state_color('error', self.palette()).name()}'>"
                            f"No Grad-CAM: {cam.error}</span>")

    def show_error(self, model: str, message: str) -> None:
        caption = self.captions.get(model)
        if caption is not None:
            caption.setText(f"{caption.text().rsplit('<br>', 1)[0]}<br><i>{message}</i>")

    def has_cam(self, model: str) -> bool:
        image = self.images.get(model)
        return image is not None and image.image() is not None

