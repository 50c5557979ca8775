"""Screenshots of the training wizard for the README: ``python -m benchmarks.screenshots.wizard``.

Writes scikit-learn's handwritten digits (10 classes, 32-pixel PNGs; plus a
cut-off file, a duplicate and a few 8-pixel originals, so the data check has
something to say) into a temporary folder, walks the wizard over it and
trains ResNet-18 from scratch at 32 pixels on the CPU. Saves
``resources/screenshots/wizard_data_check.png``, ``wizard_options.png`` (the
learning-rate finder's finished curve), ``wizard_training.png`` (mid-run, the
plots filling) and ``wizard_results.png`` (confusion matrix with the
most-confused cell open), at ``--size`` (default 1280x800). Everything it writes (settings, the trained
model, caches) stays in the temporary folder; it never touches the network.
Needs scikit-learn (the ``test`` extra).

``--bakeoff`` instead walks the bake-off path ("Compare several architectures": GoogLeNet, ResNet-18,
DenseNet-121 and the weighted-residual ResNet-18 from scratch at 32 pixels) and saves
``wizard_bakeoff_models.png`` (the model page's tick boxes, each model's strategy and why),
``wizard_bakeoff_options.png`` (each model timed on this device, the total, the budget) and
``wizard_bakeoff_training.png`` (mid-run: a validation-accuracy curve per model, the queue).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from benchmarks.screenshots import OUT_DIR, wait_until


def write_digits(root: Path, per_class: int) -> Path:
    """``root/<digit>/NNNN.png`` at 32 px, plus a broken file, a duplicate and three 8-px originals."""
    import shutil

    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    taken: dict[int, int] = {}
    for index, (pixels, label) in enumerate(zip(digits.images, digits.target)):
        label = int(label)
        if taken.get(label, 0) >= per_class - (label * 7) % 20:  # a little imbalance, as real folders have
            continue
        taken[label] = taken.get(label, 0) + 1
        small = Image.fromarray((pixels * (255 / 16)).round().astype(np.uint8), mode="L")
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        tiny = label == 1 and taken[label] <= 3
        (small if tiny else small.resize((32, 32), Image.Resampling.BILINEAR)).save(folder / f"{index:04d}.png")
    (root / "3" / "scan_cut_off.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR cut off")
    first = sorted((root / "7").glob("*.png"))[0]
    shutil.copy(first, root / "7" / "copy_of_first.png")
    return root


def capture(out_dir: Path, per_class: int, epochs: int, threads: int,
            size: tuple[int, int] = (1280, 800)) -> list[Path]:
    work = Path(tempfile.mkdtemp(prefix="convnet-studio-wizard-shots-"))
    for var in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
        os.environ[var] = str(work / var.lower())
    os.environ.setdefault("CONVNET_STUDIO_OFFLINE", "1")
    os.environ["CONVNET_STUDIO_SETTINGS"] = str(work / "settings.ini")
    import torch

    torch.set_num_threads(threads)
    from gui.app import create_app
    from gui.wizard.wizard import DATA, RESULTS, TRAINING, TrainWizard

    app = create_app()
    folder = write_digits(work / "digits", per_class)
    wizard = TrainWizard(device="cpu")
    wizard.resize(*size)
    wizard.show()
    out_dir.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []

    def shot(name: str) -> None:
        app.processEvents()
        wait_until(app, lambda: not wizard.loader._pending, 30)
        target = out_dir / f"{name}.png"
        wizard.grab().save(str(target))
        saved.append(target)

    try:
        wizard.folder_page.set_folder(str(folder))
        wizard.next()
        assert wizard.currentId() == DATA
        if not wait_until(app, wizard.data_page.isComplete, 120):
            raise SystemExit("the scan did not finish in time")
        shot("wizard_data_check")
        wizard.next()
        wizard.model_page.set_model("resnet18")
        wizard.model_page.set_strategy("scratch")
        wizard.next()
        options = wizard.options_page
        options.name.setText("digits-resnet18")
        options.epochs.setValue(epochs)
        options.batch.setValue(32)
        options.image_size.setValue(32)
        options.lr.setText("0.001")
        options.val_share.setValue(30)
        options.augment.setCurrentIndex(options.augment.findData("none"))  # a flipped 2 is no 2
        options.device.setCurrentText("cpu")
        options.lr_panel.start()
        if not wait_until(app, lambda: not options.lr_panel.running, 600) or options.lr_panel.result is None:
            raise SystemExit(f"the learning-rate finder did not finish: {options.lr_panel.status.text()}")
        shot("wizard_options")
        wizard.next()
        assert wizard.currentId() == TRAINING
        page = wizard.training_page
        if not wait_until(app, lambda: page.plots.point_count("val_acc") >= max(2, round(0.7 * epochs)), 900):
            raise SystemExit("training did not get far enough in time")
        wait_until(app, lambda: page.plots.point_count("loss_raw") > page.plots.point_count("lr") - 1, 5)
        page.plots.refresh()
        shot("wizard_training")
        if not wait_until(app, lambda: page.outcome is not None and wizard.plan.evaluation is not None, 900):
            raise SystemExit(f"training did not finish in time ({page.outcome})")
        wizard.next()
        assert wizard.currentId() == RESULTS
        shot("wizard_results")
    finally:
        wizard.shutdown()
    return saved


BAKEOFF_MODELS = ("googlenet", "resnet18", "densenet121", "wrc_resnet18")


def capture_bakeoff(out_dir: Path, per_class: int, epochs: int, threads: int,
                    size: tuple[int, int] = (1280, 800)) -> list[Path]:
    work = Path(tempfile.mkdtemp(prefix="convnet-studio-bakeoff-shots-"))
    for var in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
        os.environ[var] = str(work / var.lower())
    os.environ.setdefault("CONVNET_STUDIO_OFFLINE", "1")
    os.environ["CONVNET_STUDIO_SETTINGS"] = str(work / "settings.ini")
    import torch

    torch.set_num_threads(threads)
    from gui.app import create_app
    from gui.wizard.wizard import BAKEOFF_TRAINING, DATA, TrainWizard

    app = create_app()
    folder = write_digits(work / "digits", per_class)
    wizard = TrainWizard(device="cpu", bakeoff_out=str(work / "bakeoff"))
    wizard.resize(*size)
    wizard.show()
    out_dir.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []

    def shot(name: str) -> None:
        app.processEvents()
        target = out_dir / f"{name}.png"
        wizard.grab().save(str(target))
        saved.append(target)

    try:
        wizard.folder_page.set_folder(str(folder))
        wizard.next()
        assert wizard.currentId() == DATA
        if not wait_until(app, wizard.data_page.isComplete, 120):
            raise SystemExit("the scan did not finish in time")
        wizard.next()
        wizard.model_page.set_compare(True)
        wizard.model_page.tick(BAKEOFF_MODELS)
        app.processEvents()
        shot("wizard_bakeoff_models")
        wizard.next()
        options = wizard.options_page
        options.epochs.setValue(epochs)
        options.batch.setValue(32)
        options.image_size.setValue(32)
        options.lr.setText("0.001")
        options.val_share.setValue(30)
        options.augment.setCurrentIndex(options.augment.findData("none"))
        options.device.setCurrentText("cpu")
        options.estimate.start(force=True)
        if not wait_until(app, lambda: options.estimate.ready, 600):
            raise SystemExit("the timing probe did not finish in time")
        shot("wizard_bakeoff_options")
        wizard.next()
        assert wizard.currentId() == BAKEOFF_TRAINING
        page = wizard.bakeoff_page
        third = BAKEOFF_MODELS[2]
        if not wait_until(app, lambda: page.plots.point_count(third) >= max(2, epochs // 2), 1800):
            raise SystemExit("the bake-off did not get far enough in time")
        page.plots.refresh()
        shot("wizard_bakeoff_training")
    finally:
        wizard.shutdown()
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.screenshots.wizard",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help=f"folder for the PNGs (default {OUT_DIR})")
    parser.add_argument("--per-class", type=int, default=40, help="digits per class, at most (default 40)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--size", default="1280x800", help="window size WIDTHxHEIGHT (default 1280x800)")
    parser.add_argument("--bakeoff", action="store_true",
                        help="the bake-off path instead: wizard_bakeoff_options.png and wizard_bakeoff_training.png")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    width, height = (int(v) for v in args.size.lower().split("x"))
    run = capture_bakeoff if args.bakeoff else capture
    for path in run(args.out, args.per_class, args.epochs, args.threads, (width, height)):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
