"""Applying the doctor's fixes when things go wrong: a read-only folder, files changed since the scan, a kill -9
in the middle. Each ends with every file accounted for: at its old place or its new one, with its bytes.

The folders are a few 8 px PNGs of distinct colours (tests/core/test_doctor_fixes.py), so a file is known by
its bytes and "nothing lost" is the multiset of contents before and after. Nothing sleeps: the killed child
stops at a chosen move and waits on a pipe until the parent kills it.
"""

from __future__ import annotations

import errno
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.data import file_digest
from core.doctor import fixes as fx
from core.doctor.fixlist import Fix, fixes_json
from core.doctor.marks import STATE_DIR, ignored_files
from core.errors import StudioError
from tests.core.test_doctor_fixes import snapshot, write_images

ROOT = Path(__file__).resolve().parents[2]
NOT_REACHED = "not reached: the batch was interrupted"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_images(tmp_path / "data", [f"cats/c{i}.png" for i in range(6)] + [f"dogs/d{i}.png" for i in range(6)])


def digest_fix(root: Path, path: str, action: str, to: str | None = None) -> Fix:
    return Fix(path, action, to, file_digest(root / path))


def contents(root: Path) -> list[bytes]:
    return sorted(snapshot(root)[0].values())


# -- a read-only folder ---------------------------------------------------------------------------------


class ReadOnly:
    """Simulates a read-only mount under ``where``: every os call that would create, rename, remove or open for
    writing something there fails with EROFS; reads go through.

    A simulation because the suite runs as root on CI, and root ignores permission bits (chmod cannot make a
    folder read-only for it; ``test_a_chmod_read_only_folder`` does it for real when not root). Every write in
    core.doctor goes through these calls (``core.io``'s temp files use ``os.open``; the journal is opened with
    ``os.open``), and each test also checks that nothing under the folder changed, which would catch a write
    that went around them."""

    WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def __init__(self, monkeypatch: pytest.MonkeyPatch, where: Path) -> None:
        self.where = os.path.realpath(where)
        self.refused = 0
        for name in ("mkdir", "replace", "rename", "link", "unlink", "rmdir", "symlink"):
            monkeypatch.setattr(os, name, self._guard(getattr(os, name), name in ("replace", "rename", "link",
                                                                                 "symlink")))
        real_open = os.open

        def open_(path, flags, *args, **kwargs):
            if flags & self.WRITE_FLAGS:
                self._check(path)
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", open_)

    def _check(self, path) -> None:
        real = os.path.realpath(os.fspath(path))
        if real == self.where or real.startswith(self.where + os.sep):
            self.refused += 1
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))

    def _guard(self, real, two_paths: bool):
        def call(*args, **kwargs):
            for path in args[:2] if two_paths else args[:1]:
                self._check(path)
            return real(*args, **kwargs)

        return call


def _some_fixes(root: Path) -> list[Fix]:
    return [digest_fix(root, "cats/c0.png", "move", "dogs"), digest_fix(root, "cats/c1.png", "move", "birds"),
            digest_fix(root, "dogs/d0.png", "ignore"), Fix("dogs/d1.png", "keep")]


def test_a_read_only_folder_changes_nothing(folder: Path, monkeypatch, ledger) -> None:
    before = snapshot(folder)
    guard = ReadOnly(monkeypatch, folder)
    with pytest.raises(StudioError, match=r"cannot write .*\.convnet-studio: Read-only file system"):
        fx.apply_fixes(folder, _some_fixes(folder))
    assert guard.refused and snapshot(folder) == before and not (folder / STATE_DIR).exists()
    assert fx.undo_last(folder).empty  # no journal: nothing to undo, nothing written
    ledger.record("fault", "apply fixes to a read-only folder", "survived", lost=0)


def test_a_read_only_folder_with_a_history_changes_nothing(folder: Path, monkeypatch, ledger) -> None:
    fx.apply_fixes(folder, [digest_fix(folder, "dogs/d5.png", "move", "cats"), digest_fix(folder, "dogs/d4.png",
                                                                                          "ignore")])
    before = snapshot(folder)
    state = {p.name: p.read_bytes() for p in (folder / STATE_DIR).iterdir()}
    guard = ReadOnly(monkeypatch, folder)
    with pytest.raises(StudioError, match="cannot write the journal of fixes .*Read-only file system"):
        fx.apply_fixes(folder, _some_fixes(folder))
    with pytest.raises(StudioError, match="Read-only file system"):
        fx.undo_last(folder)
    assert guard.refused and snapshot(folder) == before
    assert {p.name: p.read_bytes() for p in (folder / STATE_DIR).iterdir()} == state
    monkeypatch.undo()  # writable again: the undo that was refused now goes through
    assert fx.undo_last(folder).moved == [("cats/d5.png", "dogs/d5.png")] and ignored_files(folder) == frozenset()
    ledger.record("fault", "apply and undo fixes in a read-only folder with a journal", "survived", lost=0)


