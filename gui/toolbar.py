"""A toolbar that keeps every action on screen when the window is narrow.

``AdaptiveToolBar`` shows text beside the icons while everything fits and
drops to icons only (plus hiding purely decorative items such as the
"Model" and "Device" captions) when it does not, the way Qt's own
``ToolButtonFollowStyle`` applications shrink. Whatever still does not fit
goes behind Qt's extension button ("»"); every action is also in a menu
with its shortcut (``gui.actions.MENUS``), so nothing is ever out of reach.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QToolBar, QWidget

FULL = Qt.ToolButtonStyle.ToolButtonTextBesideIcon
COMPACT = Qt.ToolButtonStyle.ToolButtonIconOnly


class AdaptiveToolBar(QToolBar):
    """Text beside icons when it all fits in the toolbar's width, icons only when it does not."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        self.setToolButtonStyle(FULL)
        self._optional: list[QAction] = []  # hidden when compact (captions)
        self._full_width = 0  # the width everything needs with text labels; measured while full

    def set_optional(self, actions: list[QAction]) -> None:
        """Items that are hidden when the toolbar is compact (they only label what follows them)."""
        self._optional = list(actions)

    @property
    def compact(self) -> bool:
        return self.toolButtonStyle() == COMPACT

    def full_width(self) -> int:
        if not self.compact:
            self._full_width = self.sizeHint().width()
        return self._full_width

    def fit(self) -> None:
        """Choose full or compact for the current width."""
        compact = self.width() < self.full_width()
        if compact == self.compact:
            return
        self.setToolButtonStyle(COMPACT if compact else FULL)
        for action in self._optional:
            action.setVisible(not compact)

    def actionEvent(self, event) -> None:  # an action added or changed: the full width may differ
        super().actionEvent(event)
        if not self.compact:
            self._full_width = 0

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.fit()
