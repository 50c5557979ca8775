"""Checkpoints: everything a run needs to go on as if it had never stopped, safe to load.

A checkpoint is one ``torch.save`` file of plain types and tensors only (RNG
states included, as tensors), so it always loads with ``weights_only=True``.
It is written whole into memory first and then through ``core.io.atomic_write``:
a full disk or a read-only folder raises a clear error and leaves the previous
checkpoint untouched, with no partial file beside it.
"""

from __future__ import annotations

import io
import os
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.errors import StudioError, WeightsError
from core.io import atomic_write_bytes

__all__ = ["CHECKPOINT_NAME", "BEST_NAME", "FORMAT", "FORMAT_VERSION", "capture_rng", "restore_rng",
           "save_checkpoint", "load_checkpoint", "find_checkpoint"]

CHECKPOINT_NAME = "checkpoint.pt"
BEST_NAME = "best.pt"
FORMAT = "convnet-studio.checkpoint"
FORMAT_VERSION = 1


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
    """Load with ``weights_only=True`` (never anything else) and check the format."""
    path = find_checkpoint(where)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsError(f"{path} holds objects a checkpoint may not contain; loading it was refused "
                           f"({str(exc).splitlines()[0][:160]})") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds on a damaged file
        raise WeightsError(f"{path} is not a readable checkpoint (damaged or cut short?): "
                           f"{type(exc).__name__}: {str(exc)[:160]}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise WeightsError(f"{path} is not a ConvNet Studio training checkpoint")
    if data.get("format_version") != FORMAT_VERSION:
        raise WeightsError(f"{path} has checkpoint format {data.get('format_version')!r}; this version of "
                           f"ConvNet Studio reads format {FORMAT_VERSION}")
    return data
