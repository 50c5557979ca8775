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


# A camera roll: phone photos (12 and 8 MP, some portrait), downloads and screenshots.
MIXED_SIZES: tuple[tuple[tuple[int, int], int], ...] = (
    ((4000, 3000), 20), ((3000, 4000), 10), ((3264, 2448), 15), ((2048, 1536), 15),
    ((1920, 1080), 15), ((1280, 960), 15), ((640, 480), 10),
)


def textured_jpeg(path: Path, size: tuple[int, int], *, seed: int = 0, name: str = "astronaut") -> Path:
    """A photo resized to ``size`` with sensor-like noise, so it compresses like a real one."""
    rng = np.random.default_rng(seed)
    base = photo(name).resize(size, Image.Resampling.BICUBIC)
    noise = rng.normal(0, 12, (size[1], size[0], 1)).astype(np.int16)
    array = np.clip(np.asarray(base, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
    Image.fromarray(array).save(path, "JPEG", quality=90)
    return path


def write_mixed_photos(folder: Path, count: int, *, sizes=MIXED_SIZES, variants: int = 2) -> list[Path]:
    """``count`` JPEGs whose sizes follow the weights in ``sizes`` (interleaved, not sorted).

    ``variants`` distinct images are made per size and the rest are byte copies
    under their own names: decoding cost depends on size and texture, not on
    which photo it is, and making a 12 MP photo takes about a second.
    """
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    total = sum(weight for _, weight in sizes)
    plan = [size for size, weight in sizes for _ in range(max(1, round(count * weight / total)))]
    rng = np.random.default_rng(0)
    plan = [plan[i] for i in rng.permutation(len(plan))][:count]
    while len(plan) < count:
        plan.append(sizes[len(plan) % len(sizes)][0])
    made: dict[tuple[tuple[int, int], int], Path] = {}
    paths = []
    for i, size in enumerate(plan):
        key = (size, i % variants)
        path = folder / f"{i:05d}_{size[0]}x{size[1]}.jpg"
        if key in made:
            shutil.copyfile(made[key], path)
        else:
            made[key] = textured_jpeg(path, size, seed=i, name=PHOTO_NAMES[len(made) % 3])
        paths.append(path)
    return paths
