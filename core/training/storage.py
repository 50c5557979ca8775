"""Saved models and training runs on disk: names that never clobber, free space, pruning, listing, deleting.

* :func:`choose_name` — the name a new run gets: the one asked for, or NAME-2 when a saved
  model or a run already has it (``overwrite`` keeps the name and replaces them).
* :func:`check_free_space` — refuse a run before it starts when its checkpoints and bundle will
  not fit (peak ~7 x the parameters' bytes in the runs folder: checkpoint with optimizer state
  3x, its temp copy while it is replaced 3x, ``best.pt`` 1x; the bundle 1x in the models folder).
* :func:`check_models_root` — ``train --out`` must be a folder we can write (or creatable).
* :func:`prune_run` — a finished run keeps only ``run.json`` (its checkpoints served resuming).
* :func:`rename_saved_model` — save a model under another name, with the bundle writer's checks.
* :func:`list_saved_models`, :func:`list_runs`, :func:`delete_saved_model`, :func:`delete_run` —
  what the window's "Manage Saved Models" dialog and ``models saved``/``runs list``/``... delete``
  show and do. Deletion never follows a symbolic link out of the app's folders.

No torch import at module level: the window can list before torch has loaded (so the few functions
that need ``core.training.bundles`` or ``checkpoint`` import them inside, saying so).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core import paths
from core.errors import StudioError
from core.io import atomic_write_json, atomic_write_text, publish_folder
from core.textout import human_size  # one size format everywhere (re-exported for manage_cli)
from core.userfiles import read_json

__all__ = ["RUN_META", "expected_run_bytes", "check_free_space", "check_models_root", "choose_name",
           "claim_run_dir", "prune_run", "folder_size", "human_size", "SavedModel", "RunInfo",
           "list_saved_models", "list_runs", "delete_saved_model", "delete_run", "rename_saved_model", "runs_root"]

RUN_META = "run.json"
MAX_RUN_META_BYTES = 1 << 20
CHECKPOINT_FACTOR = 3  # model + two optimizer moments (AdamW); SGD needs less
MARGIN_BYTES = 16 << 20


def runs_root() -> Path:
    """``<user data dir>/runs`` (the same folder as ``core.training.trainer.runs_dir``)."""
    return paths.runs_dir()


def _models_root(root: str | os.PathLike[str] | None) -> Path:
    return Path(root) if root is not None else paths.models_dir()


# -- names ------------------------------------------------------------------------------------------


def choose_name(wanted: str | None, default_base: str, *, models_root: str | os.PathLike[str] | None = None,
                in_runs: bool = True, overwrite: bool = False) -> tuple[str, str | None]:
    """(name, the name asked for when it was taken). A name is free when neither a saved model
    nor (``in_runs``) a run folder has it; ``overwrite`` keeps ``wanted`` as it is."""
    from core.training.bundles import unique_name  # noqa: PLC0415 - lazy: torch (see top)

    root = _models_root(models_root)
    others = (runs_root(),) if in_runs else ()
    if wanted is None:
        return unique_name(default_base, root, others=others), None
    if overwrite or not any(os.path.lexists(folder / wanted) for folder in (root, *others)):
        return wanted, None
    return unique_name(wanted, root, others=others), wanted


def claim_run_dir(run_dir: Path, *, overwrite: bool) -> bool:
    """Create ``run_dir`` for a new run; False when it exists (another run's), unless ``overwrite``:
    then the old run's checkpoints are removed first, so nothing of it mixes with the new one."""
    from core.training.checkpoint import BEST_NAME, CHECKPOINT_NAME  # noqa: PLC0415 - lazy: torch (see top)

    try:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        run_dir.mkdir()
        return True
    except FileExistsError:
        if not overwrite:
            return False
    except OSError as exc:
        raise StudioError(f"cannot create the run folder {run_dir}: {exc.strerror or exc}") from None
    if run_dir.is_symlink() or not run_dir.is_dir():
        raise StudioError(f"cannot use {run_dir} as the run folder: it is not a folder")
    for name in (CHECKPOINT_NAME, BEST_NAME, RUN_META):
        (run_dir / name).unlink(missing_ok=True)
    return True


# -- disk space ------------------------------------------------------------------------------------


def expected_run_bytes(param_bytes: int) -> dict[str, int]:
    """Peak bytes a run needs: in its run folder, and in the models folder for the bundle."""
    return {"run": (2 * CHECKPOINT_FACTOR + 1) * param_bytes, "bundle": param_bytes}


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def check_free_space(param_bytes: int, *, run_dir: str | os.PathLike[str] | None = None,
                     models_root: str | os.PathLike[str] | None = None) -> None:
    """Raise StudioError when the run's checkpoints and bundle will not fit on their disks."""
    need = expected_run_bytes(param_bytes)
    run_dir = Path(run_dir) if run_dir is not None else runs_root()
    already = folder_size(run_dir) if run_dir.is_dir() else 0  # a resumed run's files are replaced
    run_place, models_place = _existing_ancestor(run_dir), _existing_ancestor(_models_root(models_root))
    wants = {run_place: max(need["run"] - already, 0)}  # one disk: the bundle comes after this peak
    try:
        same = os.stat(run_place).st_dev == os.stat(models_place).st_dev
    except OSError:
        same = True
    if not same:
        wants[models_place] = need["bundle"]
    for place, bytes_needed in wants.items():
        try:
            free = shutil.disk_usage(place).free
        except OSError:
            continue
        if free < bytes_needed + MARGIN_BYTES:
            raise StudioError(
                f"not enough free space in {place}: this run needs about {human_size(bytes_needed + MARGIN_BYTES)} "
                f"(checkpoints and the saved model) but only {human_size(free)} is free; free some space "
                "(python main.py runs list, models saved, and their delete commands) or save elsewhere with --out")


def check_models_root(root: str | os.PathLike[str]) -> Path:
    """``train --out``: an existing writable folder, or a new one whose nearest existing parent is
    a writable folder (created only when the model is saved). Raises StudioError naming the path."""
    path = Path(root).expanduser()
    if os.path.lexists(path) and not path.is_dir():
        raise StudioError(f"--out {path} is not a folder (it is a file or a broken link)")
    base = _existing_ancestor(path)
    if not base.is_dir():
        raise StudioError(f"--out {path}: {base} is not a folder")
    try:
        probe = tempfile.mkdtemp(prefix=".convnet-studio-write-test.", dir=base)
        os.rmdir(probe)
    except OSError as exc:
        raise StudioError(f"--out {path}: cannot write in {base} ({exc.strerror or exc})") from None
    return path


# -- pruning ------------------------------------------------------------------------------------------


def prune_run(run_dir: Path, *, status: str, name: str, epochs_done: int, step: int,
              metrics: dict[str, Any]) -> None:
    """Replace a finished run's checkpoints with a small ``run.json`` (the bundle holds the weights)."""
    from core.training.checkpoint import BEST_NAME, CHECKPOINT_NAME  # noqa: PLC0415 - lazy: checkpoint imports torch (see top)

    record = {"format": "convnet-studio.run", "name": name, "status": status, "epochs_done": epochs_done,
              "step": step, "metrics": metrics,
              "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    try:
        text = json.dumps(record, indent=2, default=str)
    except ValueError:
        text = json.dumps({k: v for k, v in record.items() if k != "metrics"}, indent=2)
    try:
        atomic_write_text(run_dir / RUN_META, text)
        for file in (CHECKPOINT_NAME, BEST_NAME):
            (run_dir / file).unlink(missing_ok=True)
    except (OSError, StudioError):
        pass  # the model is saved; a run folder that could not be tidied only costs space


# -- listing and deleting -----------------------------------------------------------------------------


def folder_size(path: Path) -> int:
    """Bytes under ``path`` (files' own sizes; links are not followed)."""
    try:
        st = os.lstat(path)
    except OSError:
        return 0
    if not stat.S_ISDIR(st.st_mode):
        return st.st_size
    total = 0
    for top, dirs, files in os.walk(path, followlinks=False):
        for name in dirs + files:
            try:
                entry = os.lstat(os.path.join(top, name))
            except OSError:
                continue
            if not stat.S_ISDIR(entry.st_mode):
                total += entry.st_size
    return total


@dataclass(frozen=True)
class SavedModel:
    name: str
    folder: Path
    size: int
    architecture: str = ""
    classes: int = 0
    val_acc: float | None = None
    created: str = ""
    problem: str | None = None  # why the folder is not a usable model (it can still be deleted)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "folder": str(self.folder), "size": self.size, "architecture": self.architecture,
                "classes": self.classes, "val_acc": self.val_acc, "created": self.created, "problem": self.problem}


@dataclass(frozen=True)
class RunInfo:
    name: str
    folder: Path
    size: int
    status: str  # "finished" (only run.json), "resumable" (a checkpoint), "empty"
    epochs_done: int | None = None
    modified: str = ""
    details: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "folder": str(self.folder), "size": self.size, "status": self.status,
                "epochs_done": self.epochs_done, "modified": self.modified}


