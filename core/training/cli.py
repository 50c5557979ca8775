"""``python main.py train`` and ``python main.py export`` (registered into core.cli's parser).

train: one line per epoch on stdout (stderr with ``--json``, whose stdout is one
JSON document: status, metrics, bundle, run folder), a progress bar on stderr
when it is a terminal, notes (skipped files, data warnings) on stderr. Ctrl+C
keeps the last epoch's checkpoint: ``train --resume RUN_DIR`` goes on from it.
Under ``torchrun`` only rank 0 prints.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from core.cli_common import EXIT_OK, UsageError, emit, emit_json
from core.cli_common import eprint as _eprint
from core.errors import StudioError, UnknownModelError
from core.text import plural
from core.training.callbacks import Callback
from core.training.events import BatchEnd, EpochEnd, FitEnd, FitStart, Notice, Progress
from core.training.settings import (
    AUGMENT_PRESETS,
    CACHE_MODES,
    EXPORT_FORMATS,
    IMAGE_SIZE_RANGE,
    LIMITS,
    OPTIMIZERS,
    SCHEDULES,
    STRATEGIES,
    WEIGHTS,
    TrainSettings,
)
from core.training.storage import check_free_space, check_models_root

# The parser (core.cli) imports this module for every command, `--help` and usage errors included: the
# modules that import torch (~2-4 s) are imported inside the commands that need them, each marked "lazy".

__all__ = ["register", "cmd_train", "cmd_export", "DEVICES", "add_setting", "bounded_int", "lr_value",
           "stop_signals_interrupt"]

DEVICES = ["auto", "cpu", "cuda", "mps"]


class ConsoleReporter(Callback):
    """Epoch lines, notes and (on a terminal) a progress bar; silent on ranks other than 0.

    Runs after the Checkpointer: an epoch's line is printed once its checkpoint is on disk, so a stop right
    after "epoch 2/20" resumes after epoch 2. Skipped files are named one per line, the first
    ``SKIPPED_SHOWN``; the rest are counted at the end (``--json`` lists every one).
    """

    order = 1100  # after Checkpointer (1000)
    SKIPPED_SHOWN = 20

    def __init__(self, *, json_mode: bool) -> None:
        self.lines = sys.stderr if json_mode else sys.stdout
        self.bar = sys.stderr.isatty()
        self.quiet = os.environ.get("RANK", "0") not in ("", "0")  # under torchrun only rank 0 talks
        self.skipped_files = 0

    def _bar(self, text: str) -> None:
        if self.bar and not self.quiet:
            sys.stderr.write("\r" + text[:118].ljust(118))
            sys.stderr.flush()

    def _clear(self) -> None:
        self._bar("")
        if self.bar and not self.quiet:
            sys.stderr.write("\r")

    def progress(self, event: Progress) -> None:
        words = {"scan": "scanning images", "decode": "decoding images", "lr_find": "finding a learning rate"}
        self._bar(f"{words.get(event.phase, event.phase)} {event.done}/{event.total}")

    def fit_start(self, event: FitStart) -> None:
        self.quiet = self.quiet or not self.trainer.is_main
        self._clear()
        if not self.quiet:
            start = f", resuming at epoch {event.start_epoch}" if event.start_epoch > 1 else ""
            ranks = f" x {event.world_size} processes" if event.world_size > 1 else ""
            _eprint(f"training '{event.settings['name']}' ({event.settings['model']}, {event.settings['strategy']}): "
                    f"{len(event.classes)} classes, {event.train_images} training / {event.val_images} validation "
                    f"images, {event.epochs} epochs on {event.device}{ranks}{start}; checkpoints in {event.run_dir}")

    def batch_end(self, event: BatchEnd) -> None:
        done = event.batch / max(event.batches, 1)
        self._bar(f"epoch {event.epoch} [{'#' * int(done * 24):<24}] {event.batch}/{event.batches} "
                  f"loss {event.loss:.4f} {event.images_per_second:.0f} img/s")

    def epoch_end(self, event: EpochEnd) -> None:
        if self.quiet:
            return
        self._clear()
        val = (f"  val_loss {event.val_loss:.4f}  val_acc {100 * event.val_acc:.2f}%"
               if event.val_loss is not None else "")
        print(f"epoch {event.epoch}/{event.epochs}  train_loss {event.train_loss:.4f}{val}  lr {event.lr:.2e}  "
              f"{event.seconds:.1f}s  {event.images_per_second:.0f} img/s{'  *' if event.best else ''}",
              file=self.lines, flush=True)

    def notice(self, event: Notice) -> None:
        if event.kind == "skipped_file":
            self.skipped_files += 1
            if self.skipped_files > self.SKIPPED_SHOWN:
                return
        if not self.quiet and event.kind not in ("paused", "resumed"):
            self._clear()
            _eprint(("warning: " if event.kind == "data" else "note: ") + event.message)

    def fit_end(self, event: FitEnd) -> None:
        self.more_skipped()

    def more_skipped(self) -> None:
        """One line for the skipped files not named (printed once)."""
        hidden, self.skipped_files = self.skipped_files - self.SKIPPED_SHOWN, min(self.skipped_files,
                                                                                   self.SKIPPED_SHOWN)
        if hidden > 0 and not self.quiet:
            self._clear()
            _eprint(f"note: {plural(hidden, 'more skipped file')} not named here (--json lists every one)")


def lr_value(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number or 'auto': {text}") from None


def _settings(args: argparse.Namespace) -> TrainSettings:
    from core.models import get_spec  # noqa: PLC0415 - lazy: imports torch, see the note at the top

    try:
        spec = get_spec(args.model)
    except UnknownModelError as exc:
        raise UsageError(str(exc)) from None
    if args.image_size is not None and args.image_size < spec.min_input_size:
        raise UsageError(f"--image-size {args.image_size} is too small for {spec.display_name}: it needs at least "
                         f"{spec.min_input_size} pixels (its pooling layers would leave nothing to classify)")
    strategy = args.strategy or ("scratch" if args.weights == "none" or not spec.pretrained else "finetune")
    values: dict[str, Any] = dict(
        data=args.folder, model=args.model, weights=args.weights, strategy=strategy, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer, schedule=args.schedule,
        label_smoothing=args.label_smoothing, augment=args.augment, image_size=args.image_size,
        val_fraction=args.val_fraction, patience=args.patience, seed=args.seed, device=args.device,
        num_workers=args.workers, cache=args.cache, name=args.name)
    try:
        return TrainSettings(**values)
    except StudioError as exc:
        raise UsageError(str(exc)) from None


class Terminated(KeyboardInterrupt):
    """SIGTERM (or SIGHUP) while training: handled exactly like Ctrl+C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`Terminated` in the main thread for the duration (then restored).

    Raised between Python statements, it unwinds like Ctrl+C: a checkpoint being written is abandoned
    (``core.io.atomic_write`` removes its temp file) and the previous one stays intact.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame) -> None:
        raise Terminated(signum)

    wanted = [signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {signum: signal.signal(signum, stop) for signum in wanted}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def cmd_train(args: argparse.Namespace) -> int:
    from core.training.bundles import check_name  # noqa: PLC0415 - lazy: imports torch, see the note at the top
    from core.training.trainer import Trainer  # noqa: PLC0415 - as above

    reporter = ConsoleReporter(json_mode=args.json)
    _check_out(args)
    options = dict(callbacks=[reporter], models_root=args.out, overwrite=args.overwrite)
    if args.resume:
        trainer = Trainer.resume_from(args.resume, **options)
    else:
        if not args.folder:
            raise UsageError("give the training FOLDER (one subfolder per class), or --resume RUN_DIR")
        if args.name is not None:
            try:
                check_name(args.name)
            except StudioError as exc:
                raise UsageError(f"--name: {exc}") from None
        settings = _settings(args)
        _check_space(settings.model, args.out)
        trainer = Trainer(settings, **options)
    try:
        with stop_signals_interrupt():
            result = trainer.fit()
    except KeyboardInterrupt as stop:
        reporter._clear()
        reporter.more_skipped()
        signum = getattr(stop, "signum", signal.SIGINT)
        hint = (f"; go on with: python main.py train --resume {trainer.run_dir}"
                if getattr(trainer, "_saved_epoch", 0) else "")
        _eprint(f"interrupted ({signal.Signals(signum).name}): {trainer.kept_checkpoint}{hint}")
        return 128 + signum
    if not trainer.is_main:
        return EXIT_OK
    if args.json:
        skipped = [{"path": path, "reason": reason} for path, reason in trainer.skipped.items()]
        emit_json({**result.to_json(), "name": trainer.name, "renamed_from": trainer.renamed_from,
                   "skipped": skipped})
    else:
        _eprint(result.message)
        if trainer.renamed_from:
            _eprint(f"note: '{trainer.renamed_from}' was taken, so this model is saved as '{trainer.name}' "
                    f"(--overwrite replaces '{trainer.renamed_from}' instead)")
        emit(f"saved model '{trainer.name}': {result.bundle}")
        emit(f"use it: python main.py classify IMAGE --model {trainer.name if args.out is None else result.bundle}")
    return EXIT_OK


def _check_out(args: argparse.Namespace) -> None:
    """``--out`` must be a folder we can write before any work starts (not after training)."""
    if args.out is not None:
        try:
            check_models_root(args.out)
        except StudioError as exc:
            raise UsageError(str(exc)) from None


def _check_space(model: str, out: str | None) -> None:
    """Before the data scan: the checkpoints and bundle of this architecture must fit (float32 weights)."""
    from core.models import get_spec  # noqa: PLC0415 - lazy: imports torch, see the note at the top

    check_free_space(4 * get_spec(model).params, models_root=out)


def cmd_export(args: argparse.Namespace) -> int:
    from core.training.bundles import find_bundle  # noqa: PLC0415 - lazy: imports torch, see the note at the top
    from core.training.export import export_bundle  # noqa: PLC0415 - as above

    try:
        found = find_bundle(args.bundle)
    except UnknownModelError as exc:
        raise UsageError(str(exc)) from None
    if found is None:
        raise UsageError(f"no saved model called '{args.bundle}' (give its name or its folder)")
    path = export_bundle(args.bundle, args.format, args.out, overwrite=args.force, hint="use --force to replace it")
    if args.json:
        emit_json({"bundle": args.bundle, "format": args.format, "path": str(path)})
    else:
        emit(f"exported {args.bundle} as {args.format}: {path}")
    return EXIT_OK


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        try:  # "1e3" is a whole number written as a float; "1e23" is one that is too large (said below)
            value = float(text)
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value == int(value):
            return int(value)
        raise argparse.ArgumentTypeError(f"not a whole number: {text}") from None


def bounded_int(low: int, high: int):
    """An argparse type: a whole number from ``low`` to ``high``, with both in the message."""

    def parse(text: str) -> int:
        value = _whole(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is out of range: use a whole number from {low} to {high}")
        return value

    return parse


def add_setting(p: argparse.ArgumentParser, flag: str, field: str, **options: Any) -> None:
    """An option for the TrainSettings field ``field``: its default is the field's, a whole number is
    checked against ``LIMITS[field]`` (so the CLI cannot disagree with the settings it builds)."""
    if field in LIMITS:
        options.setdefault("type", bounded_int(*LIMITS[field]))
    p.add_argument(flag, default=TrainSettings.default(field), **options)


def register(sub: argparse._SubParsersAction) -> None:
    model = TrainSettings.default("model")
    p = sub.add_parser("train", help="train a classifier on a folder with one subfolder per class")
    p.add_argument("folder", nargs="?", help="class subfolders, or train/ and val/ folders of them")
    add_setting(p, "--model", "model", help=f"registry name or saved model (default: {model})")
    add_setting(p, "--weights", "weights", choices=list(WEIGHTS),
             help="start from pretrained weights (default) or random ones")
    p.add_argument("--strategy", default=None, choices=list(STRATEGIES),  # None: chosen from --weights (_settings)
                   help="head | finetune | scratch (default: finetune, or scratch without pretrained weights)")
    add_setting(p, "--epochs", "epochs")
    add_setting(p, "--batch-size", "batch_size")
    add_setting(p, "--lr", "lr", type=lr_value, help="learning rate, or auto (default) for the lr finder")
    add_setting(p, "--optimizer", "optimizer", choices=list(OPTIMIZERS))
    add_setting(p, "--schedule", "schedule", choices=list(SCHEDULES))
    add_setting(p, "--label-smoothing", "label_smoothing", type=float)
    add_setting(p, "--image-size", "image_size", type=bounded_int(*IMAGE_SIZE_RANGE),
             help="pixels (default: the model's input size; each model has a minimum: `models --json`)")
    add_setting(p, "--val-fraction", "val_fraction", type=float)
    add_setting(p, "--augment", "augment", choices=list(AUGMENT_PRESETS))
    add_setting(p, "--patience", "patience", help="stop after P epochs without improvement")
    add_setting(p, "--name", "name", help="name of the saved model (default: FOLDER-MODEL)")
    p.add_argument("--out", default=None, help="folder to save the model in (default: the app's models folder)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the saved model and run called --name (default: a new name such as NAME-2)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="go on from the checkpoint in a run folder")
    add_setting(p, "--device", "device", choices=DEVICES)
    add_setting(p, "--seed", "seed")
    add_setting(p, "--workers", "num_workers", dest="workers",
             help=f"data loader processes (default: {TrainSettings.default('num_workers')})")
    add_setting(p, "--cache", "cache", choices=list(CACHE_MODES), help="where decoded images are kept")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="export a saved model to TorchScript or ONNX")
    p.add_argument("bundle", help="saved model name or folder")
    p.add_argument("--format", required=True, choices=list(EXPORT_FORMATS))
    p.add_argument("--out", required=True, help="output file (a new name, or an existing file with --force)")
    p.add_argument("--force", action="store_true", help="replace --out if it is an existing regular file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_export)
