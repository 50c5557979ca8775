"""Applying and undoing the doctor's fixes: the part of the doctor page (gui/wizard/page_doctor.py) that
moves files, split off from it.

``FixActions`` is a mixin of ``DoctorPage``: it works on the page's plan, pending marks, task runner
(``_run``), message line (``_say``) and report view (``_show_report``). Fixes are applied as journalled
moves (``core.doctor.fixes``) on the pool, after the person confirms; the folder is scanned again
(``folderChanged``) and the doctor's report follows the moves, or goes back to the one before the batch
when the batch is undone.
"""

from __future__ import annotations

from collections import Counter

from PySide6.QtWidgets import QMessageBox

from core.text import plural
from gui.wizard.doctor_pending import absolute, after_fixes, applied_text, confirm_text, moved_absolute, undone_text
from gui.wizard.doctor_worker import DoctorTask, apply_and_rescan, undo_and_rescan


class FixActions:
    """Apply Fixes…, Undo Last Fixes and what follows them on the page."""

    def confirm_apply(self, counts: Counter) -> bool:
        """Ask before files are moved (tests replace this method)."""
        answer = QMessageBox.question(
            self, "Apply fixes?", confirm_text(counts, self.plan.folder),
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes

    def apply_pending(self) -> DoctorTask | None:
        if not len(self.pending) or self._task_kind or not self.confirm_apply(self.pending.counts()):
            return None
        digests = {s.path: s.digest for s in self.plan.report.samples}
        fixes = self.pending.fixes(self.plan.folder, digests)
        self._say(f"Applying {plural(len(fixes), 'fix', 'fixes')}…", None)
        return self._run("apply", apply_and_rescan, self.plan.folder, fixes)

    def undo_last_fixes(self) -> DoctorTask | None:
        if self._task_kind:
            return None
        self._say("Undoing the last fixes…", None)
        return self._run("undo", undo_and_rescan, self.plan.folder)

    def _on_applied(self, outcome) -> None:
        batch, root = outcome.batch, self.plan.folder
        ignored = {absolute(root, p) for p in batch.ignored}
        kept = {absolute(root, p) for p in batch.kept}
        if self.plan.doctor is not None:
            self._before_apply.append(self.plan.doctor)
            self.plan.doctor = after_fixes(self.plan.doctor, moved_absolute(root, batch), ignored, kept)
        self.pending.clear()
        self._after_disk_change(outcome)
        self._say(applied_text(batch), "warning" if batch.skipped else "ok")

    def _on_undone(self, outcome) -> None:
        batch = outcome.batch
        if batch.empty:
            self._say(undone_text(batch), None)
            self._update_undo()
            return
        if self._before_apply and batch.undoes is not None:
            self.plan.doctor = self._before_apply.pop()
        elif self.plan.doctor is not None:
            self.plan.doctor = after_fixes(self.plan.doctor, moved_absolute(self.plan.folder, batch), set(), set())
        self._after_disk_change(outcome)
        self._say(undone_text(batch), "warning" if batch.skipped else "ok")

    def _after_disk_change(self, outcome) -> None:
        if outcome.report is not None:
            self.plan.report = outcome.report
            self.plan.excluded &= set(outcome.report.classes)
            self._examined = self._data_key()
        else:
            self._say(f"The folder could not be scanned again: {outcome.scan_error}", "error")
        self._fill_classes()
        if self.plan.doctor is not None:
            self._show_report()
        self.folderChanged.emit()
