"""Page 3: the model (from the registry, grouped by family) and the strategy (head / finetune / scratch).

It says whether the model's pretrained ImageNet weights are on this machine
(``core.weights.cached_path``). Head and fine-tune need them: without them
training downloads them first, which fails offline, so the page offers
Scratch (random initial weights) instead.

"Compare several architectures" turns the tree into tick boxes for a bake-off
(``gui.wizard.bakeoff_pick``): presets, and each model's strategy chosen from
the weights on this machine, shown in its row.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QThreadPool
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QRadioButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWizardPage,
)

from core.bakeoff.plan import choose_strategy, common_image_size
from core.training import STRATEGIES
from core.weights import cached_path
from core.zoo import FAMILIES, list_specs
from gui.style import SPACING, state_color
from gui.widgets.model_picker import human_count, human_size, spec_tooltip
from gui.wizard.bakeoff_pick import BakeoffPicker
from gui.wizard.plan import TrainingPlan

STRATEGY_LABELS = {"head": "Train the head only", "finetune": "Fine-tune everything", "scratch": "Train from scratch"}
NameRole = Qt.ItemDataRole.UserRole + 1


def default_image_size(model_size: int, report) -> int:
    """The model's input size, or less when most images are smaller (a 32-pixel digit gains nothing at 224)."""
    if report is None or not report.samples:
        return model_size
    sides = sorted(min(s.width, s.height) for s in report.samples)
    typical = sides[len(sides) // 2]
    return model_size if typical >= model_size else max(32, -(-typical // 8) * 8)


class ModelPage(QWizardPage):
    def __init__(self, plan: TrainingPlan, parent=None, *, pool: QThreadPool | None = None) -> None:
        super().__init__(parent)
        self.plan = plan
        self.specs: dict = {}
        self.setTitle("Model and strategy")
        self.setSubTitle("Which network to start from, and how much of it to train.")
        self.tree = QTreeWidget(self)
        self.tree.setObjectName("modelTree")
        self.tree.setHeaderLabels(["Model", "Year", "Parameters", "ImageNet acc@1", "Pretrained weights",
                                   "Strategy", "Time"])
        self.tree.setRootIsDecorated(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, 7):
            self.tree.header().setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.currentItemChanged.connect(self._on_model_changed)
        self.compare = QCheckBox("Compare several architectures (a bake-off: each trains on the same split)", self)
        self.compare.setObjectName("compareModels")
        self.compare.setToolTip("Tick any set of models; they train one after another on the same images, and "
                                "the last page ranks them")
        self.picker = BakeoffPicker(plan, self.tree, pool, NameRole, self)
        self.picker.changed.connect(self._on_picks_changed)
        self.compare.toggled.connect(self.set_compare)
        self.strategies = QButtonGroup(self)
        strategy_box = QVBoxLayout()
        for key, text in STRATEGIES.items():
            button = QRadioButton(f"{STRATEGY_LABELS[key]} — {text}", self)
            button.setObjectName(f"strategy_{key}")
            button.setProperty("strategy", key)
            self.strategies.addButton(button)
            strategy_box.addWidget(button)
        self.strategies.buttonToggled.connect(self._on_strategy_toggled)
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        self.note.setTextFormat(Qt.TextFormat.RichText)
        self.use_scratch = QPushButton("Use Scratch", self)
        self.use_scratch.clicked.connect(lambda: self.set_strategy("scratch"))
        note_row = QHBoxLayout()
        note_row.addWidget(self.note, 1)
        note_row.addWidget(self.use_scratch, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setSpacing(SPACING)
        layout.addWidget(self.compare)
        layout.addWidget(self.picker.row)
        layout.addWidget(self.tree, 1)
        self.strategy_title = QLabel("<b>Strategy</b>", self)
        layout.addWidget(self.strategy_title)
        layout.addLayout(strategy_box)
        layout.addLayout(note_row)
        self.picker.set_enabled(False)

    # -- filling ----------------------------------------------------------------------

    def initializePage(self) -> None:  # noqa: N802 - Qt name
        if not self.specs:
            self._fill()
        else:
            self._refresh_weights()
        self.set_model(self.plan.model)
        self.set_strategy(self.plan.strategy)
        self.picker.invalidate()  # the data or the epochs may have changed since
        if self.plan.is_bakeoff:
            self.compare.setChecked(True)
            self.picker.tick(self.plan.models)

    def _fill(self) -> None:
        specs = list_specs()
        self.specs = {s.name: s for s in specs}
        self.tree.clear()
        for family in FAMILIES:
            members = [s for s in specs if s.family == family]
            if not members:
                continue
            group = QTreeWidgetItem(self.tree, [family])
            group.setFlags(Qt.ItemFlag.ItemIsEnabled)
            font = group.font(0)
            font.setBold(True)
            group.setFont(0, font)
            for spec in members:
                acc = f"{spec.acc1:.1f}%" if spec.acc1 is not None else "—"
                item = QTreeWidgetItem(group, [spec.display_name, str(spec.year), human_count(spec.params), acc, ""])
                item.setData(0, NameRole, spec.name)
                item.setToolTip(0, spec_tooltip(spec))
                for col in (1, 2, 3):
                    item.setTextAlignment(col, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            group.setExpanded(True)
        self._refresh_weights()

    def _refresh_weights(self) -> None:
        for item in self._model_items():
            item.setText(4, self._weights_text(self.specs[item.data(0, NameRole)]))

    def _model_items(self) -> list[QTreeWidgetItem]:
        return self.picker.items()

    # -- bake-off ---------------------------------------------------------------------

    def set_compare(self, on: bool) -> None:
        """Tick boxes for several models (on), or one model and its strategy (off)."""
        if self.compare.isChecked() != on:
            self.compare.setChecked(on)  # toggled comes back here
            return
        for button in self.strategies.buttons():
            button.setVisible(not on)
        self.strategy_title.setVisible(not on)
        self.picker.set_enabled(on)
        self._update_note()
        self.completeChanged.emit()

    def ticked(self) -> list[str]:
        return self.picker.ticked()

    def tick(self, models) -> None:
        self.picker.tick(models)

    def _on_picks_changed(self) -> None:
        self._update_note()
        self.completeChanged.emit()

    def shutdown(self) -> None:
        self.picker.shutdown()

    def cached(self, spec) -> bool:
        return spec.pretrained and cached_path(spec) is not None

    def _weights_text(self, spec) -> str:
        if not spec.pretrained:
            return "none"
        return "on this machine" if self.cached(spec) else f"download {human_size(spec.weights_size)}"

    # -- choices ----------------------------------------------------------------------

    def set_model(self, name: str) -> bool:
        for item in self._model_items():
            if item.data(0, NameRole) == name:
                self.tree.setCurrentItem(item)
                self.tree.scrollToItem(item)
                return True
        return False

    def current_model(self) -> str | None:
        item = self.tree.currentItem()
        return item.data(0, NameRole) if item is not None else None

    def set_strategy(self, key: str) -> None:
        for button in self.strategies.buttons():
            if button.property("strategy") == key and button.isEnabled():
                button.setChecked(True)

    def current_strategy(self) -> str | None:
        button = self.strategies.checkedButton()
        return button.property("strategy") if button is not None else None

    def _on_model_changed(self, item, _previous=None) -> None:
        spec = self.specs.get(item.data(0, NameRole)) if item is not None else None
        if spec is None:
            self._update_note()
            self.completeChanged.emit()
            return
        for button in self.strategies.buttons():
            button.setEnabled(spec.pretrained or button.property("strategy") == "scratch")
        if not spec.pretrained:
            self.set_strategy("scratch")
        elif self.current_strategy() is None:
            self.set_strategy("finetune" if self.cached(spec) else "scratch")
        self._update_note()
        self.completeChanged.emit()

    def _on_strategy_toggled(self, _button, checked: bool) -> None:
        if checked:
            self._update_note()
            self.completeChanged.emit()

    def _update_note(self) -> None:
        name, strategy = self.current_model(), self.current_strategy()
        spec = self.specs.get(name) if name else None
        warn = state_color("warning", self.palette()).name()
        ok = state_color("ok", self.palette()).name()
        self.use_scratch.hide()
        if self.picker.enabled:
            self.note.setText(self._bakeoff_note())
        elif spec is None:
            self.note.setText("Pick a model.")
        elif not spec.pretrained:
            self.note.setText(f"{spec.display_name} has no pretrained weights: it trains from scratch, from "
                              "random weights — expect to need more images and epochs.")
        elif strategy == "scratch":
            self.note.setText(f"{spec.display_name} starts from random weights; the ImageNet weights are not used.")
        elif self.cached(spec):
            self.note.setText(f"<span style='color:{ok}'>✓</span> The ImageNet weights of {spec.display_name} are "
                              "on this machine.")
        else:
            self.note.setText(
                f"<span style='color:{warn}'>⚠</span> The ImageNet weights of {spec.display_name} are not on this "
                f"machine: training downloads them first ({human_size(spec.weights_size)}). Without a network "
                "connection that fails — train from scratch instead (random initial weights), or import the "
                "weights file in the main window (File › Import Weights).")
            self.use_scratch.show()

    def _bakeoff_note(self) -> str:
        models = self.ticked()
        if len(models) < 2:
            return "Tick two or more models to compare (or a preset above)."
        strategies = [choose_strategy(m)[0] for m in models]
        scratch = strategies.count("scratch")
        return (f"{len(models)} models will train one after another on the same images. Each starts from its "
                f"ImageNet weights when they are on this machine (fine-tune), else from random weights (scratch): "
                f"{len(models) - scratch} fine-tune, {scratch} from scratch. The next page estimates the time.")

    def isComplete(self) -> bool:  # noqa: N802
        if self.picker.enabled:
            return len(self.ticked()) >= 2
        return self.current_model() is not None and self.current_strategy() is not None

    def validatePage(self) -> bool:  # noqa: N802
        if self.picker.enabled:
            return self._validate_bakeoff()
        self.plan.models = []
        name = self.current_model()
        if name != self.plan.model or not self.plan.name:
            self.plan.image_size = default_image_size(self.specs[name].input_size, self.plan.report)
            self.plan.name = ""  # named after folder and model on the next page
        self.plan.model, self.plan.strategy = name, self.current_strategy()
        return True

    def _validate_bakeoff(self) -> bool:
        models = self.ticked()
        if models != self.plan.models:
            report = self.plan.report.without_classes(self.plan.excluded) if self.plan.report is not None else None
            self.plan.image_size = common_image_size(models, report)
        self.plan.models = models
        self.plan.model, self.plan.strategy = models[0], choose_strategy(models[0])[0]
        return True
