"""The Compare window: several architectures side by side on the same photos.

Choose models (by family or a preset), press Compare: each model in turn
classifies the photos, has its latency measured on this device and its
Grad-CAM and stage feature maps drawn, on the engine thread
(``gui.compare_worker``; the main window's when opened from it). Rows, tiles and the
latency/accuracy chart fill in as each model finishes; Cancel stops within one
forward pass. "Labelled Folder…" scores the chosen models on a folder of class
subfolders. Weights are never downloaded here (see the note in the window).
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QProgressBar,
    QSizePolicy,
    QSplitter,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from core.compare import PRESETS
from core.images import collect_images
from core.io import write_user_file
from core.models import get_spec
from core.zoo import FAMILIES, list_specs
from gui.actions import new_action
from gui.compare_worker import VISUALS_LIMIT, CompareClient
from gui.screens import fit_to_screen
from gui.style import SPACING, state_color
from gui.widgets.compare_chart import ChartPoint, CompareChart
from gui.widgets.compare_table import CompareTable, table_csv
from gui.widgets.compare_tiles import CompareTiles, model_tiles
from gui.widgets.model_checklist import ModelChecklist
from gui.workers import error_text

DEFAULT_PRESET = "The classics"
NOTE = ("Weights are never downloaded from this window: a model whose pretrained weights are not on this "
        "computer runs untrained (random weights, marked “untrained”). Download weights in the main window "
        "(File ▸ Download Weights).")
IMAGE_FILTER = "Images (*.jpg *.jpeg *.png *.bmp *.gif *.webp *.tif *.tiff);;All files (*)"


class CompareWindow(QMainWindow):
    def __init__(self, paths=(), *, device: str = "auto", models=None, parent=None, engine_factory=None,
                 engine_worker=None) -> None:
        """``engine_worker``: the main window's ``EngineWorker`` to share (its engine and model cache);
        None gives this window its own."""
        super().__init__(parent)
        self.setWindowFlag(Qt.WindowType.Window)
        self.setWindowTitle("Compare Models — ConvNet Studio")
        self.setObjectName("compareWindow")
        self.paths: list[str] = []
        self._run_paths: list[str] = []
        self._visuals: dict[tuple[str, str], object] = {}
        self._evaluations: dict[str, object] = {}
        self._failures: dict[str, str] = {}
        self._error = ""
        self._kind = ""
        self._closed = False
        self.client = CompareClient(device, self, engine_factory=engine_factory, worker=engine_worker)
        self._build()
        self._wire()
        if models is None:
            self.checklist.apply_preset(DEFAULT_PRESET, notify=False)
        else:
            self.checklist.set_checked(models)
        self.set_photos(list(paths))
        self._sync_actions()
        fit_to_screen(self, 1280, 800)  # inside the screen's available area, over the main window

    # -- construction ----------------------------------------------------------------

    def _build(self) -> None:
        self.run_action = new_action(self, "&Compare", self.run, shortcuts=("Ctrl+Return", "F5"), icon="compare",
                                     tip="Run the chosen models on the photos")
        self.cancel_action = new_action(self, "Cancel", self.cancel, shortcuts=("Esc",), icon="stop",
                                        tip="Stop after the forward pass in flight")
        self.add_action = new_action(self, "&Add Photos…", self.add_photos_dialog, shortcuts=("Ctrl+O",), icon="open",
                                     tip="Add photos to compare on")
        self.folder_action = new_action(self, "&Labelled Folder…", self.evaluate_folder_dialog, shortcuts=("Ctrl+L",),
                                        icon="folder",
                                        tip="Accuracy of the chosen models on a folder of class subfolders")
        self.export_action = new_action(self, "&Export CSV…", self.export_dialog, shortcuts=("Ctrl+E",), icon="export",
                                        tip="Save the table as CSV (one line per model and photo)")
        self.progress = QProgressBar(self)
        self.progress.setFixedWidth(180)
        self.progress.setTextVisible(False)
        self.progress_label = QLabel(self)
        bar = QToolBar("Compare", self)
        bar.setObjectName("compareToolbar")
        bar.setMovable(False)
        bar.setIconSize(QSize(20, 20))
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        bar.addAction(self.run_action)
        bar.addAction(self.cancel_action)
        bar.addSeparator()
        self.progress_item = bar.addWidget(self.progress)  # a toolbar widget is shown/hidden through its action
        bar.addWidget(self.progress_label)
        spacer = QWidget(self)
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        bar.addWidget(spacer)
        for action in (self.add_action, self.folder_action, self.export_action):
            bar.addAction(action)
        self.addToolBar(bar)

        specs = list_specs()
        self.checklist = ModelChecklist(specs, list(FAMILIES), PRESETS, self)
        left = QWidget(self)
        left_box = QVBoxLayout(left)
        left_box.setContentsMargins(SPACING, SPACING, 0, SPACING)
        left_box.addWidget(_heading("Models", self))
        left_box.addWidget(self.checklist, 1)

        self.photo = QComboBox(self)
        self.photo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.photo.setMinimumContentsLength(18)
        self.photo_count = QLabel(self)
        self.summary = QLabel(self)
        self.summary.setObjectName("compareSummary")
        self.summary.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.summary.setWordWrap(True)
        font = self.summary.font()
        font.setBold(True)
        self.summary.setFont(font)
        top = QHBoxLayout()
        top.addWidget(QLabel("Photo:", self))
        top.addWidget(self.photo)
        top.addWidget(self.photo_count)
        top.addSpacing(SPACING * 2)
        top.addWidget(self.summary, 1)
        self.note = QLabel(NOTE, self)
        self.note.setWordWrap(True)
        self.problems = QLabel(self)  # what failed in the last run: the folder, or a model
        self.problems.setWordWrap(True)
        self.problems.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.problems.hide()
        self.table = CompareTable(self)
        self.tiles = CompareTiles(self)
        self.chart = CompareChart(self)
        self.lower = QSplitter(Qt.Orientation.Horizontal, self)
        self.lower.addWidget(self.tiles)
        self.lower.addWidget(self.chart)
        self.lower.setSizes([560, 440])
        self.lower.setChildrenCollapsible(False)
        self.upper = QSplitter(Qt.Orientation.Vertical, self)
        self.upper.addWidget(self.table)
        self.upper.addWidget(self.lower)
        self.upper.setSizes([300, 400])  # the table's rows grow to hold the top-5: give them room
        self.upper.setStretchFactor(0, 3)
        self.upper.setStretchFactor(1, 4)
        self.upper.setChildrenCollapsible(False)
        right = QWidget(self)
        right_box = QVBoxLayout(right)
        right_box.setContentsMargins(0, SPACING, SPACING, SPACING)
        right_box.setSpacing(SPACING)
        right_box.addLayout(top)
        right_box.addWidget(self.note)
        right_box.addWidget(self.problems)
        right_box.addWidget(self.upper, 1)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.addWidget(left)
        self.splitter.addWidget(right)
        self.splitter.setSizes([230, 1050])
        self.splitter.setStretchFactor(1, 1)
        self.setCentralWidget(self.splitter)

    def _wire(self) -> None:
        c = self.client
        c.progressed.connect(self._on_progressed)
        c.rowReady.connect(self._on_row)
        c.visualsReady.connect(self._on_visuals)
        c.evaluated.connect(self._on_evaluated)
        c.modelFailed.connect(self._on_model_failed)
        c.failed.connect(self._on_failed)
        c.finished.connect(self._on_finished)
        self.checklist.modelsChanged.connect(lambda _names: self._sync_actions())
        self.photo.currentIndexChanged.connect(lambda _i: self._show_photo())
        self.tiles.viewChanged.connect(self._refresh_tiles)

    # -- photos ---------------------------------------------------------------------

    def set_photos(self, paths: list[str]) -> None:
        """Compare on ``paths`` (replacing the list); results of an earlier run stay until the next."""
        self.paths = []
        self.add_photos(paths)

    def add_photos(self, paths: list[str]) -> None:
        fresh = [os.path.abspath(p) for p in paths if os.path.abspath(p) not in self.paths]
        self.paths.extend(dict.fromkeys(fresh))
        self.photo.blockSignals(True)
        self.photo.clear()
        for path in self.paths:
            self.photo.addItem(Path(path).name, path)
            self.photo.setItemData(self.photo.count() - 1, path, Qt.ItemDataRole.ToolTipRole)
        self.photo.blockSignals(False)
        if fresh:
            self.photo.setCurrentIndex(self.paths.index(fresh[0]))
        n = len(self.paths)
        self.photo_count.setText(f"{n} photo{'s' * (n != 1)}")
        self._show_photo()
        self._sync_actions()

    def add_photos_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add Photos", "", IMAGE_FILTER)
        if files:
            self.add_photos([str(p) for p in collect_images(files).images])

    def current_path(self) -> str | None:
        return self.photo.currentData()

    def select_photo(self, index: int) -> None:
        self.photo.setCurrentIndex(index)

    def _show_photo(self) -> None:
        path = self.current_path()
        index = self._run_paths.index(path) if path in self._run_paths else len(self._run_paths) + 1
        self.table.source.set_photo(index)
        self._refresh_summary()
        self._refresh_tiles()

    # -- running ------------------------------------------------------------------------

    def run(self) -> None:
        """Compare the checked models on every photo (replacing the previous results)."""
        models = self.checklist.checked_models()
        if not models or not self.paths:
            self.statusBar().showMessage("Choose at least one model and add a photo first.", 8000)
            return
        self._run_paths = list(self.paths)
        self._visuals.clear()
        self._failures.clear()
        self.table.source.clear()
        self.client.compare(self._run_paths, models)
        self._started(len(models), "Comparing")
        self._show_photo()
        self._refresh_chart()

    def evaluate_folder(self, folder: str) -> None:
        """Score the checked models on ``folder`` (one subfolder per class)."""
        models = self.checklist.checked_models()
        if not models:
            self.statusBar().showMessage("Choose at least one model first.", 8000)
            return
        self._evaluations.clear()
        self._failures.clear()
        self.table.source.clear_evaluations()
        self._refresh_chart()
        self.client.evaluate(folder, models)
        self._started(len(models), f"Scoring on {Path(folder).name}")

    def evaluate_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Labelled Folder (one subfolder per class)")
        if folder:
            self.evaluate_folder(folder)

    def cancel(self) -> None:
        if self.client.busy:
            self.client.cancel()
            self.progress_label.setText("Cancelling…")

    def _started(self, total: int, what: str) -> None:
        self._kind, self._error = what, ""
        self._show_problems()
        self.progress.setRange(0, total)
        self.progress.setValue(0)
        self.progress_label.setText(f"{what}…")
        self._sync_actions()

    @Slot(int, int, str)
    def _on_progressed(self, done: int, total: int, model: str) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        if model:
            self.progress_label.setText(f"{get_spec(model).display_name} ({done + 1} of {total})…")

    @Slot(object)
    def _on_row(self, row) -> None:
        spec = get_spec(row.model)
        self.table.source.set_row(spec, row)
        if row.model in self._evaluations:
            self.table.source.set_evaluation(spec, self._evaluations[row.model])
        self._refresh_summary()
        self._refresh_tiles()
        self._refresh_chart()

    @Slot(object)
    def _on_visuals(self, visuals) -> None:
        self._visuals[(visuals.model, visuals.path)] = visuals
        if visuals.path == self.current_path():
            self._refresh_tiles()

    @Slot(object)
    def _on_evaluated(self, result) -> None:
        first = not self._evaluations
        self._evaluations[result.model] = result
        self.table.source.set_evaluation(get_spec(result.model), result)
        self._refresh_chart()
        if first:
            self.chart.set_metric("folder")

    @Slot(str, str)
    def _on_model_failed(self, model: str, message: str) -> None:
        self._failures[model] = message
        self._show_problems()

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._error = message
        self._show_problems()

    @Slot(bool)
    def _on_finished(self, cancelled: bool) -> None:
        if self._closed:
            return
        self.progress.setValue(self.progress.maximum() if not cancelled else self.progress.value())
        failed = f"; {len(self._failures)} model(s) failed" if self._failures else ""
        outcome = "Cancelled" if cancelled else ("Failed" if self._error else "Done")
        self.progress_label.setText(outcome + failed + ".")
        if self._kind == "Comparing" and not (cancelled or self._error or self._failures):
            self.statusBar().showMessage(f"Latency measured on {self.client.device.upper()}.", 10000)
        self._sync_actions()

    def _show_problems(self) -> None:
        lines = ([self._error] if self._error else []) + [
            f"{get_spec(model).display_name}: {message}" for model, message in self._failures.items()]
        self.problems.setText("\n".join(lines))
        self.problems.setStyleSheet(f"color: {state_color('error', self.palette()).name()};")
        self.problems.setVisible(bool(lines))

    def _sync_actions(self) -> None:
        busy = self.client.busy
        have_models = bool(self.checklist.checked_models())
        self.run_action.setEnabled(not busy and have_models and bool(self.paths))
        self.folder_action.setEnabled(not busy and have_models)
        self.cancel_action.setEnabled(busy)
        self.export_action.setEnabled(self.table.source.rowCount() > 0)
        self.progress_item.setVisible(busy)

    # -- showing results --------------------------------------------------------------

    def _refresh_summary(self) -> None:
        text = self.table.source.summary()
        if not text:
            text = "Choose models, then press Compare (Ctrl+Return)." if not self.table.source.rowCount() else ""
        self.summary.setText(text)
        untrained = [e.spec.display_name for e in self.table.source.entries() if e.untrained and e.spec.pretrained]
        colour = state_color("warning", self.palette()).name() if untrained else ""
        self.note.setStyleSheet(f"color: {colour};" if colour else "")

    def _refresh_tiles(self) -> None:
        path = self.current_path()
        late = path in self._run_paths and self._run_paths.index(path) >= VISUALS_LIMIT
        missing = f"only the first {VISUALS_LIMIT} photos get pictures" if late else "drawing…"
        entries = [e for e in self.table.source.entries() if e.row is not None]
        tiles = model_tiles([(e.spec, bool(e.untrained), self._visuals.get((e.spec.name, path))) for e in entries],
                            self.tiles.current_mode(), self.tiles.current_stage(), missing)
        self.tiles.set_tiles(tiles)

    def chart_points(self) -> list[ChartPoint]:
        return [ChartPoint.of(e.spec, e.row, e.evaluation) for e in self.table.source.entries() if e.row is not None]

    def _refresh_chart(self) -> None:
        self.chart.set_points(self.chart_points())

    # -- export --------------------------------------------------------------------------

    def export_csv(self, path: str, *, overwrite: bool = False) -> Path:
        """Write the table (one line per model and photo) atomically; a confirmed dialog passes ``overwrite``."""
        return write_user_file(path, table_csv(self.table.source.entries(), self._run_paths), overwrite=overwrite)

    def export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export Comparison", "comparison.csv", "CSV (*.csv)")
        if not path:
            return
        try:
            self.statusBar().showMessage(f"Saved {self.export_csv(path, overwrite=True)}.", 8000)
        except Exception as exc:  # noqa: BLE001 - shown, never raised into the event loop
            self.statusBar().showMessage(f"Could not save: {error_text(exc)}", 15000)

    # -- lifetime ------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Cancel what runs and stop the compare thread (waits for the forward pass in flight)."""
        if self._closed:
            return
        self._closed = True
        self.client.shutdown()


def _heading(text: str, parent: QWidget) -> QLabel:
    label = QLabel(text, parent)
    font = label.font()
    font.setBold(True)
    label.setFont(font)
    return label
