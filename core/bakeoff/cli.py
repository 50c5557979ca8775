"""``python main.py bakeoff``: several architectures trained on the same split of one folder, then ranked.

Prints a header (each model's strategy and why, its epochs, the image size, the split, the output
folder), one line per model per epoch, then the leaderboard and where the saved models are. With
``--json`` stdout is one JSON document (the leaderboard's every figure, the output folder and the
bundles) and the lines go to stderr. Ctrl+C or SIGTERM stops it; ``--resume OUT`` goes on (finished
models are read back, the one in progress resumes from its last checkpoint). Registered into
core.cli's parser, so nothing here imports torch at module level (see core/training/cli.py).
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

from core.cli_common import EXIT_FAILED, EXIT_OK, UsageError, emit_json
from core.defaults import BAKEOFF_PRESETS
from core.errors import StudioError, UnknownModelError
from core.text import plural
from core.textout import write_line
from core.training.cli import DEVICES, add_setting, bounded_int, lr_value, stop_signals_interrupt
from core.training.settings import (
    AUGMENT_PRESETS,
    CACHE_MODES,
    IMAGE_SIZE_RANGE,
    LIMITS,
    OPTIMIZERS,
    SCHEDULES,
    TrainSettings,
)

__all__ = ["register", "cmd_bakeoff", "PRESET_NAMES"]

PRESET_NAMES = tuple(BAKEOFF_PRESETS)
STRATEGY_CHOICES = ("auto", "head", "finetune", "scratch")
# TrainSettings fields common to every model, from the options of the same names
COMMON = ("batch_size", "lr", "optimizer", "schedule", "label_smoothing", "augment", "val_fraction", "patience",
          "device", "num_workers", "cache")


class _Lines:
    """Where the header, epoch lines and leaderboard go: stdout, or stderr under ``--json``."""

    def __init__(self, json_mode: bool) -> None:
        self.stream = sys.stderr if json_mode else sys.stdout

    def __call__(self, line: object = "") -> None:
        write_line(self.stream, line)


def _models(text: str | None) -> list[str]:
    from core.models import get_spec  # noqa: PLC0415 - lazy: imports torch, see the note at the top

    if not text:
        raise UsageError(f"give the models: --models a,b,c or a preset ({', '.join(PRESET_NAMES)})")
    if text.strip().lower() in BAKEOFF_PRESETS:
        return list(BAKEOFF_PRESETS[text.strip().lower()])
    models = [name.strip() for name in text.split(",") if name.strip()]
    for name in models:
        try:
            get_spec(name)
        except UnknownModelError as exc:
            raise UsageError(str(exc)) from None
    if len(set(models)) != len(models):
        raise UsageError("--models: a model is listed twice")
    return models


def _common(args: argparse.Namespace) -> dict[str, Any]:
    """The common training settings, checked now (before the folder is scanned)."""
    values = {name: getattr(args, name) for name in COMMON}
    try:
        TrainSettings(data=args.folder, seed=args.seed, **values)
    except StudioError as exc:
        raise UsageError(str(exc)) from None
    return values


def _check_choices(models: list[str], args: argparse.Namespace) -> None:
    """Usage errors that make_plan would find only after the scan: strategy, image size, output folder."""
    from core.bakeoff.plan import check_out_dir, choose_strategy, common_image_size  # noqa: PLC0415 - lazy: torch

    try:
        for model in models:
            choose_strategy(model, args.strategy)
        if args.image_size is not None:
            common_image_size(models, None, args.image_size)
        if args.out is not None:
            check_out_dir(args.out)
    except StudioError as exc:
        raise UsageError(str(exc)) from None


def _epochs_for(estimates: dict[str, Any], cancel=None):
    """make_plan's ``epochs_for``: a short timed probe per model (kept in ``estimates`` for the header)."""
    from core.bakeoff.probe import epochs_within, probe  # noqa: PLC0415 - lazy: imports torch

    def epochs_for(model, strategy, split, size, minutes, base) -> int:
        settings = base.replace(model=model, strategy=strategy, image_size=size)
        estimates[model] = probe(model, strategy=strategy, split=split, settings=settings, cancel=cancel)
        return epochs_within(estimates[model], minutes)

    return epochs_for


