"""What the engine returns (plain data: no tensors cross threads) and where it can run."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from core.errors import StudioError
from core.prediction import Prediction, TopK  # noqa: F401 (re-exported: the records every engine returns)
from core.weights_store import WeightsInfo  # noqa: F401 (the type of LoadedModelInfo.source)


@dataclass(frozen=True)
class LoadedModelInfo:
    name: str
    display_name: str
    untrained: bool
    weights: str  # "default", "none" or a file path
    device: str
    load_ms: float
    num_classes: int
    source: WeightsInfo | None = None  # what the weights are (official, imported, ...): core.weights_store


def available_devices() -> list[str]:
    """Device choices for pickers: always auto and cpu, plus what this machine has."""
    devices = ["auto", "cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks cuda, then mps, then cpu; an unavailable choice is an error."""
    name = (name or "auto").lower()
    if name == "auto":
        name = next((d for d in ("cuda", "mps") if d in available_devices()), "cpu")
    if name not in available_devices():
        raise StudioError(f"device '{name}' is not available here (available: {', '.join(available_devices())})")
    return torch.device(name)


def _module_bytes(module: nn.Module) -> int:
    tensors = list(module.parameters()) + list(module.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


def default_memory_budget() -> int:
    """A quarter of the machine's RAM, at least 1 GiB: room for a few models, not the zoo."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 * 2**30
    return max(2**30, total // 4)
