"""Choose any set of models: checkboxes grouped by family, plus named presets.

Plain data in (registry specs, a dict of presets), ``modelsChanged(list)`` out.
A family's box checks or clears all its members; a preset checks exactly its
models.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.style import SPACING

NameRole = Qt.ItemDataRole.UserRole + 1


def _tooltip(spec) -> str:
    acc = f"ImageNet acc@1 {spec.acc1:.1f}%" if spec.acc1 is not None else "no ImageNet weights (runs untrained)"
    return (f"<b>{spec.display_name}</b> — {spec.family}, {spec.year}<br><i>{spec.paper}</i><br>"
            f"{spec.params / 1e6:.1f} M parameters · {spec.gflops:.2f} GFLOPs · {acc}")


class ModelChecklist(QWidget):
    modelsChanged = Signal(list)  # registry names, in registry order

    def __init__(self, specs: list, families: list[str], presets: dict[str, tuple[str, ...]], parent=None) -> None:
        super().__init__(parent)
        self._presets = dict(presets)
        self._order = [s.name for s in specs]
        self.preset = QComboBox(self)
        self.preset.addItem("Choose a preset…", None)
        for name, models in self._presets.items():
            self.preset.addItem(f"{name} ({len(models)})", name)
            self.preset.setItemData(self.preset.count() - 1, ", ".join(models), Qt.ItemDataRole.ToolTipRole)
        self.preset.activated.connect(self._on_preset)
        self.tree = QTreeWidget(self)
        self.tree.setHeaderHidden(True)
        self.tree.setRootIsDecorated(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setObjectName("modelChecklist")
        self._items: dict[str, QTreeWidgetItem] = {}
        order = list(families) + sorted({s.family for s in specs} - set(families))
        self.tree.blockSignals(True)
        for family in order:
            members = [s for s in specs if s.family == family]
            if not members:
                continue
            group = QTreeWidgetItem(self.tree, [family])
            group.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsAutoTristate)
            group.setCheckState(0, Qt.CheckState.Unchecked)
            for spec in members:
                item = QTreeWidgetItem(group, [spec.display_name])
                item.setData(0, NameRole, spec.name)
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(0, Qt.CheckState.Unchecked)
                item.setToolTip(0, _tooltip(spec))
                self._items[spec.name] = item
            group.setExpanded(len(members) <= 2)
        self.tree.blockSignals(False)
        self.tree.itemChanged.connect(self._on_item_changed)
        self.count = QLabel(self)
        clear = QPushButton("Clear", self)
        clear.setToolTip("Uncheck every model")
        clear.clicked.connect(lambda: self.set_checked([], notify=True))
        bottom = QHBoxLayout()
        bottom.addWidget(self.count, 1)
        bottom.addWidget(clear)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(SPACING // 2)
        layout.addWidget(self.preset)
        layout.addWidget(self.tree, 1)
        layout.addLayout(bottom)
        self._last: list[str] = []
        self._update_count()

    def checked_models(self) -> list[str]:
        return [name for name in self._order if self._items[name].checkState(0) == Qt.CheckState.Checked]

    def set_checked(self, names, *, notify: bool = False) -> list[str]:
        """Check exactly ``names`` (unknown ones are ignored); returns the checked list."""
        wanted = set(names)
        self.tree.blockSignals(True)
        try:
            for name, item in self._items.items():
                item.setCheckState(0, Qt.CheckState.Checked if name in wanted else Qt.CheckState.Unchecked)
            for i in range(self.tree.topLevelItemCount()):  # show the families that hold a chosen model
                group = self.tree.topLevelItem(i)
                if group.checkState(0) != Qt.CheckState.Unchecked:
                    group.setExpanded(True)
        finally:
            self.tree.blockSignals(False)
        self.tree.viewport().update()
        self._changed(notify)
        return self.checked_models()

    def apply_preset(self, name: str, *, notify: bool = True) -> list[str]:
        index = self.preset.findData(name)
        if index >= 0:
            self.preset.setCurrentIndex(index)
        return self.set_checked(self._presets.get(name, ()), notify=notify)

    def _on_preset(self, index: int) -> None:
        name = self.preset.itemData(index)
        if name:
            self.set_checked(self._presets[name], notify=True)

    def _on_item_changed(self, item: QTreeWidgetItem, _column: int) -> None:
        if item.data(0, NameRole):  # a family toggles its children and reports through them
            self._changed(True)

    def _changed(self, notify: bool) -> None:
        names = self.checked_models()
        self._update_count()
        if names == self._last:
            return
        self._last = names
        match = next((name for name, models in self._presets.items() if set(models) == set(names)), None)
        self.preset.setCurrentIndex(self.preset.findData(match) if match else 0)  # the preset these models are
        if notify:
            self.modelsChanged.emit(names)

    def _update_count(self) -> None:
        n = len(self.checked_models())
        self.count.setText(f"{n} model{'s' * (n != 1)} chosen")
