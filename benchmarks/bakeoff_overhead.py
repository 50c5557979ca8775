"""The bake-off's overhead: a bake-off of N models against training the same N models one after another.

Run: ``python -m benchmarks.bakeoff_overhead`` (rewrites its section of BENCHMARKS.md; ``--no-write``
prints only; ``--quick`` is a smoke run on a tiny folder).

Baseline: what ``python main.py train FOLDER --model M ...`` does for each model in turn (a Trainer
with the same settings that scans the folder itself). Ours: ``run_bakeoff`` of the same models with the
same settings and seed (its plan and shared split, a record per model, per-image predictions, a
latency measurement, the leaderboard). Both in this one process, interleaved (train all, bake-off,
train all, ...), each rep in fresh folders (the order swapped every rep, after an untimed
warm-up fit). Overhead = bake-off time / sum of the train times - 1.
The default is the issue's acceptance run: sklearn digits at 64 px, AlexNet, ResNet-18, GoogLeNet and
NiN from scratch, 5 epochs each (about 2 x 15 minutes per rep on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine, write_section

MODELS = "alexnet,resnet18,googlenet,nin"


def _isolated_dirs(root: Path) -> None:
    for var in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "TORCH_HOME"):
        (root / var).mkdir(exist_ok=True)
        os.environ[var] = str(root / var)


def _settings(args: argparse.Namespace) -> dict:
    lr = "auto" if args.lr == "auto" else float(args.lr)
    return dict(lr=lr, batch_size=args.batch_size, image_size=args.image_size, cache=args.cache)


def train_each(folder: Path, models: list[str], args: argparse.Namespace, work: Path) -> tuple[float, dict]:
    """Seconds to train every model one after another, as ``python main.py train`` does, and each
    model's validation accuracy."""
    from core.training.settings import TrainSettings  # torch: after the isolated folders are set
    from core.training.trainer import Trainer

    start = time.perf_counter()
    accuracy = {}
    for model in models:
        settings = TrainSettings(data=str(folder), model=model, weights="none", strategy="scratch",
                                 epochs=args.epochs, seed=args.seed, name=f"train-{model}", **_settings(args))
        fit = Trainer(settings, run_dir=work / "runs" / model, models_root=work / "models").fit()
        accuracy[model] = fit.metrics.get("val_acc")
    return time.perf_counter() - start, accuracy


def bakeoff(folder: Path, models: list[str], args: argparse.Namespace, work: Path) -> tuple[float, dict]:
    """Seconds of the whole bake-off of the same models (plan and scan included), and each model's
    validation accuracy as its leaderboard gives it."""
    from core.bakeoff.plan import make_plan
    from core.bakeoff.runner import run_bakeoff

    start = time.perf_counter()
    plan = make_plan(str(folder), models, out=work / "bakeoff", strategy="scratch", epochs=args.epochs,
                     seed=args.seed, **_settings(args))
    board = run_bakeoff(plan)
    seconds = time.perf_counter() - start
    failed = [row.model for row in board.rows if not row.ranked]
    if failed:
        raise SystemExit(f"the bake-off did not finish {failed}")
    return seconds, {row.model: row.accuracy for row in board.rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=MODELS)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--size", type=int, default=64, help="pixels of the digit PNGs written")
    parser.add_argument("--image-size", type=int, default=72,
                        help="training image size (default 72: NiN needs at least 67 pixels)")
    parser.add_argument("--per-class", type=int, default=None, help="digits per class (default: all, ~180)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", default="auto", help="a number, or auto (the default: the lr finder, as `train`)")
    parser.add_argument("--cache", default="memory", help="decoded-image cache for both sides (no disk reuse)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 models, 2 epochs, 10 digits per class")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    if args.quick:
        args.models, args.epochs, args.per_class, args.size, args.image_size = "resnet18,googlenet", 2, 10, 32, 32
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    with tempfile.TemporaryDirectory(prefix="cns-bench-bakeoff-") as tmp:
        root = Path(tmp)
        _isolated_dirs(root)
        from tests.support.digits import write_digits

        digits, _ = write_digits(root / "digits", size=args.size, per_class=args.per_class)
        times: dict[str, list[float]] = {"train": [], "bakeoff": []}
        accuracy: dict[str, dict] = {}
        warm = argparse.Namespace(**{**vars(args), "epochs": 1})  # imports, allocator, kernels: not timed
        train_each(digits, models[:1], warm, root / "warm-up")
        sides = [("train", train_each), ("bakeoff", bakeoff)]
        for rep in range(args.reps):
            for name, run in sides if rep % 2 == 0 else sides[::-1]:
                work = root / f"{name}-{rep}"
                seconds, accuracy[name] = run(digits, models, args, work)
                times[name].append(seconds)
                shutil.rmtree(work, ignore_errors=True)
                print(f"rep {rep + 1}: {name} {times[name][-1]:.1f} s", flush=True)
    train_s, bake_s = statistics.median(times["train"]), statistics.median(times["bakeoff"])
    overhead = bake_s / train_s - 1
    command = " ".join(["python -m benchmarks.bakeoff_overhead", *(argv if argv is not None else sys.argv[1:])])
    text = (f"Machine: {machine()}.\nCommand: `{command.strip()}`; medians of {args.reps} interleaved "
            f"rep(s).\n\n| models | epochs | PNGs -> training size | train each, one after another | bake-off "
            f"| overhead |\n|---|---:|---:|---:|---:|---:|\n| {', '.join(models)} | {args.epochs} | "
            f"{args.size} -> {args.image_size} px | "
            f"{train_s:.1f} s | {bake_s:.1f} s | {100 * overhead:+.1f} % |\n")
    same = all(f"{accuracy['train'][m]:.4f}" == f"{accuracy['bakeoff'][m]:.4f}" for m in models)
    text += ("\nValidation accuracy of each model, trained alone (`train`) and in the bake-off, same seed: "
             + ", ".join(f"{m} {100 * accuracy['train'][m]:.2f}% / {100 * accuracy['bakeoff'][m]:.2f}%"
                         for m in models)
             + (" (equal for every model).\n" if same else " (NOT equal).\n"))
    print(text)
    print(f"overhead ratio: {overhead:+.4f} (bake-off / sum of train times - 1; goal: under +0.05)")
    if not args.no_write and not args.quick:
        write_section("bakeoff-overhead", text)


if __name__ == "__main__":
    main()
