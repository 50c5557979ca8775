"""The journal of applied fixes: ``FOLDER/.convnet-studio/fixes.jsonl``, one JSON record a line.

A batch (one ``apply`` of the user's reviewed fixes, or one ``undo``) is written as::

    {"type": "begin", "batch": ID, "kind": "apply"|"undo", "undoes": ID|null, "time": ISO-8601,
     "plan": [STEP, ...], "new_folders": [REL, ...], "remove_folders": [REL, ...]}
    {"type": "ignored", "batch": ID, "paths": [REL, ...]}       apply: marks added to ignored.json
    {"type": "unignored", "batch": ID, "paths": [REL, ...]}     undo: marks taken away
    {"type": "moved", "batch": ID, "path": REL, "dest": REL}    one per move, after it ("recovered": true when
                                                                 recover() found it done after a crash)
    {"type": "skipped", "batch": ID, "path": REL, "reason": TEXT}  a move that failed once under way
    {"type": "end", "batch": ID, "interrupted": bool}           true: closed by recover() after a crash

A STEP is ``{"path", "action": "move"|"ignore"|"keep"|"unignore", "to", "digest", "dest"}`` (``dest``: the
planned new place of a move) plus ``"skip": REASON`` for a step found impossible before anything moved,
and ``"already": true`` for an "ignore" of a path already ignored. REL paths are relative to the folder
with ``/`` between parts. The begin record reaches the disk (fsync) before the first move and each
"moved" record right after its move, so after a kill -9 the journal and the files together say where
every file is: a planned move without a "moved" record is at its old place or, if the kill came between
the rename and the record, at its new one (:func:`core.doctor.fixes.recover` looks). A torn last line
from a crash is tolerated (left out on reading; the writer starts a fresh line after it).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.doctor.marks import STATE_DIR, ensure_state_dir
from core.errors import StudioError
from core.userfiles import UnreadableFile, read_small_file

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one app at a time is then the user's to keep
    fcntl = None

__all__ = ["JOURNAL_NAME", "MAX_JOURNAL_BYTES", "JournalBatch", "read_journal", "JournalWriter", "journal_path"]

JOURNAL_NAME = "fixes.jsonl"
MAX_JOURNAL_BYTES = 64 * 1024 * 1024


def journal_path(folder: str | os.PathLike[str]) -> Path:
    return Path(folder) / STATE_DIR / JOURNAL_NAME


@dataclass
class JournalBatch:
    """One batch as the journal tells it."""

    batch: str
    kind: str  # "apply" | "undo"
    undoes: str | None
    time: str
    plan: list[dict[str, Any]]
    new_folders: list[str] = field(default_factory=list)
    remove_folders: list[str] = field(default_factory=list)
    marks: list[str] = field(default_factory=list)  # ignore marks added (apply) or taken away (undo)
    moved: list[tuple[str, str]] = field(default_factory=list)  # (old place, new place), in order
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason): moves that failed under way
    ended: bool = False
    interrupted: bool = False  # closed by recover() after a crash

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """Every step that was not carried out, with its reason."""
        return [(s["path"], s["skip"]) for s in self.plan if s.get("skip")] + self.failed

    def steps(self, action: str) -> list[dict[str, Any]]:
        """The planned steps of one action that were not skipped before the start."""
        return [s for s in self.plan if s.get("action") == action and not s.get("skip")]


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _begin(record: dict[str, Any]) -> JournalBatch | None:
    plan = record.get("plan")
    if not isinstance(plan, list) or record.get("kind") not in ("apply", "undo"):
        return None
    steps = [s for s in plan if isinstance(s, dict) and isinstance(s.get("path"), str)]
    undoes = record.get("undoes")
    return JournalBatch(batch=record["batch"], kind=record["kind"], undoes=undoes if isinstance(undoes, str) else None,
                        time=str(record.get("time", "")), plan=steps, new_folders=_strings(record.get("new_folders")),
                        remove_folders=_strings(record.get("remove_folders")))


def _add(batch: JournalBatch, record: dict[str, Any]) -> None:
    kind = record.get("type")
    if kind in ("ignored", "unignored"):
        batch.marks.extend(_strings(record.get("paths")))
    elif kind == "moved" and isinstance(record.get("path"), str) and isinstance(record.get("dest"), str):
        batch.moved.append((record["path"], record["dest"]))
    elif kind == "skipped" and isinstance(record.get("path"), str):
        batch.failed.append((record["path"], str(record.get("reason", ""))))
    elif kind == "end":
        batch.ended = True
        batch.interrupted = bool(record.get("interrupted"))


def parse_journal(text: bytes) -> list[JournalBatch]:
    """The batches in journal ``text``, oldest first; lines that are not records (a torn last line) are left out."""
    batches: dict[str, JournalBatch] = {}
    for line in text.split(b"\n"):
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):  # a torn or damaged line
            continue
        if not isinstance(record, dict) or not isinstance(record.get("batch"), str):
            continue
        if record.get("type") == "begin":
            begun = _begin(record)
            if begun is not None and begun.batch not in batches:
                batches[begun.batch] = begun
        elif record["batch"] in batches and not batches[record["batch"]].ended:
            _add(batches[record["batch"]], record)
    return list(batches.values())


def read_journal(folder: str | os.PathLike[str]) -> list[JournalBatch]:
    """Every batch in ``folder``'s journal, oldest first (empty when there is none); StudioError when unreadable."""
    path = journal_path(folder)
    try:
        return parse_journal(read_small_file(path, max_bytes=MAX_JOURNAL_BYTES, follow_links=False))
    except FileNotFoundError:
        return []
    except UnreadableFile as exc:
        raise StudioError(f"cannot read the journal of fixes {path}: {exc}") from None


class JournalWriter:
    """Appends records to the journal, each on disk (fsync) before ``record`` returns.

    Holds an exclusive lock on the journal while open, so two processes never apply fixes to one folder at
    once (the lock dies with its process, so a killed one never blocks the next). Opening creates the state
    folder and the journal when missing; it raises StudioError when either cannot be written.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.path = journal_path(folder)
        self._folder = folder
        self._fd: int | None = None

    def __enter__(self) -> JournalWriter:
        ensure_state_dir(self._folder)
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
        try:
            self._fd = os.open(self.path, flags, 0o666)
        except OSError as exc:
            raise StudioError(f"cannot write the journal of fixes {self.path}: {exc.strerror or exc}") from None
        try:
            self._check_and_lock()
            self._end_torn_line()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock
            self._fd = None

    def _check_and_lock(self) -> None:
        assert self._fd is not None
        if not stat.S_ISREG(os.fstat(self._fd).st_mode):
            raise StudioError(f"refusing to use {self.path}: it is not a regular file")
        if fcntl is None:
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise StudioError(f"fixes are being applied to {Path(self._folder)} by another process; "
                              "try again once it has finished") from None

    def _end_torn_line(self) -> None:
        assert self._fd is not None
        size = os.fstat(self._fd).st_size
        if size and os.pread(self._fd, 1, size - 1) != b"\n":
            self._write(b"\n")

    def record(self, **fields: Any) -> None:
        self._write(json.dumps(fields, ensure_ascii=False).encode("utf-8") + b"\n")

    def _write(self, data: bytes) -> None:
        assert self._fd is not None
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
            os.fsync(self._fd)
        except OSError as exc:
            raise StudioError(f"cannot write the journal of fixes {self.path}: {exc.strerror or exc}") from None


def fsync_folder(folder: str | os.PathLike[str]) -> None:
    """Make a rename in ``folder`` durable (best effort: some systems cannot open a folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