def _entries(root: Path) -> list[Path]:
    try:
        return sorted((p for p in root.iterdir() if not p.name.startswith(".")), key=lambda p: p.name.lower())
    except OSError:
        return []


def _mtime(path: Path) -> str:
    try:
        stamp = os.lstat(path).st_mtime
    except OSError:
        return ""
    return _dt.datetime.fromtimestamp(stamp, _dt.timezone.utc).isoformat(timespec="seconds")


def list_saved_models(root: str | os.PathLike[str] | None = None) -> list[SavedModel]:
    """Every folder in the models folder with its size; unreadable ones too, with the reason."""
    from core.training.bundles import read_bundle  # noqa: PLC0415 - lazy: torch (see top)

    out = []
    for path in _entries(_models_root(root)):
        size = folder_size(path)
        if path.is_symlink() or not path.is_dir():
            out.append(SavedModel(path.name, path, size, problem="not a folder"))
            continue
        try:
            bundle = read_bundle(path)
        except StudioError as exc:
            out.append(SavedModel(path.name, path, size, created=_mtime(path), problem=str(exc)))
            continue
        acc = bundle.metrics.get("val_acc")
        out.append(SavedModel(path.name, path, size, bundle.architecture, len(bundle.classes),
                              acc if isinstance(acc, (int, float)) and not isinstance(acc, bool) else None,
                              bundle.created or _mtime(path)))
    return out


