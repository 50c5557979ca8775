"""Checkpoints: everything a run needs to go on as if it had never stopped, safe to load.

A checkpoint is one ``torch.save`` file of plain types and tensors only (RNG
states included, as tensors), so it always loads with ``weights_only=True``.
It is read back structure first (``core.torchfile``, ``core.torchload``), so a tampered file is a
clear error, never a traceback or a multi-gigabyte allocation.
It is written whole into memory first and then through ``core.io.atomic_write``:
a full disk or a read-only folder raises a clear error and leaves the previous
checkpoint untouched, with no partial file beside it.
"""

from __future__ import annotations

import io
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core import torchload
from core.errors import StudioError, WeightsError
from core.io import atomic_write_bytes

__all__ = ["CHECKPOINT_NAME", "BEST_NAME", "FORMAT", "FORMAT_VERSION", "capture_rng", "restore_rng",
           "save_checkpoint", "load_checkpoint", "find_checkpoint"]

CHECKPOINT_NAME = "checkpoint.pt"
BEST_NAME = "best.pt"
FORMAT = "convnet-studio.checkpoint"
FORMAT_VERSION = 1
MAX_CHECKPOINT_BYTES = 8 * 1024**3  # model + optimizer state (2x the model for Adam) of the largest registry entry


def capture_rng(data_order: torch.Generator | None = None) -> dict[str, Any]:
    """torch (CPU and CUDA), numpy, python and data-order RNG states as tensors and plain values."""
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
        "numpy": {"kind": str(np_kind), "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
                  "pos": int(np_pos), "has_gauss": int(np_has_gauss), "gauss": float(np_gauss)},
        "python": {"version": int(py_version), "state": torch.tensor(py_state, dtype=torch.int64),
                   "gauss": py_gauss},
    }
    if data_order is not None:
        state["data_order"] = data_order.get_state()
    return state


def restore_rng(state: dict[str, Any], data_order: torch.Generator | None = None) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    npy = state["numpy"]
    np.random.set_state((npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                         npy["gauss"]))
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    if data_order is not None and "data_order" in state:
        data_order.set_state(state["data_order"])


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Serialise in memory, then write atomically; any failure raises StudioError naming the file."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, **payload}, buffer)
    return atomic_write_bytes(path, buffer.getbuffer())


def find_checkpoint(where: str | os.PathLike[str]) -> Path:
    """A checkpoint file, or the run folder holding one."""
    path = Path(where)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise StudioError(f"no checkpoint to resume from at {where} (expected {CHECKPOINT_NAME} in the run folder)")
    return path


def load_checkpoint(where: str | os.PathLike[str]) -> dict[str, Any]:
    """Load with ``weights_only=True`` (never anything else), structure first, and check the format.

    The file is walked before torch reads its data (``core.torchfile``, ``core.torchload``: only
    dense tensors backed by bytes in the file, no raw byte buffers, meta or
    sparse tensors), memory-mapped, and its top-level fields are type-checked,
    so a damaged or tampered checkpoint is a ``WeightsError`` naming the file.
    """
    path = find_checkpoint(where)
    plan = torchload.plan_file(path, max_bytes=MAX_CHECKPOINT_BYTES, what="checkpoint")
    data = torchload.load_planned(path, plan, mmap=False, what="checkpoint")  # read whole: bounded by the plan
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise WeightsError(f"{path} is not a ConvNet Studio training checkpoint")
    if data.get("format_version") != FORMAT_VERSION:
        raise WeightsError(f"{path} has checkpoint format {data.get('format_version')!r}; this version of "
                           f"ConvNet Studio reads format {FORMAT_VERSION}")
    problem = _shape_problem(data, full=path.name != BEST_NAME)
    if problem:
        raise WeightsError(f"{path} is damaged or was changed by hand: {problem}; it cannot be resumed")
    return data


_FIELDS: dict[str, type | tuple[type, ...]] = {
    "epochs_done": int, "step": int, "micro_batch": int, "optimizer": dict, "scheduler": dict, "scaler": dict,
    "classes": list, "settings": dict, "data": dict, "best": (dict, type(None)), "last": (dict, type(None)),
    "skipped": dict, "callbacks": dict, "rng": dict,
}


def _shape_problem(data: dict[str, Any], *, full: bool) -> str | None:
    """What is wrong with a checkpoint's top-level fields, or None."""
    model = data.get("model")
    if not (isinstance(model, dict) and model and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                      for k, v in model.items())):
        return "'model' is not a state dict of tensors"
    if not full:  # best.pt: the model and its epoch
        return None
    for key, kind in _FIELDS.items():
        value = data.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            return f"'{key}' is missing or has the wrong type"
        if kind is int and not 0 <= value < 2**31:
            return f"'{key}' is out of range ({value})"
    rng = data["rng"]
    if not isinstance(rng.get("torch"), torch.Tensor) or not isinstance(rng.get("numpy"), dict) \
            or not isinstance(rng.get("python"), dict) or not isinstance(rng.get("cuda"), list):
        return "its random-number states are malformed"
    return None
