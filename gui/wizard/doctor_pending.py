"""The doctor page's plain-data side (no Qt): the fixes a person has marked but not yet applied, and the
doctor's report brought up to date after fixes were applied.

``PendingFixes`` holds one mark per image (move to a class, ignore, keep; a later mark replaces an
earlier one), a step history for "take back the last mark", and turns the marks into
``core.doctor.fixes.Fix`` records (paths relative to the folder, the scan's content digest).
``after_fixes`` returns the report as it stands once moves, ignores and keeps are on disk: moved
images carry their new path and class, ignored ones leave the map and the lists, reviewed ones
(moved or kept) leave the lists of suggestions.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from core.doctor.fixes import AppliedBatch, Fix
from core.doctor.report import DoctorReport
from core.text import noun, plural

ACTIONS = ("move", "ignore", "keep")
STAGES = {"scanning": "Scanning the folder", "embedding": "Computing embeddings",
          "analysing": "Drawing the map and looking for problems", "apply": "Applying fixes",
          "undo": "Moving images back", "scan": "Scanning the folder again"}
KIND_TEXT = {"pretrained": "pretrained on ImageNet", "saved": "your saved model", "random": "random weights"}
KIND_SHORT = {"pretrained": "ImageNet weights", "saved": "saved model", "random": "random weights"}


@dataclass(frozen=True)
class Mark:
    path: str  # absolute, as in the scan
    action: str  # "move" | "ignore" | "keep"
    to_class: str = ""  # for "move"


class PendingFixes:
    """Marks by path, in the order they were made."""

    def __init__(self) -> None:
        self._marks: dict[str, Mark] = {}
        self._steps: list[dict[str, Mark | None]] = []  # per mark() call: each path's mark before it

    def __len__(self) -> int:
        return len(self._marks)

    def __contains__(self, path: str) -> bool:
        return path in self._marks

    def get(self, path: str) -> Mark | None:
        return self._marks.get(path)

    def marks(self) -> list[Mark]:
        return list(self._marks.values())

    def mark(self, paths: list[str], action: str, to_class: str = "", *, class_of=None) -> int:
        """Mark ``paths``; a move to the class an image is already in is left out. Returns how many changed."""
        if action not in ACTIONS:
            raise ValueError(f"unknown fix action {action!r}")
        step: dict[str, Mark | None] = {}
        for path in dict.fromkeys(paths):
            if action == "move" and class_of is not None and class_of(path) == to_class:
                continue
            new = Mark(path, action, to_class if action == "move" else "")
            if self._marks.get(path) == new:
                continue
            step[path] = self._marks.get(path)
            self._marks.pop(path, None)  # a changed mark moves to the end
            self._marks[path] = new
        if step:
            self._steps.append(step)
        return len(step)

    def remove(self, paths: list[str]) -> int:
        step = {p: self._marks.pop(p) for p in paths if p in self._marks}
        if step:
            self._steps.append(step)
        return len(step)

    def take_back(self) -> bool:
        """Undo the last ``mark``/``remove``; False when there is nothing to take back."""
        if not self._steps:
            return False
        for path, before in self._steps.pop().items():
            self._marks.pop(path, None)
            if before is not None:
                self._marks[path] = before
        return True

    def clear(self) -> None:
        self._marks.clear()
        self._steps.clear()

    def counts(self) -> Counter:
        return Counter(m.action for m in self._marks.values())

    def fixes(self, folder: str, digests: dict[str, str]) -> list[Fix]:
        """The marks as ``Fix`` records for ``apply_fixes`` (paths relative to ``folder``, POSIX)."""
        root = Path(folder)
        return [Fix(path=Path(m.path).relative_to(root).as_posix(), action=m.action, to_class=m.to_class or None,
                    digest=digests.get(m.path)) for m in self._marks.values()]


def class_folder(path: str) -> str:
    """The class an image is filed under: its folder's name."""
    return os.path.basename(os.path.dirname(path))


