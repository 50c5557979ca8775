"""One layer's activations for the selected photo: the strongest channels as a grid.

Fed with plain records (``gui.explaining.FeatureMaps`` / ``FilterTiles``) by
the window. Each tile is coloured through the chosen colour map, scaled to its
own range or to one range shared by every tile; clicking a tile shows that
channel large beside the photo as the model saw it, with a colour bar of its
values. The second page shows the first convolution's filters as RGB tiles.
Colouring happens here, from the cached values: no new request.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import (
    QBoxLayout,
    QButtonGroup,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from core import render
from gui.imaging import COLORMAPS, ColorBar, FitImage, TileGrid, rgb_image
from gui.painting import scaled_font
from gui.style import SPACING, state_background, state_color

CHANNELS, FILTERS = 0, 1
WIDE = 540  # from this width on, the input and the large channel sit beside the grid
DETAIL_SIDE = 240  # their column's width then
MIN_TILE = 44  # smallest channel tile, logical pixels


# checked toggles in the selection colour: the style's own checked look is faint on a dark palette
_TOGGLES = """
QPushButton#segmentLeft, QPushButton#segmentRight, QPushButton#toggle {
    padding: 3px 10px; border: 1px solid palette(mid); background: palette(button); }
QPushButton#segmentLeft { border-top-left-radius: 5px; border-bottom-left-radius: 5px; }
QPushButton#segmentRight { border-top-right-radius: 5px; border-bottom-right-radius: 5px; border-left: none; }
QPushButton#toggle { border-radius: 5px; }
QPushButton#segmentLeft:checked, QPushButton#segmentRight:checked, QPushButton#toggle:checked {
    background: palette(highlight); color: palette(highlighted-text); border-color: palette(highlight); }
