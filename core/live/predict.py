"""Classify one live frame with a model an ``InferenceEngine`` runs: top-k, optionally Grad-CAM, a region, a mirror.

The frame goes through exactly what classify does to a photo: the model's own preprocessing
(``core.preprocess``) and the engine's forward pass (its device, memory format, ONNX Runtime or CUDA
graphs when they are on), so a frame and the same picture saved as a PNG get the same numbers. Grad-CAM
is ``core.explain.gradcam`` on the engine's module, mapped back onto the frame (or the region) it came
from. Weights follow the offline rule of classify: ``weights="none"`` (or a model without published
weights) runs untrained and says so; missing pretrained weights raise ``WeightsMissingError`` (or the
download's error), never a silent random model. Owned by one thread, the engine's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from core.errors import StudioError
from core.explain import cam_layer_for, gradcam
from core.live.frames import Frame
from core.preprocess import preprocess

__all__ = ["LiveResult", "LivePredictor", "crop_box"]

Roi = tuple[int, int, int, int]  # x, y, width, height in frame pixels


@dataclass(frozen=True, eq=False)
class LiveResult:
    frame_index: int
    t: float  # the frame's media time, seconds
    topk: list[tuple[str, float, int]]  # (label, probability, class index), best first
    latency_ms: float  # model time for this frame (preprocessing, forward, Grad-CAM when asked)
    cam: np.ndarray | None  # float32 H x W in 0..1 at the frame's (or the region's) resolution
    model: str
    untrained: bool
    roi: Roi | None  # the region classified, clipped to the frame (None: the whole frame)

    def to_json(self) -> dict:
        return {"frame": self.frame_index, "t": round(self.t, 6),
                "topk": [{"label": label, "prob": prob, "index": index} for label, prob, index in self.topk],
                "ms": round(self.latency_ms, 3)}


def crop_box(roi: Roi, width: int, height: int) -> Roi:
    """``roi`` clipped to a ``width`` x ``height`` frame; StudioError when nothing of it is inside."""
    x, y, w, h = (int(v) for v in roi)
    left, top = max(0, x), max(0, y)
    right, bottom = min(width, x + w), min(height, y + h)
    if right <= left or bottom <= top:
        raise StudioError(f"the region {x},{y} {w}x{h} lies outside the {width}x{height} frame")
    return left, top, right - left, bottom - top


class LivePredictor:
    """Classifies frames with ``model`` on ``engine`` (loaded on the first frame, or by ``load()``)."""

    def __init__(self, engine, model: str, *, weights: str = "default", topk: int = 5,
                 download: bool = True) -> None:
        self.engine = engine
        self.model = model
        self.weights = weights
        self.topk = topk
        self.download = download
        self._cam_layer: str | None = None

    def load(self):
        """Load the model now (the engine caches it); returns its ``LoadedModelInfo``."""
        return self._loaded().info

    def _loaded(self):
        # the engine's own loading and forward pass, so that numbers equal classify's
        loaded = self.engine._get(self.model, self.weights, download=self.download)
        if not 1 <= self.topk <= loaded.spec.num_classes:
            raise StudioError(f"top-k must be between 1 and {loaded.spec.num_classes}, got {self.topk}")
        return loaded

    def predict(self, frame: Frame, *, roi: Roi | None = None, cam: bool = False, mirror: bool = False) -> LiveResult:
        """Classify ``frame`` (mirrored first when ``mirror``; then only ``roi``, in the shown frame's pixels)."""
        loaded = self._loaded()
        start = time.perf_counter()
        pixels = _rgb_array(frame.image)
        if mirror:
            pixels = pixels[:, ::-1]
        box = None
        if roi is not None:
            box = crop_box(roi, pixels.shape[1], pixels.shape[0])
            x, y, w, h = box
            pixels = pixels[y:y + h, x:x + w]
        image = Image.fromarray(np.ascontiguousarray(pixels), "RGB")
        batch = preprocess(image, loaded.spec.preprocess)[None]
        probs, indices, _runtime = self.engine._forward(loaded, batch.to(self.engine.device), self.topk)
        if not all(np.isfinite(probs[0])):
            raise StudioError(f"{loaded.spec.name} produced NaN or infinite scores for frame {frame.index}; "
                              "its weights look damaged (import them again)")
        heat = self._cam(loaded, batch, indices[0][0], image) if cam else None
        labels = loaded.labels
        top = [(labels[i], float(p), int(i)) for i, p in zip(indices[0], probs[0])]
        return LiveResult(frame_index=frame.index, t=frame.t, topk=top,
                          latency_ms=(time.perf_counter() - start) * 1000, cam=heat, model=loaded.spec.name,
                          untrained=loaded.info.untrained, roi=box)

    def _cam(self, loaded, batch: torch.Tensor, class_index: int, image: Image.Image) -> np.ndarray:
        if self._cam_layer is None:
            self._cam_layer = cam_layer_for(loaded.spec)
        result = gradcam(loaded.module, self._cam_layer, self.engine.on_device(batch), class_index=class_index,
                         model_name=loaded.spec.name)
        return cam_on_image(result.heatmap, image.size, loaded.spec.preprocess)


def _rgb_array(image: np.ndarray) -> np.ndarray:
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise StudioError(f"a live frame must be H x W x 3 uint8 RGB, got {array.dtype} {array.shape}")
    return array


def cam_on_image(heatmap: np.ndarray, size: tuple[int, int], pp) -> np.ndarray:
    """A Grad-CAM map of the model's centre crop placed where that crop lies on a ``size`` (w, h) image.

    The preprocessing resizes the shorter side to ``resize_size`` and cuts the centre ``crop_size``
    square; outside that square the model saw nothing, and the map is 0 there.
    """
    width, height = size
    scale = min(width, height) / pp.resize_size  # trimming an extreme strip keeps its shorter side and centre
    side = max(1, round(pp.crop_size * scale))
    crop_w, crop_h = min(side, width), min(side, height)
    left, top = (width - crop_w) // 2, (height - crop_h) // 2
    placed = Image.fromarray(np.asarray(heatmap, dtype=np.float32), "F").resize((side, side), Image.Resampling.BILINEAR)
    full = np.zeros((height, width), dtype=np.float32)
    inner = np.asarray(placed, dtype=np.float32)
    off_x, off_y = (side - crop_w) // 2, (side - crop_h) // 2
    full[top:top + crop_h, left:left + crop_w] = inner[off_y:off_y + crop_h, off_x:off_x + crop_w]
    return np.clip(full, 0.0, 1.0)