def _run_record(path: Path) -> dict[str, Any]:
    meta = path / RUN_META
    try:
        st = os.lstat(meta)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_RUN_META_BYTES:
            return {}
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def list_runs(root: str | os.PathLike[str] | None = None) -> list[RunInfo]:
    """Every run folder with its size and whether it can still be resumed."""
    from core.training.checkpoint import CHECKPOINT_NAME  # noqa: PLC0415 - lazy: torch (see top)

    out = []
    for path in _entries(Path(root) if root is not None else runs_root()):
        size = folder_size(path)
        if path.is_symlink() or not path.is_dir():
            out.append(RunInfo(path.name, path, size, "not a folder", modified=_mtime(path)))
            continue
        record = _run_record(path)
        epochs = record.get("epochs_done") if isinstance(record.get("epochs_done"), int) else None
        if (path / CHECKPOINT_NAME).is_file():
            status = "resumable"
        elif record:
            status = "finished"
        else:
            status = "empty"
        out.append(RunInfo(path.name, path, size, status, epochs, _mtime(path), record))
    return out


def _entry(root: Path, name: str, what: str) -> Path:
    if not name or name in (".", "..") or "/" in name or os.sep in name or name.startswith("."):
        raise StudioError(f"bad {what} name '{name}'")
    path = root / name
    if not os.path.lexists(path):
        raise StudioError(f"no {what} called '{name}' in {root}")
    return path


def _remove(path: Path) -> int:
    size = folder_size(path)
    try:
        if path.is_symlink() or not path.is_dir():
            path.unlink()  # a link is removed, never what it points at
        else:
            shutil.rmtree(path)
    except OSError as exc:
        raise StudioError(f"cannot delete {path}: {exc.strerror or exc}") from None
    return size


def delete_saved_model(name: str, root: str | os.PathLike[str] | None = None) -> int:
    """Delete the saved model folder ``name``; returns the bytes freed."""
    return _remove(_entry(_models_root(root), name, "saved model"))


def delete_run(name: str, root: str | os.PathLike[str] | None = None) -> int:
    """Delete the run folder ``name`` (its checkpoints: it can no longer be resumed); returns the bytes freed."""
    return _remove(_entry(Path(root) if root is not None else runs_root(), name, "training run"))


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)  # no second copy of the weights; the old bundle's files stay as they are
    except OSError:
        shutil.copy2(src, dst)


def rename_saved_model(old: str, new: str, *, overwrite: bool = False) -> str:
    """Save the model ``old`` under the name ``new``; returns ``new``.

    As ``write_bundle`` does: the name is checked, a saved model already called ``new`` is replaced
    only with ``overwrite`` (the person confirmed it), and the renamed bundle is built in a temp folder,
    validated and then renamed into place, so a failure leaves ``old`` whole. ``old`` goes last.
    """
    from core.training.bundles import META_NAME, check_name, find_bundle, read_bundle  # noqa: PLC0415 - lazy: torch (see top)

    check_name(new)
    if new == old:
        return new
    bundle = find_bundle(old)
    if bundle is None:
        raise StudioError(f"no saved model called '{old}'")
    dest = bundle.folder.parent / new
    if not overwrite and (os.path.lexists(dest) or find_bundle(new) is not None):
        raise StudioError(f"a model called '{new}' already exists in {paths.models_dir()}; choose another name")
    meta = read_json(bundle.folder / META_NAME)
    meta["name"] = new
    display = str(meta.get("display_name") or old)
    meta["display_name"] = new + display[len(old):] if display.startswith(old) else new
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{new}.", suffix=".tmp", dir=bundle.folder.parent))
    except OSError as exc:
        raise StudioError(f"cannot rename the model to '{new}': {exc.strerror or exc}") from None
    try:
        shutil.copytree(bundle.folder, tmp, symlinks=True, copy_function=_link_or_copy, dirs_exist_ok=True)
        atomic_write_json(tmp / META_NAME, meta)  # a new file: the old bundle's meta.json is not touched
        read_bundle(tmp, expected_name=new)  # never publish a bundle the reader would refuse
        publish_folder(tmp, dest)
    except OSError as exc:
        raise StudioError(f"cannot rename the model to '{new}': {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(bundle.folder, ignore_errors=True)
    return new