def test_one_read_only_class_folder_stops_the_batch_before_it_starts(folder: Path, monkeypatch, ledger) -> None:
    before = snapshot(folder)
    ReadOnly(monkeypatch, folder / "dogs")  # the state folder and cats/ are writable
    with pytest.raises(StudioError, match=r"cannot change .*dogs: Read-only file system; nothing was changed"):
        fx.apply_fixes(folder, _some_fixes(folder))
    assert snapshot(folder) == before
    assert fx.journal_batches(folder) == [] and ignored_files(folder) == frozenset()  # no batch was begun
    ledger.record("fault", "apply fixes with one read-only class folder", "survived", lost=0)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores permission bits")
def test_a_chmod_read_only_folder(folder: Path) -> None:
    before = snapshot(folder)
    folders = [folder, folder / "cats", folder / "dogs"]
    for path in folders:
        path.chmod(0o555)
    try:
        with pytest.raises(StudioError, match="cannot write"):
            fx.apply_fixes(folder, _some_fixes(folder))
    finally:
        for path in folders:
            path.chmod(0o755)
    assert snapshot(folder) == before and not (folder / STATE_DIR).exists()


# -- files changed since the scan ------------------------------------------------------------------------


def test_files_changed_since_the_scan_are_skipped_and_kept(folder: Path, ledger) -> None:
    fixes = [digest_fix(folder, f"cats/c{i}.png", "move", "dogs") for i in range(5)]
    fixes.append(digest_fix(folder, "dogs/d0.png", "ignore"))
    with open(folder / "cats/c0.png", "ab") as out:
        out.write(b"edited")  # changed after the scan
    (folder / "cats/c1.png").unlink()  # deleted
    (folder / "cats/c2.png").write_bytes((folder / "dogs/d5.png").read_bytes())  # replaced by another image
    (folder / "cats/c3.png").unlink()
    (folder / "cats/c3.png").symlink_to("c4.png")  # now a link
    (folder / "dogs/d0.png").write_bytes(b"not the image that was reviewed")
    before = snapshot(folder)
    result = fx.apply_fixes(folder, fixes)
    assert dict(result.skipped) == {"cats/c0.png": "changed since the scan", "cats/c1.png": "no longer there",
                                    "cats/c2.png": "changed since the scan",
                                    "cats/c3.png": "is a link or not a regular file (not moved)",
                                    "dogs/d0.png": "changed since the scan"}
    assert result.moved == [("cats/c4.png", "dogs/c4.png")] and result.ignored == []
    after = snapshot(folder)
    before[0]["dogs/c4.png"] = before[0].pop("cats/c4.png")
    assert after[0] == before[0]  # every changed file where the user left it, with the user's bytes
    ledger.record("fault", "apply fixes to files changed since the scan", "survived", lost=0)


def test_undo_skips_what_the_user_changed_since_and_loses_nothing(folder: Path, ledger) -> None:
    fx.apply_fixes(folder, [digest_fix(folder, f"dogs/d{i}.png", "move", "cats") for i in range(4)])
    with open(folder / "cats/d0.png", "ab") as out:
        out.write(b"edited")  # changed after the move
    os.rename(folder / "cats/d1.png", folder / "cats/renamed.png")  # moved away by the user
    write_images(folder, ["dogs/d2.png"])  # a new file at the old place of d2
    before = contents(folder)
    result = fx.undo_last(folder)
    assert dict(result.skipped) == {"cats/d0.png": "changed since the fixes were applied",
                                    "cats/d1.png": "no longer there",
                                    "cats/d2.png": "its old place dogs/d2.png is taken"}
    assert result.moved == [("cats/d3.png", "dogs/d3.png")]
    assert contents(folder) == before  # nothing lost, nothing doubled
    assert (folder / "cats/d2.png").is_file() and (folder / "dogs/d2.png").is_file()
    ledger.record("fault", "undo after the user changed moved files", "survived", lost=0)


class Crash(BaseException):
    """Stands for the process dying: nothing in core.doctor catches it."""


def test_a_crash_in_the_middle_of_an_undo_is_finished_by_the_next(folder: Path, monkeypatch, ledger) -> None:
    original = snapshot(folder)
    fx.apply_fixes(folder, [digest_fix(folder, f"cats/c{i}.png", "move", "birds") for i in range(4)]
                   + [digest_fix(folder, "dogs/d0.png", "ignore")])
    real_rename, calls = fx._rename, []

    def rename(source: Path, dest: Path) -> None:
        calls.append(source)
        real_rename(source, dest)
        if len(calls) == 2:
            raise Crash  # after the rename, before its journal record: the in-flight case

    monkeypatch.setattr(fx, "_rename", rename)
    with pytest.raises(Crash):
        fx.undo_last(folder)
    monkeypatch.setattr(fx, "_rename", real_rename)
    pending = fx.pending_batch(folder)
    assert pending is not None and pending.batch.kind == "undo" and len(pending.batch.moved) == 1
    assert [where for _, _, where in pending.places] == ["new", "old", "old"]
    result = fx.undo_last(folder)  # closes the interrupted undo, then undoes the rest of the same batch
    assert result.recovered == pending.batch.batch and len(result.moved) == 2
    assert snapshot(folder) == original and ignored_files(folder) == frozenset()
    assert fx.undo_last(folder).empty
    ledger.record("fault", "crash in the middle of an undo", "survived", lost=0)


