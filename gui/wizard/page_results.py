"""Page 6: results — confusion matrix (cells open their images), per-class precision/recall/F1, the worst
predictions, saving under another name, "Use It Now" and export (TorchScript / ONNX).

When the doctor examined the folder (``plan.doctor``), worst predictions it flagged (likely label error,
near-duplicate, outlier) are marked "⚑", and a line above the tabs names them."""

from __future__ import annotations

import html
import os

from PySide6.QtCore import Qt, QThreadPool, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from core.errors import StudioError
from core.text import noun, plural
from core.training import export_bundle, find_bundle
from core.training.bundles import models_dir
from core.training.storage import rename_saved_model
from gui.jobs import Job
from gui.style import SPACING, state_color
from gui.wizard.confusion import ConfusionView
from gui.wizard.plan import TrainingPlan
from gui.wizard.thumbs import ThumbStrip
from gui.workers import error_text

EXPORTS = {"torchscript": ("TorchScript…", "TorchScript (*.pt)", ".pt"), "onnx": ("ONNX…", "ONNX (*.onnx)", ".onnx")}


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _epochs(count) -> str:
    return plural(count, "epoch") if isinstance(count, int) else "? epochs"


def doctor_flags(report) -> dict[str, str]:
    """Path -> what the doctor found about that image ("likely label error: suggests two", ...)."""
    flags: dict[str, list[str]] = {}
    if report is None:
        return {}
    for issue in report.label_issues:
        flags.setdefault(issue.path, []).append(f"likely label error (suggests {issue.suggested})")
    for group in report.duplicates:
        for path in group.paths:
            flags.setdefault(path, []).append("near-duplicate" + (" across the split" if group.across_split else ""))
    for outlier in report.outliers:
        flags.setdefault(outlier.path, []).append("outlier")
    return {path: ", ".join(found) for path, found in flags.items()}


def _export(name: str, fmt: str, path: str, overwrite: bool = False) -> str:
    return str(export_bundle(name, fmt, path, overwrite=overwrite))


