"""Side-by-side tiles, one per model: its Grad-CAM on the photo, or its feature maps at a stage.

The widget shows plain data: a list of ``Tile`` (title, an RGB uint8 numpy
picture or None, a caption, a tooltip). It chooses how many columns make the
tiles largest in the space it has, and rescales on resize. The "Show" combo
(Grad-CAM or feature maps) and the stage combo (1..4: the module of
comparable depth in each architecture, ``spec.stages``) only emit
``viewChanged``; the window decides what the tiles hold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QEvent, QSize, Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics, QImage, QPalette, QPixmap
from PySide6.QtWidgets import QComboBox, QGridLayout, QHBoxLayout, QLabel, QLayout, QSizePolicy, QVBoxLayout, QWidget

from gui.style import SPACING, mix

STAGE_NAMES = ("Stage 1 (early)", "Stage 2", "Stage 3", "Stage 4 (last)")
TEXT_LINES = 2  # lines for a tile's title and for its caption


@dataclass(frozen=True)
class Tile:
    title: str
    image: np.ndarray | None  # RGB uint8 [H, W, 3]
    caption: str = ""
    tooltip: str = ""


def model_tiles(models: list[tuple], mode: str, stage: int, missing: str = "drawing…") -> list[Tile]:
    """Tiles for ``(spec, untrained, core.compare.ModelVisuals or None)`` triples: Grad-CAM or one stage."""
    tiles = []
    for spec, untrained, visuals in models:
        title = spec.display_name + (" · untrained" if untrained else "")
        if visuals is None or visuals.error:
            tiles.append(Tile(title, None, visuals.error if visuals is not None else missing))
        elif mode == "cam":
            prob = f"{visuals.cam_prob:.0%}" if visuals.cam_prob >= 0.01 else f"{visuals.cam_prob:.1%}"
            tiles.append(Tile(title, visuals.cam, f"{visuals.cam_label} · {prob}",
                              f"Grad-CAM of “{visuals.cam_label}” at {spec.gradcam_layer}"))
        else:
            shape = "×".join(str(d) for d in visuals.stage_shapes[stage])
            tiles.append(Tile(title, visuals.stages[stage], f"{spec.stages[stage]} · {shape}",
                              f"The strongest channels of {spec.stages[stage]} ({shape})"))
    return tiles


def fit_lines(text: str, metrics: QFontMetrics, width: int, lines: int = 2) -> str:
    """``text`` broken at spaces into at most ``lines`` lines of ``width`` pixels, the last one elided."""
    words, out = text.split(" "), []
    while words and len(out) < lines - 1:
        take = len(words)
        while take > 1 and metrics.horizontalAdvance(" ".join(words[:take])) > width:
            take -= 1
        if take == len(words):
            break
        out.append(" ".join(words[:take]))
        words = words[take:]
    out.append(metrics.elidedText(" ".join(words), Qt.TextElideMode.ElideRight, width))
    return "\n".join(line for line in out if line)


def to_pixmap(image: np.ndarray) -> QPixmap:
    array = np.ascontiguousarray(image[..., :3], dtype=np.uint8)
    h, w = array.shape[:2]
    qimage = QImage(array.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()  # own the pixels
    return QPixmap.fromImage(qimage)


class _TileWidget(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.title = QLabel(self)
        font = QFont(self.title.font())
        font.setBold(True)
        self.title.setFont(font)
        self.picture = QLabel(self)
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption = QLabel(self)
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        for label in (self.title, self.caption):  # two lines each, so long names wrap instead of being cut
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
            label.setFixedHeight(TEXT_LINES * label.fontMetrics().lineSpacing())
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.title)
        layout.addWidget(self.picture, 1)
        layout.addWidget(self.caption)
        self._pixmap: QPixmap | None = None
        self._side = 120
        self._tile = Tile("", None)

    def show_tile(self, tile: Tile, side: int) -> None:
        self._side = side
        self._tile = tile
        self.setToolTip(tile.tooltip or tile.caption)
        self._pixmap = to_pixmap(tile.image) if tile.image is not None else None
        self._render()

    def set_side(self, side: int) -> None:
        if side != self._side:
            self._side = side
            self._render()

    def _render(self) -> None:
        side = self._side
        self.setFixedWidth(side)
        for label, text in ((self.title, self._tile.title), (self.caption, self._tile.caption)):
            shown = fit_lines(text, label.fontMetrics(), side, TEXT_LINES)
            label.setText(shown)
            label.setToolTip(text if shown.replace("\n", " ") != text else "")  # the full text when cut
        self.picture.setFixedSize(QSize(side, side))
        if self._pixmap is None:
            self.picture.setPixmap(QPixmap())
            self.picture.setText("…")
            pal = self.palette()
            fill = mix(pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.Text), 0.06).name()
            self.picture.setStyleSheet(f"background: {fill}; border-radius: 6px;")
            return
        self.picture.setStyleSheet("")
        self.picture.setText("")
        self.picture.setPixmap(self._pixmap.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                                                   Qt.TransformationMode.SmoothTransformation))


class CompareTiles(QWidget):
    viewChanged = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.mode = QComboBox(self)
        self.mode.addItem("Grad-CAM", "cam")
        self.mode.addItem("Feature maps", "features")
        self.mode.setToolTip("Where each model looks (Grad-CAM of its top-1), or its strongest channels at a stage")
        self.stage = QComboBox(self)
        for i, name in enumerate(STAGE_NAMES):
            self.stage.addItem(name, i)
        self.stage.setToolTip("Feature maps at comparable depth: the end of stage 1..4 of each architecture")
        self.stage.setEnabled(False)
        self.mode.currentIndexChanged.connect(self._on_mode)
        self.stage.currentIndexChanged.connect(lambda _i: self.viewChanged.emit())
        self.hint = QLabel(self)
        self.hint.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Show:", self))
        bar.addWidget(self.mode)
        bar.addWidget(self.stage)
        bar.addWidget(self.hint, 1)
        self.area = QWidget(self)
        self.area.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)  # tiles follow the area
        self.area.installEventFilter(self)
        self.grid = QGridLayout(self.area)
        self.grid.setSizeConstraint(QLayout.SizeConstraint.SetNoConstraint)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(SPACING)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(SPACING // 2)
        layout.addLayout(bar)
        layout.addWidget(self.area, 1)
        self._tiles: list[Tile] = []
        self._widgets: list[_TileWidget] = []
        self._columns = 0

    def current_mode(self) -> str:
        return self.mode.currentData()

    def current_stage(self) -> int:
        return self.stage.currentData()

    def set_view(self, mode: str, stage: int = 0) -> None:
        self.stage.setCurrentIndex(max(0, min(3, stage)))
        self.mode.setCurrentIndex(max(0, self.mode.findData(mode)))

    def _on_mode(self, _index: int) -> None:
        self.stage.setEnabled(self.current_mode() == "features")
        self.viewChanged.emit()

    def set_tiles(self, tiles: list[Tile]) -> None:
        self._tiles = list(tiles)
        hint = "Where each model looks for its top-1." if self.current_mode() == "cam" else "The 16 strongest channels."
        self.hint.setText(hint if tiles else "Pictures appear as models finish.")
        while len(self._widgets) < len(tiles):
            self._widgets.append(_TileWidget(self.area))
        for widget in self._widgets[len(tiles):]:
            widget.hide()
        self._layout(force=True)

    def tiles(self) -> list[Tile]:
        return list(self._tiles)

    def _best_columns(self) -> tuple[int, int]:
        """Columns that make the tiles largest in the area, and the tile picture side."""
        n = len(self._tiles)
        if not n:
            return 1, 0
        width, height = max(1, self.area.width()), max(1, self.area.height())
        extra = 2 * TEXT_LINES * self.fontMetrics().lineSpacing() + 8  # title + caption
        best = (1, 0)
        for cols in range(1, n + 1):
            rows = math.ceil(n / cols)
            side = min((width - (cols - 1) * SPACING) // cols, (height - (rows - 1) * SPACING) // rows - extra)
            if side > best[1]:
                best = (cols, side)
        return best[0], max(48, min(320, best[1]))

    def _layout(self, force: bool = False) -> None:
        cols, side = self._best_columns()
        if force or cols != self._columns:
            for widget in self._widgets:
                self.grid.removeWidget(widget)
            for i, (tile, widget) in enumerate(zip(self._tiles, self._widgets)):
                self.grid.addWidget(widget, i // cols, i % cols,
                                    Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignHCenter)
                widget.show_tile(tile, side)
                widget.show()
            self._columns = cols
        else:
            for widget in self._widgets[: len(self._tiles)]:
                widget.set_side(side)
        rows = math.ceil(len(self._tiles) / cols) if self._tiles else 0
        for r in range(self.grid.rowCount()):
            self.grid.setRowStretch(r, 0)
        self.grid.setRowStretch(rows, 1)

    def eventFilter(self, watched, event) -> bool:
        if watched is self.area and event.type() == QEvent.Type.Resize:
            self._layout()
        return super().eventFilter(watched, event)
