"""The gallery: a virtualised grid of photo cards showing each photo's state.

``GalleryModel`` (``gui.gallery_model``) holds one ``GalleryItem`` per photo;
``CardDelegate`` paints a card (thumbnail, state chip, top-1 label and
confidence, or the failure reason); ``GalleryView`` is a QListView in
IconMode with uniform item sizes, so only visible cards are ever painted and
thousands of photos scroll smoothly. Drops of files and folders are announced
with ``pathsDropped``; the window decides what to do with them.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QModelIndex, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPalette, QPen
from PySide6.QtWidgets import QAbstractItemView, QListView, QStyle, QStyledItemDelegate, QStyleOptionViewItem

from gui.dropping import mime_has_paths, paths_from_mime
from gui.gallery_model import GalleryItem, GalleryModel, ItemRole, State
from gui.icons import render_svg
from gui.painting import draw_chip, draw_text, line_height, scaled_font, text_width, with_alpha
from gui.style import SPACING, mix, state_background, state_color
from gui.thumbnails import ThumbnailLoader

_CHIP_TEXT = {State.QUEUED: "Queued", State.CLASSIFYING: "Classifying…", State.STOPPED: "Not classified"}
FAILED_TEXT = "Couldn't classify"


def failed_caption(item: GalleryItem) -> tuple[str, str]:
    """The two caption lines of a card that could not be classified: its file name, then why."""
    return os.path.basename(item.path), item.reason or "unknown error"


class CardDelegate(QStyledItemDelegate):
    """Paints one card: thumbnail, state, top-1 label and confidence (or why it failed)."""

    def __init__(self, loader: ThumbnailLoader, parent=None) -> None:
        super().__init__(parent)
        self.loader = loader
        self.thumb = 160  # the chosen (minimum) thumbnail side
        self.shown = 160  # the side actually drawn: rows are stretched to fill the width

    def card_size(self, option_font: QFont, thumb: int | None = None) -> QSize:
        side = self.shown if thumb is None else thumb
        line = line_height(option_font)
        return QSize(side + 2 * SPACING, SPACING + side + SPACING + 2 * line + SPACING // 2 + SPACING)

    def decode_size(self, dpr: float) -> int:
        """Decode at a 64-px bucket above the drawn size, so resizing the window rarely re-decodes."""
        return -(-round(self.shown * dpr) // 64) * 64

    def sizeHint(self, option, index) -> QSize:
        return self.card_size(option.font)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index) -> None:
        item: GalleryItem = index.data(ItemRole)
        if item is None:
            return
        pal = option.palette
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        size = self.card_size(option.font)
        card = QRectF(0, 0, size.width() - 4, size.height() - 4)
        card.moveCenter(QRectF(option.rect).center())
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)
        base = pal.color(QPalette.ColorRole.Base)
        text = pal.color(QPalette.ColorRole.Text)
        accent = pal.color(QPalette.ColorRole.Highlight)
        fill = mix(base, accent, 0.16) if selected else mix(base, text, 0.07 if hovered else 0.04)
        painter.setPen(QPen(accent, 2) if selected else QPen(mix(base, text, 0.12), 1))
        painter.setBrush(fill)
        painter.drawRoundedRect(card, 8, 8)

        thumb = QRectF(card.left() + SPACING - 2, card.top() + SPACING - 2, self.shown, self.shown)
        self._paint_thumbnail(painter, thumb, item, pal)
        self._paint_chips(painter, thumb, item, pal, option.font)
        text_rect = QRectF(thumb.left(), thumb.bottom() + SPACING, thumb.width(),
                           card.bottom() - thumb.bottom() - SPACING)
        self._paint_caption(painter, text_rect, item, pal, option.font)
        painter.restore()

    def _paint_thumbnail(self, painter: QPainter, rect: QRectF, item: GalleryItem, pal: QPalette) -> None:
        clip = QPainterPath()
        clip.addRoundedRect(rect, 6, 6)
        painter.save()
        painter.setClipPath(clip)
        painter.fillRect(rect, mix(pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.Text), 0.1))
        dpr = painter.device().devicePixelRatioF() if painter.device() else 1.0
        pixmap = self.loader.pixmap(item.path, self.decode_size(dpr))
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
        elif item.state == State.FAILED or self.loader.failed(item.path, self.decode_size(dpr)):
            icon_color = (state_color("error", pal) if item.state == State.FAILED
                          else pal.color(QPalette.ColorRole.PlaceholderText))
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
        if item.state == State.FAILED:
            draw_chip(painter, thumb, FAILED_TEXT, small, state_color("error", pal), QColor(255, 255, 255),
                      bottom_left=True)
        prediction = item.prediction
        if prediction is not None and prediction.ok and prediction.untrained:
            draw_chip(painter, thumb, "untrained", small, state_background("warning", pal, 0.85), QColor(30, 24, 0),
                      bottom_left=False)

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
            draw_text(painter, QRectF(second.right() - pct_w, second.top(), pct_w, line), pct, font, muted,
                      Qt.AlignmentFlag.AlignRight)
        elif item.state == State.FAILED:  # which file (the chip on the thumbnail says it failed), then why
            title, reason = failed_caption(item)
            draw_text(painter, first, title, bold, state_color("error", pal), elide=Qt.TextElideMode.ElideMiddle)
            draw_text(painter, second, reason, font, muted)
        else:
            draw_text(painter, first, name, font, pal.color(QPalette.ColorRole.Text))
            draw_text(painter, second, _CHIP_TEXT.get(item.state, ""), font, muted)


class GalleryView(QListView):
    """The grid. Emits ``pathsDropped`` for dropped files/folders and ``currentItemChanged``."""

    pathsDropped = Signal(object)  # list of paths (object: a list signal drops undecodable bytes)
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
        self.setViewportMargins(SPACING // 2, SPACING // 2, 0, 0)
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
        self._update_grid()

    def _update_grid(self) -> None:
        """Fit whole columns, then stretch the cards so no ragged gap is left on the right."""
        gap = SPACING // 2
        base = self.delegate.card_size(self.font(), self.delegate.thumb)
        # QListView lays icons out in its largest viewport less a scroll bar it may need (qlistview.cpp,
        # prepareItemsLayout): fill that width, or the last column wraps and leaves an empty band
        bar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent, None, self.verticalScrollBar())
        width = max(1, self.maximumViewportSize().width() - bar - gap)
        columns = max(1, width // (base.width() + gap))
        stretch = max(0, (width // columns) - gap - base.width())
        self.delegate.shown = self.delegate.thumb + min(stretch, self.delegate.thumb // 2)
        card = self.delegate.card_size(self.font())
        cell = QSize(max(card.width() + gap, width // columns), card.height() + gap)
        if cell != self.gridSize():
            self.setGridSize(cell)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._update_grid()

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
        pen = QPen(accent if self._drag_over else mix(pal.color(QPalette.ColorRole.Base), muted, 0.6), 2,
                   Qt.PenStyle.DashLine)
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
        hint_rect = QRectF(area.left(), center.y() - SPACING + line + SPACING // 2, area.width(),
                           line_height(self.font()))
        draw_text(painter, hint_rect, hint, self.font(), muted, Qt.AlignmentFlag.AlignHCenter)
        painter.end()