def _new_plan(args: argparse.Namespace, say: _Lines):
    from core.bakeoff.plan import make_plan  # noqa: PLC0415 - lazy: imports torch

    if not args.folder:
        raise UsageError("give the FOLDER to train on (one subfolder per class), or --resume OUT")
    models = _models(args.models)
    common = _common(args)
    _check_choices(models, args)
    estimates: dict[str, Any] = {}
    if args.minutes is not None:
        say(f"timing each model on this device to fit {args.minutes:g} minutes per model...")
    plan = make_plan(args.folder, models, out=args.out, strategy=args.strategy,
                     epochs=None if args.minutes is not None else (args.epochs or TrainSettings.default("epochs")),
                     minutes=args.minutes, image_size=args.image_size, seed=args.seed,
                     epochs_for=_epochs_for(estimates), **common)
    return plan, estimates


def _resumed_plan(args: argparse.Namespace):
    from core.bakeoff.plan import load_plan  # noqa: PLC0415 - lazy: imports torch

    given = [flag for flag, value in (("FOLDER", args.folder), ("--models", args.models), ("--out", args.out),
                                      ("--epochs", args.epochs), ("--minutes", args.minutes)) if value is not None]
    if given:
        raise UsageError(f"--resume takes everything from the bake-off's folder: leave out {', '.join(given)}")
    try:
        return load_plan(args.resume)
    except StudioError as exc:
        raise UsageError(f"--resume: {exc}") from None


def _header(plan, estimates: dict[str, Any], say: _Lines, resumed: bool) -> None:
    split = plan.split
    say(f"{'resuming the bake-off' if resumed else 'bake-off'} of {len(plan.entries)} models on {plan.folder}: "
        f"{len(split.classes)} classes, {len(split.train)} training / {len(split.val)} validation images, "
        f"{plan.base.image_size} px, seed {plan.base.seed}")
    width = max(len(e.model) for e in plan.entries)
    for entry in plan.entries:
        took = estimates.get(entry.model)
        timing = f", ~{took.epoch_seconds:.0f} s per epoch by a timed probe" if took is not None else ""
        say(f"  {entry.model:<{width}}  {entry.strategy:<8}  {plural(entry.epochs, 'epoch')}{timing}  ({entry.reason})")
    if plan.budget == "minutes":
        say(f"budget: {plan.minutes:g} minutes per model")
    say(f"output folder: {plan.out}")


def _listener(say: _Lines):
    from core.bakeoff.runner import BakeoffListener  # noqa: PLC0415 - lazy: imports torch

    class Lines(BakeoffListener):
        def job_ended(self, model: str, result) -> None:
            if result.finished:
                acc = f": val_acc {100 * result.val_acc:.2f}%" if result.val_acc is not None else ""
                say(f"{model}: {result.status.replace('_', ' ')}{acc}")
            elif result.status != "cancelled":
                say(f"{model}: {result.status}: {result.message}")

    return Lines()


def cmd_bakeoff(args: argparse.Namespace) -> int:
    from core.bakeoff.jobs import EpochLines  # noqa: PLC0415 - lazy: imports torch, see the note at the top
    from core.bakeoff.runner import run_bakeoff  # noqa: PLC0415 - as above

    say = _Lines(args.json)
    if args.resume:
        plan, estimates = _resumed_plan(args), {}
    else:
        plan, estimates = _new_plan(args, say)
    _header(plan, estimates, say, resumed=bool(args.resume))
    try:
        with stop_signals_interrupt():
            board = run_bakeoff(plan, executor=args.executor, jobs=args.jobs, listener=_listener(say),
                                callbacks_for=lambda job: [EpochLines(job.model, say.stream)])
    except KeyboardInterrupt as stop:
        signum = getattr(stop, "signum", getattr(stop, "code", 128 + signal.SIGINT) - 128)
        say(f"interrupted ({signal.Signals(signum).name}); finished models are kept, the one in progress has "
            f"its last checkpoint; go on with: python main.py bakeoff --resume {plan.out}")
        return 128 + signum
    return _report(plan, board, say, args.json)


