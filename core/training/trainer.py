"""The Trainer: a synchronous fit loop that reports through named events to callbacks.

>>> trainer = Trainer(TrainSettings(data="photos/", model="resnet18", epochs=5))
>>> result = trainer.fit()                      # blocks; call from a worker thread
>>> trainer.pause(); trainer.resume(); trainer.cancel()   # from any other thread

Events, in order: ``progress`` (scan/decode/lr_find), ``fit_start``, then per
epoch ``epoch_start``, ``batch_end`` per batch, ``epoch_end``, and ``fit_end``;
``notice`` at any time (skipped files, OOM retries, pause/resume...). A
checkpoint is written at every epoch end; ``Trainer.resume_from(run_dir)`` goes
on from it exactly as if the run had never stopped. A completed (or early
stopped) fit writes a model bundle and returns a :class:`FitResult`; a cancel
raises ``core.errors.Cancelled``, a failure ``TrainingError`` (after ``fit_end``).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core import __version__, paths
from core.data import DataSplit
from core.errors import Cancelled, StudioError, WeightsError
from core.text import plural
from core.training import setup, storage
from core.training.bundles import models_dir, unique_name, write_bundle
from core.training.callbacks import (
    Callback,
    Checkpointer,
    Controls,
    EarlyStopping,
    NaNGuard,
    Recorder,
    StopOnRequest,
)
from core.training.checkpoint import BEST_NAME, CHECKPOINT_NAME, capture_rng, load_checkpoint, restore_rng
from core.training.checkpoint import save_checkpoint as _save
from core.training.events import (
    BatchEnd,
    CancelFit,
    EpochEnd,
    EpochStart,
    FitEnd,
    FitStart,
    Notice,
    Progress,
    TrainingError,
)
from core.training.lr_finder import find_lr
from core.training.runtime import Runtime, split_from_json, split_to_json
from core.training.settings import TrainSettings

__all__ = ["Trainer", "FitResult", "runs_dir"]


def runs_dir() -> Path:
    """Where run folders (checkpoints) live: ``<user data dir>/runs``."""
    return paths.runs_dir()


@dataclass
class FitResult:
    status: str  # "completed" or "early_stopped"
    message: str
    epochs_done: int
    metrics: dict[str, Any]
    bundle: Path | None
    run_dir: Path
    history: dict[str, Any] = field(repr=False, default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "message": self.message, "epochs_done": self.epochs_done,
                "metrics": self.metrics, "bundle": str(self.bundle) if self.bundle else None,
                "run_dir": str(self.run_dir)}


def _from_runtime(name: str) -> property:
    """A read-only view of the runtime's ``name`` (the model, optimizer, device... of the run)."""
    return property(lambda self: getattr(self.runtime, name), doc=f"The run's ``{name}`` (held by its Runtime).")


