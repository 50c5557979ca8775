"""File › Manage Saved Models…: your trained models and training runs with their sizes; trash or delete them.

The lists are read on a worker (``core.training.storage``: a bundle's ``meta.json``
and folder sizes; never on the GUI thread). "Move to Trash" uses the system trash
(``QFile.moveToTrash``) and needs no question, since it can be undone; "Delete…"
removes for good after a confirmation. ``changed`` tells the window to list
"My models" again.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QFile, Qt, QThreadPool, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.training.storage import delete_run, delete_saved_model, list_runs, list_saved_models
from gui.jobs import Job
from gui.style import SPACING, state_color
from gui.workers import error_text

MODEL_COLUMNS = ["Name", "Architecture", "Classes", "Val. accuracy", "Size", "Created"]
RUN_COLUMNS = ["Name", "Status", "Epochs", "Size", "Last change"]
RUN_STATUS = {"finished": "finished (record only)", "resumable": "can be resumed (checkpoint)",
              "empty": "empty", "not a folder": "not a folder"}


def _sizes(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return (f"{int(value)} byte{'s' * (int(value) != 1)}" if unit == "bytes" else f"{value:.1f} {unit}")
        value /= 1000
    return f"{value:.1f} GB"


def _listing() -> tuple[list, list]:
    return list_saved_models(), list_runs()


def _delete(kind: str, names: list[str]) -> int:
    remove = delete_saved_model if kind == "model" else delete_run
    return sum(remove(name) for name in names)


class SizeItem(QTableWidgetItem):
    """Sorts by bytes, shows "12.3 MB"."""

    def __init__(self, size: int) -> None:
        super().__init__(_sizes(size))
        self.size = size
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        return self.size < getattr(other, "size", 0)


class ManageModelsDialog(QDialog):
    changed = Signal()  # something was deleted: "My models" must be listed again
    loaded = Signal()  # the lists were (re)filled

    def __init__(self, parent: QWidget | None = None, pool: QThreadPool | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("manageModelsDialog")
        self.setWindowTitle("Saved Models and Training Runs")
        self.pool = pool or QThreadPool.globalInstance()
        self.models: list = []
        self.runs: list = []
        self._running = 0  # jobs in flight
        self._pending = ""  # what the running delete job deletes, for its message
        self.summary = QLabel("Reading your saved models…", self)
        self.summary.setWordWrap(True)
        self.models_label = QLabel("<b>Saved models</b>", self)
        self.models_table = _table(self, MODEL_COLUMNS, "savedModels")
        self.runs_label = QLabel("<b>Training runs</b>", self)
        self.runs_table = _table(self, RUN_COLUMNS, "trainingRuns")
        for table, other in ((self.models_table, self.runs_table), (self.runs_table, self.models_table)):
            table.itemSelectionChanged.connect(lambda t=table, o=other: self._selected(t, o))
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.setChildrenCollapsible(False)
        for label, table in ((self.models_label, self.models_table), (self.runs_label, self.runs_table)):
            box = QWidget(split)
            layout = QVBoxLayout(box)
            layout.setContentsMargins(0, 0, 0, 0)
            layout.addWidget(label)
            layout.addWidget(table, 1)
            split.addWidget(box)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        self.trash_button = QPushButton("Move to Trash", self)
        self.trash_button.setToolTip("Move the selected folders to the system trash (you can restore them from there)")
        self.trash_button.clicked.connect(self.trash_selected)
        self.delete_button = QPushButton("Delete…", self)
        self.delete_button.setToolTip("Delete the selected folders for good, after asking")
        self.delete_button.clicked.connect(self.delete_selected)
        self.refresh_button = QPushButton("Refresh", self)
        self.refresh_button.clicked.connect(self.refresh)
        for button in (self.trash_button, self.delete_button):
            buttons.addButton(button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.refresh_button, QDialogButtonBox.ButtonRole.ResetRole)
        layout = QVBoxLayout(self)
        layout.setSpacing(SPACING)
        layout.addWidget(self.summary)
        layout.addWidget(split, 1)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.resize(760, 520)
        self._update_buttons()

    # -- listing ------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._running > 0

    def _start(self, job: Job, returned) -> Job:
        self._running += 1
        self._update_buttons()
        # a job counts as done once its result (or error) is handled here, before the handler's own signals
        # (``loaded``, ``changed``) reach anyone: whoever reacts to them finds the buttons already enabled
        # (bound methods, so they run on the GUI thread, in the order connected)
        job.returned.connect(self._job_done)
        job.returned.connect(returned)
        job.errored.connect(self._job_done)
        job.errored.connect(self._on_failed)
        return job.start(self.pool)

    def _job_done(self, _result=None) -> None:
        self._running -= 1
        self._update_buttons()

    def refresh(self) -> Job:
        return self._start(Job(_listing, parent=self), self._on_listed)

    def _on_listed(self, listing: tuple[list, list]) -> None:
        self.models, self.runs = listing
        self._fill(self.models_table, [
            [m.name, m.architecture or "—", str(m.classes) if m.classes else "—",
             f"{100 * m.val_acc:.1f}%" if m.val_acc is not None else "—", m.size,
             m.created[:10] if not m.problem else "unusable"] for m in self.models],
            [m.problem for m in self.models])
        self._fill(self.runs_table, [
            [r.name, RUN_STATUS.get(r.status, r.status), str(r.epochs_done) if r.epochs_done is not None else "—",
             r.size, r.modified[:16].replace("T", " ")] for r in self.runs], [str(r.folder) for r in self.runs])
        model_bytes, run_bytes = sum(m.size for m in self.models), sum(r.size for r in self.runs)
        self.models_label.setText(f"<b>Saved models</b> — {len(self.models)}, {_sizes(model_bytes)}")
        self.runs_label.setText(f"<b>Training runs</b> — {len(self.runs)}, {_sizes(run_bytes)}")
        self.summary.setText(
            f"Your trained models and training runs use <b>{_sizes(model_bytes + run_bytes)}</b>. A run that can "
            "be resumed keeps its checkpoint (about three times the model's size); a finished run keeps only a "
            "small record, since its model is saved.")
        self.loaded.emit()

    def _fill(self, table: QTableWidget, rows: list[list], tips: list[str | None]) -> None:
        table.setSortingEnabled(False)
        table.setRowCount(len(rows))
        for r, (row, tip) in enumerate(zip(rows, tips)):
            for c, value in enumerate(row):
                item = SizeItem(value) if isinstance(value, int) else QTableWidgetItem(value)
                if tip:
                    item.setToolTip(tip)
                table.setItem(r, c, item)
        table.setSortingEnabled(True)

    # -- selection and deleting -----------------------------------------------------------------

    def _selected(self, table: QTableWidget, other: QTableWidget) -> None:
        if table.selectedItems():
            other.blockSignals(True)
            other.clearSelection()
            other.blockSignals(False)
        self._update_buttons()

    def selection(self) -> tuple[str, list]:
        """("model" or "run", the selected entries)."""
        for kind, table, entries in (("model", self.models_table, self.models), ("run", self.runs_table, self.runs)):
            names = {table.item(i.row(), 0).text() for i in table.selectionModel().selectedRows()}
            if names:
                return kind, [e for e in entries if e.name in names]
        return "", []

    def select(self, kind: str, names: list[str]) -> None:
        table = self.models_table if kind == "model" else self.runs_table
        table.clearSelection()
        mode = table.selectionMode()
        table.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        for row in range(table.rowCount()):
            if table.item(row, 0).text() in names:
                table.selectRow(row)
        table.setSelectionMode(mode)

    def _update_buttons(self) -> None:
        chosen = bool(self.selection()[1])
        self.trash_button.setEnabled(chosen and not self.busy)
        self.delete_button.setEnabled(chosen and not self.busy)
        self.refresh_button.setEnabled(not self.busy)

    def _describe(self, kind: str, entries: list) -> str:
        what = "saved model" if kind == "model" else "training run"
        names = ", ".join(f"“{e.name}”" for e in entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5
                                                                  else "")
        plural = "s" if len(entries) != 1 else ""
        return f"{len(entries)} {what}{plural} ({names}, {_sizes(sum(e.size for e in entries))})"

    def confirm_delete(self, text: str) -> bool:
        """Ask before deleting for good (tests replace this method)."""
        answer = QMessageBox.warning(self, "Delete for good?", f"Delete {text}? This cannot be undone.",
                                     QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                                     QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes

    def delete_selected(self) -> Job | None:
        kind, entries = self.selection()
        if not entries or self.busy:
            return None
        text = self._describe(kind, entries)
        resumable = [e.name for e in entries if getattr(e, "status", "") == "resumable"]
        if resumable:
            text += "; they can no longer be resumed" if len(resumable) > 1 else "; it can no longer be resumed"
        if not self.confirm_delete(text):
            return None
        self._pending = text
        self._say(f"Deleting {text}…", None)
        return self._start(Job(_delete, kind, [e.name for e in entries], parent=self), self._on_delete_returned)

    def _on_delete_returned(self, freed: int) -> None:
        self._on_deleted(f"Deleted {self._pending}: {_sizes(freed)} freed.")

    def trash_selected(self) -> bool:
        """Move the selection to the system trash; where there is none, offer deleting for good."""
        kind, entries = self.selection()
        if not entries or self.busy:
            return False
        moved, failed = [], []
        for entry in entries:
            (moved if QFile.moveToTrash(str(entry.folder)) else failed).append(entry)
        if moved:
            self._on_deleted(f"Moved {self._describe(kind, moved)} to the trash.")
        if failed:
            self.select(kind, [e.name for e in failed])
            self._say(f"Could not move {self._describe(kind, failed)} to the trash (this system may have none); "
                      "use Delete… to remove them for good.", "error")
        return not failed

    def _on_deleted(self, text: str) -> None:
        self._say(text, "ok")
        self.changed.emit()
        self.refresh()

    def _on_failed(self, exc) -> None:
        self._say(error_text(exc), "error")
        self.refresh()

    def _say(self, text: str, kind: str | None) -> None:
        colour = state_color(kind, self.palette()).name() if kind else None
        safe = html.escape(text)
        self.message.setText(f"<span style='color:{colour}'>{safe}</span>" if colour else safe)


def _table(parent: QWidget, headers: list[str], name: str) -> QTableWidget:
    table = QTableWidget(0, len(headers), parent)
    table.setObjectName(name)
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().hide()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
    table.setAlternatingRowColors(True)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    header.setSortIndicator(0, Qt.SortOrder.AscendingOrder)  # by name, A to Z, until the person sorts
    return table
