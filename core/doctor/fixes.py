"""Applying the user's reviewed fixes to a training folder, with nothing lost, and undoing them.

A fix (:class:`core.doctor.fixlist.Fix`, read from the user's reviewed file by ``read_fixes``) says what to
do with one image: ``move`` it to another class folder, mark it ``ignore`` (training leaves it out:
:mod:`core.doctor.marks`), or ``keep`` it as it is.

:func:`apply_fixes` never deletes and never overwrites: a move is one ``os.replace`` within the folder, to
the top level of the target class folder (inside the same ``train/``/``val/`` part when the folder has
them), under a free name (``a.png``, else ``a-1.png``, ...). A file that is gone or changed since the scan is
skipped with the reason. Every batch is recorded in the journal (:mod:`core.doctor.journal`) before and as
it happens, so after a crash :func:`recover` can tell where each file is; :func:`undo_last` reverts the
most recent batch that changed something and is not undone yet. Undo works as a stack: a second call
reverts the batch before, and when every batch is undone it returns an empty batch ("nothing to undo").
There is no redo: apply the fixes again.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.data import ProgressFn, file_digest, split_layout
from core.doctor.fixlist import Fix, fixes_json, path_problem, read_fixes
from core.doctor.journal import JournalBatch, JournalWriter, fsync_folder, read_journal
from core.doctor.marks import ignored_files, state_dir, write_ignored
from core.errors import StudioError

__all__ = ["Fix", "AppliedBatch", "PendingBatch", "read_fixes", "fixes_json", "apply_fixes", "undo_last", "recover",
           "pending_batch", "journal_batches"]

_INTERRUPTED = "not reached: the batch was interrupted"


@dataclass
class AppliedBatch:
    """What one batch did; paths relative to the folder. ``batch`` is empty when nothing was done."""

    batch: str = ""
    kind: str = "apply"  # "apply" | "undo"
    undoes: str | None = None  # the apply batch an undo reverted
    moved: list[tuple[str, str]] = field(default_factory=list)  # (old place, new place)
    ignored: list[str] = field(default_factory=list)  # ignore marks added
    unignored: list[str] = field(default_factory=list)  # ignore marks taken away (undo)
    kept: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    interrupted: bool = False  # the batch was cut short by a crash (closed by recover)
    recovered: str | None = None  # an interrupted batch recover() closed before this one started

    @property
    def empty(self) -> bool:
        return not self.batch

    def to_json(self) -> dict[str, Any]:
        return {"batch": self.batch, "kind": self.kind, "undoes": self.undoes, "interrupted": self.interrupted,
                "recovered": self.recovered, "moved": [{"path": a, "dest": b} for a, b in self.moved],
                "ignored": self.ignored, "unignored": self.unignored, "kept": self.kept,
                "skipped": [{"path": p, "reason": r} for p, r in self.skipped]}


@dataclass
class PendingBatch:
    """A batch the journal shows begun and never ended (a crash), and where each of its moves is now."""

    batch: JournalBatch
    places: list[tuple[str, str, str]]  # (old place, new place, "old"|"new"|"both"|"neither") per unrecorded move


# -- where things are ------------------------------------------------------------------------------


def _root(folder: str | os.PathLike[str]) -> Path:
    if not os.path.isdir(folder):
        raise StudioError(f"{folder} is not a folder" if os.path.exists(folder) else f"{folder}: no such folder")
    return Path(os.path.realpath(folder))


def _no_links_on_the_way(root: Path, rel: str) -> bool:
    """True when every existing folder between ``root`` and ``rel`` is a real folder inside ``root``."""
    parent = (root / rel).parent
    while not os.path.lexists(parent) and parent != root:
        parent = parent.parent
    return os.path.realpath(parent) == str(parent)


def _check_file(root: Path, rel: str, expected: str | None, changed: str) -> tuple[str | None, str | None]:
    """(why the file ``rel`` cannot be acted on: gone, not a regular file, not the ``expected`` content; or None,
    its content hash)."""
    if path_problem(rel) is not None or not _no_links_on_the_way(root, rel):
        return "is not a path inside the folder", None
    try:
        info = os.lstat(root / rel)
        if stat.S_ISLNK(info.st_mode) or not stat.S_ISREG(info.st_mode):
            return "is a link or not a regular file (not moved)", None
        digest = file_digest(root / rel)
    except FileNotFoundError:
        return "no longer there", None
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})", None
    return (changed, None) if expected is not None and digest != expected else (None, digest)


def _class_place(root: Path, rel: str, subsets: frozenset[str]) -> tuple[str, str] | None:
    """(the folder a class lives in, relative: "" or "train/"; the class) for an image path, or None."""
    parts = rel.split("/")
    if subsets:
        return (parts[0] + "/", parts[1]) if len(parts) >= 3 and parts[0] in subsets else None
    return ("", parts[0]) if len(parts) >= 2 else None


def _free_name(root: Path, folder: str, name: str, taken: set[str], ignored: frozenset[str]) -> str | None:
    """``folder/name``, or ``folder/stem-N.ext``: the first that does not exist, is not planned, not ignored."""
    stem, dot, ext = name.rpartition(".")
    if not stem:
        stem, dot, ext = name, "", ""
    for n in range(10_000):
        rel = f"{folder}/{name if n == 0 else f'{stem}-{n}{dot}{ext}'}"
        if rel.casefold() not in taken and rel not in ignored and not os.path.lexists(root / rel):
            taken.add(rel.casefold())
            return rel
    return None


def _nearest_existing(path: Path) -> Path:
    while not os.path.lexists(path):
        path = path.parent
    return path


def _check_writable(folders: Iterable[Path]) -> None:
    """Create and remove a file in each folder; StudioError before anything is changed when one refuses."""
    for folder in sorted(set(folders)):
        try:
            fd, name = tempfile.mkstemp(prefix=".convnet-studio-probe-", dir=folder)
            os.close(fd)
            os.unlink(name)
        except OSError as exc:
            raise StudioError(f"cannot change {folder}: {exc.strerror or exc}; nothing was changed") from None


# -- apply -----------------------------------------------------------------------------------------


@dataclass
class _Plan:
    kind: str
    steps: list[dict[str, Any]]
    undoes: str | None = None
    marks: list[str] = field(default_factory=list)  # ignore marks to add (apply) or take away (undo)
    new_folders: list[str] = field(default_factory=list)
    remove_folders: list[str] = field(default_factory=list)

    @property
    def moves(self) -> list[tuple[str, str]]:
        return [(s["path"], s["dest"]) for s in self.steps if s["action"] == "move" and not s.get("skip")]


def _plan_step(root: Path, fix: Fix, subsets: frozenset[str], ignored: frozenset[str], taken: set[str],
               plan: _Plan) -> dict[str, Any]:
    step: dict[str, Any] = fix.to_json()
    if fix.action == "keep":
        return step
    place = _class_place(root, fix.path, subsets)
    reason = "is not inside a class folder" if place is None else None
    if place is not None and fix.action == "move":
        if place[1] == fix.to_class:
            reason = f"is already in {fix.to_class}"
        elif fix.path in ignored:
            reason = 'is marked "ignore"'
    if reason is None:
        reason, digest = _check_file(root, fix.path, fix.digest, "changed since the scan")
        step["digest"] = digest or fix.digest  # known for every step carried out: undo checks it
    if reason is None and fix.action == "move":
        assert place is not None and fix.to_class is not None
        reason, dest = _destination(root, f"{place[0]}{fix.to_class}", fix.path.rsplit("/", 1)[-1], taken, ignored,
                                    plan)
        if dest is not None:
            step["dest"] = dest
    if reason is None and fix.action == "ignore":
        if fix.path in ignored:
            step["already"] = True
        else:
            plan.marks.append(fix.path)
    if reason is not None:
        step["skip"] = reason
    return step


def _destination(root: Path, folder: str, name: str, taken: set[str], ignored: frozenset[str],
                 plan: _Plan) -> tuple[str | None, str | None]:
    """(why an image named ``name`` cannot go into the class folder ``folder``, or None; its new place)."""
    if (root / folder).is_symlink() or (os.path.lexists(root / folder) and not (root / folder).is_dir()):
        return f"{folder} is not a class folder", None
    dest = _free_name(root, folder, name, taken, ignored)
    if dest is None:
        return f"no free name in {folder}", None
    if not os.path.lexists(root / folder) and folder not in plan.new_folders:
        plan.new_folders.append(folder)
    return None, dest


def _plan_apply(root: Path, fixes: Sequence[Fix]) -> _Plan:
    layout = split_layout(root)
    subsets = frozenset(p.name for p in layout.values()) if layout else frozenset()
    ignored = ignored_files(root)
    plan = _Plan("apply", [])
    taken: set[str] = set()
    seen: set[str] = set()
    for fix in fixes:
        if fix.path in seen:
            raise StudioError(f"{fix.path} has more than one fix")
        seen.add(fix.path)
        plan.steps.append(_plan_step(root, fix, subsets, ignored, taken, plan))
    return plan


def _folders_touched(root: Path, plan: _Plan) -> list[Path]:
    folders = [_nearest_existing((root / p).parent) for move in plan.moves for p in move]
    if plan.marks:
        folders.append(_nearest_existing(state_dir(root)))
    return folders


def apply_fixes(folder: str | os.PathLike[str], fixes: Sequence[Fix], *,
                progress: ProgressFn | None = None) -> AppliedBatch:
    """Carry out ``fixes`` in ``folder`` as one journaled batch (module docstring); StudioError when the folder
    or its journal cannot be written, before anything is changed."""
    root = _root(folder)
    if not fixes:
        return AppliedBatch()
    with JournalWriter(root) as journal:
        recovered = _close_pending(journal, root)
        plan = _plan_apply(root, fixes)
        _check_writable(_folders_touched(root, plan))
        result = _execute(journal, root, plan, progress)
    result.recovered = recovered.batch if recovered else None
    return result


def _rename(source: Path, dest: Path) -> None:
    """One move (a test replaces this to stop a child process between two moves)."""
    os.replace(source, dest)


def _move(root: Path, rel: str, dest_rel: str) -> str | None:
    """Move ``rel`` to ``dest_rel`` (never over an existing file); the reason when it could not be done."""
    source, dest = root / rel, root / dest_rel
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(dest):
            return f"{dest_rel} appeared meanwhile; not replacing it"
        _rename(source, dest)
    except OSError as exc:
        return f"could not be moved ({exc.strerror or exc})"
    fsync_folder(dest.parent)
    fsync_folder(source.parent)
    return None


def _execute(journal: JournalWriter, root: Path, plan: _Plan, progress: ProgressFn | None) -> AppliedBatch:
    batch = f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}"
    journal.record(type="begin", batch=batch, kind=plan.kind, undoes=plan.undoes,
                   time=time.strftime("%Y-%m-%dT%H:%M:%S%z"), plan=plan.steps, new_folders=plan.new_folders,
                   remove_folders=plan.remove_folders)
    result = AppliedBatch(batch=batch, kind=plan.kind, undoes=plan.undoes,
                          kept=[s["path"] for s in plan.steps if s["action"] == "keep"],
                          skipped=[(s["path"], s["skip"]) for s in plan.steps if s.get("skip")])
    if plan.marks:
        current = ignored_files(root)
        adding = plan.kind == "apply"
        write_ignored(root, current | set(plan.marks) if adding else current - set(plan.marks))
        journal.record(type="ignored" if adding else "unignored", batch=batch, paths=plan.marks)
        (result.ignored if adding else result.unignored).extend(plan.marks)
    moves = plan.moves
    for done, (rel, dest) in enumerate(moves, 1):
        reason = _move(root, rel, dest)
        if reason is None:
            journal.record(type="moved", batch=batch, path=rel, dest=dest)
            result.moved.append((rel, dest))
        else:
            journal.record(type="skipped", batch=batch, path=rel, reason=reason)
            result.skipped.append((rel, reason))
        if progress is not None:
            progress(done, len(moves))
    for rel in plan.remove_folders:
        if path_problem(rel) is None and _no_links_on_the_way(root, rel):
            with contextlib.suppress(OSError):
                os.rmdir(root / rel)  # only when empty: a file the user put there since stays
    journal.record(type="end", batch=batch, interrupted=False)
    return result


# -- after a crash ---------------------------------------------------------------------------------


def _where(root: Path, old: str, new: str) -> str:
    if path_problem(old) is not None or path_problem(new) is not None:
        return "neither"
    at_old, at_new = os.path.lexists(root / old), os.path.lexists(root / new)
    return {(True, False): "old", (False, True): "new", (True, True): "both"}.get((at_old, at_new), "neither")


def _places(root: Path, batch: JournalBatch) -> list[tuple[str, str, str]]:
    recorded = {rel for rel, _ in batch.moved} | {rel for rel, _ in batch.failed}
    return [(s["path"], str(s.get("dest")), _where(root, s["path"], str(s.get("dest"))))
            for s in batch.steps("move") if s["path"] not in recorded]


def pending_batch(folder: str | os.PathLike[str]) -> PendingBatch | None:
    """The batch a crash left open, if any, and where each of its unrecorded moves is (changes nothing)."""
    root = _root(folder)
    batches = read_journal(root)
    if not batches or batches[-1].ended:
        return None
    return PendingBatch(batches[-1], _places(root, batches[-1]))


def recover(folder: str | os.PathLike[str]) -> AppliedBatch | None:
    """Close a batch a crash left open: record the moves found done and end it as interrupted. Returns what
    that batch did (its unreached steps as skipped), or None when nothing was open. apply_fixes and
    undo_last call this first themselves."""
    root = _root(folder)
    if pending_batch(root) is None:
        return None
    with JournalWriter(root) as journal:
        return _close_pending(journal, root)


def _close_pending(journal: JournalWriter, root: Path) -> AppliedBatch | None:
    result = None
    for batch in read_journal(root):
        if batch.ended:
            continue
        result = AppliedBatch(batch=batch.batch, kind=batch.kind, undoes=batch.undoes, interrupted=True,
                              kept=[s["path"] for s in batch.steps("keep")], skipped=batch.skipped)
        for old, new, where in _places(root, batch):
            if where == "new":
                journal.record(type="moved", batch=batch.batch, path=old, dest=new, recovered=True)
                batch.moved.append((old, new))
            else:
                result.skipped.append((old, "no longer there" if where == "neither" else _INTERRUPTED))
        result.moved = list(batch.moved)
        marks = set(ignored_files(root))
        planned = [s["path"] for s in batch.steps("ignore" if batch.kind == "apply" else "unignore")
                   if not s.get("already")]
        result.ignored = [p for p in planned if p in marks] if batch.kind == "apply" else []
        result.unignored = [p for p in planned if p not in marks] if batch.kind == "undo" else []
        journal.record(type="end", batch=batch.batch, interrupted=True)
    return result


def journal_batches(folder: str | os.PathLike[str]) -> list[JournalBatch]:
    """The history of applied fixes and undos in ``folder``, oldest first."""
    return read_journal(_root(folder))


# -- undo ------------------------------------------------------------------------------------------


def _marks_added(batch: JournalBatch) -> list[str]:
    """The ignore marks an apply batch planned to add (all of them: taking one away twice is harmless, and a
    crash may have come between writing the marks and recording them)."""
    return [s["path"] for s in batch.steps("ignore") if not s.get("already")]


def _undo_target(batches: list[JournalBatch]) -> JournalBatch | None:
    """The most recent apply batch that changed something and is not undone (an interrupted undo: not yet)."""
    undone = {b.undoes for b in batches if b.kind == "undo" and b.ended and not b.interrupted}
    for batch in reversed(batches):
        if batch.kind == "apply" and batch.ended and batch.batch not in undone and (batch.moved or _marks_added(batch)):
            return batch
    return None


def _plan_undo(root: Path, target: JournalBatch, batches: list[JournalBatch]) -> _Plan:
    reverted = {(new, old) for b in batches if b.kind == "undo" and b.undoes == target.batch for old, new in b.moved}
    digests = {s["path"]: s.get("digest") for s in target.plan}
    plan = _Plan("undo", [], undoes=target.batch, remove_folders=sorted(target.new_folders, reverse=True))
    taken: set[str] = set()
    for old, new in reversed(target.moved):
        if (old, new) in reverted:
            continue
        digest = digests.get(old)
        step = {"path": new, "action": "move", "to": None, "digest": digest, "dest": old}
        reason, _ = _check_file(root, new, digest if isinstance(digest, str) else None,
                                "changed since the fixes were applied")
        if reason is None and (path_problem(old) is not None or not _no_links_on_the_way(root, old)):
            reason = f"its old place {old} is not a path inside the folder"
        elif reason is None and (os.path.lexists(root / old) or old.casefold() in taken):
            reason = f"its old place {old} is taken"
        if reason is not None:
            step["skip"] = reason
        taken.add(old.casefold())
        plan.steps.append(step)
    for rel in _marks_added(target):
        if path_problem(rel) is None:
            plan.steps.append({"path": rel, "action": "unignore", "to": None, "digest": None})
            plan.marks.append(rel)
    return plan


def undo_last(folder: str | os.PathLike[str], *, progress: ProgressFn | None = None) -> AppliedBatch:
    """Revert the most recent applied batch not undone yet (moves back, ignore marks taken away, folders it
    created removed when empty), as an undo batch in the journal. A file changed or moved since, or whose old
    place is taken, is skipped with the reason and left where it is. An empty batch: nothing to undo."""
    root = _root(folder)
    if not read_journal(root):
        return AppliedBatch(kind="undo")
    with JournalWriter(root) as journal:
        recovered = _close_pending(journal, root)
        batches = read_journal(root)
        target = _undo_target(batches)
        if target is None:
            return AppliedBatch(kind="undo", recovered=recovered.batch if recovered else None)
        plan = _plan_undo(root, target, batches)
        _check_writable(_folders_touched(root, plan))
        result = _execute(journal, root, plan, progress)
    result.recovered = recovered.batch if recovered else None
    return result
