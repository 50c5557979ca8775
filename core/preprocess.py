"""The weights' own ``transforms()`` (torchvision ImageClassification), on PIL input.

Kept bit-for-bit equal to torchvision's preset so the same weights give the
same logits; the spec's ``Preprocess`` numbers stand in for the Weights enum,
which our own architectures do not have.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as F

from core.images import trim_aspect
from core.zoo.spec import Preprocess


def preprocess(image: Image.Image, pp: Preprocess) -> torch.Tensor:
    """RGB PIL image -> normalised float tensor [3, crop, crop]."""
    image = trim_aspect(image)  # a 1x20000 strip must not become a 256x5120000 one
    image = F.resize(image, [pp.resize_size], interpolation=InterpolationMode(pp.interpolation), antialias=True)
    image = F.center_crop(image, [pp.crop_size])
    array = np.asarray(image, dtype=np.uint8)
    tensor = torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)
    return F.normalize(tensor, mean=list(pp.mean), std=list(pp.std), inplace=True)
