"""Screenshots of the main window for the README: ``python -m benchmarks.screenshots``.

Builds the window at 1280x800 with a dozen classified sample photos
(scikit-image's bundled photos when it is installed, generated images
otherwise), selects one and saves ``resources/screenshots/main_window.png``,
``feature_maps.png`` (a mid-network stage of the cat photo) and
``gradcam.png``, each also as ``*_dark.png``, the main window again at 800x600
and 1920x1080 (``main_window_800x600.png``, ``main_window_1920x1080.png``),
and first ``compare.png`` (the Compare window, ``benchmarks.screenshots.compare``). It never touches the network or
the user's settings; without cached weights the model runs untrained, and the
window says so.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from benchmarks.screenshots import OUT_DIR, wait_until

SAMPLES = ("chelsea", "coffee", "astronaut", "rocket", "hubble_deep_field", "immunohistochemistry",
           "colorwheel", "camera", "brick", "coins", "moon", "grass", "gravel", "retina", "cat")
# name, right-hand tab, right-hand pane's share of the width (None: the window's own default split; the
# explain tabs want more room than the top-5 bars)
SHOTS = (("main_window", 0, None), ("feature_maps", 1, 0.5), ("gradcam", 2, 0.5))
# the main window again at these sizes (light palette): the smallest screen it must fit and a wide one
EXTRA_SIZES = ((800, 600), (1920, 1080))


def write_samples(folder: Path, count: int = 12) -> list[Path]:
    """``count`` JPEGs (plus one broken file to show a failure) in ``folder``."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    images = []
    try:
        from skimage import data

        for name in SAMPLES:
            try:
                array = np.asarray(getattr(data, name)())
            except Exception:  # noqa: BLE001 - some samples need a download; skip them
                continue
            images.append((name, Image.fromarray(array).convert("RGB")))
    except ImportError:
        pass
    rng = np.random.default_rng(0)
    while len(images) < count:  # generated stand-ins: smooth colour fields
        y, x = np.mgrid[0:480, 0:640] / 480.0
        c = rng.random(6)
        rgb = np.stack([np.sin(x * 6 * c[i] + c[i + 3] * 6) * 0.5 + 0.5 for i in range(3)], -1)
        images.append((f"pattern_{len(images)}", Image.fromarray((rgb * 255).astype("uint8"))))
    paths = []
    for i, (name, image) in enumerate(images[:count - 1]):
        path = folder / f"{i + 1:02d}_{name}.jpg"
        image.save(path, "JPEG", quality=90)
        paths.append(path)
    broken = folder / f"{count:02d}_scan.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this file was cut off")
    return paths + [broken]


def capture(model: str, out_dir: Path, variants: list[str], size: tuple[int, int]) -> list[Path]:
    from PySide6.QtCore import QSettings

    from gui.app import create_app
    from gui.settings import Settings
    from gui.style import dark_palette

    work = Path(tempfile.mkdtemp(prefix="convnet-studio-shots-"))
    os.environ.setdefault("CONVNET_STUDIO_OFFLINE", "1")
    os.environ["CONVNET_STUDIO_SETTINGS"] = str(work / "settings.ini")
    photos = write_samples(work / "photos")
    app = create_app()
    light_palette = app.palette()
    from gui.gallery_model import State
    from gui.main_window import MainWindow

    window = MainWindow(Settings(QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat)))
    window.resize(*size)
    window.show()
    if not wait_until(app, lambda: window.registry_ready, 120):
        raise SystemExit("the model registry did not load in time")
    window.set_model(model)
    window.open_paths([str(work / "photos")])

    def settled() -> bool:
        counts = window.gallery.counts()
        return (window.gallery.rowCount() == len(photos) and not window.client.busy
                and counts[State.DONE] + counts[State.FAILED] == len(photos))

    if not wait_until(app, settled):
        raise SystemExit("classification did not finish in time")
    window.gallery_view.select_row(0)
    wait_until(app, lambda: not window.loader._pending, 30)
    _compute_explain(app, window)
    saved = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for variant in variants:
        app.setPalette(dark_palette() if variant == "dark" else light_palette)
        wait_until(app, lambda: not window.loader._pending, 30)
        for name, tab, share in SHOTS:
            window.explain.tabs.setCurrentIndex(tab)
            _split(window, share)
            _settle(app, window)
            target = out_dir / (f"{name}.png" if variant == "light" else f"{name}_{variant}.png")
            window.grab().save(str(target))
            saved.append(target)
        if variant == "light":
            saved += _extra_sizes(app, window, out_dir)
    window.close()
    return saved


def _split(window, share: float | None) -> None:
    from gui.main_window import SPLIT

    share = SPLIT[1] / sum(SPLIT) if share is None else share
    window.splitter.setSizes([round(window.width() * (1 - share)), round(window.width() * share)])


def _settle(app, window) -> None:
    for _ in range(3):  # the toolbar and the grids lay out again after a resize
        app.processEvents()
    wait_until(app, lambda: not window.loader._pending, 30)


def _extra_sizes(app, window, out_dir: Path) -> list[Path]:
    """``main_window_WxH.png`` at each of ``EXTRA_SIZES``, the Predictions tab, the default split."""
    saved = []
    size = window.size()
    window.explain.tabs.setCurrentIndex(0)
    for width, height in EXTRA_SIZES:
        window.resize(width, height)
        _split(window, None)
        _settle(app, window)
        target = out_dir / f"main_window_{width}x{height}.png"
        window.grab().save(str(target))
        saved.append(target)
    window.resize(size)
    return saved


def _compute_explain(app, window) -> None:
    """Fill the Feature maps tab (the second stage, as its stage button picks it) and the Grad-CAM tab."""
    from gui.explain_tabs import FEATURES, GRADCAM

    tabs = window.explain
    tabs.tabs.setCurrentIndex(FEATURES)
    if not wait_until(app, lambda: tabs.browser.stages(), 60):
        raise SystemExit("the layer list did not arrive in time")
    tabs.browser.stage_buttons.button(1).click()
    if not wait_until(app, lambda: tabs.maps.maps() is not None and tabs.maps.maps().layer == tabs.layer, 120):
        raise SystemExit("the feature maps did not arrive in time")
    tabs.maps.show_channel(2)
    tabs.tabs.setCurrentIndex(GRADCAM)
    if not wait_until(app, lambda: tabs.cam.cam() is not None, 120):
        raise SystemExit("Grad-CAM did not arrive in time")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50", help="model to classify with (default resnet50)")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help=f"folder for the PNGs (default {OUT_DIR})")
    parser.add_argument("--variants", default="light,dark", help="comma-separated: light, dark")
    parser.add_argument("--size", default="1280x800", help="window size, WIDTHxHEIGHT")
    parser.add_argument("--no-compare", dest="compare", action="store_false",
                        help="skip compare.png (benchmarks.screenshots.compare: the six classics, a minute on a CPU)")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    width, height = (int(v) for v in args.size.lower().split("x"))
    if args.compare:  # first, while the palette is still the light one
        from benchmarks.screenshots.compare import capture_compare

        print(capture_compare(args.out, (width, height)))
    for path in capture(args.model, args.out, [v.strip() for v in args.variants.split(",") if v.strip()],
                        (width, height)):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