class ResultsPage(QWizardPage):
    saved = Signal(str)  # the model's (new) name after saving under another name
    useRequested = Signal(str)  # "Use It Now": the main window selects this model

    def __init__(self, plan: TrainingPlan, pool: QThreadPool, loader, parent=None) -> None:
        super().__init__(parent)
        self.plan = plan
        self.pool = pool
        self.setTitle("Results")
        self.setSubTitle("How the saved model does on the validation images it never trained on.")
        self.summary = QLabel(self)
        self.summary.setWordWrap(True)
        self.doctor_note = QLabel(self)
        self.doctor_note.setObjectName("doctorFlagged")
        self.doctor_note.setWordWrap(True)
        self.doctor_note.hide()
        self.confusion = ConfusionView(self)
        self.confusion.cellChosen.connect(self.show_cell)
        self.cell_label = QLabel("Click a cell to see its images.", self)
        self.cell_thumbs = ThumbStrip(loader, self, icon=64)
        self.cell_thumbs.setObjectName("cellThumbs")
        cell_box = QWidget(self)
        cell_layout = QVBoxLayout(cell_box)
        cell_layout.setContentsMargins(0, 0, 0, 0)
        cell_layout.addWidget(self.cell_label)
        cell_layout.addWidget(self.cell_thumbs, 1)
        matrix_box = QWidget(self)
        matrix_layout = QVBoxLayout(matrix_box)
        matrix_layout.setContentsMargins(0, 0, 0, 0)
        axes = QLabel("Rows: the true class · columns: what the model predicted · the diagonal is right", self)
        axes.setObjectName("confusionAxes")
        matrix_layout.addWidget(axes)
        matrix_layout.addWidget(self.confusion, 1)
        matrix_split = QSplitter(Qt.Orientation.Horizontal, self)
        matrix_split.addWidget(matrix_box)
        matrix_split.addWidget(cell_box)
        matrix_split.setStretchFactor(0, 3)
        matrix_split.setStretchFactor(1, 2)
        self.per_class = _table(self, ["Class", "Precision", "Recall", "F1", "Images"])
        self.worst = ThumbStrip(loader, self, icon=64, rows=2)
        self.worst.setObjectName("worstPredictions")
        self.tabs = QTabWidget(self)
        self.tabs.addTab(matrix_split, "Confusion matrix")
        self.tabs.addTab(self.per_class, "Per class")
        self.tabs.addTab(self.worst, "Worst predictions")
        self.name = QLineEdit(self)
        self.name.setObjectName("resultName")
        self.rename_button = QPushButton("Save Under This Name", self)
        self.rename_button.clicked.connect(self.save_as)
        self.use_button = QPushButton("Use It Now", self)
        self.use_button.setObjectName("useModel")
        self.use_button.setDefault(False)
        self.use_button.clicked.connect(lambda: self.useRequested.emit(self.model_name))
        self.export_button = QPushButton("Export", self)
        menu = QMenu(self.export_button)
        for fmt, (text, _filter, _suffix) in EXPORTS.items():
            menu.addAction(text, lambda f=fmt: self.export_dialog(f))
        self.export_button.setMenu(menu)
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(QLabel("Saved as", self))
        row.addWidget(self.name, 1)
        row.addWidget(self.rename_button)
        row.addSpacing(2 * SPACING)
        row.addWidget(self.use_button)
        row.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.setSpacing(SPACING)
        layout.addWidget(self.summary)
        layout.addWidget(self.doctor_note)
        layout.addWidget(self.tabs, 1)
        layout.addLayout(row)
        layout.addWidget(self.message)

    @property
    def model_name(self) -> str:
        return (self.plan.result or {}).get("name", "")

    # -- filling --------------------------------------------------------------------------

    def initializePage(self) -> None:  # noqa: N802 - Qt name
        result, evaluation = self.plan.result or {}, self.plan.evaluation
        self.name.setText(self.model_name)
        self.message.clear()
        asked = self.plan.name
        if asked and self.model_name and asked != self.model_name:  # the name was taken: never replaced silently
            self._say(f"A saved model called “{asked}” already exists, so this one was saved as “{self.model_name}”. "
                      f"To replace the old one, type “{asked}” above and press Save Under This Name.", "warning")
        self.summary.setText(self._summary(result, evaluation))
        self.doctor_note.hide()
        if evaluation is None:
            self.confusion.set_matrix([], [])
            self.per_class.setRowCount(0)
            self.worst.set_items([])
            return
        self.confusion.set_matrix(list(evaluation.classes), evaluation.confusion())
        self._fill_per_class(evaluation)
        self._fill_worst(evaluation)
        matrix, n = evaluation.confusion(), len(evaluation.classes)
        mistakes = [(i, j) for i in range(n) for j in range(n) if i != j and matrix[i, j]]
        cell = max(mistakes, key=lambda ij: matrix[ij]) if mistakes else (0, 0)  # the most confused pair
        self.show_cell(*cell)
        self.confusion.setCurrentIndex(self.confusion.model().index(*cell))
        self.tabs.setTabText(2, f"Worst predictions ({int(matrix.sum() - matrix.trace())} wrong)")

    def _fill_worst(self, evaluation) -> None:
        flags, classes, worst = doctor_flags(self.plan.doctor), evaluation.classes, evaluation.worst(24)
        self.worst.set_items([
            (p.path, ("⚑ " if p.path in flags else "") + f"{os.path.basename(p.path)}\n{classes[p.true]} → "
             f"{classes[p.pred]}",
             f"{p.path}\ntrue: {classes[p.true]} ({100 * p.true_prob:.0f}%)\n"
             f"predicted: {classes[p.pred]} ({100 * p.confidence:.0f}%)"
             + (f"\nthe Doctor: {flags[p.path]}" if p.path in flags else ""))
            for p in worst])
        flagged = [p for p in worst if p.path in flags]
        if flagged:
            shown = "; ".join(f"{html.escape(os.path.basename(p.path))}: {html.escape(flags[p.path])}"
                              for p in flagged[:4])
            more = f"; and {len(flagged) - 4} more" if len(flagged) > 4 else ""
            self.doctor_note.setText(f"⚑ The Doctor flagged {len(flagged)} of the {len(worst)} worst predictions "
                                     f"before training — {shown}{more}.")
        self.doctor_note.setVisible(bool(flagged))

    def _summary(self, result: dict, evaluation) -> str:
        metrics = result.get("metrics", {})
        status = {"completed": "Training finished", "early_stopped": "Training stopped early"}.get(
            result.get("status"), "Training ended")
        parts = [f"<b>{status}</b> after {_epochs(metrics.get('epochs'))}."]
        if metrics.get("val_acc") is not None:
            parts.append(f"Saved weights (epoch {metrics.get('epoch')}): validation accuracy "
                         f"<b>{_percent(metrics['val_acc'])}</b>, loss {metrics['val_loss']:.3f}.")
        if evaluation is not None and evaluation.accuracy is not None:
            failed = evaluation.failed
            parts.append(f"Classified as the app will: {_percent(evaluation.accuracy)} of "
                         f"{len(evaluation.scored)} validation images right"
                         + (f" ({failed} could not be read)." if failed else "."))
        elif evaluation is None:
            parts.append("Per-image results are not available.")
        return " ".join(parts)

    def _fill_per_class(self, evaluation) -> None:
        scores = evaluation.class_scores()
        self.per_class.setRowCount(len(scores))
        for row, s in enumerate(scores):
            cells = [s.name, _percent(s.precision), _percent(s.recall), _percent(s.f1), str(s.support)]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.per_class.setItem(row, col, item)

    def show_cell(self, true: int, pred: int) -> None:
        evaluation = self.plan.evaluation
        if evaluation is None:
            return
        members = evaluation.cell(true, pred)
        classes = evaluation.classes
        what = "correctly classified" if true == pred else f"predicted as “{classes[pred]}”"
        count = len(members)
        self.cell_label.setText(f"{count} “{html.escape(classes[true])}” {noun(count, 'image')} {what}")
        self.cell_thumbs.set_items([
            (p.path, os.path.basename(p.path), f"{p.path}\n{classes[p.pred]}: {100 * p.confidence:.0f}%")
            for p in members])

    # -- actions ------------------------------------------------------------------------

    def save_as(self) -> None:
        new = self.name.text().strip()
        try:
            replace = new != self.model_name and _taken(new)
            if replace and not self.confirm_replace(new):
                return
            rename_saved_model(self.model_name, new, overwrite=replace)
        except StudioError as exc:
            self._say(str(exc), "error")
            return
        if self.plan.result is not None:
            self.plan.result["name"] = new
        self.plan.name = new
        self._say(f"Saved as “{new}”.", "ok")
        self.saved.emit(new)

    def confirm_replace(self, name: str) -> bool:
        """Ask before a saved model is replaced (tests replace this method)."""
        answer = QMessageBox.question(
            self, "Replace a saved model?",
            f"A saved model called “{name}” already exists. Replace it with this one? This cannot be undone.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes

    def export_dialog(self, fmt: str) -> None:
        _text, name_filter, suffix = EXPORTS[fmt]
        start = os.path.join(os.path.expanduser("~"), self.model_name + suffix)
        path, _ = QFileDialog.getSaveFileName(self, "Export the model", start, name_filter)
        if path:
            self.export(fmt, path, overwrite=True)  # the save dialog asked before replacing a file

    def export(self, fmt: str, path: str, *, overwrite: bool = False) -> Job:
        job = Job(_export, self.model_name, fmt, path, overwrite, parent=self)
        job.returned.connect(self._on_exported)  # bound methods: they run on the GUI thread
        job.errored.connect(self._on_export_failed)
        job.finished.connect(self._on_export_finished)
        self.export_button.setEnabled(False)
        self._say(f"Exporting as {EXPORTS[fmt][0].rstrip('…')}…", None)
        job.start(self.pool)
        return job

    def _on_exported(self, out: str) -> None:
        self._say(f"Exported to {out}", "ok")

    def _on_export_failed(self, exc) -> None:
        self._say(f"Export failed: {error_text(exc)}", "error")

    def _on_export_finished(self) -> None:
        self.export_button.setEnabled(True)

    def _say(self, text: str, kind: str | None) -> None:
        colour = state_color(kind, self.palette()).name() if kind else None
        self.message.setText(f"<span style='color:{colour}'>{html.escape(text)}</span>" if colour
                             else html.escape(text))


def _taken(name: str) -> bool:
    return os.path.lexists(models_dir() / name) or find_bundle(name) is not None


def _table(parent, headers: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers), parent)
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().hide()
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.setSortingEnabled(False)
    table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    return table