"""


def _value(v: float) -> str:
    return f"{v:.3g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.1e}"


class FeatureMapsView(QWidget):
    filtersRequested = Signal()  # the filters page is shown and has nothing for this model yet

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._maps = None  # the FeatureMaps on show
        self._filters = None  # the FilterTiles on show
        self._channel = 0  # position of the large channel in the shown order
        self._restyling = False
        self.title = QLabel(self)
        self.title.setFont(scaled_font(self.font(), 1.1, bold=True))
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.kind = QLabel(self)
        self.untrained = QLabel("untrained", self)
        self.untrained.setObjectName("chip")
        self.untrained.setToolTip("The model runs with random (untrained) weights: these are the responses of "
                                  "random filters, not learned features.")
        self.count = QLabel(self)
        self.count.setObjectName("count")
        self.count.setWordWrap(True)
        self.pages = QButtonGroup(self)
        page_row = QHBoxLayout()
        page_row.setSpacing(0)
        for page, text, tip in ((CHANNELS, "Channels", "The chosen layer's strongest channels for this photo"),
                                (FILTERS, "Filters", "The first convolution's filters, as RGB tiles")):
            button = QPushButton(text, self)
            button.setToolTip(tip)
            button.setCheckable(True)
            button.setChecked(page == CHANNELS)
            button.setObjectName("segmentLeft" if page == CHANNELS else "segmentRight")
            self.pages.addButton(button, page)
            page_row.addWidget(button)
        page_row.addStretch(1)
        self.pages.idClicked.connect(self.show_page)
        self.colormap = QComboBox(self)
        self.colormap.addItems(list(COLORMAPS))
        self.colormap.setToolTip("Colour map of the activation values")
        self.colormap.currentTextChanged.connect(self._recolour)
        self.shared = QPushButton("Shared scale", self)
        self.shared.setCheckable(True)
        self.shared.setObjectName("toggle")
        self.shared.setToolTip("Colour every tile on one scale (the shown channels' min to max) "
                               "instead of each tile on its own")
        self.shared.toggled.connect(self._recolour)
        page_row.addWidget(self.colormap)
        page_row.addSpacing(SPACING // 2)
        page_row.addWidget(self.shared)

        self.grid = TileGrid(self, min_tile=MIN_TILE)  # never postage stamps: the page scrolls instead
        self.grid.tileClicked.connect(self.show_channel)
        self.filters = TileGrid(self, gap=2)
        self.filters_caption = QLabel(self)
        self.filters_caption.setWordWrap(True)
        filters_page = QWidget(self)
        filters_layout = QVBoxLayout(filters_page)
        filters_layout.setContentsMargins(0, 0, 0, 0)
        filters_layout.addWidget(self.filters, 1)
        filters_layout.addWidget(self.filters_caption)
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.grid)
        self.stack.addWidget(filters_page)

        self.input = FitImage(self, minimum=64, hint=120)
        self.channel = FitImage(self, smooth=False, minimum=64, hint=120)
        self.legend = ColorBar(self)
        self.input_caption = QLabel("Input (as the model saw it)", self)
        self.channel_caption = QLabel(self)
        for caption in (self.input_caption, self.channel_caption):
            caption.setWordWrap(True)
            caption.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.detail = QWidget(self)
        self._wide: bool | None = None  # detail beside the grid (wide pane) or below it
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(SPACING)
        title_row = QHBoxLayout()
        title_row.setSpacing(SPACING)
        title_row.addWidget(self.title)
        title_row.addWidget(self.kind, 1)
        title_row.addWidget(self.untrained)
        layout.addLayout(title_row)
        layout.addWidget(self.count)
        layout.addLayout(page_row)
        self.body = QBoxLayout(QBoxLayout.Direction.TopToBottom)
        self.body.setSpacing(SPACING)
        self.body.addWidget(self.stack, 5)
        self.body.addWidget(self.message, 5)
        self.body.addWidget(self.detail, 2)
        layout.addLayout(self.body, 1)
        self._arrange(False)
        self._restyle()
        self.clear()

    # -- what the window calls ------------------------------------------------------

    def clear(self, message: str = "") -> None:
        """Forget everything (another model); ``message`` says what happens next."""
        self._maps = None
        self.grid.set_tiles([])
        self.forget_filters()
        self.title.setText("")
        self.kind.setText("")
        self.count.setText("")
        self.untrained.hide()
        self.show_message(message)

    def forget_filters(self) -> None:
        self._filters = None
        self.filters.set_tiles([])
        self.filters_caption.setText("")

    def show_message(self, text: str, *, error: bool = False) -> None:
        """A line in place of the maps (no photo, a failure); the filters page stays usable."""
        self.message.setText(text)
        self.message.setProperty("error", error)
        self._restyle()
        self._sync_visibility(message=bool(text) and self.page() == CHANNELS)

    def show_busy(self, layer: str, text: str) -> None:
        if self.title.text() != layer:
            self.title.setText(layer)
            self.kind.setText("")
        self.count.setText(text)
        self.grid.set_dimmed(True)
        if self._maps is None and self.page() == CHANNELS:
            self.show_message(text)

    def show_maps(self, maps) -> None:
        self._maps = maps
        self._channel = 0
        self.grid.set_dimmed(False)
        self.title.setText(maps.layer)
        self.kind.setText(f"{maps.kind} · {'×'.join(str(s) for s in maps.shape)}")
        if maps.is_vector:
            side = "×".join(str(s) for s in maps.maps.shape[1:])
            text = f"A vector of {maps.shape[0]} values, shown as a {side} grid"
        elif len(maps.channels) < maps.total:
            text = f"Showing {len(maps.channels)} of {maps.total} channels, strongest first"
        else:
            text = f"Showing all {maps.total} channels, strongest first"
        self.count.setText(f"{text} · {maps.ms:.0f} ms")
        self.count.setToolTip(f"{maps.path}\n{maps.model}")
        self.input.set_image(rgb_image(maps.view))
        self.untrained.setVisible(maps.untrained)
        self.show_message("")
        self._recolour()

    def show_filters(self, tiles) -> None:
        self._filters = tiles
        images = [rgb_image(t) for t in tiles.tiles]
        k = tiles.tiles.shape[1]
        self.filters.set_tiles(images, [f"filter {i} ({k}×{k})" for i in range(len(images))])
        self.filters_caption.setText(
            f"{len(images)} filters of {tiles.layer} ({k}×{k}, RGB), each scaled to its own range"
            + (" · untrained (random) weights" if tiles.untrained else ""))

    def show_filters_error(self, text: str) -> None:
        self.forget_filters()
        self.filters_caption.setText(text)

    def show_page(self, page: int) -> None:
        self.pages.button(page).setChecked(True)
        self.stack.setCurrentIndex(page)
        self.colormap.setVisible(page == CHANNELS)
        self.shared.setVisible(page == CHANNELS)
        self._sync_visibility(message=bool(self.message.text()) and page == CHANNELS)
        if page == FILTERS and self._filters is None:
            self.filtersRequested.emit()

    def page(self) -> int:
        return self.stack.currentIndex()

    def show_channel(self, position: int) -> None:
        """Show the ``position``-th shown channel large, with its values on the colour bar."""
        if self._maps is None or not 0 <= position < len(self._maps.channels):
            return
        self._channel = position
        self.grid.set_selected(position)
        lut = COLORMAPS[self.colormap.currentText()]
        values = self._maps.maps[position]
        low, high = self._range(values)
        self.channel.set_image(rgb_image(render.colorize(values, lut, vmin=low, vmax=high)))
        self.legend.set_colormap(lut)
        self.legend.set_range(_value(low), _value(high), "shared" if self.shared.isChecked() else "")
        if self._maps.is_vector:
            self.channel_caption.setText(f"{self._maps.shape[0]} values · mean {_value(self._maps.means[0])}")
        else:
            self.channel_caption.setText(f"Channel {self._maps.channels[position]} (#{position + 1}) · "
                                         f"mean {_value(self._maps.means[position])}")

    # -- for tests and the window ---------------------------------------------------

    def maps(self):
        return self._maps

    def selected_channel(self) -> int:
        """The channel index (in the layer) shown large, or -1."""
        return self._maps.channels[self._channel] if self._maps is not None else -1

    # -- internals -------------------------------------------------------------------

    def _range(self, values: np.ndarray) -> tuple[float, float]:
        data = self._maps.maps if self.shared.isChecked() else values
        return float(data.min()), float(data.max())

    def _recolour(self, *_args) -> None:
        if self._maps is None:
            return
        lut = COLORMAPS[self.colormap.currentText()]
        tiles, tips = [], []
        for position, (channel, values) in enumerate(zip(self._maps.channels, self._maps.maps)):
            low, high = self._range(values)
            tiles.append(rgb_image(render.colorize(values, lut, vmin=low, vmax=high)))
            tips.append(f"channel {channel} (#{position + 1}) · mean {_value(self._maps.means[position])}"
                        f" · range {_value(float(values.min()))} to {_value(float(values.max()))}")
        self.grid.set_tiles(tiles, tips, selected=self._channel)
        self.show_channel(self._channel)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._arrange(self.width() >= WIDE)

    def _arrange(self, wide: bool) -> None:
        """The input and the large channel beside the grid when the pane is wide, else below it."""
        if wide == self._wide:
            return
        self._wide = wide
        grid = self.detail.layout()
        if grid is None:
            grid = QGridLayout(self.detail)
            grid.setContentsMargins(0, 0, 0, 0)
            grid.setHorizontalSpacing(SPACING)
            grid.setVerticalSpacing(SPACING // 2)
        for widget in (self.input, self.input_caption, self.channel, self.legend, self.channel_caption):
            grid.removeWidget(widget)
        for i in range(5):
            grid.setRowStretch(i, 0)
            grid.setColumnStretch(i, 0)
        self.legend.set_vertical(not wide)
        if wide:  # one column: input, its caption, the channel, its colour bar, its caption
            for row, widget in enumerate((self.input, self.input_caption, self.channel, self.legend,
                                          self.channel_caption)):
                grid.addWidget(widget, row, 0)
            grid.setRowStretch(0, 4)
            grid.setRowStretch(2, 5)
        else:
            grid.addWidget(self.input, 0, 0)
            grid.addWidget(self.channel, 0, 1)
            grid.addWidget(self.legend, 0, 2)
            grid.addWidget(self.input_caption, 1, 0)
            grid.addWidget(self.channel_caption, 1, 1, 1, 2)
            grid.setColumnStretch(0, 1)
            grid.setColumnStretch(1, 1)
        self.body.setDirection(QBoxLayout.Direction.LeftToRight if wide else QBoxLayout.Direction.TopToBottom)
        self.detail.setMinimumWidth(DETAIL_SIDE if wide else 0)
        self.detail.setMaximumSize(DETAIL_SIDE if wide else 16_777_215, 16_777_215 if wide else 210)

    def _sync_visibility(self, *, message: bool) -> None:
        self.message.setVisible(message)
        self.stack.setVisible(not message)
        self.detail.setVisible(not message and self._maps is not None and self.page() == CHANNELS)

    def _restyle(self) -> None:
        self._restyling = True
        try:
            pal = self.palette()
            muted = pal.color(pal.ColorRole.PlaceholderText).name()
            error = state_color("error", pal).name()
            self.message.setStyleSheet(f"color: {error if self.message.property('error') else muted};")
            for label in (self.kind, self.count, self.input_caption, self.channel_caption, self.filters_caption):
                label.setStyleSheet(f"color: {muted};")
            self.setStyleSheet(_TOGGLES)
            self.untrained.setStyleSheet(
                f"QLabel#chip {{ background: {state_background('warning', pal, 0.3).name()};"
                f" border: 1px solid {state_color('warning', pal).name()}; border-radius: 8px; padding: 0 6px; }}")
        finally:
            self._restyling = False

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and not self._restyling:
            self._restyle()
