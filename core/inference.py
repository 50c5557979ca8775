"""InferenceEngine: device, model cache, preprocessing, batched prediction.

One engine is owned by one thread (the GUI's inference worker, or the CLI's
main thread). It returns plain ``Prediction`` records: no tensors escape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator
import threading

# API stub: implementation in progress.

ProgressFn = Callable[[int, "int | None"], None]  # (bytes done, bytes total or None)


@dataclass(frozen=True)
class TopK:
    index: int
    label: str
    prob: float


@dataclass(frozen=True)
class Prediction:
    path: str
    model: str
    ok: bool
    error: str | None = None
    untrained: bool = False
    topk: tuple[TopK, ...] = ()
    decode_ms: float = 0.0
    infer_ms: float = 0.0

    def to_json(self) -> dict: ...


@dataclass(frozen=True)
class LoadedModelInfo:
    name: str
    display_name: str
    untrained: bool
    weights: str  # "default", "none" or a file path
    device: str
    load_ms: float


class InferenceEngine:
    def __init__(self, device: str = "auto", *, cache_size: int = 3, draft: bool = True) -> None: ...

    @property
    def device(self) -> str: ...

    def set_device(self, device: str) -> None: ...

    def load(self, model: str, weights: str = "default", *, download: bool = True,
             progress: ProgressFn | None = None, cancel: threading.Event | None = None) -> LoadedModelInfo: ...

    def classify_iter(self, paths: Iterable[str | Path], *, model: str, weights: str = "default",
                      topk: int = 5, batch_size: int = 8,
                      cancel: threading.Event | None = None) -> Iterator[Prediction]: ...

    def classify(self, paths, **kwargs) -> list[Prediction]: ...
