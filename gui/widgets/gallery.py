"""The gallery: a virtualised grid of photo cards showing each photo's state.

``GalleryModel`` (a QAbstractListModel) holds one ``GalleryItem`` per photo;
``CardDelegate`` paints a card (thumbnail, state chip, top-1 label and
confidence, or the failure reason); ``GalleryView`` is a QListView in
IconMode with uniform item sizes, so only visible cards are ever painted and
thousands of photos scroll smoothly. Drops of files and folders are announced
with ``pathsDropped``; the window decides what to do with them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import IntEnum

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPalette, QPen
from PySide6.QtWidgets import QAbstractItemView, QListView, QStyle, QStyledItemDelegate, QStyleOptionViewItem

from gui.dropping import mime_has_paths, paths_from_mime
from gui.icons import render_svg
from gui.painting import draw_chip, draw_text, line_height, scaled_font, text_width, with_alpha
from gui.style import SPACING, mix, state_background, state_color
from gui.thumbnails import ThumbnailLoader


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


_CHIP_TEXT = {State.QUEUED: "Queued", State.CLASSIFYING: "Classifying…", State.STOPPED: "Not classified"}


class CardDelegate(QStyledItemDelegate):
    """Paints one card: thumbnail, state, top-1 label and confidence (or why it failed)."""

    def __init__(self, loader: ThumbnailLoader, parent=None) -> None:
        super().__init__(parent)
        self.loader = loader
        self.thumb = 160

    def card_size(self, option_font: QFont) -> QSize:
        line = line_height(option_font)
        return QSize(self.thumb + 2 * SPACING, SPACING + self.thumb + SPACING + 2 * line + SPACING // 2 + SPACING)

    def sizeHint(self, option, index) -> QSize:
        return self.card_size(option.font)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index) -> None:
        item: GalleryItem = index.data(ItemRole)
        if item is None:
            return
        pal = option.palette
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        card = QRectF(option.rect).adjusted(2, 2, -2, -2)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)
        base = pal.color(QPalette.ColorRole.Base)
        text = pal.color(QPalette.ColorRole.Text)
        accent = pal.color(QPalette.ColorRole.Highlight)
        fill = mix(base, accent, 0.16) if selected else mix(base, text, 0.07 if hovered else 0.04)
        painter.setPen(QPen(accent, 2) if selected else QPen(mix(base, text, 0.12), 1))
        painter.setBrush(fill)
        painter.drawRoundedRect(card, 8, 8)

        thumb = QRectF(card.left() + SPACING - 2, card.top() + SPACING - 2, self.thumb, self.thumb)
        self._paint_thumbnail(painter, thumb, item, pal)
        self._paint_chips(painter, thumb, item, pal, option.font)
        text_rect = QRectF(thumb.left(), thumb.bottom() + SPACING, thumb.width(), card.bottom() - thumb.bottom() - SPACING)
        self._paint_caption(painter, text_rect, item, pal, option.font)
        painter.restore()

    def _paint_thumbnail(self, painter: QPainter, rect: QRectF, item: GalleryItem, pal: QPalette) -> None:
        clip = QPainterPath()
        clip.addRoundedRect(rect, 6, 6)
        painter.save()
        painter.setClipPath(clip)
        painter.fillRect(rect, mix(pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.Text), 0.1))
        dpr = painter.device().devicePixelRatioF() if painter.device() else 1.0
        pixmap = self.loader.pixmap(item.path, round(self.thumb * dpr))
        if pixmap is not None and not pixmap.isNull():
            # cover: fill the square, crop the longer side
            scale = max(rect.width() / pixmap.width(), rect.height() / pixmap.height())
            w, h = pixmap.width() * scale, pixmap.height() * scale
            target = QRectF(rect.center().x() - w / 2, rect.center().y() - h / 2, w, h)
            if item.state in (State.QUEUED, State.STOPPED):
                painter.setOpacity(0.45)
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawPixmap(target, pixmap, QRectF(pixmap.rect()))
            painter.setOpacity(1.0)
        elif item.state == State.FAILED or self.loader.failed(item.path, round(self.thumb * dpr)):
            icon_color = state_color("error", pal) if item.state == State.FAILED else pal.color(QPalette.ColorRole.PlaceholderText)
            side = 40
            icon_rect = QRect(int(rect.center().x() - side / 2), int(rect.center().y() - side / 2), side, side)
            painter.drawPixmap(icon_rect, render_svg("error", side, icon_color, dpr=dpr))
        if item.state == State.FAILED:
            painter.fillRect(rect, with_alpha(state_color("error", pal), 40))
        painter.restore()

    def _paint_chips(self, painter: QPainter, thumb: QRectF, item: GalleryItem, pal: QPalette, font: QFont) -> None:
        small = scaled_font(font, 0.85, bold=True)
        if item.state in _CHIP_TEXT:
            busy = item.state == State.CLASSIFYING
            bg = pal.color(QPalette.ColorRole.Highlight) if busy else with_alpha(QColor(0, 0, 0), 150)
            fg = pal.color(QPalette.ColorRole.HighlightedText) if busy else QColor(255, 255, 255)
            draw_chip(painter, thumb, _CHIP_TEXT[item.state], small, bg, fg, bottom_left=True)
        prediction = item.prediction
        if prediction is not None and getattr(prediction, "untrained", False):
            draw_chip(painter, thumb, "untrained", small, state_background("warning", pal, 0.85), QColor(30, 24, 0), bottom_left=False)

    def _paint_caption(self, painter: QPainter, rect: QRectF, item: GalleryItem, pal: QPalette, font: QFont) -> None:
        line = line_height(font)
        first = QRectF(rect.left(), rect.top(), rect.width(), line)
        second = QRectF(rect.left(), rect.top() + line, rect.width(), line)
        bold = QFont(font)
        bold.setBold(True)
        muted = pal.color(QPalette.ColorRole.PlaceholderText)
        name = os.path.basename(item.path)
        if item.state == State.DONE and item.prediction is not None and item.prediction.topk:
            top = item.prediction.topk[0]
            draw_text(painter, first, top.label, bold, pal.color(QPalette.ColorRole.Text))
            pct = f"{top.prob:.0%}" if top.prob >= 0.01 else "<1%"
            pct_w = text_width(font, "100%") + 4
            bar = QRectF(second.left(), second.center().y() - 2.5, second.width() - pct_w - SPACING // 2, 5)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(mix(pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.Text), 0.14))
            painter.drawRoundedRect(bar, 2.5, 2.5)
            filled = QRectF(bar.left(), bar.top(), max(5.0, bar.width() * top.prob), bar.height())
            painter.setBrush(pal.color(QPalette.ColorRole.Highlight))
            painter.drawRoundedRect(filled, 2.5, 2.5)
            draw_text(painter, QRectF(second.right() - pct_w, second.top(), pct_w, line), pct, font, muted, Qt.AlignmentFlag.AlignRight)
        elif item.state == State.FAILED:
            draw_text(painter, first, "Couldn't classify", bold, state_color("error", pal))
            draw_text(painter, second, item.reason or name, font, muted)
        else:
            draw_text(painter, first, name, font, pal.color(QPalette.ColorRole.Text))
            draw_text(painter, second, _CHIP_TEXT.get(item.state, ""), font, muted)


class GalleryView(QListView):
    """The grid. Emits ``pathsDropped`` for dropped files/folders and ``currentItemChanged``."""

    pathsDropped = Signal(list)
    currentItemChanged = Signal(object)  # GalleryItem or None

    def __init__(self, loader: ThumbnailLoader, parent=None) -> None:
        super().__init__(parent)
        self.gallery = GalleryModel(self)
        self.delegate = CardDelegate(loader, self)
        self._drag_over = False
        self.setModel(self.gallery)
        self.setItemDelegate(self.delegate)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(200)
        self.setSpacing(SPACING // 2)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.verticalScrollBar().setSingleStep(24)
        self.setMouseTracking(True)
        self.setAcceptDrops(True)
        self.viewport().setAcceptDrops(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)
        self.setFrameShape(QListView.Shape.NoFrame)
        self.setObjectName("gallery")
        loader.ready.connect(self.gallery.refresh)
        self.selectionModel().currentChanged.connect(self._on_current_changed)
        self.set_thumb_size(self.delegate.thumb)

    def set_thumb_size(self, size: int) -> None:
        self.delegate.thumb = size
        self.setGridSize(self.delegate.card_size(self.font()) + QSize(SPACING // 2, SPACING // 2))
        self.scheduleDelayedItemsLayout()

    def current_item(self) -> GalleryItem | None:
        index = self.currentIndex()
        return self.gallery.item(index.row()) if index.isValid() else None

    def select_row(self, row: int) -> None:
        index = self.gallery.index(row)
        self.setCurrentIndex(index)
        self.scrollTo(index)

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.currentItemChanged.emit(self.gallery.item(current.row()) if current.isValid() else None)

    # -- drops ---------------------------------------------------------------

    def dragEnterEvent(self, event) -> None:
        if mime_has_paths(event.mimeData()):
            event.acceptProposedAction()
            self._set_drag_over(True)
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        if mime_has_paths(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragLeaveEvent(self, event) -> None:
        self._set_drag_over(False)
        event.accept()

    def dropEvent(self, event) -> None:
        self._set_drag_over(False)
        paths = paths_from_mime(event.mimeData())
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.pathsDropped.emit(paths)

    def _set_drag_over(self, on: bool) -> None:
        if self._drag_over != on:
            self._drag_over = on
            self.viewport().update()

    # -- empty state and drop highlight ---------------------------------------------

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        if self.gallery.rowCount() and not self._drag_over:
            return
        painter = QPainter(self.viewport())
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        area = QRectF(self.viewport().rect()).adjusted(SPACING * 2, SPACING * 2, -SPACING * 2, -SPACING * 2)
        accent = pal.color(QPalette.ColorRole.Highlight)
        muted = pal.color(QPalette.ColorRole.PlaceholderText)
        pen = QPen(accent if self._drag_over else mix(pal.color(QPalette.ColorRole.Base), muted, 0.6), 2, Qt.PenStyle.DashLine)
        painter.setPen(pen)
        if self._drag_over:
            painter.setBrush(with_alpha(accent, 28))
        painter.drawRoundedRect(area, 12, 12)
        if self.gallery.rowCount():
            painter.end()
            return
        dpr = self.devicePixelRatioF()
        side = 72
        center = area.center()
        icon_rect = QRect(int(center.x() - side / 2), int(center.y() - side - SPACING * 2), side, side)
        painter.drawPixmap(icon_rect, render_svg("drop", side, accent if self._drag_over else muted, dpr=dpr))
        title = scaled_font(self.font(), 1.35, bold=True)
        line = line_height(title)
        draw_text(painter, QRectF(area.left(), center.y() - SPACING, area.width(), line), "Drop photos or folders here",
              title, pal.color(QPalette.ColorRole.Text), Qt.AlignmentFlag.AlignHCenter)
        hint = "or open them with Ctrl+O (a folder: Ctrl+Shift+O) · paste an image with Ctrl+V"
        draw_text(painter, QRectF(area.left(), center.y() - SPACING + line + SPACING // 2, area.width(), line_height(self.font())),
              hint, self.font(), muted, Qt.AlignmentFlag.AlignHCenter)
        painter.end()
