"""Page 6 of a bake-off: the leaderboard, per-class heat table, confusion matrices and the disagreements.

(Interface placeholder: filled in by the bake-off results work.) It reads ``plan.bakeoff`` (a
``core.bakeoff.plan.BakeoffPlan``) and ``plan.leaderboard`` (a ``core.bakeoff.leaderboard.Leaderboard``)
when shown.

Out: ``saved(name)`` when a model of the bake-off is kept as a saved model, ``useRequested(name)``
for "Use It Now".
"""

from __future__ import annotations

from PySide6.QtCore import QThreadPool, Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWizardPage

from gui.wizard.plan import TrainingPlan


class BakeoffResultsPage(QWizardPage):
    saved = Signal(str)
    useRequested = Signal(str)

    def __init__(self, plan: TrainingPlan, pool: QThreadPool, loader, parent=None, *, engine_worker=None) -> None:
        super().__init__(parent)
        self.plan = plan
        self.pool = pool
        self.loader = loader
        self.engine_worker = engine_worker
        self.setTitle("Bake-off results")
        self.summary = QLabel(self)
        QVBoxLayout(self).addWidget(self.summary)

    def initializePage(self) -> None:  # noqa: N802 - Qt name
        board = getattr(self.plan, "leaderboard", None)
        self.summary.setText("\n".join(board.text_lines()) if board is not None else "")
