"""A non-blocking message strip at the top of the window, with action buttons."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QRectF, Qt, Signal
from PySide6.QtGui import QAction, QPainter, QPen
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QToolButton

from gui.icons import icon, render_svg
from gui.style import SPACING, state_background, state_color


class Banner(QFrame):
    """Shows ``show_message(text, actions)``; hidden until then. ``dismissed`` on close."""

    dismissed = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.kind = "warning"
        self._restyling = False
        self._buttons: list[QToolButton] = []
        self.icon_label = QLabel(self)
        self.text_label = QLabel(self)
        self.text_label.setWordWrap(True)
        self.text_label.setTextFormat(Qt.TextFormat.PlainText)
        self.text_label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.close_button = QToolButton(self)
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Dismiss")
        self.close_button.clicked.connect(self.dismiss)
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(SPACING * 2, SPACING, SPACING, SPACING)
        self._layout.setSpacing(SPACING)
        self._layout.addWidget(self.icon_label, 0, Qt.AlignmentFlag.AlignTop)
        self._layout.addWidget(self.text_label, 1)
        self._layout.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self._restyle()
        self.hide()

    def text(self) -> str:
        return self.text_label.text()

    def show_message(self, text: str, actions: list[QAction] = (), *, kind: str = "warning") -> None:
        self.kind = kind
        self.text_label.setText(text)
        for button in self._buttons:
            self._layout.removeWidget(button)
            button.deleteLater()
        self._buttons = []
        for action in actions:
            button = QToolButton(self)
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            button.setObjectName("bannerButton")
            self._layout.insertWidget(self._layout.count() - 1, button, 0, Qt.AlignmentFlag.AlignVCenter)
            self._buttons.append(button)
        self._restyle()
        self.show()

    def buttons(self) -> list[QToolButton]:
        return list(self._buttons)

    def dismiss(self) -> None:
        if self.isVisible():
            self.hide()
            self.dismissed.emit()

    def _restyle(self) -> None:
        edge = state_color(self.kind, self.palette())
        self.icon_label.setPixmap(render_svg("warning" if self.kind != "ok" else "about", 20, edge,
                                             dpr=self.devicePixelRatioF()))
        self.close_button.setIcon(icon("close"))
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        painter.setPen(QPen(state_color(self.kind, pal), 1))
        painter.setBrush(state_background(self.kind, pal, 0.2))
        painter.drawRoundedRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5), 8, 8)

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and not self._restyling:
            self._restyling = True
            try:
                self._restyle()
            finally:
                self._restyling = False
