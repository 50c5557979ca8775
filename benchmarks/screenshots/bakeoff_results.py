"""Screenshots of the bake-off's results page: ``python -m benchmarks.screenshots.bakeoff_results``.

Runs a small real bake-off (scikit-learn's digits as 32-pixel PNGs, ResNet-18, GoogLeNet and DenseNet-121
from scratch on the CPU; or reads a finished one with ``--bakeoff DIR``, copied first so it is never
changed), shows the results page in a wizard window and saves, at each ``--size``:
``bakeoff_results[-WxH].png`` (leaderboard, statements, per-class heat table) and
``bakeoff_disagree[-WxH].png`` (the first disagreement open, every model's Grad-CAM drawn).
With ``--dark`` the dark palette. Everything it writes (settings, bundles) stays in a temporary folder
(a kept model too); it never touches the network. Needs scikit-learn (the ``test`` extra).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from benchmarks.screenshots import OUT_DIR, wait_until

MODELS = ("resnet18", "googlenet", "densenet121")  # all run at 32 px (AlexNet needs 63)


def make_bakeoff(work: Path, per_class: int, epochs: int) -> Path:
    from core.bakeoff.plan import make_plan
    from core.bakeoff.runner import run_bakeoff
    from tests.support.digits import write_digits

    folder, _ = write_digits(work / "digits", size=32, per_class=per_class)
    plan = make_plan(str(folder), list(MODELS), out=work / "bakeoff", epochs=epochs, image_size=32, batch_size=32,
                     augment="none", device="cpu", lr=1e-3)
    run_bakeoff(plan)
    return Path(plan.out)


def capture(out_dir: Path, source: Path | None, sizes: list[tuple[int, int]], *, dark: bool, per_class: int,
            epochs: int) -> list[Path]:
    work = Path(tempfile.mkdtemp(prefix="convnet-studio-bakeoff-shots-"))
    for var in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
        os.environ[var] = str(work / var.lower())
    os.environ.setdefault("CONVNET_STUDIO_OFFLINE", "1")
    os.environ["CONVNET_STUDIO_SETTINGS"] = str(work / "settings.ini")
    from PySide6.QtCore import QThreadPool
    from PySide6.QtWidgets import QWizard

    from core.bakeoff.plan import load_plan
    from core.bakeoff.runner import leaderboard_of
    from gui.app import create_app
    from gui.style import dark_palette
    from gui.thumbnails import ThumbnailLoader
    from gui.wizard.page_bakeoff_results import DISAGREE, BakeoffResultsPage
    from gui.wizard.plan import TrainingPlan

    app = create_app()
    if dark:
        app.setPalette(dark_palette())
    if source is None:
        source = make_bakeoff(work, per_class, epochs)
    else:
        source = Path(shutil.copytree(source, work / "bakeoff", symlinks=True))
    bakeoff = load_plan(source)
    plan = TrainingPlan(folder=bakeoff.folder, models=bakeoff.models, device="cpu")
    plan.bakeoff, plan.leaderboard = bakeoff, leaderboard_of(bakeoff)
    wizard = QWizard()
    wizard.setWizardStyle(QWizard.WizardStyle.ModernStyle)
    wizard.setWindowTitle("Train a Model")
    pool, loader = QThreadPool(wizard), ThumbnailLoader(wizard)
    page = BakeoffResultsPage(plan, pool, loader)
    wizard.addPage(page)
    out_dir.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []
    suffix = "-dark" if dark else ""
    try:
        for width, height in sizes:
            tag = "" if (width, height) == sizes[0] else f"-{width}x{height}"
            wizard.resize(width, height)
            wizard.show()
            page.tabs.setCurrentIndex(0)
            wait_until(app, lambda: not loader._pending, 30)
            saved.append(_shot(app, wizard, out_dir / f"bakeoff_results{tag}{suffix}.png"))
            if plan.leaderboard.disagreements:
                page.open_disagreement(0)
                page.gallery.setCurrentRow(0)
                if not wait_until(app, lambda: all(map(page.cam_panel.has_cam, page.cam_panel.images)), 300):
                    raise SystemExit("the Grad-CAMs did not arrive in time")
                page.tabs.setCurrentIndex(DISAGREE)
                saved.append(_shot(app, wizard, out_dir / f"bakeoff_disagree{tag}{suffix}.png"))
    finally:
        page.shutdown()
        loader.shutdown()
        pool.waitForDone()
        wizard.hide()
    return saved


def _shot(app, wizard, target: Path) -> Path:
    app.processEvents()
    wizard.grab().save(str(target))
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.screenshots.bakeoff_results",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help=f"folder for the PNGs (default {OUT_DIR})")
    parser.add_argument("--bakeoff", type=Path, help="a finished bake-off folder to show (copied first)")
    parser.add_argument("--per-class", type=int, default=30, help="digits per class (default 30)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--size", action="append", help="window size WIDTHxHEIGHT, repeatable "
                        "(default 1060x760 and 800x600)")
    parser.add_argument("--dark", action="store_true", help="the dark palette")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import torch

    torch.set_num_threads(args.threads)
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in (args.size or ["1060x760", "800x600"])]
    for path in capture(args.out, args.bakeoff, sizes, dark=args.dark, per_class=args.per_class, epochs=args.epochs):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
