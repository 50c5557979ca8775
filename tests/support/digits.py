"""A real, small image-classification data set on disk: scikit-learn's 8x8 handwritten digits.

``load_digits`` ships 1,797 scanned digits inside the scikit-learn wheel (no
network). They are written as grayscale PNGs upscaled to ``size`` pixels, one
folder per digit, the layout the training scan expects.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def digit_images(size: int = 32) -> tuple[list[Image.Image], np.ndarray]:
    """Every digit as a ``size`` x ``size`` grayscale PIL image, and its label."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = [Image.fromarray((img * (255 / 16)).round().astype(np.uint8), mode="L")
              .resize((size, size), Image.Resampling.BILINEAR) for img in digits.images]
    return images, digits.target


def write_digits(root: Path, *, size: int = 32, per_class: int | None = None, skip: int = 0,
                 held_out: int = 0) -> tuple[Path, list[tuple[Path, int]]]:
    """Write class folders ``root/0`` .. ``root/9``; returns (root, held-out files with labels).

    Per class, the first ``skip`` images are left out, then ``held_out`` go to
    ``root.parent/<root.name>-held-out`` (not part of the training folder), then
    up to ``per_class`` go into the class folder.
    """
    images, labels = digit_images(size)
    taken: dict[int, int] = {}
    outside = root.parent / f"{root.name}-held-out"
    held: list[tuple[Path, int]] = []
    for i, (image, label) in enumerate(zip(images, labels)):
        label = int(label)
        n = taken.get(label, 0)
        taken[label] = n + 1
        if n < skip:
            continue
        if n < skip + held_out:
            outside.mkdir(parents=True, exist_ok=True)
            path = outside / f"{label}_{i:04d}.png"
            image.save(path)
            held.append((path, label))
            continue
        if per_class is not None and n >= skip + held_out + per_class:
            continue
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        image.save(folder / f"{i:04d}.png")
    return root, held


def write_digit_classes(root: Path, classes: tuple[str, ...], per_class: int, *, size: int = 32) -> Path:
    """The first ``per_class`` digits of each of the first ``len(classes)`` labels as ``root/CLASS/NNNN.png``."""
    images, labels = digit_images(size)
    taken = {i: 0 for i in range(len(classes))}
    for index, (image, label) in enumerate(zip(images, labels)):
        label = int(label)
        if label in taken and taken[label] < per_class:
            folder = root / classes[label]
            folder.mkdir(parents=True, exist_ok=True)
            image.save(folder / f"{index:04d}.png")
            taken[label] += 1
    return root
