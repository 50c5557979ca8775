"""Screenshot of the Compare window for the README: ``python -m benchmarks.screenshots.compare``.

The six classics (AlexNet, VGG-16, NiN, GoogLeNet, ResNet-50, DenseNet-121)
on scikit-image's "chelsea" photo (plus two more photos in the selector),
with the table, the Grad-CAM tiles and the latency/accuracy chart filled in,
saved as ``resources/screenshots/compare.png``. Like ``benchmarks.screenshots`` it
never touches the network or the user's settings: models whose weights are
not cached run untrained, and the window marks them so.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from benchmarks.screenshots import OUT_DIR, wait_until

CLASSICS = ("alexnet", "vgg16", "nin", "googlenet", "resnet50", "densenet121")
PHOTOS = ("chelsea", "coffee", "astronaut")


def _write_photos(folder: Path) -> list[Path]:
    import numpy as np
    from PIL import Image
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in PHOTOS:
        path = folder / f"{name}.jpg"
        Image.fromarray(np.asarray(getattr(data, name)())).convert("RGB").save(path, "JPEG", quality=92)
        paths.append(path)
    return paths


def capture_compare(out_dir: Path = OUT_DIR, size: tuple[int, int] = (1280, 800), *, device: str = "cpu",
                    timeout_s: float = 900.0) -> Path:
    """Run the classics in the Compare window and save ``compare.png`` in ``out_dir``."""
    work = Path(tempfile.mkdtemp(prefix="convnet-studio-compare-shot-"))
    os.environ.setdefault("CONVNET_STUDIO_OFFLINE", "1")
    os.environ["CONVNET_STUDIO_SETTINGS"] = str(work / "settings.ini")
    from gui.app import create_app
    from gui.compare_window import CompareWindow

    app = create_app()
    photos = _write_photos(work / "photos")
    window = CompareWindow([str(p) for p in photos], device=device, models=list(CLASSICS))
    window.resize(*size)
    window.show()
    done: list[bool] = []
    window.client.finished.connect(done.append)
    window.run()
    if not wait_until(app, lambda: bool(done), timeout_s):
        window.close()
        raise SystemExit("the comparison did not finish in time")
    window.select_photo(0)
    window.tiles.set_view("cam")
    app.processEvents()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "compare.png"
    window.grab().save(str(target))
    window.close()
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.screenshots.compare",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help=f"folder for the PNG (default {OUT_DIR})")
    parser.add_argument("--size", default="1280x800", help="window size, WIDTHxHEIGHT")
    parser.add_argument("--device", default="cpu", help="where the models run (latency is measured there)")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    width, height = (int(v) for v in args.size.lower().split("x"))
    print(capture_compare(args.out, (width, height), device=args.device))
    return 0


if __name__ == "__main__":
    sys.exit(main())