def _report(plan, board, say: _Lines, json_mode: bool) -> int:
    bundles = {row.model: row.bundle for row in board.rows if row.bundle}
    if json_mode:
        emit_json({**board.to_json(), "out": plan.out, "bundles": bundles})
    say()
    for line in board.text_lines():
        say(line)
    say()
    say(f"leaderboard: {plan.leaderboard_path()}")
    for model, bundle in bundles.items():
        say(f"saved model {model}: {bundle}")
    failed = [row for row in board.rows if row.status == "failed"]
    return EXIT_FAILED if failed else EXIT_OK


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text}") from None
    if not 0 < value <= 7 * 24 * 60:
        raise argparse.ArgumentTypeError(f"{text} is out of range: minutes per model, more than 0, at most a week")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bakeoff", help="train several architectures on the same split of a folder and rank them")
    p.add_argument("folder", nargs="?", default=None, help="class subfolders, or train/ and val/ folders of them")
    p.add_argument("--models", default=None,
                   help=f"comma-separated registry names (alexnet,resnet18,googlenet) or a preset: "
                        f"{', '.join(PRESET_NAMES)}")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=bounded_int(*LIMITS["epochs"]), default=None,
                        help=f"the same epochs for every model (default: {TrainSettings.default('epochs')})")
    budget.add_argument("--minutes", type=_minutes, default=None,
                        help="the same wall-clock time for every model: each one's epochs from a timed probe")
    p.add_argument("--image-size", type=bounded_int(*IMAGE_SIZE_RANGE), default=None,
                   help="pixels, the same for every model (default: the images' typical size, at most 224)")
    p.add_argument("--strategy", default="auto", choices=list(STRATEGY_CHOICES),
                   help="auto (default: fine-tune where the ImageNet weights are here, else scratch) | head | "
                        "finetune | scratch")
    add_setting(p, "--seed", "seed", help="the split's and every model's seed")
    p.add_argument("--out", default=None, help="a new or empty folder for the bake-off (default: in the app's data)")
    p.add_argument("--resume", default=None, metavar="OUT", help="go on with the bake-off in folder OUT")
    p.add_argument("--executor", default="local", choices=["local", "ray"],
                   help="local (default) or ray: each model a Ray task, on the cluster at RAY_ADDRESS")
    p.add_argument("--jobs", type=bounded_int(1, 64), default=1,
                   help="local: models trained at once in worker processes (one per GPU when there are K)")
    add_setting(p, "--batch-size", "batch_size")
    add_setting(p, "--lr", "lr", type=lr_value, help="learning rate, or auto (default) for the lr finder")
    add_setting(p, "--optimizer", "optimizer", choices=list(OPTIMIZERS))
    add_setting(p, "--schedule", "schedule", choices=list(SCHEDULES))
    add_setting(p, "--label-smoothing", "label_smoothing", type=float)
    add_setting(p, "--augment", "augment", choices=list(AUGMENT_PRESETS))
    add_setting(p, "--val-fraction", "val_fraction", type=float)
    add_setting(p, "--patience", "patience", help="stop a model after P epochs without improvement")
    add_setting(p, "--device", "device", choices=DEVICES)
    add_setting(p, "--workers", "num_workers", dest="num_workers", help="data loader processes per model")
    add_setting(p, "--cache", "cache", choices=list(CACHE_MODES), help="where decoded images are kept")
    p.add_argument("--json", action="store_true", help="print the leaderboard as one JSON document")
    p.set_defaults(func=cmd_bakeoff)