class Trainer:
    """One training run. Public state for callbacks: ``settings``, ``model``, ``optimizer``,
    ``scheduler``, ``epoch`` (epochs done), ``step``, ``recorder``, ``data``, ``device``, ``run_dir``.

    The data, model and optimisation live in its :class:`Runtime` (``runtime``); the trainer runs the
    loop, sends the events, writes checkpoints and the bundle, and names the run."""

    model = _from_runtime("model")
    net = _from_runtime("net")
    head = _from_runtime("head")
    optimizer = _from_runtime("optimizer")
    scheduler = _from_runtime("scheduler")
    scaler = _from_runtime("scaler")
    device = _from_runtime("device")
    dist = _from_runtime("dist")
    micro_batch = _from_runtime("micro_batch")
    steps_per_epoch = _from_runtime("steps_per_epoch")
    skipped = _from_runtime("skipped")
    spec = _from_runtime("spec")
    image_size = _from_runtime("image_size")

    def __init__(self, settings: TrainSettings, *, callbacks: Iterable[Callback] = (),
                 data: DataSplit | None = None, run_dir: str | os.PathLike[str] | None = None,
                 models_root: str | os.PathLike[str] | None = None, overwrite: bool = False,
                 keep_checkpoints: bool = False) -> None:
        self.controls = Controls()
        self.runtime = Runtime(settings, data, notify=lambda notice: self.emit("notice", notice),
                               progress=self._progress, cancel_event=self.controls.cancel_event)
        self.epoch = 0  # epochs done
        self.step = 0  # optimizer steps done
        self.best: dict[str, Any] | None = None  # validation metrics of the best epoch
        self.last: dict[str, Any] | None = None
        self.name = settings.name
        self.recorder = Recorder()
        self.callbacks: list[Callback] = [self.recorder, NaNGuard(), StopOnRequest(self.controls), Checkpointer(),
                                          *callbacks]
        if settings.patience:
            self.callbacks.append(EarlyStopping(settings.patience))
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.models_root = Path(models_root) if models_root is not None else None
        self.overwrite = overwrite  # replace a saved model / run of the same name (else a new unique name)
        self.keep_checkpoints = keep_checkpoints  # False: a finished run keeps only run.json
        self.renamed_from: str | None = None  # the name asked for, when it was taken and another was chosen
        self._auto_run_dir = run_dir is None
        self._name_chosen = False
        self._resume_path: Path | None = None
        self._saved_epoch = 0
        self._fitted = False

    @classmethod
    def resume_from(cls, run_dir: str | os.PathLike[str], *, callbacks: Iterable[Callback] = (),
                    models_root: str | os.PathLike[str] | None = None, **options: Any) -> Trainer:
        """A trainer that goes on from the checkpoint in ``run_dir`` with the run's own settings."""
        checkpoint = load_checkpoint(run_dir)
        try:
            settings = TrainSettings.from_json(checkpoint["settings"])
        except (TypeError, ValueError, StudioError) as exc:
            where = Path(run_dir) / CHECKPOINT_NAME
            raise WeightsError(f"{where} has damaged settings ({str(exc)[:160]}); it cannot be resumed") from None
        trainer = cls(settings, callbacks=callbacks,
                      run_dir=Path(run_dir) if Path(run_dir).is_dir() else Path(run_dir).parent,
                      models_root=models_root, **options)
        trainer._resume_path = trainer.run_dir
        return trainer

    # -- control from other threads ------------------------------------------------

    def pause(self) -> None:
        self.controls.pause()

    def resume(self) -> None:
        self.controls.resume()

    def cancel(self) -> None:
        self.controls.cancel()

    @property
    def settings(self) -> TrainSettings:
        return self.runtime.settings

    @settings.setter
    def settings(self, settings: TrainSettings) -> None:
        self.runtime.settings = settings

    @property
    def data(self) -> DataSplit | None:
        return self.runtime.data

    @data.setter
    def data(self, data: DataSplit | None) -> None:
        self.runtime.data = data

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    @property
    def architecture(self) -> str:
        """The registry name of the run's architecture (a saved model's base architecture)."""
        return self.runtime.model_ref.architecture.name

    def find_lr(self, **options: Any):
        """Run the learning-rate finder on this run's data and model; returns an ``LRFinderResult``.

        A later ``fit`` reuses the scanned data and decoded images.
        """
        with self.runtime.switches():
            self.runtime.seed()
            self._prepare_data_and_model(pretrained=True)
            return find_lr(self.runtime, **options)

    # -- preparation -------------------------------------------------------------------

    def _prepare(self, checkpoint: dict[str, Any] | None) -> None:
        if checkpoint is not None:
            try:  # a tampered checkpoint is a clear error, not a traceback
                self.settings = type(self.settings).from_json(checkpoint["settings"])
                self.data = split_from_json(checkpoint["data"])
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise StudioError(f"the checkpoint in {self.run_dir} is damaged or was changed by hand: its "
                                  f"settings or data split cannot be read ({type(exc).__name__}: {str(exc)[:120]})"
                                  ) from None
        else:
            self.runtime.seed()
        self._prepare_data_and_model(pretrained=checkpoint is None)
        if checkpoint is None and self.settings.lr == "auto":
            found = find_lr(self.runtime)
            self.settings = self.settings.replace(lr=found.suggestion)
            self.emit("notice", Notice("lr_found", f"learning-rate finder suggests {found.suggestion:.2e}"))
        self.runtime.prepare_optimization()
        if checkpoint is not None:
            self._restore(checkpoint)

    def _prepare_data_and_model(self, *, pretrained: bool) -> None:
        """Data and model, with the run's name chosen in between (it needs the architecture)."""
        self.runtime.prepare_data()
        self._choose_name()  # chosen once; the checkpoint keeps it for resuming
        self.name = self.settings.name
        if self.run_dir is None:
            self.run_dir = runs_dir() / self.name
        self.runtime.prepare_model(pretrained=pretrained)

    # -- events ----------------------------------------------------------------------

    def emit(self, name: str, payload: Any) -> None:
        """Deliver one event to every callback in order; a CancelFit is re-raised after all saw it."""
        stop: CancelFit | None = None
        for callback in sorted(self.callbacks, key=lambda cb: cb.order):
            callback.trainer = self
            try:
                getattr(callback, name)(payload)
            except CancelFit as exc:
                stop = stop or exc
        if stop is not None:
            raise stop

    def _progress(self, phase: str):
        return lambda done, total: self.emit("progress", Progress(phase, int(done), int(total or 0)))

    # -- fit -------------------------------------------------------------------------

    def fit(self) -> FitResult:
        """Train to the end (or an early stop); see the module docstring for what ends it otherwise.

        A Trainer fits once; make a new one (or ``Trainer.resume_from``) for another run.
        """
        if self._fitted:
            raise StudioError("this Trainer has already run; make a new one for another run")
        self._fitted = True
        status, message = "failed", "training did not start"
        try:
            with self.runtime.switches():
                checkpoint = load_checkpoint(self._resume_path) if self._resume_path else None
                self._prepare(checkpoint)
                self._check_space()
                if checkpoint is None:
                    self._claim_run_dir()
                status, message = self._train()
                bundle = self._finish(status)
                self._prune(status)
                result = FitResult(status, message, self.epoch, self.final_metrics(), bundle, self.run_dir,
                                   self.recorder.to_json())
                self.emit("fit_end", FitEnd(status, message, self.epoch, result.metrics,
                                            str(bundle) if bundle else None))
                return result
        except CancelFit as stop:  # raised by a callback during preparation or fit_end
            status, message = stop.status, stop.message
        except Cancelled as exc:
            status, message = "cancelled", str(exc)
        except StudioError as exc:
            status, message = "failed", str(exc)
        if self._auto_run_dir and self._resume_path is None and self.run_dir is not None:
            with contextlib.suppress(OSError):
                self.run_dir.rmdir()  # only if empty: a run that saved nothing leaves no folder
        self._emit_quietly(FitEnd(status, message, self.epoch, {}, None))
        if status == "cancelled":
            raise Cancelled("training")
        raise TrainingError(message)

    # -- names, run folders and disk use (core.training.storage) ------------------------------

    def _choose_name(self) -> None:
        """The run's name: the one asked for unless a saved model or run has it (then NAME-2, said in a
        notice), or FOLDER-ARCHITECTURE made unique. ``overwrite`` keeps the name asked for."""
        if self._name_chosen or self._resume_path is not None:
            return
        self._name_chosen = True
        folder = Path(self.settings.data).name if self.settings.data else "model"
        name, renamed = storage.choose_name(self.settings.name, f"{folder}-{self.architecture}",
                                            models_root=self.models_root, in_runs=self._auto_run_dir,
                                            overwrite=self.overwrite)
        self.settings = self.settings.replace(name=name)
        if renamed:
            self._renamed(renamed, name)

    def _renamed(self, old: str, new: str) -> None:
        self.renamed_from = self.renamed_from or old
        self.emit("notice", Notice("renamed", f"a saved model or training run called '{old}' already exists; "
                                              f"this one is saved as '{new}' (the other is kept)", new))

    def _check_space(self) -> None:
        """Refuse to start when the checkpoints and the bundle will not fit (main process)."""
        if self.is_main:
            tensors = [*self.model.parameters(), *self.model.buffers()]
            storage.check_free_space(sum(t.numel() * t.element_size() for t in tensors), run_dir=self.run_dir,
                                     models_root=self.models_root)

    def _claim_run_dir(self) -> None:
        """Create this run's folder before the first epoch; never reuse another run's (unless ``overwrite``)."""
        if not self.is_main or not self._auto_run_dir:
            return
        for _ in range(100):
            if storage.claim_run_dir(self.run_dir, overwrite=self.overwrite):
                return
            old = self.name  # another run took the name since it was chosen
            self.name = storage.choose_name(old, old, models_root=self.models_root, in_runs=True,
                                            overwrite=False)[0]
            self.settings = self.settings.replace(name=self.name)
            self.run_dir = runs_dir() / self.name
            self._renamed(old, self.name)
        raise StudioError(f"cannot create a run folder in {runs_dir()}")

    def _prune(self, status: str) -> None:
        """A finished run (its bundle saved) keeps only ``run.json``: checkpoints are for resuming."""
        if self.is_main and not self.keep_checkpoints and self.run_dir is not None:
            storage.prune_run(self.run_dir, status=status, name=self.name, epochs_done=self.epoch, step=self.step,
                              metrics=self.final_metrics())

    def _emit_quietly(self, event: FitEnd) -> None:
        with contextlib.suppress(CancelFit):
            self.emit("fit_end", event)

    def _train(self) -> tuple[str, str]:
        """Run the remaining epochs; returns (status, message) for a normal or early end."""
        epochs = self.settings.epochs
        self.emit("fit_start", FitStart(
            classes=list(self.data.classes), train_images=len(self.data.train), val_images=len(self.data.val),
            epochs=epochs, start_epoch=self.epoch + 1, steps_per_epoch=self.steps_per_epoch,
            batch_size=self.settings.batch_size, device=str(self.device), world_size=self.dist.world_size,
            run_dir=str(self.run_dir), settings=self.settings.to_json()))
        try:
            for index in range(self.epoch, epochs):
                self._run_epoch(index)
        except CancelFit as stop:
            if stop.status in ("cancelled", "failed"):
                raise
            self.emit("notice", Notice("early_stop", stop.message))
            return stop.status, stop.message
        return "completed", f"trained {plural(epochs, 'epoch')}"

    def _run_epoch(self, index: int) -> None:
        number, epochs = index + 1, self.settings.epochs
        self.emit("epoch_start", EpochStart(number, epochs))
        setup.set_train_mode(self.model, self.settings.strategy, self.head)
        runtime = self.runtime
        batches = runtime.epoch_batches(index)
        start, seen, loss_sum = time.perf_counter(), 0, 0.0
        loader = runtime.loader(runtime.train_set, batches, index)
        with self.loader_failures(number):
            for number_in_epoch, (images, labels, skipped) in enumerate(loader, 1):
                runtime.report_skipped(self.data.train, skipped)
                if images is None:
                    continue
                loss = runtime.train_step(images, labels)
                self.step += 1
                seen += len(labels)
                loss_sum += loss * len(labels)
                rate = seen * self.dist.world_size / max(time.perf_counter() - start, 1e-9)
                self.emit("batch_end", BatchEnd(number, number_in_epoch, len(batches), self.step, loss,
                                                runtime.step_lr, rate))
        seconds = time.perf_counter() - start
        val = runtime.validate()
        self.epoch = number
        best = val is not None and (self.best is None or val["val_loss"] < self.best["val_loss"])
        if best:
            self.best = {**val, "epoch": number}
        self.last = {"train_loss": loss_sum / max(seen, 1), **(val or {}), "epoch": number}
        self.emit("epoch_end", EpochEnd(
            epoch=number, epochs=epochs, train_loss=self.last["train_loss"],
            val_loss=val["val_loss"] if val else None, val_acc=val["val_acc"] if val else None,
            lr=runtime.step_lr, seconds=seconds, images_per_second=seen * self.dist.world_size / max(seconds, 1e-9),
            best=best))

    @contextlib.contextmanager
    def loader_failures(self, epoch: int) -> Iterator[None]:
        """A loader worker process that dies (killed, out of memory) ends the fit with a TrainingError.

        torch says so with a plain RuntimeError ("DataLoader worker (pid ...) exited unexpectedly" or "... is
        killed by signal"), raised where the loader waits or, in the main thread, from its SIGCHLD handler.
        """
        try:
            yield
        except RuntimeError as exc:
            if "DataLoader worker" not in str(exc):
                raise
            raise TrainingError(f"a data loader worker process died during epoch {epoch} ({exc}); "
                                f"{self.kept_checkpoint}: resume the run, with fewer workers if it happens "
                                f"again") from None

    # -- checkpoints and the bundle ---------------------------------------------------------

    def save_checkpoint(self, *, best: bool = False) -> Path:
        """Write ``checkpoint.pt`` (and ``best.pt`` when ``best``) into the run folder, atomically."""
        assert self.run_dir is not None
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if best and self.settings.keep_best:
                _save(self.run_dir / BEST_NAME, {"model": self.model.state_dict(), "epoch": self.epoch})
            path = _save(self.run_dir / CHECKPOINT_NAME, self.checkpoint_payload())
        except (StudioError, OSError) as exc:
            kept = (f"the checkpoint after epoch {self._saved_epoch} is intact" if self._saved_epoch
                    else "no earlier checkpoint exists")
            raise TrainingError(f"could not save the checkpoint after epoch {self.epoch} ({exc}); is the disk "
                                f"full or the folder read-only? {kept} in {self.run_dir}") from None
        self._saved_epoch = self.epoch
        return path

    @property
    def kept_checkpoint(self) -> str:
        """Which checkpoint a stopped run leaves for resuming, as a message fragment."""
        return (f"the checkpoint after epoch {self._saved_epoch} is kept in {self.run_dir}" if self._saved_epoch
                else "no checkpoint was written yet")

    def checkpoint_payload(self) -> dict[str, Any]:
        states = {cb.key: state for cb in self.callbacks if (state := cb.state_dict()) is not None}
        return {
            "epochs_done": self.epoch, "step": self.step, "micro_batch": self.micro_batch,
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
            "classes": list(self.data.classes), "settings": self.settings.to_json(),
            "data": split_to_json(self.data), "best": self.best, "last": self.last, "skipped": dict(self.skipped),
            "callbacks": states, "rng": capture_rng(self.runtime.order_generator),
        }

    def _restore(self, checkpoint: dict[str, Any]) -> None:
        try:  # load_checkpoint checked the fields' types; what is inside them is checked by using it
            self._restore_fields(checkpoint)
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as exc:
            raise WeightsError(f"the checkpoint in {self.run_dir} is damaged or was changed by hand and cannot be "
                               f"resumed ({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''})"
                               ) from None
        self.emit("notice", Notice("resumed_from", f"resumed from {self.run_dir} after epoch {self.epoch}",
                                   str(self.run_dir)))

    def _restore_fields(self, checkpoint: dict[str, Any]) -> None:
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.scaler.load_state_dict(checkpoint["scaler"])
        self.epoch = self._saved_epoch = int(checkpoint["epochs_done"])
        self.step, self.runtime.micro_batch = int(checkpoint["step"]), int(checkpoint["micro_batch"])
        self.best, self.last, self.runtime.skipped = checkpoint["best"], checkpoint["last"], dict(checkpoint["skipped"])
        for callback in self.callbacks:
            if callback.key in checkpoint["callbacks"]:
                callback.load_state_dict(checkpoint["callbacks"][callback.key])
        restore_rng(checkpoint["rng"], self.runtime.order_generator)

    def _finish(self, status: str) -> Path | None:
        """Write the bundle (main process); every process waits for it."""
        bundle = None
        if self.is_main:
            state, metrics = self.model.state_dict(), self.final_metrics()
            best_file = self.run_dir / BEST_NAME if self.run_dir else None
            if (self.settings.keep_best and self.best and self.best["epoch"] != self.epoch
                    and best_file is not None and best_file.is_file()):
                state = load_checkpoint(best_file)["model"]
            root = self.models_root or models_dir()
            if not self.overwrite and os.path.lexists(root / self.name):  # taken while this run trained
                old, self.name = self.name, unique_name(self.name, root)
                self.settings = self.settings.replace(name=self.name)
                self._renamed(old, self.name)
            bundle = write_bundle(self.name, state, self.bundle_meta(metrics, status), root=self.models_root,
                                  overwrite=self.overwrite)
        self.dist.barrier()
        return bundle

    def final_metrics(self) -> dict[str, Any]:
        """Metrics of the weights the bundle gets (the best epoch's with ``keep_best``), plus the last epoch's."""
        chosen = self.best if self.settings.keep_best and self.best else self.last
        out: dict[str, Any] = {"epochs": self.epoch, "last": self.last, "skipped_files": len(self.skipped)}
        if chosen:
            out.update({k: v for k, v in chosen.items() if k in ("val_loss", "val_acc", "per_class_acc")})
            out["epoch"] = chosen.get("epoch")
        if self.last:
            out["train_loss"] = self.last.get("train_loss")
        return out

    def bundle_meta(self, metrics: dict[str, Any], status: str) -> dict[str, Any]:
        pp = self.spec.preprocess
        return {
            "display_name": f"{self.name} ({self.runtime.model_ref.architecture.display_name})",
            "architecture": self.architecture,
            "classes": list(self.data.classes),
            "preprocess": {"resize_size": self.image_size, "crop_size": self.image_size, "mean": list(pp.mean),
                           "std": list(pp.std), "interpolation": "bilinear"},
            "params": sum(p.numel() for p in self.model.parameters()), "metrics": metrics, "status": status,
            "training": {**self.settings.to_json(), "train_images": len(self.data.train),
                         "val_images": len(self.data.val), "world_size": self.dist.world_size,
                         "device": self.device.type, "steps": self.step},
            "app_version": __version__,
        }

