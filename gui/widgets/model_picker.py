"""A model picker: a combo box grouped by family, each entry's tooltip its registry card.

The registry loads after the window is painted: until ``set_specs`` (or the
catalog given to ``set_catalog`` changes) the picker is disabled and shows one
placeholder entry (the remembered model's name, or "Loading models…")."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QComboBox, QSizePolicy, QStyledItemDelegate, QStyleOptionViewItem

from core.textout import human_count, human_size  # noqa: F401  (one size format everywhere: `models` too)

NameRole = Qt.ItemDataRole.UserRole + 1


def spec_tooltip(spec) -> str:
    """The registry card of one model (year, parameters, GFLOPs, accuracy, download size)."""
    acc1 = f"{spec.acc1:.1f}%" if spec.acc1 is not None else "— (no ImageNet weights)"
    acc5 = f" · acc@5 {spec.acc5:.1f}%" if spec.acc5 is not None else ""
    download = human_size(spec.weights_size) if spec.pretrained else "none (runs untrained)"
    return (
        f"<b>{spec.display_name}</b> — {spec.family}, {spec.year}<br>"
        f"<i>{spec.paper}</i><br>"
        f"Parameters: {human_count(spec.params)}<br>"
        f"GFLOPs: {spec.gflops:.2f}<br>"
        f"ImageNet acc@1: {acc1}{acc5}<br>"
        f"Download: {download}"
    )


class _FamilyDelegate(QStyledItemDelegate):
    """Family headers bold and flush left; models indented under them."""

    INDENT = 16

    def paint(self, painter, option, index) -> None:
        opt = QStyleOptionViewItem(option)
        if index.data(NameRole) is not None:
            opt.rect.adjust(self.INDENT, 0, 0, 0)
        super().paint(painter, opt, index)

    def sizeHint(self, option, index):
        size = super().sizeHint(option, index)
        size.setHeight(size.height() + 6)
        if index.data(NameRole) is not None:
            size.setWidth(size.width() + self.INDENT)
        return size


class ModelPicker(QComboBox):
    """Emits ``modelChanged(name)`` when the person picks another model."""

    modelChanged = Signal(str)

    def __init__(self, specs: list | tuple = (), families: list[str] | None = None, parent=None, *,
                 placeholder: str = "Loading models…") -> None:
        super().__init__(parent)
        self.setObjectName("modelPicker")
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.setMaxVisibleItems(24)
        self._specs: dict = {}
        self._notes: dict[str, str | None] = {}  # model -> what its loaded weights are
        self._badges: dict[str, str | None] = {}  # model -> what runs it, when not plain ("int8")
        self._last: str | None = None
        self._catalog = None  # gui.catalog.ModelCatalog, once given (set_catalog)
        self._model = QStandardItemModel(self)
        self.setModel(self._model)
        self.setItemDelegate(_FamilyDelegate(self))
        self.currentIndexChanged.connect(self._on_index_changed)
        if specs:
            self.set_specs(specs, families)
        else:
            self.show_placeholder(placeholder)

    @property
    def loaded(self) -> bool:
        return bool(self._specs)

    def show_placeholder(self, text: str, tip: str = "Loading models…") -> None:
        """One disabled entry while the registry loads."""
        self.blockSignals(True)
        try:
            self._model.clear()
            item = QStandardItem(text)
            item.setFlags(Qt.ItemFlag.NoItemFlags)
            self._model.appendRow(item)
            self.setCurrentIndex(0)
        finally:
            self.blockSignals(False)
        self._specs, self._last = {}, None
        self.setToolTip(tip)
        self.setEnabled(False)

    def set_specs(self, specs: list | tuple, families: list[str] | tuple[str, ...] | None = None) -> None:
        """Fill the picker, grouped by family (``families`` first, in that order); nothing is selected yet."""
        order = list(families or [])
        order += sorted({s.family for s in specs} - set(order))
        header_font = QFont(self.font())
        header_font.setBold(True)
        self.blockSignals(True)
        try:
            self._model.clear()
            for family in order:
                members = [s for s in specs if s.family == family]
                if not members:
                    continue
                header = QStandardItem(family)
                header.setFlags(Qt.ItemFlag.NoItemFlags)
                header.setFont(header_font)
                header.setData(None, NameRole)
                self._model.appendRow(header)
                for spec in members:
                    item = QStandardItem(spec.display_name)
                    item.setData(spec.name, NameRole)
                    item.setToolTip(spec_tooltip(spec))
                    item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
                    self._model.appendRow(item)
            self.setCurrentIndex(-1)
        finally:
            self.blockSignals(False)
        self._specs, self._last = {s.name: s for s in specs}, None
        self.setToolTip("")
        self.setEnabled(True)
        for name, note in list(self._notes.items()):  # what was learnt of loaded models' weights stays
            self.set_weights_note(name, note)
        for name, badge in list(self._badges.items()):
            self.set_badge(name, badge)

    def set_catalog(self, catalog) -> None:
        """Follow ``catalog`` (a ``gui.catalog.ModelCatalog``): refilled whenever it changes, keeping the model
        selected when it is still listed (its owner chooses another when it is not)."""
        self._catalog = catalog
        catalog.changed.connect(self._on_catalog_changed)
        self._on_catalog_changed()

    def _on_catalog_changed(self) -> None:
        if self._catalog is None or not self._catalog.ready:
            return
        current = self.current_model()
        self.set_specs(self._catalog.specs(), self._catalog.families)
        if current is not None:
            self.set_current_model(current)

    def _row_of(self, name: str) -> int:
        for row in range(self._model.rowCount()):
            if self._model.item(row).data(NameRole) == name:
                return row
        return -1

    def current_model(self) -> str | None:
        return self.currentData(NameRole)

    def set_current_model(self, name: str, *, notify: bool = False) -> bool:
        """Select ``name``; emits ``modelChanged`` only when ``notify``. False if unknown."""
        row = self._row_of(name)
        if row < 0:
            return False
        self.blockSignals(not notify)
        try:
            self.setCurrentIndex(row)
        finally:
            self.blockSignals(False)
        self._sync(name, emit=notify)
        return True

    def names(self) -> list[str]:
        return [n for n in (self._model.item(r).data(NameRole) for r in range(self._model.rowCount())) if n]

    def _on_index_changed(self, row: int) -> None:
        name = self._model.item(row).data(NameRole) if row >= 0 else None
        if name is None:  # a header cannot be current; keep the previous model
            if self._last:
                self.set_current_model(self._last)
            return
        self._sync(name, emit=True)

    def set_badge(self, name: str, badge: str | None) -> None:
        """Show ``badge`` after ``name``'s entry ("ResNet-50 · int8": what runs it), or nothing. Remembered
        for a model not listed yet (the quick route answers before the registry has loaded)."""
        self._badges[name] = badge
        spec = self._specs.get(name)
        row = self._row_of(name)
        if spec is None or row < 0:
            return
        self._model.item(row).setText(f"{spec.display_name} · {badge}" if badge else spec.display_name)

    def badge(self, name: str) -> str | None:
        return self._badges.get(name)

    def set_weights_note(self, name: str, note: str | None) -> None:
        """Add what ``name``'s weights are ("pretrained", "imported (FILE)", ...) to its tooltip."""
        spec = self._specs.get(name)
        if spec is None:
            return
        self._notes[name] = note
        row = self._row_of(name)
        if row >= 0:
            self._model.item(row).setToolTip(self._tooltip(name))
        if self.current_model() == name:
            self.setToolTip(self._tooltip(name))

    def _tooltip(self, name: str) -> str:
        spec = self._specs.get(name)
        if spec is None:
            return ""
        note = self._notes.get(name)
        return spec_tooltip(spec) + (f"<br>Weights: {html.escape(note)}" if note else "")

    def _sync(self, name: str, *, emit: bool) -> None:
        self.setToolTip(self._tooltip(name))
        changed = name != self._last
        self._last = name
        if emit and changed:
            self.modelChanged.emit(name)