# -- kill -9 in the middle of applying -------------------------------------------------------------------

CHILD = r"""
import sys
sys.path.insert(0, sys.argv[1])
from core.doctor import fixes

folder, fixes_file, mode, stop_at = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
real_rename, calls = fixes._rename, []


def pause():
    print("paused", flush=True)
    sys.stdin.readline()  # the parent never writes: it kills this process


def rename(source, dest):
    calls.append(source)
    if len(calls) == stop_at and mode == "before":
        pause()
    real_rename(source, dest)
    if len(calls) == stop_at and mode == "after":
        pause()


fixes._rename = rename
fixes.apply_fixes(folder, fixes.read_fixes(fixes_file))
print("finished", flush=True)
"""


def _wait_for_line(process: subprocess.Popen, timeout: float = 120.0) -> str:
    deadline, text = time.monotonic() + timeout, b""
    fd = process.stdout.fileno()
    while b"\n" not in text:
        left = deadline - time.monotonic()
        assert left > 0, f"the child never paused: {text!r}"
        if select.select([fd], [], [], left)[0]:
            chunk = os.read(fd, 4096)
            assert chunk, f"the child ended: {process.wait()} {process.stderr.read().decode()[-2000:]}"
            text += chunk
    return text.decode().strip()


@pytest.mark.slow  # a child interpreter that imports torch (core.data), ~3 s each
@pytest.mark.subprocess
@pytest.mark.parametrize(("mode", "stop_at"), [("after", 3), ("before", 1)],
                         ids=["between-the-third-move-and-its-record", "before-the-first-move"])
def test_kill_9_in_the_middle_of_applying(folder: Path, tmp_path: Path, mode: str, stop_at: int, ledger) -> None:
    original = snapshot(folder)
    fixes = [digest_fix(folder, f"cats/c{i}.png", "move", "dogs") for i in range(4)]
    fixes += [digest_fix(folder, "dogs/d0.png", "move", "birds"), digest_fix(folder, "dogs/d1.png", "ignore"),
              Fix("dogs/d2.png", "keep")]
    fixes_file = tmp_path / "fixes.json"
    fixes_file.write_text(json.dumps(fixes_json(fixes)))
    planned = [(f.path, f"{f.to_class}/{f.path.split('/')[1]}") for f in fixes if f.action == "move"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-c", CHILD, str(ROOT), str(folder), str(fixes_file), mode,
                                str(stop_at)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=env)
    try:
        assert _wait_for_line(process) == "paused"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=60)
        for stream in (process.stdin, process.stdout, process.stderr):
            stream.close()
    assert process.returncode == -signal.SIGKILL

    moved_by_now = stop_at if mode == "after" else stop_at - 1
    assert contents(folder) == sorted(original[0].values())  # nothing lost, nothing doubled
    for index, (old, new) in enumerate(planned):
        at_new = index < moved_by_now
        assert (folder / (new if at_new else old)).read_bytes() == original[0][old]
        assert not (folder / (old if at_new else new)).exists()
    assert ignored_files(folder) == {"dogs/d1.png"}  # marks are written before the first move

    pending = fx.pending_batch(folder)  # the journal and the files say where each file is
    recorded = moved_by_now - 1 if mode == "after" else moved_by_now  # "after": the last move has no record yet
    assert pending is not None and pending.batch.moved == planned[:recorded]
    assert [where for _, _, where in pending.places] == ["new"] * (moved_by_now - recorded) + \
        ["old"] * (len(planned) - moved_by_now)
    recovered = fx.recover(folder)
    assert recovered.interrupted and recovered.moved == planned[:moved_by_now]
    assert recovered.skipped == [(old, NOT_REACHED) for old, _ in planned[moved_by_now:]]
    assert recovered.ignored == ["dogs/d1.png"] and recovered.kept == ["dogs/d2.png"]
    assert fx.pending_batch(folder) is None and fx.journal_batches(folder)[-1].interrupted

    undone = fx.undo_last(folder)  # undo of an interrupted batch
    assert undone.undoes == recovered.batch and len(undone.moved) == moved_by_now
    assert snapshot(folder) == original and ignored_files(folder) == frozenset()
    ledger.record("fault", f"kill -9 applying fixes ({mode} move {stop_at})", "survived", lost=0)
