"""The optional doctor step between the data check and the model: the folder seen through a network's eyes.

Reached from the data page's "Examine with the Doctor…" button (the data page's Next goes straight to
the model page). The page runs ``core.doctor.examine.run_doctor`` on the wizard's pool (``DoctorTask``)
with a progress bar and Cancel, then shows the map (``DoctorMap``; "Compare with…" draws a second
model's map beside it) and the findings (likely label errors, near-duplicates, outliers). The person
marks fixes on rows or on a lasso selection of the map (Move to a class, Ignore, Keep; keys M, I, K;
Ctrl+Z takes back the last mark, or with none pending undoes the last applied batch); nothing changes
on disk until "Apply Fixes…" is confirmed. Fixes are applied as journalled moves
(``core.doctor.fixes``), the folder is scanned again (``folderChanged``: the data page shows the new
counts) and the report on the plan (``plan.doctor``, read by the results page) follows the moves.
Applying and undoing live in gui/wizard/doctor_actions.py (``FixActions``, a mixin of ``DoctorPage``).
"""

from __future__ import annotations

import html
import logging

from PySide6.QtCore import Qt, QThreadPool, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from core.doctor.journal import journal_path
from core.text import plural
from gui.engine_worker import error_text
from gui.style import SPACING, state_color
from gui.widgets.doctor_map import MapPair
from gui.wizard.doctor_actions import FixActions
from gui.wizard.doctor_findings import FindingsTabs, MarkBar, fill_model_combo, open_file
from gui.wizard.doctor_pending import (
    PendingFixes,
    class_folder,
    kind_text,
    map_title,
    stage_text,
    summary_text,
)
from gui.wizard.doctor_worker import DoctorTask, examine, second_map
from gui.wizard.plan import TrainingPlan

log = logging.getLogger(__name__)



