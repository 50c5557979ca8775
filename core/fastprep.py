"""The weights' own preprocessing in numpy and Pillow alone: no torch, no torchvision.

The ONNX Runtime route (``core.quick``) classifies before torch is imported,
so it cannot call ``core.preprocess``; this module does the same steps with
the same library calls underneath. torchvision's ``F.resize`` on a PIL image
is Pillow's ``Image.resize`` (antialiased) at the size computed below, its
``F.center_crop`` is ``Image.crop`` (zero padding when the image is smaller),
and ``to_tensor`` + ``normalize`` are float32 ``/255``, ``-mean``, ``/std``:
the result equals ``core.preprocess.preprocess`` element for element
(tests/core/test_fastprep.py checks it against torchvision).

``pp`` is anything with ``resize_size``, ``crop_size``, ``mean``, ``std`` and
``interpolation`` (a ``core.zoo.Preprocess``, or ``Numbers`` read from an export's sidecar).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from core.images import trim_aspect

# torchvision InterpolationMode value -> Pillow filter (torchvision's own pil_modes_mapping)
PIL_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
    "lanczos": Image.Resampling.LANCZOS,
}


@dataclass(frozen=True)
class Numbers:
    """The five numbers of a preprocessing, torch-free (``core.zoo.Preprocess`` has the same fields)."""

    resize_size: int = 256
    crop_size: int = 224
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    interpolation: str = "bilinear"

    @classmethod
    def of(cls, pp: Any) -> Numbers:
        """From a ``Preprocess``-like object or a mapping of the same fields."""
        get = pp.get if isinstance(pp, Mapping) else lambda name: getattr(pp, name)
        return cls(int(get("resize_size")), int(get("crop_size")), tuple(float(v) for v in get("mean")),
                   tuple(float(v) for v in get("std")), str(get("interpolation")))

    def to_json(self) -> dict:
        return {"resize_size": self.resize_size, "crop_size": self.crop_size, "mean": list(self.mean),
                "std": list(self.std), "interpolation": self.interpolation}


def resized_size(width: int, height: int, short: int) -> tuple[int, int]:
    """(width, height) with the shorter side ``short``: torchvision's ``_compute_resized_output_size``."""
    if width <= height:
        return short, int(short * height / width)
    return int(short * width / height), short


def center_crop(image: Image.Image, size: int) -> Image.Image:
    """torchvision's ``F.center_crop`` on a PIL image (zero padding first when it is smaller than ``size``)."""
    width, height = image.size
    if size > width or size > height:
        pad_left = (size - width) // 2 if size > width else 0
        pad_top = (size - height) // 2 if size > height else 0
        padded = Image.new(image.mode, (max(width, size), max(height, size)), 0)
        padded.paste(image, (pad_left, pad_top))
        image = padded
        width, height = image.size
        if (width, height) == (size, size):
            return image
    top = int(round((height - size) / 2.0))
    left = int(round((width - size) / 2.0))
    return image.crop((left, top, left + size, top + size))


def preprocess_array(image: Image.Image, pp: Any) -> np.ndarray:
    """RGB PIL image -> normalised float32 array [3, crop, crop], equal to ``core.preprocess.preprocess``."""
    image = trim_aspect(image)  # a 1x20000 strip must not become a 256x5120000 one
    size = resized_size(*image.size, int(pp.resize_size))
    if size != image.size:
        image = image.resize(size, PIL_FILTERS[pp.interpolation])
    image = center_crop(image, int(pp.crop_size))
    array = np.asarray(image, dtype=np.uint8).astype(np.float32)
    array /= np.float32(255.0)
    array -= np.asarray(pp.mean, dtype=np.float32)
    array /= np.asarray(pp.std, dtype=np.float32)
    return np.ascontiguousarray(array.transpose(2, 0, 1))


def softmax_topk(logits: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise float32 softmax of ``logits`` [N, C] and its top ``k``: (probabilities, indices), best first."""
    logits = np.asarray(logits, dtype=np.float32)
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    probs = exp / exp.sum(axis=1, keepdims=True)
    # stable sort on -p: ties keep the lower index first, as torch.topk does on the CPU in practice
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(probs, order, axis=1), order
