"""Page 2: the data check — the core scan report, class counts, problem files, classes to leave out.

The scan (``core.data.scan_folder``: every header and content hash) runs as a
``Job`` on the wizard's pool with a progress bar and Cancel; the page is
complete once a scan has finished and at least two classes are kept. "Examine with the Doctor…"
(``doctorRequested``) leads to the optional doctor page, with the time it should take
(``core.doctor.examine.estimate_seconds``); ``refresh()`` shows the plan's report again after the doctor
applied fixes to the folder.
"""

from __future__ import annotations

import html
import logging

from PySide6.QtCore import Qt, QThreadPool, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from core.data import TINY_PIXELS, scan_folder
from core.doctor.examine import estimate_seconds
from core.errors import Cancelled, StudioError
from core.text import noun, plural
from gui.jobs import Job
from gui.style import SPACING, state_color
from gui.wizard.charts import CountsChart
from gui.wizard.plan import TrainingPlan
from gui.wizard.thumbs import ThumbStrip
from gui.workers import error_text

log = logging.getLogger(__name__)

MAX_PROBLEM_THUMBS = 60


def _scan(folder: str, verify: bool, *, report, cancel):
    return scan_folder(folder, verify=verify, progress=report, cancel=cancel)


def problem_files(report) -> list[tuple[str, str, str]]:
    """(path, caption, tooltip) for unreadable files, duplicates and tiny images, worst first."""
    out = [(u["path"], "unreadable", f"{u['path']}\ncannot be read: {u['reason']}") for u in report.unreadable]
    for group in report.duplicates:
        out += [(p, "duplicate", f"{p}\nsame content as {group[0]} (used once)") for p in group[1:]]
    out += [(s.path, f"{s.width}×{s.height}", f"{s.path}\nsmaller than {TINY_PIXELS} pixels on a side")
            for s in report.samples if min(s.width, s.height) < TINY_PIXELS]
    return out[:MAX_PROBLEM_THUMBS]


def about_seconds(seconds: float) -> str:
    """A rounded time for a button: "about 20 s", "about 3 min"."""
    if seconds < 90:
        return f"about {max(1, round(seconds / 5) * 5 if seconds >= 10 else round(seconds))} s"
    return f"about {round(seconds / 60)} min"


