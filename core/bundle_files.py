"""Saved model bundles on disk: the format, the strict reader and the lookup by name or folder.

``<user data dir>/models/<NAME>/`` (``core.paths.models_dir()``, via platformdirs,
so ``XDG_DATA_HOME`` is honoured) holds ``weights.pt`` + ``meta.json``. The reader
checks ``meta.json`` strictly (types, ranges, names, that the weights file is inside
the folder) and raises ``WeightsError`` saying what is wrong; it never loads the
weights. Writing (atomic, checked by this reader) is ``core.training.bundles``; what a
bundle means as a model (its architecture plus these weights) is ``core.models``.

A path names exactly that folder (never a saved model of the same base name); a bare
name is looked up in the models folder.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import paths
from core.errors import StudioError, UnknownModelError, WeightsError
from core.userfiles import UnreadableFile, read_json
from core.zoo import Preprocess, registry_spec

__all__ = ["Bundle", "FORMAT", "FORMAT_VERSION", "FAMILY", "META_NAME", "WEIGHTS_NAME", "models_dir", "check_name",
           "read_bundle", "find_bundle", "list_bundles", "looks_like_path", "bundle_key", "BundleNotFoundError"]

FORMAT = "convnet-studio.bundle"
FORMAT_VERSION = 1
FAMILY = "My models"
META_NAME = "meta.json"
WEIGHTS_NAME = "weights.pt"
MAX_META_BYTES = 4 * 1024 * 1024
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")


def models_dir() -> Path:
    """Where bundles live (read at call time, so tests can move XDG_DATA_HOME)."""
    return paths.models_dir()


def check_name(name: object) -> str:
    """A bundle name: 1-64 letters, digits, ``.``, ``_`` or ``-``, starting with a letter or digit."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or name.endswith((".tmp", ".old")):
        raise StudioError(f"bad model name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting "
                          "with a letter or digit (no spaces or slashes)")
    return name


@dataclass(frozen=True)
class Bundle:
    """A validated bundle; ``folder`` is absolute."""

    name: str
    folder: Path
    display_name: str
    architecture: str  # registry name of the base architecture
    classes: tuple[str, ...]
    preprocess: Preprocess
    weights_path: Path
    weights_sha256: str | None
    params: int | None
    metrics: dict[str, Any]
    training: dict[str, Any]
    created: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "folder": str(self.folder), "display_name": self.display_name,
                "architecture": self.architecture, "classes": list(self.classes),
                "preprocess": dataclasses.asdict(self.preprocess), "weights": str(self.weights_path),
                "params": self.params, "metrics": self.metrics, "training": self.training, "created": self.created}


# -- reading -----------------------------------------------------------------------


def _fail(folder: Path, problem: str) -> WeightsError:
    return WeightsError(f"{folder} is not a valid model bundle: {problem}")


def _get(meta: dict, key: str, kind: type | tuple[type, ...], folder: Path, required: bool = True) -> Any:
    if key not in meta:
        if required:
            raise _fail(folder, f"{META_NAME} has no '{key}'")
        return None
    value = meta[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise _fail(folder, f"'{key}' in {META_NAME} must be {names}, not {type(value).__name__}")
    return value


def read_bundle(folder: str | os.PathLike[str], *, expected_name: str | None = None) -> Bundle:
    """Validate ``folder/meta.json`` and the weights file's place; raise WeightsError otherwise."""
    folder = Path(folder).absolute()
    meta_path = folder / META_NAME
    try:  # a FIFO, a device or a huge file is refused without blocking (core.userfiles)
        meta = read_json(meta_path, max_bytes=MAX_META_BYTES)
    except FileNotFoundError:
        raise _fail(folder, f"it has no {META_NAME}") from None
    except UnreadableFile as exc:
        raise _fail(folder, str(exc)) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _fail(folder, f"{META_NAME} is not a ConvNet Studio model description")
    version = _get(meta, "format_version", int, folder)
    if version > FORMAT_VERSION:
        raise _fail(folder, f"it was saved by a newer ConvNet Studio (format {version}; this one reads "
                            f"{FORMAT_VERSION}): update the app")
    if version < 1:
        raise _fail(folder, f"unknown format version {version}")
    name = _get(meta, "name", str, folder)
    try:
        check_name(name)
    except StudioError as exc:
        raise _fail(folder, str(exc)) from None
    architecture = _get(meta, "architecture", str, folder)
    if registry_spec(architecture) is None:
        raise _fail(folder, f"unknown architecture '{architecture}'")
    if expected_name is None and NAME_RE.fullmatch(folder.name):
        expected_name = folder.name  # a copied or renamed folder is known by its folder name
    return Bundle(
        name=expected_name or name,
        folder=folder,
        display_name=_display_name(meta, folder, name),
        architecture=registry_spec(architecture).name,  # type: ignore[union-attr]
        classes=_classes(meta, folder),
        preprocess=_preprocess(meta, folder),
        weights_path=_weights_path(meta, folder),
        weights_sha256=_get(meta, "weights_sha256", str, folder, required=False),
        params=_get(meta, "params", int, folder, required=False),
        metrics=_get(meta, "metrics", dict, folder, required=False) or {},
        training=_get(meta, "training", dict, folder, required=False) or {},
        created=_get(meta, "created", str, folder, required=False) or "",
    )


def _display_name(meta: dict, folder: Path, name: str) -> str:
    value = _get(meta, "display_name", str, folder, required=False) or name
    if len(value) > 200 or any(ord(c) < 32 for c in value):
        raise _fail(folder, "'display_name' is too long or holds control characters")
    return value


def _classes(meta: dict, folder: Path) -> tuple[str, ...]:
    classes = _get(meta, "classes", list, folder)
    if len(classes) < 2 or len(classes) > 100_000:
        raise _fail(folder, f"'classes' must list 2 to 100000 names, it has {len(classes)}")
    for c in classes:
        if not isinstance(c, str) or not c.strip() or len(c) > 256:
            raise _fail(folder, f"class name {c!r} is not a non-empty string of at most 256 characters")
    if len(set(classes)) != len(classes):
        raise _fail(folder, "'classes' has duplicate names")
    return tuple(classes)


def _preprocess(meta: dict, folder: Path) -> Preprocess:
    pp = _get(meta, "preprocess", dict, folder)
    sizes = {}
    for key in ("resize_size", "crop_size"):
        value = _get(pp, key, int, folder)
        if not 8 <= value <= 4096:
            raise _fail(folder, f"preprocess '{key}' must be between 8 and 4096, got {value}")
        sizes[key] = value
    if sizes["crop_size"] > sizes["resize_size"]:
        raise _fail(folder, "preprocess 'crop_size' is larger than 'resize_size'")
    stats = {}
    for key in ("mean", "std"):
        value = _get(pp, key, list, folder)
        # finite too: Python's json reads NaN and Infinity
        if len(value) != 3 or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                      and math.isfinite(v) for v in value):
            raise _fail(folder, f"preprocess '{key}' must be 3 numbers")
        if key == "std" and min(value) <= 0:
            raise _fail(folder, "preprocess 'std' must be positive")
        stats[key] = tuple(float(v) for v in value)
    interpolation = _get(pp, "interpolation", str, folder)
    if interpolation not in INTERPOLATIONS:
        raise _fail(folder, f"preprocess 'interpolation' must be one of {', '.join(INTERPOLATIONS)}")
    return Preprocess(resize_size=sizes["resize_size"], crop_size=sizes["crop_size"], mean=stats["mean"],
                      std=stats["std"], interpolation=interpolation)


