"""One model's training in a bake-off, as an independent job: train (or resume), evaluate, record.

:func:`run_job` is what every executor runs (here, in a worker process, or as a Ray task). It is
idempotent: a model whose result is on disk is not trained again; a model with a checkpoint resumes
from it (``Trainer.resume_from``: the same numbers as an uninterrupted run); a model whose bundle was
saved but not yet evaluated is only evaluated. The training itself is exactly ``python main.py train``
with the job's settings and the bake-off's split, so a model's figures equal training it alone.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from core.bundle_files import read_bundle
from core.errors import Cancelled, StudioError
from core.models import get_spec
from core.text import plural
from core.timing import median_forward_ms
from core.training.bundles import load_bundle_model
from core.training.callbacks import Callback
from core.training.checkpoint import CHECKPOINT_NAME
from core.training.events import EpochEnd, FitStart, TrainingError
from core.training.runtime import Runtime, split_from_json
from core.training.storage import folder_size
from core.training.trainer import Trainer

from .plan import ModelJob
from .results import JobResult, read_result, write_result

__all__ = ["run_job", "EpochLines", "measure_latency", "LATENCY_RUNS"]

LATENCY_RUNS = 5


class EpochLines(Callback):
    """One line per epoch, prefixed with the model (what a Ray worker prints reaches the driver)."""

    order = 1100  # after the Checkpointer: a printed epoch is on disk

    def __init__(self, model: str, stream=None) -> None:
        self.model = model
        self.stream = stream

    def fit_start(self, event: FitStart) -> None:
        start = f", resuming after epoch {event.start_epoch - 1}" if event.start_epoch > 1 else ""
        print(f"{self.model}: training ({event.settings['strategy']}, {plural(event.epochs, 'epoch')}, "
              f"{event.train_images} training / {event.val_images} validation images{start})",
              file=self.stream or sys.stdout, flush=True)

    def epoch_end(self, event: EpochEnd) -> None:
        val = (f"  val_loss {event.val_loss:.4f}  val_acc {100 * event.val_acc:.2f}%"
               if event.val_acc is not None else "")
        print(f"{self.model}: epoch {event.epoch}/{event.epochs}  train_loss {event.train_loss:.4f}{val}  "
              f"{event.seconds:.1f}s", file=self.stream or sys.stdout, flush=True)


def measure_latency(model: torch.nn.Module, size: int, device: torch.device, runs: int = LATENCY_RUNS) -> float:
    """Median milliseconds of one image's forward pass at ``size`` pixels on ``device`` (as Compare times)."""
    model = model.to(device).eval()
    return median_forward_ms(model, torch.zeros(1, 3, size, size, device=device), runs=runs)


def _checkpoint(job: ModelJob) -> bool:
    return (Path(job.run_dir) / CHECKPOINT_NAME).is_file()


def _saved_bundle(job: ModelJob) -> Path | None:
    """The job's bundle when it was saved by an earlier session (and the run finished), else None."""
    name = job.train_settings.name
    folder = Path(job.models_root) / name if name else None
    if folder is None or not folder.is_dir() or _checkpoint(job):
        return None
    try:
        read_bundle(folder, expected_name=name)
    except StudioError:
        return None
    return folder


def run_job(job: ModelJob, *, callbacks: Iterable[Callback] = (),
            on_trainer: Callable[[Trainer], None] | None = None) -> JobResult:
    """Train (or resume) and evaluate one model; the result is written to ``job.result_path``.

    ``on_trainer`` receives the Trainer before it fits (to pause or cancel it from another thread).
    A cancel raises ``core.errors.Cancelled`` and writes nothing (the checkpoint stays for resuming);
    a failure returns (and records) a "failed" result with the reason.
    """
    done = read_result(job.result_path)
    if done is not None and (done.finished or done.status == "skipped"):
        return done
    if job.threads:
        torch.set_num_threads(job.threads)
    settings = job.train_settings
    spec = get_spec(job.model)
    base = JobResult(model=job.model, display_name=spec.display_name, status="failed", strategy=settings.strategy,
                     epochs=settings.epochs)
    start = time.perf_counter()
    try:
        saved = _saved_bundle(job)
        if saved is not None:
            result = _evaluate_saved(job, saved, base)
        else:
            result = _train(job, base, list(callbacks), on_trainer, start)
    except Cancelled:
        raise
    except (StudioError, OSError, RuntimeError, ValueError) as exc:  # TrainingError is a StudioError
        base.message = str(exc) or type(exc).__name__
        result = base
    write_result(job.result_path, result)
    return result


def _train(job: ModelJob, result: JobResult, callbacks: list[Callback],
           on_trainer: Callable[[Trainer], None] | None, start: float) -> JobResult:
    options = dict(callbacks=callbacks, models_root=job.models_root, overwrite=True)
    earlier = 0.0
    if _checkpoint(job):
        trainer = Trainer.resume_from(job.run_dir, **options)
    else:
        trainer = Trainer(job.train_settings, data=split_from_json(job.split), run_dir=job.run_dir, **options)
    if on_trainer is not None:
        on_trainer(trainer)
    try:
        fit = trainer.fit()
    except TrainingError as exc:
        result.message = str(exc)
        result.epochs_done = trainer.epoch
        result.history = _history(trainer)
        return result
    history = _history(trainer)
    resumed_at = trainer.recorder.epochs[0]["epoch"] if trainer.recorder.epochs else 1
    earlier = sum(e["seconds"] for e in history if e["epoch"] < resumed_at)  # epochs of earlier sessions
    model, _bundle = load_bundle_model(fit.bundle)
    preds, confs = trainer.runtime.predict_val(model)
    result.status, result.message = fit.status, fit.message
    result.strategy = trainer.settings.strategy
    result.epochs_done = fit.epochs_done
    result.val_acc, result.val_loss = fit.metrics.get("val_acc"), fit.metrics.get("val_loss")
    result.history = history
    result.train_seconds = earlier + time.perf_counter() - start
    result.predictions, result.confidences = preds, confs
    result.latency_ms = measure_latency(model, trainer.image_size, trainer.runtime.device)
    result.params = sum(p.numel() for p in model.parameters())
    result.bundle, result.bundle_bytes = str(fit.bundle), folder_size(Path(fit.bundle))
    result.device = trainer.runtime.device.type
    return result


def _history(trainer: Trainer) -> list[dict]:
    keep = ("epoch", "train_loss", "val_loss", "val_acc", "seconds")
    return [{k: e.get(k) for k in keep} for e in trainer.recorder.epochs]


def _evaluate_saved(job: ModelJob, folder: Path, result: JobResult) -> JobResult:
    """An earlier session saved the bundle and stopped before recording it: evaluate it now."""
    model, bundle = load_bundle_model(folder)
    settings = job.train_settings
    runtime = Runtime(settings, split_from_json(job.split), notify=lambda _notice: None,
                      progress=lambda _phase: (lambda _done, _total: None), cancel_event=threading.Event())
    with runtime.switches():
        runtime.prepare_data()
        preds, confs = runtime.predict_val(model)
    metrics = bundle.metrics or {}
    result.status = "completed"
    result.message = "evaluated the model an earlier session saved"
    result.epochs_done = int(metrics.get("epochs", settings.epochs) or 0)
    result.val_acc, result.val_loss = metrics.get("val_acc"), metrics.get("val_loss")
    result.predictions, result.confidences = preds, confs
    result.latency_ms = measure_latency(model, runtime.image_size, runtime.device)
    result.params = sum(p.numel() for p in model.parameters())
    result.bundle, result.bundle_bytes = str(folder), folder_size(folder)
    result.device = runtime.device.type
    return result
