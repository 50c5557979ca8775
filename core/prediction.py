"""What classifying one image gives: plain data, torch-free.

Both engines return these: ``core.inference.InferenceEngine`` (torch, or ONNX
Runtime behind it) and ``core.quick`` (ONNX Runtime before torch is imported).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TopK:
    index: int
    label: str
    prob: float


@dataclass(frozen=True)
class Prediction:
    """The outcome for one image: its top-k, or the reason it failed.

    ``infer_ms`` is the image's share of its batch's forward pass.
    """

    path: str
    model: str
    ok: bool
    error: str | None = None
    untrained: bool = False
    topk: tuple[TopK, ...] = ()
    decode_ms: float = 0.0
    infer_ms: float = 0.0
    runtime: str = "torch"  # what ran the forward pass: "torch", "onnxruntime" or "onnxruntime-int8"

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "ok": self.ok,
            "error": self.error,
            "model": self.model,
            "untrained": self.untrained,
            "topk": [{"index": t.index, "label": t.label, "prob": t.prob} for t in self.topk],
            "ms": {"decode": round(self.decode_ms, 3), "infer": round(self.infer_ms, 3)},
            "runtime": self.runtime,
        }
