"""Augmentation presets on uint8 CHW tensors, and previews of them for the wizard.

The decode cache holds every image at the training size; augmentations work on
those small tensors (cheap) and draw from torch's global RNG, whose state is in
every checkpoint, so a resumed run augments exactly as an uninterrupted one.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2 as T

from core.data import decode_sample, fit_image
from core.errors import StudioError
from core.training.settings import AUGMENT_PRESETS

__all__ = ["PRESETS", "build_augment", "preview"]

PRESETS = AUGMENT_PRESETS  # the names and descriptions live with the other settings

Augment = Callable[[torch.Tensor], torch.Tensor]


def build_augment(preset: str, size: int) -> Augment | None:
    """The transform of ``preset`` for ``size`` x ``size`` uint8 tensors (None for "none")."""
    if preset not in PRESETS:
        raise StudioError(f"unknown augmentation '{preset}' (choose one of: {', '.join(PRESETS)})")
    if preset == "none":
        return None
    if preset == "light":
        return T.Compose([
            T.RandomResizedCrop(size, scale=(0.75, 1.0), ratio=(3 / 4, 4 / 3), antialias=True),
            T.RandomHorizontalFlip(),
        ])
    return T.Compose([
        T.RandomResizedCrop(size, scale=(0.35, 1.0), antialias=True),
        T.RandomHorizontalFlip(),
        T.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.05),
        T.RandomGrayscale(p=0.05),
        T.RandomErasing(p=0.25, value=0),
    ])


def preview(image: Image.Image | str | os.PathLike[str], preset: str, *, size: int = 224, count: int = 8,
            seed: int = 0) -> list[Image.Image]:
    """``count`` augmented versions of one image (decoded and cropped as for training).

    Reproducible for a seed and leaves torch's global RNG untouched.
    """
    array = fit_image(image, size) if isinstance(image, Image.Image) else decode_sample(os.fspath(image), size)
    tensor = torch.from_numpy(array.copy()).permute(2, 0, 1)
    augment = build_augment(preset, size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return [to_pil(augment(tensor) if augment else tensor) for _ in range(count)]


def to_pil(array: np.ndarray | torch.Tensor) -> Image.Image:
    """A uint8 HWC array or CHW tensor as a PIL image (for previews)."""
    if isinstance(array, torch.Tensor):
        array = array.permute(1, 2, 0).numpy()
    return Image.fromarray(np.ascontiguousarray(array))
