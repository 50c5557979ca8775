"""A strip of image thumbnails with captions (problem files, confusion-matrix cells, worst predictions).

Thumbnails decode off the GUI thread through ``gui.thumbnails.ThumbnailLoader``;
small images (a 32-pixel digit) are scaled up to the icon size so they can be
seen. A file that cannot be decoded gets a warning icon; double-click opens the
file in the system viewer.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QSize, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QIcon, QPixmap
from PySide6.QtWidgets import QListView, QListWidget, QListWidgetItem, QStyle

from gui.thumbnails import ThumbnailLoader

PathRole = Qt.ItemDataRole.UserRole + 1


class ThumbStrip(QListWidget):
    def __init__(self, loader: ThumbnailLoader, parent=None, *, icon: int = 72, rows: int = 1) -> None:
        super().__init__(parent)
        self.loader = loader
        self.icon = icon
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setIconSize(QSize(icon, icon))
        self.setGridSize(QSize(icon + 40, icon + 34))
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setWordWrap(True)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setSelectionMode(QListWidget.SelectionMode.SingleSelection)
        self.setMinimumHeight(rows * (icon + 34) + 2 * self.frameWidth() + 4)
        self.loader.ready.connect(self._on_ready)
        self.itemDoubleClicked.connect(self._open)
        self._items: dict[str, list[QListWidgetItem]] = {}

    def set_items(self, entries: list[tuple[str, str, str]]) -> None:
        """``(path, caption, tooltip)`` per thumbnail, replacing what was shown."""
        self.clear()
        self._items = {}
        for path, caption, tip in entries:
            item = QListWidgetItem(caption or os.path.basename(path))
            item.setData(PathRole, path)
            item.setToolTip(tip or path)
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            self.addItem(item)
            self._items.setdefault(path, []).append(item)
            self._set_icon(path, [item])

    def paths(self) -> list[str]:
        return [self.item(i).data(PathRole) for i in range(self.count())]

    def _set_icon(self, path: str, items: list[QListWidgetItem]) -> None:
        pixmap = self.loader.pixmap(path, self.icon)
        if pixmap is None and self.loader.failed(path, self.icon):
            icon = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        elif pixmap is None:
            return  # ``ready`` follows
        else:
            icon = QIcon(self._fit(pixmap))
        for item in items:
            item.setIcon(icon)

    def _fit(self, pixmap: QPixmap) -> QPixmap:
        if max(pixmap.width(), pixmap.height()) >= self.icon:
            return pixmap
        mode = (Qt.TransformationMode.FastTransformation if max(pixmap.width(), pixmap.height()) <= 48
                else Qt.TransformationMode.SmoothTransformation)  # tiny images: crisp pixels, not mush
        return pixmap.scaled(self.icon, self.icon, Qt.AspectRatioMode.KeepAspectRatio, mode)

    def _on_ready(self, path: str) -> None:
        items = self._items.get(path)
        if items:
            self._set_icon(path, items)

    def _open(self, item: QListWidgetItem) -> None:
        path = item.data(PathRole)
        if path and os.path.exists(path):
            QDesktopServices.openUrl(QUrl.fromLocalFile(path))