class DataPage(QWizardPage):
    doctorRequested = Signal()  # "Examine with the Doctor…": the wizard goes to the doctor page

    def __init__(self, plan: TrainingPlan, pool: QThreadPool, loader, parent=None) -> None:
        super().__init__(parent)
        self.plan = plan
        self.pool = pool
        self._job: Job | None = None
        self._scanned_folder = ""
        self.setTitle("Check the data")
        self.setSubTitle("What the folder holds, what is wrong with it, and which classes to train on.")
        self.status = QLabel(self)
        self.progress = QProgressBar(self)
        self.progress.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.cancel_scan)
        self.rescan_button = QPushButton("Scan Again", self)
        self.rescan_button.clicked.connect(self.start_scan)
        self.verify = QCheckBox("Decode every image fully (slower; finds cut-off files)", self)
        top = QHBoxLayout()
        top.addWidget(self.status, 1)
        top.addWidget(self.progress)
        top.addWidget(self.cancel_button)
        top.addWidget(self.rescan_button)
        self.summary = QLabel(self)
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.chart = CountsChart(self)
        self.classes = QListWidget(self)
        self.classes.setObjectName("classChecklist")
        self.classes.itemChanged.connect(self._on_class_toggled)
        right = QWidget(self)
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(QLabel("Train on these classes:", right))
        right_layout.addWidget(self.classes, 1)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(self.chart)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)
        split.setSizes([3000, 1000])
        self.problems_label = QLabel("Problem files", self)
        self.problems = ThumbStrip(loader, self, icon=56)
        self.problems.setMaximumHeight(self.problems.minimumHeight())
        self.problems.setObjectName("problemFiles")
        self.doctor_button = QPushButton("Examine with the Doctor…", self)
        self.doctor_button.setObjectName("examineWithDoctor")
        self.doctor_button.setToolTip("Optional: see the folder through a network's eyes and find likely label "
                                      "errors, near-duplicates and outliers before training")
        self.doctor_button.clicked.connect(self.doctorRequested)
        doctor_row = QHBoxLayout()
        doctor_row.addWidget(self.problems_label, 1)
        doctor_row.addWidget(self.doctor_button)
        layout = QVBoxLayout(self)
        layout.setSpacing(SPACING)
        layout.addLayout(top)
        layout.addWidget(self.verify)
        layout.addWidget(self.summary)
        layout.addWidget(split, 1)
        layout.addLayout(doctor_row)
        layout.addWidget(self.problems)
        self._set_scanning(False)

    # -- scanning ---------------------------------------------------------------------

    @property
    def scanning(self) -> bool:
        return self._job is not None

    def initializePage(self) -> None:  # noqa: N802 - Qt name
        if self.plan.report is None or self._scanned_folder != self.plan.folder:
            self.start_scan()
        else:
            self._show_report()

    def cleanupPage(self) -> None:  # noqa: N802 - Back pressed
        self.cancel_scan()

    def start_scan(self) -> None:
        self.cancel_scan()
        self.plan.report = None
        self._clear()
        job = Job(_scan, self.plan.folder, self.verify.isChecked(), parent=self, reports=True, cancellable=True)
        job.progressed.connect(self._on_progress)
        job.returned.connect(self._on_scanned)
        job.errored.connect(self._on_failed)
        job.finished.connect(self._on_job_finished)
        self._job = job
        self._set_scanning(True)
        self.status.setText(f"Scanning {html.escape(self.plan.folder)}…")
        job.start(self.pool)

    def cancel_scan(self) -> None:
        if self._job is not None:
            self._job.cancel.set()
            self._job = None  # its late results are ignored
            self._set_scanning(False)
            self.status.setText("Scan cancelled.")

    def _on_progress(self, done, total) -> None:
        if self.sender() is self._job:
            self.progress.setRange(0, max(1, int(total or 0)))
            self.progress.setValue(int(done))

    def _on_scanned(self, report) -> None:
        if self.sender() is not self._job:
            return
        self.plan.report, self.plan.excluded = report, set()
        self._scanned_folder = self.plan.folder
        self._show_report()

    def _on_failed(self, exc) -> None:
        if self.sender() is not self._job:
            return
        self.status.setText("Scan cancelled." if isinstance(exc, Cancelled) else f"Scan failed: {error_text(exc)}")

    def _on_job_finished(self) -> None:
        if self.sender() is self._job:
            self._job = None
            self._set_scanning(False)

    def _set_scanning(self, scanning: bool) -> None:
        self.progress.setVisible(scanning)
        self.cancel_button.setVisible(scanning)
        self.rescan_button.setVisible(not scanning)
        self.verify.setEnabled(not scanning)
        self._update_doctor_button()
        if not scanning:
            self.progress.reset()
        self.completeChanged.emit()

    # -- the report -------------------------------------------------------------------

    def _clear(self) -> None:
        self.summary.clear()
        self.classes.clear()
        self.chart.set_counts({})
        self.problems.set_items([])

    def _show_report(self) -> None:
        report = self.plan.report
        self.status.setText(f"Scanned <b>{html.escape(report.root)}</b>")
        self.summary.setText(self._summary_html(report))
        self.chart.set_counts(report.counts, self.plan.excluded)
        self.classes.blockSignals(True)
        self.classes.clear()
        for name in report.classes:
            small = " — few images" if name in report.small_classes else ""
            item = QListWidgetItem(f"{name}  ({report.counts[name]}){small}")
            item.setData(Qt.ItemDataRole.UserRole, name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked if name in self.plan.excluded else Qt.CheckState.Checked)
            self.classes.addItem(item)
        self.classes.blockSignals(False)
        problems = problem_files(report)
        self.problems.set_items(problems)
        self.problems_label.setText(f"Problem files ({len(problems)})" if problems else "No problem files found.")
        self.problems.setVisible(bool(problems))
        self._update_doctor_button()
        self.completeChanged.emit()

    def refresh(self) -> None:
        """Show the plan's report again (the doctor moved or ignored images and scanned the folder again)."""
        if self.plan.report is not None and not self.scanning:
            self._scanned_folder = self.plan.folder
            self._show_report()

    def _update_doctor_button(self) -> None:
        ready = self.isComplete()
        self.doctor_button.setEnabled(ready)
        if not ready:
            self.doctor_button.setText("Examine with the Doctor…")
            return
        images = len(self.plan.report.without_classes(self.plan.excluded).samples)
        try:
            seconds = estimate_seconds(images, None, device=self.plan.device)
        except StudioError as exc:  # e.g. the doctor extra is missing: the doctor page says so
            log.info("no doctor estimate: %s", exc)
            self.doctor_button.setText("Examine with the Doctor…")
            return
        self.doctor_button.setText(f"Examine with the Doctor… ({about_seconds(seconds)})")

    def _summary_html(self, report) -> str:
        images = len(report.samples)
        layout = "its own train/val split" if report.layout == "split" else "one folder per class"
        classes = len(report.classes)
        lines = [f"<b>{images:,}</b> usable {noun(images, 'image')} in <b>{classes}</b> "
                 f"{noun(classes, 'class', 'classes')} ({layout}); {report.files:,} {noun(report.files, 'image file')} "
                 "looked at" + (f", {plural(report.other_files, 'other file')} ignored" if report.other_files else "")
                 + "."]
        if report.imbalance is not None and len(report.classes) > 1:
            lines[0] += f" Largest/smallest class: {report.imbalance:.1f}×."
        if report.tiny_share:
            lines[0] += f" Tiny images: {100 * report.tiny_share:.0f}%."
        warn = state_color("warning", self.palette()).name()
        for text in report.warnings:
            lines.append(f"<span style='color:{warn}'>⚠ {html.escape(text)}</span>")
        if not report.warnings:
            lines.append(f"<span style='color:{state_color('ok', self.palette()).name()}'>✓ No problems found.</span>")
        return "<br>".join(lines)

    def _on_class_toggled(self, item: QListWidgetItem) -> None:
        name = item.data(Qt.ItemDataRole.UserRole)
        if item.checkState() == Qt.CheckState.Checked:
            self.plan.excluded.discard(name)
        else:
            self.plan.excluded.add(name)
        self.chart.set_excluded(self.plan.excluded)
        self._update_doctor_button()
        self.completeChanged.emit()

    def set_class_included(self, name: str, included: bool) -> None:
        for row in range(self.classes.count()):
            item = self.classes.item(row)
            if item.data(Qt.ItemDataRole.UserRole) == name:
                item.setCheckState(Qt.CheckState.Checked if included else Qt.CheckState.Unchecked)

    def isComplete(self) -> bool:  # noqa: N802
        return not self.scanning and self.plan.report is not None and len(self.plan.classes) >= 2

    def shutdown(self) -> None:
        if self._job is not None:
            self._job.cancel.set()
            self._job = None

