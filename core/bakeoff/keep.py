"""Keeping a bake-off's model as a saved model, or discarding its bundle.

Every model a bake-off trains is saved as a bundle inside the bake-off's own folder
(``OUT/models/<folder>-<model>``), so nothing lands among the person's saved models until they choose:

* :func:`keep_model` copies that bundle into the app's saved models (``core.paths.models_dir()``) under
  a new name, ``<folder>-<model>`` or ``<folder>-<model>-2``... when that is taken: an existing saved
  model is never replaced. The copy is built in a temp folder, renamed in the bundle's metadata,
  checked by the bundle reader and only then published (``core.io.publish_folder``); the weights are
  hard-linked where the file system allows (no second copy of a large file). Which model was kept
  under which name is remembered in ``OUT/kept.json``, so keeping twice gives the same saved model.
* :func:`discard_model` deletes the bundle inside the bake-off's folder only (never a saved model,
  never through a symbolic link).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from core.bakeoff.plan import BakeoffPlan
from core.bundle_files import META_NAME, NAME_RE, find_bundle, read_bundle
from core.errors import StudioError, WeightsError
from core.io import atomic_write_json, publish_folder
from core.paths import models_dir
from core.training.bundles import unique_name
from core.training.storage import delete_saved_model
from core.userfiles import read_json

__all__ = ["KEPT_NAME", "bundle_dir", "kept_models", "kept_name", "keep_model", "discard_model"]

KEPT_NAME = "kept.json"
MAX_KEPT_BYTES = 1 << 20


def bundle_dir(plan: BakeoffPlan, model: str) -> Path | None:
    """The bundle ``model`` left in the bake-off's folder, or None (never trained, failed, or discarded)."""
    folder = plan.models_root() / plan.bundle_name(model)
    return folder if folder.is_dir() and not folder.is_symlink() else None


def _kept_file(plan: BakeoffPlan) -> dict:
    path = Path(plan.out) / KEPT_NAME
    try:
        data = read_json(path, max_bytes=MAX_KEPT_BYTES) if path.is_file() else {}
    except (OSError, StudioError):
        return {}
    return {str(k): v for k, v in data.items()} if isinstance(data, dict) else {}


def kept_models(plan: BakeoffPlan) -> dict[str, str]:
    """model -> the saved model it was kept as, for the kept models whose saved model still exists."""
    return {model: name for model, name in _kept_file(plan).items()
            if model in plan.models and isinstance(name, str) and NAME_RE.fullmatch(name) and _saved(name)}


def kept_name(plan: BakeoffPlan, model: str) -> str | None:
    return kept_models(plan).get(model)


def _saved(name: str) -> bool:
    try:
        return find_bundle(name) is not None
    except (StudioError, OSError):
        return False


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def keep_model(plan: BakeoffPlan, model: str, *, root: str | os.PathLike[str] | None = None) -> str:
    """Copy ``model``'s bundle into the saved models (``root``, default the app's); returns its saved name.

    A model kept before (and still saved) is not copied again. StudioError when the bundle is missing
    or damaged, or the copy cannot be written.
    """
    if model not in plan.models:
        raise StudioError(f"{model} is not part of this bake-off")
    already = kept_name(plan, model)
    if already is not None and root is None:
        return already
    source = bundle_dir(plan, model)
    if source is None:
        raise StudioError(f"the bake-off has no saved weights for {model} (it did not finish, or was discarded)")
    try:
        read_bundle(source)
    except WeightsError as exc:
        raise StudioError(f"cannot keep {model}: {exc}") from None
    root = Path(root) if root is not None else models_dir()
    name = unique_name(plan.bundle_name(model), root)
    _publish_copy(source, root, name)
    _remember(plan, model, name)
    return name


def _publish_copy(source: Path, root: Path, name: str) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=root))
    except OSError as exc:
        raise StudioError(f"cannot write into {root}: {exc.strerror or exc}") from None
    try:
        shutil.copytree(source, tmp, symlinks=False, copy_function=_link_or_copy, dirs_exist_ok=True)
        meta = read_json(tmp / META_NAME)
        old = str(meta.get("name") or "")
        display = str(meta.get("display_name") or old)
        meta["name"] = name
        meta["display_name"] = name + display[len(old):] if old and display.startswith(old) else name
        (tmp / META_NAME).unlink()  # a hard link to the bake-off's file: replace it, never write through it
        atomic_write_json(tmp / META_NAME, meta)
        read_bundle(tmp, expected_name=name)  # never publish a bundle the reader would refuse
        if os.path.lexists(root / name):  # taken since the name was chosen: never replace a saved model
            raise StudioError(f"a saved model called '{name}' appeared meanwhile; keep it again")
        publish_folder(tmp, root / name)
    except (OSError, ValueError, WeightsError) as exc:
        raise StudioError(f"cannot keep the model as '{name}': {getattr(exc, 'strerror', None) or exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _remember(plan: BakeoffPlan, model: str, name: str) -> None:
    kept = {**_kept_file(plan), model: name}
    try:
        atomic_write_json(Path(plan.out) / KEPT_NAME, kept)
    except StudioError:
        pass  # the saved model exists either way; only "kept before" is forgotten


def discard_model(plan: BakeoffPlan, model: str) -> int:
    """Delete ``model``'s bundle in the bake-off's folder (a saved copy stays); returns the bytes freed."""
    if model not in plan.models:
        raise StudioError(f"{model} is not part of this bake-off")
    return delete_saved_model(plan.bundle_name(model), root=plan.models_root())
