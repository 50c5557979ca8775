"""Real photographs for tests and benchmarks, from scikit-image's bundled data.

``skimage.data`` ships a handful of photos inside its wheel, so tests get
natural images with no network. Everything here writes into a folder the
caller owns.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

PHOTO_NAMES = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry")


def photo(name: str = "chelsea") -> Image.Image:
    """One bundled photo as an RGB PIL image."""
    from skimage import data

    array = getattr(data, name)()
    image = Image.fromarray(np.asarray(array))
    return image.convert("RGB")


def write_photos(folder: Path, count: int = 4, *, size: tuple[int, int] | None = None, fmt: str = "JPEG") -> list[Path]:
    """``count`` distinct photos (cycled through the bundled ones) as files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        name = PHOTO_NAMES[i % len(PHOTO_NAMES)]
        image = photo(name)
        if size is not None:
            image = image.resize(size, Image.Resampling.BICUBIC)
        if i >= len(PHOTO_NAMES):  # keep cycled copies distinct
            image = image.rotate(90 * (i // len(PHOTO_NAMES)), expand=True)
        suffix = ".jpg" if fmt == "JPEG" else f".{fmt.lower()}"
        path = folder / f"{i:04d}_{name}{suffix}"
        image.save(path, fmt, **({"quality": 92} if fmt == "JPEG" else {}))
        paths.append(path)
    return paths


def write_12mp_jpeg(path: Path, *, seed: int = 0) -> Path:
    """A 4000x3000 JPEG with photographic content and fine-grained texture."""
    rng = np.random.default_rng(seed)
    base = photo("astronaut").resize((4000, 3000), Image.Resampling.BICUBIC)
    array = np.asarray(base, dtype=np.int16) + rng.normal(0, 12, (3000, 4000, 1)).astype(np.int16)
    Image.fromarray(np.clip(array, 0, 255).astype(np.uint8)).save(path, "JPEG", quality=90)
    return path