def after_fixes(report: DoctorReport, moved: dict[str, str], ignored: set[str], kept: set[str]) -> DoctorReport:
    """``report`` once ``moved`` (old → new absolute path), ``ignored`` and ``kept`` are applied."""
    index = {name: i for i, name in enumerate(report.classes)}
    reviewed = set(moved) | ignored | kept

    def point(p):
        new = moved.get(p.path)
        return p if new is None else replace(p, path=new, label=index.get(class_folder(new), p.label))

    return replace(
        report,
        points=[point(p) for p in report.points if p.path not in ignored],
        label_issues=[i for i in report.label_issues if i.path not in reviewed],
        duplicates=[g for g in report.duplicates if reviewed.isdisjoint(g.paths)],
        outliers=[o for o in report.outliers if o.path not in reviewed])


def absolute(root: str, relative: str) -> str:
    """A journal's relative POSIX path as an absolute path under ``root``."""
    return os.path.join(root, *relative.split("/"))


def stage_text(stage: str) -> str:
    """A ``run_doctor`` progress stage ("embedding", ...) in words."""
    return STAGES.get(stage, stage.replace("_", " ").capitalize())


def kind_text(kind: str) -> str:
    return KIND_TEXT.get(kind, kind)


def map_title(source) -> str:
    return f"{source.display_name} · {KIND_SHORT.get(source.kind, source.kind)}"


def summary_text(report: DoctorReport) -> str:
    """One line: how many images were looked at, and what was found."""
    across = sum(1 for d in report.duplicates if d.across_split)
    dupes = plural(len(report.duplicates), "near-duplicate group")
    return (f"{plural(len(report.points), 'image')}, "
            f"{plural(len(report.label_issues), 'likely label error')}, {dupes}"
            + (f" ({across} across the split)" if across else "")
            + f", {plural(len(report.outliers), 'outlier')}.")


def confirm_text(counts, folder: str) -> str:
    """The question asked before fixes are applied: how many moves, ignores and keeps, and that nothing is lost."""
    parts = [f"{plural(counts['move'], 'image')} moved to another class folder" if counts["move"] else "",
             f"{plural(counts['ignore'], 'image')} ignored (left in place, left out of training)"
             if counts["ignore"] else "",
             f"{plural(counts['keep'], 'image')} kept as {noun(counts['keep'], 'it is', 'they are')}"
             if counts["keep"] else ""]
    return (f"Apply {plural(sum(counts.values()), 'fix', 'fixes')} to {folder}?\n\n"
            + "\n".join(f"• {p}" for p in parts if p)
            + "\n\nNothing is deleted; every move is recorded in the folder's journal, and Undo Last Fixes "
              "moves the whole batch back.")


# -- reading an AppliedBatch (core.doctor.fixes) -------------------------------------------------------


def moved_absolute(root: str, batch: AppliedBatch) -> dict[str, str]:
    """Old → new absolute paths of the images a batch moved."""
    return {absolute(root, old): absolute(root, new) for old, new in batch.moved}


def _skipped_text(batch: AppliedBatch) -> str:
    if not batch.skipped:
        return ""
    shown = "; ".join(f"{os.path.basename(p)} {reason}" for p, reason in batch.skipped[:3])
    more = f" and {len(batch.skipped) - 3} more" if len(batch.skipped) > 3 else ""
    return f" {plural(len(batch.skipped), 'fix', 'fixes')} skipped: {shown}{more}."


def applied_text(batch: AppliedBatch) -> str:
    """What an applied batch did, for the page's message line."""
    done = [plural(len(batch.moved), "image") + " moved"]
    if batch.ignored:
        done.append(plural(len(batch.ignored), "image") + " ignored")
    if batch.kept:
        done.append(plural(len(batch.kept), "image") + " kept")
    return "Done: " + ", ".join(done) + "." + _skipped_text(batch)


def undone_text(batch: AppliedBatch) -> str:
    if batch.empty:
        return "Nothing to undo."
    text = f"Undone: {plural(len(batch.moved), 'image')} moved back"
    if batch.unignored:
        text += f", {plural(len(batch.unignored), 'image')} no longer ignored"
    return text + "." + _skipped_text(batch)