class DoctorPage(FixActions, QWizardPage):
    folderChanged = Signal()  # fixes were applied or undone; plan.report is the new scan

    def __init__(self, plan: TrainingPlan, pool: QThreadPool, loader, parent=None) -> None:
        super().__init__(parent)
        self.plan = plan
        self.pool = pool
        self.loader = loader
        self.pending = PendingFixes()
        self.selection: list[str] = []
        self._task: DoctorTask | None = None
        self._task_kind = ""  # "examine", "compare", "apply" or "undo" while a task runs
        self._examined = None  # (scan report, excluded classes) the doctor's report belongs to
        self._examining = None  # (scan report, excluded classes) of the examination running now
        self._before_apply: list = []  # the doctor's report before each batch this page applied
        self.setTitle("The Doctor: the folder through a network's eyes")
        self.setSubTitle("Optional. Likely label errors, near-duplicates and outliers; nothing changes on disk "
                         "until you apply fixes.")
        self._build()
        self._shortcuts()
        self._set_busy("")

    # -- layout -----------------------------------------------------------------------

    def _build(self) -> None:
        self.model_combo = QComboBox(self)
        self.model_combo.setObjectName("doctorModel")
        self.model_combo.setToolTip("The network whose embeddings place the images (a pretrained or saved model "
                                    "sees far more than random weights)")
        self.examine_button = QPushButton("Examine", self)
        self.examine_button.clicked.connect(self.start_examine)
        self.progress = QProgressBar(self)
        self.progress.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.cancel)
        self.status = QLabel(self)
        self.status.setObjectName("doctorStatus")
        top = QHBoxLayout()
        top.addWidget(QLabel("Look through:", self))
        top.addWidget(self.model_combo)
        top.addWidget(self.examine_button)
        top.addWidget(self.progress)
        top.addWidget(self.cancel_button)
        top.addWidget(self.status, 1)
        self.note = QLabel(self)
        self.note.setObjectName("doctorSourceNote")
        self.note.setWordWrap(True)
        self.note.setTextFormat(Qt.TextFormat.RichText)
        self.findings = FindingsTabs(self.loader, self)
        self.findings.selectionChanged.connect(self._on_rows_selected)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(self._map_box())
        split.addWidget(self.findings)
        split.setStretchFactor(0, 3)  # the map gets the room a wide window has; the list keeps its minimum
        split.setStretchFactor(1, 2)
        split.setSizes([3000, 2000])
        split.setChildrenCollapsible(False)
        self.split = split
        layout = QVBoxLayout(self)
        layout.setSpacing(SPACING)
        layout.addLayout(top)
        layout.addWidget(self.note)
        layout.addWidget(split, 1)
        self.mark_bar = MarkBar(self)
        self.mark_bar.move_button.clicked.connect(self.move_selection)
        self.mark_bar.ignore_button.clicked.connect(lambda: self.mark_selection("ignore"))
        self.mark_bar.keep_button.clicked.connect(lambda: self.mark_selection("keep"))
        self.mark_bar.unmark_button.clicked.connect(self.unmark_selection)
        self.move_class = self.mark_bar.move_class
        layout.addWidget(self.mark_bar)
        layout.addLayout(self._apply_row())

    def _map_box(self) -> QWidget:
        box = QWidget(self)
        self.compare_combo = QComboBox(box)
        self.compare_combo.setObjectName("doctorCompareModel")
        for combo, letters in ((self.model_combo, 24), (self.compare_combo, 10)):  # never widen the page
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(letters)
        self.compare_button = QPushButton("Compare", box)
        self.compare_button.setToolTip("Draw the same folder as another network sees it, beside this map")
        self.compare_button.clicked.connect(self.start_compare)
        self.hide_compare = QPushButton("Hide", box)
        self.hide_compare.clicked.connect(self.close_compare)
        self.hide_compare.hide()
        row = QHBoxLayout()
        row.addWidget(QLabel("Compare with:", box))
        row.addWidget(self.compare_combo)
        row.addWidget(self.compare_button)
        row.addWidget(self.hide_compare)
        row.addStretch(1)
        self.maps = MapPair(box)
        self.map = self.maps.left
        self.maps.set_thumbnail_provider(self.loader)
        self.maps.selectionChanged.connect(self._on_map_selected)
        self.maps.openRequested.connect(open_file)
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.maps, 1)
        return box

    def _apply_row(self) -> QHBoxLayout:
        self.message = QLabel(self)
        self.message.setObjectName("doctorMessage")
        self.message.setWordWrap(True)
        self.undo_button = QPushButton("Undo Last Fixes", self)
        self.undo_button.setToolTip("Move the images of the last applied batch back where they were")
        self.undo_button.clicked.connect(self.undo_last_fixes)
        self.apply_button = QPushButton("Apply Fixes…", self)
        self.apply_button.setObjectName("applyFixes")
        self.apply_button.clicked.connect(self.apply_pending)
        row = QHBoxLayout()
        row.addWidget(self.message, 1)
        row.addWidget(self.undo_button)
        row.addWidget(self.apply_button)
        return row

    def _shortcuts(self) -> None:
        for key, slot in (("M", self.move_selection), ("I", lambda: self.mark_selection("ignore")),
                          ("K", lambda: self.mark_selection("keep")), (QKeySequence.StandardKey.Undo, self.take_back),
                          (QKeySequence.StandardKey.Delete, self.unmark_selection)):
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)

    # -- page life --------------------------------------------------------------------

    def initializePage(self) -> None:  # noqa: N802 - Qt name
        try:
            self._initialize()
        except Exception as exc:  # noqa: BLE001 - an exception out of a Qt override would end the app
            log.exception("opening the doctor page failed")
            self._say(f"The doctor could not start: {error_text(exc)}", "error")

    def _initialize(self) -> None:
        if self.model_combo.count() == 0:
            self._fill_models()
        self._fill_classes()
        self._update_undo()
        if self.plan.doctor is None or not self._is_current(self._examined):
            self.pending.clear()
            self.start_examine()
        else:
            self._show_report()

    def cleanupPage(self) -> None:  # noqa: N802 - Back pressed
        self.cancel()

    def validatePage(self) -> bool:  # noqa: N802 - Next: an examination still running is abandoned
        if self._task_kind in ("examine", "compare"):
            self.cancel()
        return True

    def _data_key(self) -> tuple:
        """What an examination looked at: the scan and the classes left out."""
        return self.plan.report, frozenset(self.plan.excluded)

    def _is_current(self, key) -> bool:
        return key is not None and key[0] is self.plan.report and key[1] == frozenset(self.plan.excluded)

    @property
    def busy(self) -> bool:
        """An examination, a second map, or applying/undoing fixes is running."""
        return bool(self._task_kind)

    def isComplete(self) -> bool:  # noqa: N802 - not while files are being moved
        return self._task_kind not in ("apply", "undo")

    def shutdown(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def choose_model(self, name: str | None) -> bool:
        """Look through ``name`` (None: the doctor's own choice) from the next examination on."""
        if self.model_combo.count() == 0:
            self._fill_models()
        index = 0 if name is None else self.model_combo.findData(name)
        if index >= 0:
            self.model_combo.setCurrentIndex(index)
        return index >= 0

    def _fill_models(self) -> None:
        self.model_combo.addItem("Automatic (the best network on this machine)", None)
        self.model_combo.insertSeparator(1)
        fill_model_combo(self.model_combo)
        fill_model_combo(self.compare_combo)

    def _fill_classes(self) -> None:
        current = self.move_class.currentText()
        self.move_class.clear()
        self.move_class.addItems(list(self.plan.report.classes) if self.plan.report is not None else [])
        if current:
            self.move_class.setCurrentText(current)

    # -- tasks --------------------------------------------------------------------------

    def _run(self, kind: str, fn, *args) -> DoctorTask:
        self.cancel()
        task = DoctorTask(fn, *args, parent=self)
        task.progressed.connect(self._on_progress)
        task.returned.connect(self._on_returned)
        task.errored.connect(self._on_errored)
        task.finished.connect(self._on_finished)
        self._task = task
        self._set_busy(kind)
        task.start(self.pool)
        return task

    def cancel(self) -> None:
        """Stop an examination or a second map (applying fixes runs to its end)."""
        if self._task is not None and self._task_kind in ("examine", "compare"):
            self._task.cancel()
            self._task = None  # its late signals are ignored
            self.status.setText("Cancelled.")
            if self.plan.doctor is None:
                self.map.set_empty_text("No map: the examination was cancelled. Press Examine to start again.")
            self._set_busy("")

    def start_examine(self) -> DoctorTask | None:
        if self.plan.report is None:
            return None
        scan = self.plan.report.without_classes(self.plan.excluded)
        self._examining = self._data_key()
        if self.plan.doctor is None:
            self.map.set_empty_text("Computing the map…")
        self.status.setText("Starting…")
        return self._run("examine", examine, self.plan.folder, scan, self.model_combo.currentData(),
                         self.plan.device, self.plan.val_fraction)

    def start_compare(self) -> DoctorTask | None:
        if self.plan.report is None or self._task_kind:
            return None
        scan = self.plan.report.without_classes(self.plan.excluded)
        self.status.setText("Starting the second map…")
        return self._run("compare", second_map, scan, self.compare_combo.currentData(), self.plan.device,
                         self.plan.val_fraction)

    def close_compare(self) -> None:
        self.maps.clear_right()
        self.hide_compare.hide()

    def _on_progress(self, stage: str, done: int, total: int) -> None:
        if self.sender() is not self._task:
            return
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(min(done, max(1, total)))
        words = stage_text(stage)
        self.status.setText(f"{words}… {done}/{total}" if total > 1 else f"{words}…")

    def _on_returned(self, result) -> None:
        if self.sender() is not self._task:
            return
        {"examine": self._on_examined, "compare": self._on_compared, "apply": self._on_applied,
         "undo": self._on_undone}[self._task_kind](result)

    def _on_errored(self, message: str) -> None:
        if self.sender() is self._task:
            what = {"apply": "Applying the fixes", "undo": "Undoing"}.get(self._task_kind, "The examination")
            self._say(f"{what} failed: {message}", "error")
            if self._task_kind == "examine" and self.plan.doctor is None:
                self.map.set_empty_text("No map: the examination failed (see below).")
            self.status.setText("Failed.")

    def _on_finished(self, outcome: str) -> None:
        if self.sender() is not self._task:
            return
        if outcome == "cancelled":
            self.status.setText("Cancelled.")
        self._task = None
        self._set_busy("")

    def _set_busy(self, kind: str) -> None:
        self._task_kind = kind
        busy = bool(kind)
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(kind in ("examine", "compare"))
        if not busy:
            self.progress.reset()
        for widget in (self.examine_button, self.compare_button, self.model_combo, self.compare_combo):
            widget.setEnabled(not busy)
        self.examine_button.setText("Examine Again" if self.plan.doctor is not None else "Examine")
        self._update_actions()
        self.completeChanged.emit()

    # -- results ----------------------------------------------------------------------------

    def _on_examined(self, report) -> None:
        self.plan.doctor = report
        self._examined = self._examining
        self._before_apply.clear()
        self.close_compare()
        self._show_report()

    def _on_compared(self, second) -> None:
        source = second.source
        self.maps.set_right(second.points, self.plan.doctor.classes if self.plan.doctor else self.plan.classes,
                            map_title(source))  # its note goes to the status line: the two maps keep one height
        self.hide_compare.show()
        meaning = " (random weights: its map means little)" if source.kind == "random" else ""
        self.status.setText(f"Beside it: {source.display_name}{meaning}.")
        self.status.setToolTip(source.note)

    def _show_report(self) -> None:
        report = self.plan.doctor
        source = report.source
        self.maps.set_left(report.points, report.classes, map_title(source))  # the note is above, in full width
        self.maps.highlight([i.path for i in report.label_issues], "likely label error")
        self.findings.set_report(report, self.pending)
        self.selection = []
        self._update_actions()
        from_cache = report.cached and not report.embed_seconds
        self.status.setToolTip("")
        self.status.setText(f"Done in {report.seconds:.0f} s" + (", embeddings from the cache." if from_cache else "."))
        self.note.setText(self._note_html(report))

    def _note_html(self, report) -> str:
        source = report.source
        kind = kind_text(source.kind)
        text = f"Seen through <b>{html.escape(source.display_name)}</b> ({kind}): {html.escape(summary_text(report))}"
        if source.kind == "random":
            warn = state_color("warning", self.palette()).name()
            text += f"<br><span style='color:{warn}'>⚠ Random weights:</span> {html.escape(source.note)}"
        elif source.note:
            text += f" {html.escape(source.note)}"
        return text

    # -- marking ----------------------------------------------------------------------------

    def _on_rows_selected(self, paths: list[str]) -> None:
        self.selection = paths
        self.maps.select(paths, notify=False)
        issue = next((i for i in (self.plan.doctor.label_issues if self.plan.doctor else [])
                      if len(paths) == 1 and i.path == paths[0]), None)
        if issue is not None:
            self.move_class.setCurrentText(issue.suggested)  # the doctor's suggestion, ready to accept with M
        self._update_actions()

    def _on_map_selected(self, paths: list[str]) -> None:
        self.selection = list(paths)
        self.findings.clear_selection()
        self._update_actions()

    def move_selection(self) -> int:
        return self.mark_selection("move", self.move_class.currentText())

    def mark_selection(self, action: str, to_class: str = "") -> int:
        if not self.selection or self._task_kind in ("apply", "undo") or (action == "move" and not to_class):
            return 0
        changed = self.pending.mark(self.selection, action, to_class, class_of=class_folder)
        self._pending_changed()
        return changed

    def unmark_selection(self) -> int:
        if self._task_kind in ("apply", "undo"):
            return 0
        removed = self.pending.remove(self.selection)
        self._pending_changed()
        return removed

    def take_back(self) -> None:
        """Ctrl+Z: take back the last mark; with no mark pending, undo the last applied batch."""
        if self.pending.take_back():
            self._pending_changed()
        elif not len(self.pending) and self.undo_button.isEnabled():
            self.undo_last_fixes()

    def _pending_changed(self) -> None:
        self.findings.set_pending(self.pending)
        self._update_actions()

    def _update_actions(self) -> None:
        self.mark_bar.update_for(self.selection, self.pending, enabled=self._task_kind not in ("apply", "undo"))
        n = len(self.pending)
        self.apply_button.setText(f"Apply {plural(n, 'Fix', 'Fixes')}…" if n else "Apply Fixes…")
        self.apply_button.setEnabled(n > 0 and not self._task_kind)
        self._update_undo()

    def _update_undo(self) -> None:
        journal = self.plan.folder and journal_path(self.plan.folder).is_file()  # undo_last says when all are undone
        self.undo_button.setEnabled(bool(journal) and not self._task_kind)

    def _say(self, text: str, kind: str | None) -> None:
        colour = state_color(kind, self.palette()).name() if kind else None
        self.message.setText(f"<span style='color:{colour}'>{html.escape(text)}</span>" if colour
                             else html.escape(text))
