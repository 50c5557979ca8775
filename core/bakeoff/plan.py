"""What a bake-off runs: the models, each one's strategy and epochs, the shared split, the output folder.

Every model trains on the SAME split (one scan, one seed), at the same image size and with the same
augmentation and optimisation settings; only the architecture, its strategy (chosen per model from
the weights on this machine unless one is asked for) and, with a time budget, its number of epochs
differ. Each model's training is a :class:`ModelJob`: plain data that a local executor or a Ray task
runs on its own (``core.bakeoff.jobs``).

The output folder holds everything, so ``--resume OUT`` needs nothing else::

    OUT/bakeoff.json          this plan (settings, models, split), written before any training
    OUT/runs/<model>/         each model's run folder (checkpoints while it trains)
    OUT/models/<name>/        each model's saved bundle
    OUT/results/<model>.json  each model's outcome (core.bakeoff.results), written when it ends
    OUT/leaderboard.json      the ranking, once every job has ended
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core import paths
from core.data import DataSplit, ScanReport, scan_folder, split_samples
from core.defaults import BAKEOFF_PRESETS
from core.errors import StudioError, UnknownModelError
from core.io import atomic_write_json
from core.models import get_spec
from core.training.runtime import split_from_json, split_to_json
from core.training.settings import STRATEGIES, TrainSettings
from core.weights import cached_path

__all__ = ["PRESETS", "PRESET_LABELS", "ModelEntry", "ModelJob", "BakeoffPlan", "make_plan", "load_plan",
           "choose_strategy", "common_image_size", "default_out_dir", "PLAN_NAME"]

PLAN_NAME = "bakeoff.json"
FORMAT = "convnet-studio.bakeoff"
FORMAT_VERSION = 1
MAX_PLAN_BYTES = 256 * 1024**2  # the split lists every image: ~200 bytes each
PRESETS = BAKEOFF_PRESETS
PRESET_LABELS = {"fast": "Fast", "classics": "The classics"}
STRATEGY_CHOICES = ("auto", *STRATEGIES)
# Settings that are the bake-off's to set per model (the rest are common to every model).
PER_MODEL = ("model", "strategy", "weights", "epochs", "name")


@dataclass(frozen=True)
class ModelEntry:
    """One model of the bake-off: its strategy (and why), its epochs."""

    model: str
    strategy: str
    epochs: int
    reason: str = ""  # why this strategy, shown beside it

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "strategy": self.strategy, "epochs": self.epochs, "reason": self.reason}


@dataclass(frozen=True)
class ModelJob:
    """One model's training as an independent job: plain, picklable data (a Ray task's argument)."""

    model: str
    settings: dict[str, Any]  # TrainSettings.to_json()
    split: dict[str, Any]  # core.training.runtime.split_to_json
    run_dir: str
    models_root: str
    result_path: str
    threads: int = 0  # torch CPU threads for the job (0: leave torch's choice); the same everywhere, same numbers

    @property
    def train_settings(self) -> TrainSettings:
        return TrainSettings.from_json(self.settings)


def choose_strategy(model: str, wanted: str = "auto") -> tuple[str, str]:
    """(strategy, reason). "auto": fine-tune when the model's ImageNet weights are on this machine,
    else train from scratch (nothing is downloaded behind the person's back)."""
    spec = get_spec(model)
    if wanted != "auto":
        if wanted != "scratch" and not spec.pretrained:
            raise StudioError(f"{spec.display_name} has no pretrained weights: use strategy scratch (or auto)")
        return wanted, "as asked"
    if spec.pretrained and cached_path(spec) is not None:
        return "finetune", "its ImageNet weights are on this machine"
    if spec.pretrained:
        return "scratch", "its ImageNet weights are not on this machine"
    return "scratch", "it has no pretrained weights"


def common_image_size(models: list[str], report: ScanReport | None = None, wanted: int | None = None) -> int:
    """One image size for every model: ``wanted``, or the typical image's shorter side (at most 224,
    rounded up to a multiple of 8), raised to the largest minimum input size among the models."""
    floor = max(get_spec(m).min_input_size for m in models)
    if wanted is not None:
        if wanted < floor:
            small = [get_spec(m).display_name for m in models if get_spec(m).min_input_size > wanted]
            raise StudioError(f"image size {wanted} is too small for {', '.join(small)}: the bake-off needs at "
                              f"least {floor} pixels for these models")
        return wanted
    size = 224
    if report is not None and report.samples:
        sides = sorted(min(s.width, s.height) for s in report.samples)
        size = min(224, max(32, -(-sides[len(sides) // 2] // 8) * 8))
    return max(size, -(-floor // 8) * 8)


def default_out_dir(folder: str) -> Path:
    """``<user data dir>/bakeoffs/<folder>-<date-time>`` (made unique)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = paths.bakeoffs_dir() / f"{_safe(Path(folder).name) or 'bakeoff'}-{stamp}"
    out, n = base, 2
    while os.path.lexists(out):
        out, n = base.with_name(f"{base.name}-{n}"), n + 1
    return out


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:60]


@dataclass(frozen=True)
class BakeoffPlan:
    folder: str
    entries: tuple[ModelEntry, ...]
    base: TrainSettings  # the common settings (model, strategy, epochs and name are set per model)
    split: DataSplit
    out: str
    budget: str = "epochs"  # "epochs": the same epochs for all; "minutes": the same wall-clock time for all
    minutes: float | None = None
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))

    @property
    def models(self) -> list[str]:
        return [e.model for e in self.entries]

    def entry(self, model: str) -> ModelEntry:
        for e in self.entries:
            if e.model == model:
                return e
        raise KeyError(model)

    def bundle_name(self, model: str) -> str:
        return f"{_safe(Path(self.folder).name) or 'bakeoff'}-{model}"

    def settings_for(self, entry: ModelEntry) -> TrainSettings:
        return self.base.replace(model=entry.model, strategy=entry.strategy, epochs=entry.epochs,
                                 weights="none" if entry.strategy == "scratch" else "default",
                                 name=self.bundle_name(entry.model))

    def run_dir(self, model: str) -> Path:
        return Path(self.out) / "runs" / model

    def models_root(self) -> Path:
        return Path(self.out) / "models"

    def result_path(self, model: str) -> Path:
        return Path(self.out) / "results" / f"{model}.json"

    def leaderboard_path(self) -> Path:
        return Path(self.out) / "leaderboard.json"

    def jobs(self, *, threads: int = 0) -> list[ModelJob]:
        split = split_to_json(self.split)
        return [ModelJob(model=e.model, settings=self.settings_for(e).to_json(), split=split,
                         run_dir=str(self.run_dir(e.model)), models_root=str(self.models_root()),
                         result_path=str(self.result_path(e.model)), threads=threads) for e in self.entries]

    # -- on disk ------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "folder": self.folder, "out": self.out,
                "created": self.created, "budget": self.budget, "minutes": self.minutes,
                "base": self.base.to_json(), "entries": [e.to_json() for e in self.entries],
                "split": split_to_json(self.split)}

    def save(self) -> Path:
        Path(self.out).mkdir(parents=True, exist_ok=True)
        return atomic_write_json(Path(self.out) / PLAN_NAME, self.to_json(), indent=None)

    @classmethod
    def from_json(cls, data: Any, out: str) -> BakeoffPlan:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise StudioError("not a ConvNet Studio bake-off")
        if data.get("format_version") != FORMAT_VERSION:
            raise StudioError(f"bake-off format {data.get('format_version')!r}; this version reads {FORMAT_VERSION}")
        try:
            entries = tuple(ModelEntry(str(e["model"]), str(e["strategy"]), int(e["epochs"]), str(e.get("reason", "")))
                            for e in data["entries"])
            for e in entries:
                get_spec(e.model)
            return cls(folder=str(data["folder"]), entries=entries, base=TrainSettings.from_json(data["base"]),
                       split=split_from_json(data["split"]), out=str(out), budget=str(data.get("budget", "epochs")),
                       minutes=data.get("minutes"), created=str(data.get("created", "")))
        except (KeyError, TypeError, ValueError, UnknownModelError) as exc:
            raise StudioError(f"damaged bake-off plan ({type(exc).__name__}: {str(exc)[:160]})") from None


def load_plan(out: str | os.PathLike[str]) -> BakeoffPlan:
    """The plan saved in a bake-off folder (``--resume OUT``); a StudioError naming the file otherwise."""
    path = Path(out) / PLAN_NAME
    try:
        if not path.is_file():
            raise StudioError(f"{out} is not a bake-off folder (no {PLAN_NAME} in it)")
        if path.stat().st_size > MAX_PLAN_BYTES:
            raise StudioError(f"{path} is too large to be a bake-off plan")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StudioError(f"cannot read {path}: {exc}") from None
    try:
        return BakeoffPlan.from_json(data, str(Path(out)))
    except StudioError as exc:
        raise StudioError(f"{path}: {exc}") from None


def check_out_dir(out: str | os.PathLike[str]) -> Path:
    """A new bake-off's folder: a new name or an empty folder, never one that holds anything."""
    path = Path(out).expanduser()
    if os.path.lexists(path):
        if not path.is_dir() or path.is_symlink():
            raise StudioError(f"{path} exists and is not a folder; choose a new name for the bake-off's folder")
        if any(path.iterdir()):
            hint = " (it is a bake-off: go on with --resume)" if (path / PLAN_NAME).is_file() else ""
            raise StudioError(f"{path} is not empty{hint}; choose a new folder for the bake-off")
    return path


def make_plan(folder: str, models: list[str], *, out: str | os.PathLike[str] | None = None, strategy: str = "auto",
              epochs: int | None = None, minutes: float | None = None, image_size: int | None = None,
              seed: int = 0, report: ScanReport | None = None, excluded: frozenset[str] = frozenset(),
              epochs_for=None, progress=None, cancel=None, **settings: Any) -> BakeoffPlan:
    """Scan ``folder`` once (unless ``report`` is given), split it with ``seed``, and plan each model.

    ``epochs`` gives every model the same epochs; ``minutes`` the same wall-clock time: then
    ``epochs_for(model, strategy, split, image_size, minutes)`` (``core.bakeoff.probe.epochs_within``)
    turns the budget into each model's epochs. ``settings`` are further TrainSettings fields common to
    all (batch_size, lr, augment, device...).
    """
    if not models:
        raise StudioError("choose at least one model for the bake-off")
    if len(set(models)) != len(models):
        raise StudioError("a model is listed twice")
    for model in models:
        get_spec(model)  # UnknownModelError names it
    if strategy not in STRATEGY_CHOICES:
        raise StudioError(f"strategy must be one of {', '.join(STRATEGY_CHOICES)}, got {strategy!r}")
    if (epochs is None) == (minutes is None):
        raise StudioError("give the budget as epochs or as minutes per model (one of the two)")
    if minutes is not None and not (isinstance(minutes, (int, float)) and 0 < minutes <= 7 * 24 * 60):
        raise StudioError(f"minutes per model must be a positive number (at most a week), got {minutes!r}")
    if report is None:
        report = scan_folder(folder, progress=progress, cancel=cancel)
    report = report.without_classes(excluded) if excluded else report
    size = common_image_size(models, report, image_size)
    base = TrainSettings(data=str(folder), seed=seed, image_size=size, epochs=epochs or 1, **settings)
    split = split_samples(report, base.val_fraction, seed)
    if len(split.classes) < 2:
        raise StudioError(f"a bake-off needs at least 2 classes with images, found {len(split.classes)} in {folder}")
    entries = []
    for model in models:
        chosen, reason = choose_strategy(model, strategy)
        if minutes is not None:
            if epochs_for is None:
                raise StudioError("a time budget needs a timing probe (epochs_for)")
            count = int(epochs_for(model, chosen, split, size, minutes, base))
        else:
            count = int(epochs)
        entries.append(ModelEntry(model, chosen, count, reason))
    out_dir = check_out_dir(out) if out is not None else default_out_dir(folder)
    return BakeoffPlan(folder=str(folder), entries=tuple(entries), base=base, split=split, out=str(out_dir),
                       budget="minutes" if minutes is not None else "epochs", minutes=minutes)
