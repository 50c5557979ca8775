"""Pictures of what a network sees, as numpy/PIL images (no Qt): colour maps,
channel grids, Grad-CAM overlays and first-layer filter tiles.

Importing this module does not import torch (the GUI's views use the colour
maps before torch has loaded); the two functions that need it import it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from core.images import trim_aspect

if TYPE_CHECKING:
    import torch

# Viridis at 9 evenly spaced stops (matplotlib's values), interpolated to 256 entries.
_VIRIDIS_STOPS = np.array(
    [
        [68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
        [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37],
    ],
    dtype=np.float32,
)
# Inferno-like "jet replacement" for heat maps: black -> purple -> orange -> yellow.
_HEAT_STOPS = np.array(
    [[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21], [250, 193, 39],
     [252, 255, 164]],
    dtype=np.float32,
)


def _lut(stops: np.ndarray) -> np.ndarray:
    x = np.linspace(0, 1, len(stops))
    grid = np.linspace(0, 1, 256)
    return np.stack([np.interp(grid, x, stops[:, c]) for c in range(3)], axis=1).astype(np.uint8)


VIRIDIS = _lut(_VIRIDIS_STOPS)
HEAT = _lut(_HEAT_STOPS)


def colorize(values: np.ndarray, lut: np.ndarray = VIRIDIS, *, vmin: float | None = None,
             vmax: float | None = None) -> np.ndarray:
    """Map a 2-D float array to RGB uint8 through ``lut`` (min..max unless given)."""
    lo = float(values.min()) if vmin is None else vmin
    hi = float(values.max()) if vmax is None else vmax
    scaled = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
    return lut[np.clip(scaled * 255, 0, 255).astype(np.uint8)]


def channel_grid(activation: torch.Tensor, order: list[int], *, max_channels: int = 64, tile: int = 64,
                 gap: int = 2) -> np.ndarray:
    """A grid (RGB uint8) of the first ``max_channels`` channels in ``order``, each min-max scaled."""
    chosen = order[:max_channels]
    cols = math.ceil(math.sqrt(len(chosen)))
    rows = math.ceil(len(chosen) / cols)
    grid = np.full((rows * (tile + gap) - gap, cols * (tile + gap) - gap, 3), 255, np.uint8)
    for i, channel in enumerate(chosen):
        fmap = activation[channel].numpy()
        image = Image.fromarray(colorize(fmap)).resize((tile, tile), Image.Resampling.NEAREST)
        r, c = divmod(i, cols)
        grid[r * (tile + gap): r * (tile + gap) + tile, c * (tile + gap): c * (tile + gap) + tile] = np.asarray(image)
    return grid


def vector_image(values: torch.Tensor, *, cell: int = 8) -> np.ndarray:
    """A 1-D activation (e.g. logits) as a square-ish colour grid, row by row."""
    flat = values.flatten().numpy()
    cols = math.ceil(math.sqrt(flat.size))
    padded = np.full(cols * math.ceil(flat.size / cols), flat.min(), np.float32)
    padded[: flat.size] = flat
    grid = colorize(padded.reshape(-1, cols))
    return np.asarray(Image.fromarray(grid).resize((cols * cell, grid.shape[0] * cell), Image.Resampling.NEAREST))


def overlay(image: Image.Image, heatmap: np.ndarray, *, opacity: float = 0.5) -> Image.Image:
    """The heat map (values in [0, 1]) blended over ``image`` at ``opacity``."""
    base = image.convert("RGB")
    heat = Image.fromarray(HEAT[np.clip(heatmap * 255, 0, 255).astype(np.uint8)])
    heat = heat.resize(base.size, Image.Resampling.BILINEAR)
    return Image.blend(base, heat, max(0.0, min(1.0, opacity)))


def center_crop_view(image: Image.Image, resize_size: int, crop_size: int) -> Image.Image:
    """The part of the photo the model saw (resize shorter side, centre crop), for overlays."""
    image = trim_aspect(image)
    w, h = image.size
    scale = resize_size / min(w, h)
    resized = image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR)
    left = (resized.width - crop_size) // 2
    top = (resized.height - crop_size) // 2
    return resized.crop((left, top, left + crop_size, top + crop_size))


def filter_tiles(weight: torch.Tensor, *, tile: int = 24, gap: int = 2) -> np.ndarray:
    """First-convolution filters [out, 3, k, k] as RGB tiles (as AlexNet's paper showed them)."""
    kernels = filter_images(weight)
    cols = math.ceil(math.sqrt(len(kernels)))
    rows = math.ceil(len(kernels) / cols)
    grid = np.full((rows * (tile + gap) - gap, cols * (tile + gap) - gap, 3), 255, np.uint8)
    for i, rgb in enumerate(kernels):
        image = np.asarray(Image.fromarray(rgb).resize((tile, tile), Image.Resampling.NEAREST))
        r, c = divmod(i, cols)
        grid[r * (tile + gap): r * (tile + gap) + tile, c * (tile + gap): c * (tile + gap) + tile] = image
    return grid


def filter_images(weight: torch.Tensor) -> np.ndarray:
    """First-convolution filters [out, 3, k, k] as RGB uint8 [out, k, k, 3], each min-max scaled."""
    import torch  # noqa: PLC0415 - lazy: the GUI's views use this module before torch has loaded (first paint)

    w = weight.detach().float().cpu()
    if w.dim() != 4 or w.shape[1] != 3:
        raise ValueError("filter_tiles needs an RGB convolution weight [out, 3, k, k]")
    low = w.flatten(1).min(1).values[:, None, None, None]
    span = w.flatten(1).max(1).values[:, None, None, None] - low
    scaled = (w - low) / torch.where(span > 0, span, torch.ones_like(span))
    return (scaled.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)


def first_conv(model: torch.nn.Module) -> tuple[str, torch.nn.Conv2d] | None:
    """The first convolution that reads the RGB input, if any."""
    import torch  # noqa: PLC0415 - as in filter_images

    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Conv2d) and module.in_channels == 3:
            return name, module
    return None
