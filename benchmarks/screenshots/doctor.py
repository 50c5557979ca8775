"""Screenshots of the wizard's doctor page: ``python -m benchmarks.screenshots.doctor``.

Writes scikit-learn's handwritten digits (10 classes, ``--per-class`` each, 32-pixel PNGs) into a
temporary folder and moves 5% of them into a wrong class folder (seeded: planted label errors). Then,
as a person would after a first training, it trains a ResNet-18 from scratch on that noisy folder
(``--epochs``; the doctor looks through this saved model, nothing is downloaded), opens the wizard on
the data check, chooses the saved model on the doctor page and presses "Examine with the Doctor…". Once
the map and the findings are in, it accepts the top suggestion (a pending move), selects the next one and
saves ``wizard_doctor-800x600.png`` and ``wizard_doctor-1920x1080.png`` (one per ``--sizes`` entry) in
``resources/screenshots/``. It prints how many
planted flips the doctor's top suggestions caught. ``--model resnet18`` skips the training and looks
through random weights instead (quick, and the page says such a map means little); ``--compare MODEL``
also draws MODEL's map beside it ("Compare with…") and saves ``wizard_doctor_compare-WxH.png``.

Everything it writes (settings, the model, caches) stays in the temporary folder.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
from pathlib import Path

from benchmarks.screenshots import OUT_DIR, wait_until

FLIP_SHARE = 0.05
SAVED_NAME = "digits-noisy"


def write_noisy_digits(root: Path, per_class: int, seed: int = 0) -> set[str]:
    """``root/<digit>/NNNN.png``; returns the file names moved into a wrong class folder."""
    from tests.support.digits import write_digit_classes

    classes = tuple(str(d) for d in range(10))
    write_digit_classes(root, classes, per_class)
    rng = random.Random(seed)
    files = sorted(root.glob("*/*.png"))
    flipped = rng.sample(files, round(FLIP_SHARE * len(files)))
    for path in flipped:
        wrong = rng.choice([c for c in classes if c != path.parent.name])
        path.rename(root / wrong / path.name)
    return {p.name for p in flipped}


def train_saved_model(folder: Path, epochs: int) -> str:
    from core.training import Trainer, TrainSettings

    settings = TrainSettings(data=str(folder), model="resnet18", weights="none", strategy="scratch", epochs=epochs,
                             batch_size=32, lr=3e-3, image_size=32, augment="none", name=SAVED_NAME, device="cpu")
    result = Trainer(settings).fit()
    print(f"trained {SAVED_NAME}: validation accuracy {result.metrics.get('val_acc')}", file=sys.stderr)
    return SAVED_NAME


def capture(out_dir: Path, per_class: int, epochs: int, threads: int, sizes: list[tuple[int, int]],
            model: str | None, compare: str | None = None) -> list[Path]:
    work = Path(tempfile.mkdtemp(prefix="convnet-studio-doctor-shots-"))
    for var in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "TORCH_HOME"):
        os.environ[var] = str(work / var.lower())
    os.environ.setdefault("CONVNET_STUDIO_OFFLINE", "1")
    os.environ["CONVNET_STUDIO_SETTINGS"] = str(work / "settings.ini")
    import torch

    torch.set_num_threads(threads)
    from gui.app import create_app
    from gui.wizard.wizard import DATA, DOCTOR, TrainWizard

    app = create_app()
    folder = work / "digits"
    flipped = write_noisy_digits(folder, per_class)
    model = model or train_saved_model(folder, epochs)
    wizard = TrainWizard(device="cpu")
    wizard.plan.folder = str(folder)
    wizard.setStartId(DATA)
    wizard.resize(*sizes[0])
    wizard.show()
    saved: list[Path] = []
    try:
        if not wait_until(app, wizard.data_page.isComplete, 120):
            raise SystemExit("the scan did not finish in time")
        page = wizard.doctor_page
        if not page.choose_model(model):
            raise SystemExit(f"{model} is not among the doctor's models")
        wizard.data_page.doctor_button.click()
        assert wizard.currentId() == DOCTOR
        if not wait_until(app, lambda: wizard.plan.doctor is not None and not page.busy, 900):
            raise SystemExit(f"the doctor did not finish in time: {page.status.text()} {page.message.text()}")
        report = wizard.plan.doctor
        top = [Path(i.path).name for i in report.label_issues[: len(flipped)]]
        caught = sum(name in flipped for name in top)
        print(f"{len(flipped)} planted flips; {caught} among the top {len(top)} suggestions", file=sys.stderr)
        if report.label_issues:  # the top suggestion accepted (M): its row says so, and one fix is pending
            page.findings.select_rows(0, [report.label_issues[0].path])
            page.move_selection()
            page.findings.select_rows(0, [report.label_issues[1].path] if len(report.label_issues) > 1 else [])
        out_dir.mkdir(parents=True, exist_ok=True)
        saved += _shots(app, wizard, out_dir, "wizard_doctor", sizes)
        if compare:
            page.compare_combo.setCurrentIndex(page.compare_combo.findData(compare))
            page.start_compare()
            if not wait_until(app, lambda: not page.busy, 900) or not page.maps.right.isVisible():
                raise SystemExit(f"the second map did not come: {page.status.text()} {page.message.text()}")
            saved += _shots(app, wizard, out_dir, "wizard_doctor_compare", sizes)
    finally:
        wizard.shutdown()
    return saved


def _shots(app, wizard, out_dir: Path, name: str, sizes: list[tuple[int, int]]) -> list[Path]:
    saved = []
    for width, height in sizes:
        wizard.resize(width, height)
        app.processEvents()
        wait_until(app, lambda: not wizard.loader._pending, 30)
        app.processEvents()
        target = out_dir / f"{name}-{width}x{height}.png"
        wizard.grab().save(str(target))
        saved.append(target)
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.screenshots.doctor",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help=f"folder for the PNGs (default {OUT_DIR})")
    parser.add_argument("--per-class", type=int, default=40, help="digits per class (default 40)")
    parser.add_argument("--epochs", type=int, default=8, help="training epochs of the model looked through")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--sizes", default="800x600,1920x1080", help="window sizes (default 800x600,1920x1080)")
    parser.add_argument("--model", default=None, help="look through this model instead of training one")
    parser.add_argument("--compare", default=None, metavar="MODEL",
                        help="also draw MODEL's map beside it: wizard_doctor_compare-WxH.png")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sizes = [tuple(int(v) for v in size.lower().split("x")) for size in args.sizes.split(",")]
    for path in capture(args.out, args.per_class, args.epochs, args.threads, sizes, args.model, args.compare):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