def _weights_path(meta: dict, folder: Path) -> Path:
    relative = _get(meta, "weights", str, folder)
    if (not relative or os.path.isabs(relative) or ".." in Path(relative).parts or "\\" in relative
            or "\x00" in relative):
        raise _fail(folder, f"weights file '{relative}' must be a plain name inside the bundle folder")
    path = (folder / relative).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise _fail(folder, f"weights file '{relative}' points outside the bundle folder")
    if not path.is_file():
        raise _fail(folder, f"weights file '{relative}' is missing")
    return path


# -- lookup ------------------------------------------------------------------------


def looks_like_path(text: str) -> bool:
    """True for a folder path rather than a saved model's name: it holds a path separator (or is ``~``/``.``)."""
    return ("/" in text or os.sep in text or (os.altsep is not None and os.altsep in text)
            or text.startswith("~") or text in (".", ".."))


class BundleNotFoundError(UnknownModelError):
    """``--model PATH`` names a folder that does not exist (or is not a folder)."""

    def __init__(self, path: str, problem: str) -> None:
        self.name = path
        StudioError.__init__(self, f"no saved model at {path}: {problem}")


def find_bundle(name_or_path: str | os.PathLike[str]) -> Bundle | None:
    """The bundle ``name_or_path`` names: exactly that folder for a path, else the saved model of that name.

    A path (anything with a path separator, see :func:`looks_like_path`) is only ever that folder:
    a missing one raises :class:`BundleNotFoundError`, never a fallback to a saved model with the
    same base name. A bare name is looked up in the models folder (without case), then as a folder
    of that name in the current directory. None when neither exists; a folder that exists but is not
    a valid bundle raises ``WeightsError``.
    """
    text = os.fspath(name_or_path).strip()
    if not text:
        return None
    if looks_like_path(text):
        path = Path(text).expanduser()
        if not path.exists():
            raise BundleNotFoundError(text, "the folder does not exist")
        if not path.is_dir():
            raise BundleNotFoundError(text, "it is not a folder (a saved model is a folder with meta.json)")
        return read_bundle(path)
    if NAME_RE.fullmatch(text):
        root = models_dir()
        folder = root / text
        if not folder.is_dir() and root.is_dir():  # names are matched without case, as registry names are
            folder = next((p for p in root.iterdir() if p.name.lower() == text.lower() and p.is_dir()), folder)
        if folder.is_dir():
            return read_bundle(folder)
    if Path(text).is_dir():
        return read_bundle(Path(text))
    return None


def bundle_key(bundle: Bundle) -> str:
    """The model name that finds exactly this bundle again: its name in the models folder, else its folder."""
    try:
        in_models = bundle.folder.parent.resolve() == models_dir().resolve() and bundle.folder.name == bundle.name
    except OSError:
        in_models = False
    return bundle.name if in_models else str(bundle.folder)


def list_bundles(root: str | os.PathLike[str] | None = None) -> list[Bundle]:
    """Valid bundles in the models folder, sorted by name; invalid folders are left out."""
    folder = Path(root) if root is not None else models_dir()
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.iterdir(), key=lambda p: p.name.lower()):
        if path.is_dir() and not path.name.startswith("."):
            try:
                out.append(read_bundle(path))
            except WeightsError:
                continue
    return out
