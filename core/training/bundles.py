"""Writing model bundles, and loading one as a model.

A bundle is written into a temp folder beside its final place and renamed into it,
so a crash never leaves half a bundle under its name; it is published only after
the reader (``core.bundle_files``) accepts it. Weights always load with
``weights_only=True``.

The format and the reader live in ``core.bundle_files`` (re-exported here, so
``core.training.bundles`` keeps its names); what a bundle means as a model (its
architecture plus its own weights entry) is resolved by ``core.models``, so a
bundle's name (or folder) works wherever a registry name does.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core import weights as weights_mod
from core.bundle_files import (
    FAMILY,
    FORMAT,
    FORMAT_VERSION,
    META_NAME,
    NAME_RE,
    WEIGHTS_NAME,
    Bundle,
    BundleNotFoundError,
    bundle_key,
    check_name,
    find_bundle,
    list_bundles,
    looks_like_path,
    models_dir,
    read_bundle,
)
from core.errors import StudioError, WeightsError
from core.io import publish_folder
from core.zoo import registry_spec
from core.zoo.heads import build_with_head

__all__ = ["Bundle", "FORMAT", "FORMAT_VERSION", "FAMILY", "META_NAME", "WEIGHTS_NAME", "models_dir", "write_bundle",
           "read_bundle", "find_bundle", "list_bundles", "build_bundle_model", "load_bundle_model", "delete_bundle",
           "unique_name", "check_name", "looks_like_path", "bundle_key", "BundleNotFoundError", "NAME_RE"]


# -- writing ---------------------------------------------------------------------


def unique_name(base: str, root: Path | None = None, *, others: tuple[Path, ...] = ()) -> str:
    """``base`` made valid, with -2, -3... appended while a bundle of that name exists (in ``root``
    or any of ``others``, e.g. the runs folder: a name is free only where nothing of it exists)."""
    root = root or models_dir()
    clean = re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-._")[:56] or "model"
    if not clean[0].isalnum():
        clean = "m" + clean
    name, n = clean, 1
    while any(os.path.lexists(folder / name) for folder in (root, *others)):
        n += 1
        name = f"{clean}-{n}"
    return name


def write_bundle(name: str, state_dict: Mapping[str, torch.Tensor], meta: dict[str, Any], *,
                 root: str | os.PathLike[str] | None = None, overwrite: bool = False) -> Path:
    """Write ``weights.pt`` and ``meta.json`` into a temp folder, then rename it to ``root/name``."""
    check_name(name)
    root = Path(root) if root is not None else models_dir()
    dest = root / name
    if dest.exists() and not overwrite:
        raise StudioError(f"a model called '{name}' already exists in {root}; choose another name")
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=root))
    except OSError as exc:
        raise StudioError(f"cannot write the model into {root}: {exc.strerror or exc}") from None
    try:
        weights = tmp / WEIGHTS_NAME
        buffer = io.BytesIO()  # serialised first: torch.save turns a failing write into a cryptic RuntimeError
        torch.save({k: v.detach().cpu().contiguous() for k, v in state_dict.items()}, buffer)
        with open(weights, "wb") as fh:
            fh.write(buffer.getbuffer())
            fh.flush()
            os.fsync(fh.fileno())
        full = {"format": FORMAT, "format_version": FORMAT_VERSION, "name": name, **meta,
                "weights": WEIGHTS_NAME, "weights_sha256": _sha256(weights),
                "created": meta.get("created") or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        with open(tmp / META_NAME, "w", encoding="utf-8") as fh:
            json.dump(full, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        read_bundle(tmp, expected_name=name)  # never publish a bundle the reader would refuse
        publish_folder(tmp, dest)  # an existing bundle is moved aside first and removed after
    except OSError as exc:
        raise StudioError(f"cannot write the model {dest}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def delete_bundle(name: str) -> None:
    bundle = find_bundle(name)
    if bundle is None:
        raise StudioError(f"no saved model called '{name}'")
    shutil.rmtree(bundle.folder)


def build_bundle_model(architecture: str, *, num_classes: int) -> nn.Module:
    """The base architecture with its head replaced for ``num_classes`` (random init)."""
    spec = registry_spec(architecture)
    if spec is None:
        raise StudioError(f"unknown architecture '{architecture}'")
    return build_with_head(spec, num_classes=num_classes)


def load_bundle_model(name_or_path: str | os.PathLike[str] | Bundle) -> tuple[nn.Module, Bundle]:
    """The bundle's model on the CPU in eval mode (weights loaded with ``weights_only=True``)."""
    bundle = name_or_path if isinstance(name_or_path, Bundle) else find_bundle(name_or_path)
    if bundle is None:
        raise StudioError(f"no saved model called '{name_or_path}' (looked in {models_dir()})")
    state = weights_mod.load_state_dict_file(bundle.weights_path)
    with torch.device("meta"):
        model = build_bundle_model(bundle.architecture, num_classes=len(bundle.classes))
    architecture = registry_spec(bundle.architecture)
    try:  # the architecture's key adapter; problems are named after the bundle
        weights_mod.load_into(model, state, dataclasses.replace(architecture, name=bundle_key(bundle)))
    except WeightsError as exc:
        raise WeightsError(f"{bundle.weights_path}: {exc}") from None
    return model.eval(), bundle
