"""One model's outcome in a bake-off, as plain data (JSON on disk, picklable for Ray).

A :class:`JobResult` is written atomically to ``OUT/results/<model>.json`` when a model's job ends
(completed, early stopped or failed; a skipped model gets one too), so a resumed bake-off never
trains it again. ``predictions`` follow the order of the split's validation images, so two results
of the same bake-off can be compared image by image (the paired tests of ``core.bakeoff.stats``).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from core.errors import StudioError
from core.io import atomic_write_json

__all__ = ["JobResult", "FINISHED", "read_result", "write_result"]

FINISHED = ("completed", "early_stopped")  # a model with usable weights and predictions
STATUSES = (*FINISHED, "failed", "skipped", "cancelled")
MAX_RESULT_BYTES = 64 * 1024**2  # a result file is ours, but it sits in a folder the person can edit


@dataclass
class JobResult:
    model: str  # registry name of the architecture
    display_name: str
    status: str  # one of STATUSES
    message: str = ""
    strategy: str = ""  # head | finetune | scratch, as it ran
    epochs: int = 0  # planned
    epochs_done: int = 0
    val_acc: float | None = None  # of the kept weights, exactly what `train` reports for the same run
    val_loss: float | None = None
    # per epoch: epoch, train_loss, val_loss, val_acc, seconds
    history: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0  # wall time of the fit (learning-rate finder included)
    predictions: list[int] = field(default_factory=list)  # per validation image; -1: it could not be decoded
    confidences: list[float] = field(default_factory=list)  # probability of each prediction
    latency_ms: float | None = None  # median forward time of one image on the job's device
    params: int = 0
    bundle: str | None = None  # the saved model's folder
    bundle_bytes: int = 0
    device: str = ""

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> JobResult:
        if not isinstance(data, dict):
            raise StudioError("not a bake-off result (expected a JSON object)")
        known = {f.name for f in fields(cls)}
        result = cls(**{k: v for k, v in data.items() if k in known})
        if result.status not in STATUSES or not isinstance(result.model, str):
            raise StudioError(f"not a bake-off result (status {result.status!r})")
        if len(result.confidences) != len(result.predictions):
            raise StudioError("damaged bake-off result: predictions and confidences differ in length")
        return result


def write_result(path: str | os.PathLike[str], result: JobResult) -> Path:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_json(path, result.to_json())


def read_result(path: str | os.PathLike[str]) -> JobResult | None:
    """The result at ``path``, or None when there is none or it is damaged (the job then runs again)."""
    path = Path(path)
    try:
        if not path.is_file() or path.stat().st_size > MAX_RESULT_BYTES:
            return None
        return JobResult.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, StudioError):
        return None
