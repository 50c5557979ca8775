"""Screenshots of the dataset doctor's map: ``python -m benchmarks.screenshots.doctor_map``.

Synthetic clusters (six classes, a few hundred points, some points inside another class's cluster as
label errors look), no network and no files: the thumbnails are painted. Saves in ``--out``
(default ``resources/screenshots/``), at each ``--size`` (default 800x600 and 1920x1080):
``doctor_map-WxH.png`` (one map, a lasso selection, the doctor's suggestions ringed, a point hovered)
and ``doctor_map_pair-WxH.png`` (two architectures side by side, the selection mirrored); with
``--dark`` the dark palette (``*_dark.png``).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from benchmarks.screenshots import OUT_DIR, wait_until

CLASSES = ["airplane", "bird", "cat", "deer", "dog", "truck"]
CENTRES = [(-6.0, 5.0), (0.0, 7.0), (3.0, 0.0), (-3.0, -4.0), (5.5, -1.5), (-8.0, -2.0)]


def clusters(count: int, seed: int, spread: float = 1.4, swap: int = 6):
    """``count`` points per class around CENTRES; ``swap`` of them labelled with a neighbouring class."""
    import numpy as np

    from core.doctor.report import MapPoint

    rng = np.random.default_rng(seed)
    points = []
    for label, (cx, cy) in enumerate(CENTRES):
        stretch = rng.uniform(0.6, 1.4, size=2)
        for k in range(count):
            dx, dy = rng.normal(0.0, spread, size=2) * stretch
            given = (label + 1) % len(CLASSES) if k < swap else label
            name = CLASSES[given]
            points.append(MapPoint(path=f"/data/pets/{name}/{CLASSES[label]}_{k:03d}.jpg", label=given,
                                   subset="val" if k % 5 == 0 else "train", x=cx + dx, y=cy + dy))
    return points


def painted_thumbnail(path: str, callback) -> None:
    """A stand-in photo: the file's true class written on a soft colour."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QColor, QFont, QPainter, QPixmap

    from gui.widgets.doctor_map import class_colour

    truth = Path(path).stem.split("_")[0]
    pixmap = QPixmap(160, 120)
    pixmap.fill(QColor(class_colour(CLASSES.index(truth))).lighter(150))
    painter = QPainter(pixmap)
    painter.setFont(QFont(painter.font().family(), 18, QFont.Weight.Bold))
    painter.setPen(QColor("#202020"))
    painter.drawText(pixmap.rect(), Qt.AlignmentFlag.AlignCenter, truth)
    painter.end()
    callback(pixmap)


def wobbly_loop(centre: tuple[float, float], rx: float, ry: float, turns: int = 60) -> list[tuple[float, float]]:
    """A hand-drawn-looking closed trail round ``centre``."""
    cx, cy = centre
    return [(cx + rx * (1 + 0.08 * math.sin(5 * t)) * math.cos(t), cy + ry * (1 + 0.06 * math.cos(3 * t)) * math.sin(t))
            for t in (2 * math.pi * i / turns for i in range(turns))]


def _frame(child, size: tuple[int, int]):
    """``child`` in a shown window of ``size`` with a page's margins."""
    from PySide6.QtWidgets import QVBoxLayout, QWidget

    frame = QWidget()
    layout = QVBoxLayout(frame)
    layout.setContentsMargins(12, 12, 12, 12)
    layout.addWidget(child)
    frame.resize(*size)
    frame.show()
    return frame


def capture(out_dir: Path, sizes: list[tuple[int, int]], *, dark: bool) -> list[Path]:
    from gui.app import create_app

    app = create_app(dark=dark)
    suffix = "_dark" if dark else ""
    points = clusters(90, seed=1)
    other = clusters(90, seed=2, spread=2.3)  # a weaker network: the same images, looser clusters
    flagged = [p.path for p in points if CLASSES[p.label] not in Path(p.path).stem][:6]
    out_dir.mkdir(parents=True, exist_ok=True)
    saved = []
    for width, height in sizes:
        for name, shoot in (("doctor_map", _one_map), ("doctor_map_pair", _two_maps)):
            frame = shoot(app, points, other, flagged, (width, height))
            target = out_dir / f"{name}-{width}x{height}{suffix}.png"
            frame.grab().save(str(target))
            frame.close()
            saved.append(target)
    return saved


def _one_map(app, points, other, flagged, size):
    """One map: a lasso round the dogs, the suggestions ringed, a suggestion hovered."""
    from PySide6.QtTest import QTest

    from gui.widgets.doctor_map import DoctorMap

    view = DoctorMap()
    view.set_thumbnail_provider(painted_thumbnail)
    view.set_points(points, CLASSES, f"ResNet-18 (ImageNet weights): {len(points)} images",
                    "Placed by t-SNE of the network's penultimate layer; near means alike to this network.")
    view.highlight(flagged, "likely mislabeled")
    frame = _frame(view, size)
    wait_until(app, view.isVisible, 10)
    view.lasso_at(wobbly_loop(CENTRES[4], 2.2, 1.6))
    QTest.mouseMove(view.plot.viewport(), view.viewport_pos(flagged[0]))
    wait_until(app, view.hover_card.isVisible, 10)
    app.processEvents()
    return frame


def _two_maps(app, points, other, flagged, size):
    """Two architectures side by side, a lasso round the cats on the left mirrored on the right."""
    from gui.widgets.doctor_map import MapPair

    pair = MapPair()
    pair.set_thumbnail_provider(painted_thumbnail)
    pair.set_left(points, CLASSES, "ResNet-18 (ImageNet weights)")
    pair.set_right(other, CLASSES, "AlexNet (random weights)",
                   "Random network: this map means little; train or pick a pretrained model.")
    pair.highlight(flagged, "likely mislabeled")
    frame = _frame(pair, size)
    wait_until(app, pair.right.isVisible, 10)
    pair.left.lasso_at(wobbly_loop(CENTRES[2], 2.4, 2.0))
    app.processEvents()
    return frame


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.screenshots.doctor_map",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help=f"folder for the PNGs (default {OUT_DIR})")
    parser.add_argument("--size", action="append", help="WIDTHxHEIGHT, repeatable (default 800x600 and 1920x1080)")
    parser.add_argument("--dark", action="store_true", help="the dark palette")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in (args.size or ["800x600", "1920x1080"])]
    for path in capture(args.out, sizes, dark=args.dark):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
