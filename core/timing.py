"""How long one forward pass takes: the one timing rule that Compare and the bake-off both report."""

from __future__ import annotations

import statistics
import threading
import time

import torch

from core.errors import Cancelled

__all__ = ["median_forward_ms"]


def median_forward_ms(module: torch.nn.Module, batch: torch.Tensor, *, runs: int = 5,
                      cancel: threading.Event | None = None) -> float:
    """Median milliseconds of ``runs`` forwards of ``batch`` (after one untimed warm-up), under
    ``torch.inference_mode``, waiting for CUDA to finish each. ``cancel`` is checked before every run;
    setting it raises Cancelled."""
    times = []
    with torch.inference_mode():
        for i in range(runs + 1):
            if cancel is not None and cancel.is_set():
                raise Cancelled("latency measurement")
            start = time.perf_counter()
            module(batch)
            if batch.device.type == "cuda":
                torch.cuda.synchronize(batch.device)
            if i:
                times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)
