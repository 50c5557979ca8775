"""The current model's module tree: stages, blocks and layers with their output shapes.

Fed with ``core.explain.LayerInfo`` records (from one meta-device dry run); the
spec's stage ends are bold and one click away (the "Stage" buttons); the
Grad-CAM target layer carries a dot. Choosing a layer emits ``layerChosen``;
"Use for Grad-CAM" (button, context menu) emits ``camLayerChosen``.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QColor, QFont, QGuiApplication, QIcon, QPainter, QPixmap, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QToolButton,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from gui.style import SPACING

NameRole = Qt.ItemDataRole.UserRole + 1  # the dotted module name
SpatialRole = Qt.ItemDataRole.UserRole + 2  # True when the output is [C, H, W] (Grad-CAM needs that)
_CAM_COLOUR = QColor("#f07d15")


def shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(str(s) for s in shape) if shape else "–"


def _dot_icon(colour: QColor) -> QIcon:
    pixmap = QPixmap(12, 12)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(colour)
    painter.drawEllipse(2, 2, 8, 8)
    painter.end()
    icon = QIcon(pixmap)
    icon.addPixmap(pixmap, QIcon.Mode.Selected)  # keep the colour on the highlighted row
    return icon

VISIBLE_ROWS = 9  # layers the tree shows at least (a ResNet's top level is 10)


class LayerBrowser(QWidget):
    layerChosen = Signal(str)  # dotted module name
    camLayerChosen = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._items: dict[str, QStandardItem] = {}
        self._stages: tuple[str, ...] = ()
        self._cam_layer = ""
        self._filling = False
        self.model = QStandardItemModel(0, 3, self)
        self.model.setHorizontalHeaderLabels(["Layer", "Type", "Output"])
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setRecursiveFilteringEnabled(True)
        self.proxy.setFilterRole(NameRole)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.filter = QLineEdit(self)
        self.filter.setPlaceholderText("Filter layers…")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._on_filter)
        self.tree = QTreeView(self)
        self.tree.setModel(self.proxy)
        self.tree.setUniformRowHeights(True)
        # room for VISIBLE_ROWS layers (rows are a line plus 2 px padding above and below), plus the header
        self.tree.setMinimumHeight((VISIBLE_ROWS + 1) * (self.tree.fontMetrics().height() + 6) + 8)
        self.tree.setObjectName("layerTree")
        self.tree.setStyleSheet("QTreeView#layerTree::item { padding: 2px 0; }")
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._context_menu)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.selectionModel().currentChanged.connect(self._on_current)
        self.stage_buttons = QButtonGroup(self)
        self.stage_buttons.setExclusive(True)
        self.stage_buttons.idClicked.connect(lambda i: self.select_layer(self._stages[i]))
        self.stage_row = QHBoxLayout()
        self.stage_row.setSpacing(SPACING // 2)
        self.use_for_cam = QToolButton(self)
        self.use_for_cam.setText("Use for Grad-CAM")
        self.use_for_cam.setToolTip("Make the selected layer the Grad-CAM target")
        self.use_for_cam.clicked.connect(self._choose_cam)
        self.message = QLabel(self)
        self.message.setWordWrap(True)

        row = QHBoxLayout()
        row.setSpacing(SPACING)
        row.addWidget(self.filter, 1)
        row.addWidget(self.use_for_cam)
        stages_row = QHBoxLayout()
        stages_row.setSpacing(SPACING)
        self.stage_label = QLabel("Stage", self)
        stages_row.addWidget(self.stage_label)
        stages_row.addLayout(self.stage_row)
        stages_row.addStretch(1)
        self.cam_legend = QLabel(self)
        self.cam_legend.setPixmap(_dot_icon(_CAM_COLOUR).pixmap(12, 12))
        self.cam_legend_text = QLabel("Grad-CAM layer", self)
        stages_row.addWidget(self.cam_legend)
        stages_row.addWidget(self.cam_legend_text)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(SPACING // 2)
        layout.addLayout(row)
        layout.addLayout(stages_row)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.message)
        self.clear("")

    # -- filling -------------------------------------------------------------

    def clear(self, message: str = "") -> None:
        self._filling = True
        self.model.removeRows(0, self.model.rowCount())
        self._filling = False
        self._items.clear()
        self._set_stages(())
        self.message.setText(message)
        self.message.setVisible(bool(message))
        self.use_for_cam.setEnabled(False)

    def set_layers(self, layers, stages: tuple[str, ...], cam_layer: str, select: str | None = None) -> None:
        """Fill the tree from ``LayerInfo`` records; select ``select`` (default: the last stage)."""
        self.clear("")
        self._filling = True
        bold = QFont(self.font())
        bold.setBold(True)
        for layer in layers:
            parent_name = layer.name.rpartition(".")[0]
            while parent_name and parent_name not in self._items:  # a container without tensor output
                parent_name = parent_name.rpartition(".")[0]
            leaf = layer.name[len(parent_name) + 1:] if parent_name else layer.name
            row = [QStandardItem(leaf), QStandardItem(layer.kind), QStandardItem(shape_text(layer.shape))]
            for item in row:
                item.setData(layer.name, NameRole)
                item.setData(len(layer.shape) == 3, SpatialRole)
                item.setToolTip(f"{layer.name}\n{layer.kind} → {shape_text(layer.shape)}")
            row[2].setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if layer.name in stages:
                for item in row:
                    item.setFont(bold)
                row[0].setToolTip(f"{layer.name}: end of stage {stages.index(layer.name) + 1}\n"
                                  f"{layer.kind} → {shape_text(layer.shape)}")
            (self._items[parent_name] if parent_name else self.model.invisibleRootItem()).appendRow(row)
            self._items[layer.name] = row[0]
        self._filling = False
        self._set_stages(tuple(s for s in stages if s in self._items))
        for stage in self._stages:
            self._expand_to(stage)
        self.set_cam_layer(cam_layer)
        self.select_layer(select if select in self._items else (self._stages[-1] if self._stages else ""))

    def _set_stages(self, stages: tuple[str, ...]) -> None:
        self._stages = stages
        for label in (self.stage_label, self.cam_legend, self.cam_legend_text):
            label.setVisible(bool(stages))
        for button in self.stage_buttons.buttons():
            self.stage_buttons.removeButton(button)
            button.deleteLater()
        for i, name in enumerate(stages):
            button = QToolButton(self)
            button.setText(str(i + 1))
            button.setCheckable(True)
            button.setAutoRaise(True)
            button.setToolTip(f"Stage {i + 1}: {name}")
            self.stage_buttons.addButton(button, i)
            self.stage_row.addWidget(button)

    # -- queries and commands ----------------------------------------------------

    def layer_names(self) -> list[str]:
        return list(self._items)

    def current_layer(self) -> str:
        index = self.tree.currentIndex()
        return index.data(NameRole) or "" if index.isValid() else ""

    def stages(self) -> tuple[str, ...]:
        return self._stages

    def select_layer(self, name: str) -> None:
        item = self._items.get(name)
        if item is None:
            return
        if self.filter.text() and not self.proxy.mapFromSource(item.index()).isValid():
            self.filter.clear()
        self._expand_to(name)
        index = self.proxy.mapFromSource(item.index())
        self.tree.setCurrentIndex(index)
        self.tree.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtCenter)

    def set_cam_layer(self, name: str) -> None:
        if self._cam_layer in self._items:
            self._items[self._cam_layer].setData(None, Qt.ItemDataRole.DecorationRole)
        self._cam_layer = name
        if name in self._items:
            self._items[name].setData(_dot_icon(_CAM_COLOUR), Qt.ItemDataRole.DecorationRole)
        self._update_cam_button()

    def cam_layer(self) -> str:
        return self._cam_layer

    # -- internals ---------------------------------------------------------------

    def _expand_to(self, name: str) -> None:
        parts = name.split(".")
        for i in range(1, len(parts)):
            item = self._items.get(".".join(parts[:i]))
            if item is not None:
                self.tree.expand(self.proxy.mapFromSource(item.index()))

    def _on_filter(self, text: str) -> None:
        self.proxy.setFilterFixedString(text.strip())
        if text.strip():
            self.tree.expandAll()

    def _on_current(self, current: QModelIndex, _previous=None) -> None:
        name = current.data(NameRole) if current.isValid() else None
        self._update_cam_button()
        if name in self._stages:
            self.stage_buttons.button(self._stages.index(name)).setChecked(True)
        elif self.stage_buttons.checkedButton() is not None:
            self.stage_buttons.setExclusive(False)
            self.stage_buttons.checkedButton().setChecked(False)
            self.stage_buttons.setExclusive(True)
        if name and not self._filling:
            self.layerChosen.emit(name)

    def _spatial(self, name: str) -> bool:
        item = self._items.get(name)
        return bool(item is not None and item.data(SpatialRole))

    def _update_cam_button(self) -> None:
        name = self.current_layer()
        self.use_for_cam.setEnabled(self._spatial(name) and name != self._cam_layer)
        self.use_for_cam.setToolTip("Make the selected layer the Grad-CAM target" if self._spatial(name)
                                    else "Grad-CAM needs a layer with spatial output (channels × height × width)")

    def _choose_cam(self) -> None:
        name = self.current_layer()
        if self._spatial(name):
            self.set_cam_layer(name)
            self.camLayerChosen.emit(name)

    def _context_menu(self, pos) -> None:
        index = self.tree.indexAt(pos)
        if not index.isValid():
            return
        name = index.data(NameRole)
        self.tree.setCurrentIndex(index.siblingAtColumn(0))
        menu = QMenu(self)
        cam = menu.addAction("Use for Grad-CAM", self._choose_cam)
        cam.setEnabled(self._spatial(name) and name != self._cam_layer)
        menu.addAction("Copy Layer Name", lambda: QGuiApplication.clipboard().setText(name))
        menu.popup(self.tree.viewport().mapToGlobal(pos))
