"""The Trainer's machinery: preparing data and model, the training step, validation, loaders.

A :class:`Runtime` is a plain object that a ``Trainer`` (``trainer.py``: the fit loop, events,
checkpoints, bundle) owns and calls; it knows nothing of the trainer.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import random
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from core import paths
from core.accel import forward_format
from core.data import (
    DataSplit,
    DecodedImages,
    ImageDataset,
    Sample,
    ScanReport,
    collate_samples,
    scan_folder,
    split_samples,
)
from core.diskcache import DiskCacheError
from core.errors import StudioError
from core.images import decode_budget, set_decode_budget
from core.inference import resolve_device
from core.models import ResolvedModel, resolve
from core.text import plural
from core.training import setup
from core.training.augment import build_augment
from core.training.distributed import DistContext, context
from core.training.events import Notice, TrainingError
from core.training.settings import TrainSettings
from core.zoo import ModelSpec

__all__ = ["Runtime", "split_from_json", "split_to_json"]
MEMORY_CACHE_LIMIT = 1 << 30  # "auto" keeps decoded images in memory below 1 GiB, else on disk


def split_from_json(data: dict[str, Any]) -> DataSplit:
    return DataSplit(tuple(data["classes"]), tuple(Sample(**s) for s in data["train"]),
                     tuple(Sample(**s) for s in data["val"]))


def split_to_json(split: DataSplit) -> dict[str, Any]:
    def rows(samples):
        return [{"path": s.path, "label": s.label, "digest": s.digest, "width": s.width, "height": s.height,
                 "subset": s.subset} for s in samples]

    return {"classes": list(split.classes), "train": rows(split.train), "val": rows(split.val)}


def share_decode_budget(capacity: int, _worker_id: int) -> None:
    """A data-loader worker process decodes within its share of the parent's byte budget (core.images)."""
    set_decode_budget(capacity)


ProgressFactory = Callable[[str], Callable[[Any, Any], None]]  # phase -> (done, total) callback


class Runtime:
    """Device, data, model and optimisation of one run, and the steps on them.

    A :class:`core.training.trainer.Trainer` owns one and calls it; the runtime calls nothing of the
    trainer. What it reports goes through the callables it was given: ``notify`` for notices,
    ``progress(phase)`` for progress callbacks; ``cancel_event`` stops a long scan or decode.
    ``settings`` and ``data`` are the run's (the trainer reads and replaces them here).
    """

    def __init__(self, settings: TrainSettings, data: DataSplit | None, *, notify: Callable[[Notice], None],
                 progress: ProgressFactory, cancel_event: threading.Event) -> None:
        self.settings = settings
        self.data = data
        self.notify = notify
        self.progress = progress
        self.cancel_event = cancel_event
        self.dist = DistContext()
        self.device = torch.device("cpu")
        self.report: ScanReport | None = None  # the data folder's scan (new runs)
        self.skipped: dict[str, str] = {}  # path -> reason, files that could not be decoded
        self.model_ref: ResolvedModel | None = None  # the run's model name, resolved (architecture + weights)
        self.spec: ModelSpec | None = None  # the flat spec the model is built from
        self.image_size = 0
        self.train_set: ImageDataset | None = None
        self.val_set: ImageDataset | None = None
        self.steps_per_epoch = 0
        self.model: nn.Module | None = None
        self.net: nn.Module | None = None  # the model, or its DistributedDataParallel wrapper
        self.head = ""
        self.loss_fn: nn.Module | None = None
        self.mean: torch.Tensor | None = None  # normalisation, on the device, for uint8 input
        self.std: torch.Tensor | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: Any = None
        self.scaler: torch.amp.GradScaler | None = None
        self.micro_batch = 0  # images per forward pass (halved after a CUDA out-of-memory error)
        self.step_lr = 0.0  # learning rate of the last optimizer step
        self.order_generator = torch.Generator()
        self._decoded: tuple[tuple, DecodedImages | None] | None = None

    # -- runtime switches --------------------------------------------------------------

    @contextlib.contextmanager
    def switches(self) -> Iterator[None]:
        """Device, process group, determinism and cudnn flags for the fit; restored afterwards."""
        wanted = resolve_device(self.settings.device)
        self.dist = context(wanted.type)
        self.device = self.dist.device(wanted)
        deterministic = bool(self.settings.deterministic)
        saved = (torch.are_deterministic_algorithms_enabled(),
                 torch.is_deterministic_algorithms_warn_only_enabled(),
                 torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
        if deterministic and self.device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(deterministic, warn_only=self.device.type == "cuda")
        torch.backends.cudnn.benchmark = self.device.type == "cuda" and not deterministic
        torch.backends.cudnn.deterministic = deterministic
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
            torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[2], saved[3]
            self.dist.close()

    @property
    def amp(self) -> bool:
        return self.settings.amp and self.device.type == "cuda"

    @property
    def memory_format(self) -> torch.memory_format:
        return forward_format(self.settings.channels_last and self.device.type == "cuda")

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    # -- preparation -------------------------------------------------------------------

    def seed(self) -> None:
        """Seed every RNG from the settings (a new run; a resumed one restores its RNG states)."""
        seed = self.settings.seed
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)

    def prepare_data(self) -> None:
        """Scan and split the folder (unless the split is given), resolve the model, build the datasets."""
        if self.data is None:
            self.data = self._scan_and_split()
        if len(self.data.classes) < 2:
            raise StudioError(f"training needs at least 2 classes with images, found {len(self.data.classes)} "
                              f"in {self.settings.data}")
        if not self.data.train:
            raise StudioError("no training images left after the validation split")
        self.model_ref = resolve(self.settings.model)
        spec = self.spec = self.model_ref.spec
        self.image_size = self.settings.image_size or spec.preprocess.crop_size
        if self.image_size < spec.min_input_size:
            raise StudioError(f"image size {self.image_size} is too small for {spec.display_name}: it needs at least "
                              f"{spec.min_input_size} pixels")
        self.micro_batch = self.settings.batch_size
        decoded = self._decode(list(self.data.train) + list(self.data.val))
        augment = build_augment(self.settings.augment, self.image_size)
        n = len(self.data.train)
        self.train_set = ImageDataset(self.data.train, self.image_size, transform=augment,
                                      decoded=decoded.subset(0, n) if decoded else None)
        self.val_set = ImageDataset(self.data.val, self.image_size,
                                    decoded=decoded.subset(n, None) if decoded else None)
        per_rank = math.ceil(len(self.data.train) / self.dist.world_size)
        self.steps_per_epoch = len(setup.batched(list(range(per_rank)), self.settings.batch_size))

    def _scan_and_split(self) -> DataSplit:
        if not self.settings.data:
            raise StudioError("no training folder given")
        self.report = scan_folder(self.settings.data, progress=self.progress("scan"), cancel=self.cancel_event)
        for text in self.report.warnings:
            self.notify(Notice("data", text))
        for item in self.report.unreadable:  # named one by one, like the files that fail to decode later
            self.skipped[item["path"]] = item["reason"]
            self.notify(Notice("skipped_file", f"skipped {item['path']}: {item['reason']}", item["path"]))
        return split_samples(self.report, self.settings.val_fraction, self.settings.seed)

    def _decode(self, samples: list[Sample]) -> DecodedImages | None:
        mode = self.settings.cache
        key = (len(samples), self.image_size, mode)
        if self._decoded is not None and self._decoded[0] == key:
            return self._decoded[1]  # decoded by an earlier find_lr on the same data
        if mode == "off":
            return None
        if mode == "auto":
            mode = "memory" if len(samples) * 3 * self.image_size**2 < MEMORY_CACHE_LIMIT else "disk"
        cache_dir = paths.decoded_cache_dir() if mode == "disk" else None
        try:
            decoded = DecodedImages.build(samples, self.image_size, cache_dir=cache_dir,
                                          progress=self.progress("decode"), cancel=self.cancel_event)
        except DiskCacheError as exc:  # a full or read-only disk: train without the cache, and say so
            self.notify(Notice("cache", f"{exc}; training without the cache (images are decoded again "
                                        "every epoch, which is slower)"))
            self._decoded = (key, None)
            return None
        for index, reason in sorted(decoded.failed.items()):
            self.skipped[samples[index].path] = reason
            self.notify(Notice("skipped_file", f"skipped {samples[index].path}: {reason}", samples[index].path))
        self._decoded = (key, decoded)
        return decoded

    def prepare_model(self, *, pretrained: bool) -> None:
        """The model for the run's strategy (pretrained weights unless resuming), on the device."""
        strategy = self.settings.strategy
        model, self.head = setup.build_model(self.spec, len(self.data.classes), strategy if pretrained else "scratch",
                                             progress=None, cancel=self.cancel_event)
        setup.set_trainable(model, strategy, self.head)
        self.model = model.to(self.device, memory_format=self.memory_format)
        self.net = self.model
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=self.settings.label_smoothing)
        pp = self.spec.preprocess
        self.mean = torch.tensor(pp.mean, device=self.device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(pp.std, device=self.device).view(1, 3, 1, 1) * 255

    def make_optimizer(self, lr: float) -> torch.optim.Optimizer:
        s = self.settings
        groups = setup.param_groups(self.model, self.head, lr, s.resolved_weight_decay, s.strategy,
                                    s.backbone_lr_factor)
        return setup.build_optimizer(groups, s.optimizer, s.momentum)

    def prepare_optimization(self) -> None:
        s = self.settings
        self.optimizer = self.make_optimizer(float(s.lr))
        self.scheduler = setup.build_scheduler(self.optimizer, s.schedule, s.epochs * self.steps_per_epoch,
                                               s.warmup_fraction)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)

    # -- data order --------------------------------------------------------------------

    def epoch_batches(self, index: int) -> list[list[int]]:
        sampler = setup.EpochSampler(len(self.data.train), seed=self.settings.seed, epoch=index,
                                     rank=self.dist.rank, world=self.dist.world_size)
        self.order_generator = sampler.generator
        return setup.batched(list(iter(sampler)), self.settings.batch_size)

    def loader(self, dataset: ImageDataset, batches: list[list[int]], index: int):
        generator = torch.Generator().manual_seed(setup.epoch_seed(self.settings.seed, index) + 1)
        workers = self.settings.num_workers
        share = functools.partial(share_decode_budget, decode_budget().capacity // max(1, workers))
        return torch.utils.data.DataLoader(
            dataset, batch_sampler=batches, collate_fn=collate_samples, num_workers=workers,
            pin_memory=self.device.type == "cuda", generator=generator, worker_init_fn=share if workers else None)

    # -- steps --------------------------------------------------------------------------

    def to_input(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [B,3,S,S] on the CPU -> normalised float on the device."""
        x = images.to(self.device, non_blocking=True).float()
        return ((x - self.mean) / self.std).contiguous(memory_format=self.memory_format)

    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.float16) if self.amp else contextlib.nullcontext()

    def accumulate(self, images: torch.Tensor, labels: torch.Tensor, scaler: torch.amp.GradScaler) -> torch.Tensor:
        """Forward and backward in chunks of ``micro_batch``; returns the batch's mean loss (a tensor)."""
        n, total = len(labels), torch.zeros((), device=self.device)
        starts = list(range(0, n, self.micro_batch))
        for i, start in enumerate(starts):
            x = self.to_input(images[start:start + self.micro_batch])
            y = labels[start:start + self.micro_batch].to(self.device, non_blocking=True)
            last = i == len(starts) - 1
            sync = self.net.no_sync() if self.dist.enabled and not last else contextlib.nullcontext()
            with sync:
                with self._autocast():
                    loss = self.loss_fn(self.net(x), y) * (len(y) / n)
                scaler.scale(loss).backward()
            total += loss.detach().float()
        return total

    def halve_micro_batch(self) -> None:
        """After a CUDA out-of-memory error: half the images per forward pass, or give up at one."""
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        if self.micro_batch <= 1:
            raise TrainingError("out of GPU memory even with one image per step: choose a smaller model or "
                                "image size, or train on the CPU")
        old, self.micro_batch = self.micro_batch, max(1, self.micro_batch // 2)
        self.notify(Notice("oom_retry", f"CUDA ran out of memory with {old} images per step; retrying "
                                   f"with {self.micro_batch} (gradients are accumulated, so the batch size stays "
                                   f"{self.settings.batch_size})"))

    def train_step(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        while True:
            self.optimizer.zero_grad(set_to_none=True)
            try:
                loss = self.accumulate(images, labels, self.scaler)
                break
            except torch.OutOfMemoryError:
                self.halve_micro_batch()
            except ValueError as exc:  # BatchNorm over a single value: one image whose maps shrank to 1x1
                if "more than 1 value per channel" not in str(exc):
                    raise
                raise TrainingError(f"{self.spec.display_name} cannot train on "
                                    f"{plural(self.micro_batch, 'image')} per step at {self.image_size} pixels "
                                    "(its batch normalisation needs more than one value): "
                                    "use a batch size of at least 2 or a larger image size") from None
        self.step_lr = self.current_lr  # the rate this step used (the scheduler moves on below)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return self.mean_loss(loss)

    def mean_loss(self, loss: torch.Tensor) -> float:
        if self.dist.enabled:
            return self.dist.sum([float(loss)], self.device)[0] / self.dist.world_size
        return float(loss)

    @property
    def current_lr(self) -> float:
        return max(group["lr"] for group in self.optimizer.param_groups)

    # -- validation ----------------------------------------------------------------------

    def validate(self) -> dict[str, Any] | None:
        """Loss (plain cross-entropy), accuracy and per-class accuracy on this rank's share, summed over ranks."""
        if not self.data.val:
            return None
        self.model.eval()
        classes = len(self.data.classes)
        indices = list(range(self.dist.rank, len(self.data.val), self.dist.world_size))
        loss_sum = 0.0
        hits, totals = torch.zeros(classes, dtype=torch.float64), torch.zeros(classes, dtype=torch.float64)
        position = 0
        while position < len(indices):
            chunk = indices[position:position + max(self.micro_batch, 1)]
            images, labels, skipped = collate_samples([self.val_set[i] for i in chunk])
            self.report_skipped(self.data.val, skipped)
            try:
                if images is not None:
                    with torch.no_grad(), self._autocast():
                        logits = self.model(self.to_input(images)).float()
                    y = labels.to(self.device)
                    loss_sum += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
                    correct = (logits.argmax(1) == y).double().cpu()
                    hits.index_add_(0, labels, correct)
                    totals.index_add_(0, labels, torch.ones_like(correct))
            except torch.OutOfMemoryError:
                self.halve_micro_batch()
                continue
            position += len(chunk)
        summed = self.dist.sum([loss_sum, *hits.tolist(), *totals.tolist()], self.device)
        hits_all, totals_all = summed[1:1 + classes], summed[1 + classes:]
        count = sum(totals_all)
        if count == 0:
            return None
        return {"val_loss": summed[0] / count, "val_acc": sum(hits_all) / count,
                "per_class_acc": {c: (h / t if t else None)
                                  for c, h, t in zip(self.data.classes, hits_all, totals_all)}}

    def predict_val(self, model: nn.Module) -> tuple[list[int], list[float]]:
        """``model``'s class and its probability for every validation image, in the split's order, with
        the same inputs and forward as :meth:`validate` (so their accuracy is its ``val_acc``); an image
        that cannot be decoded gets class -1. One process (the bake-off's evaluation)."""
        model = model.to(self.device, memory_format=self.memory_format).eval()
        preds: list[int] = [-1] * len(self.data.val)
        confs: list[float] = [0.0] * len(self.data.val)
        step = max(self.micro_batch, 1)
        for start in range(0, len(self.data.val), step):
            chunk = list(range(start, min(start + step, len(self.data.val))))
            items = [self.val_set[i] for i in chunk]
            kept = [i for i, item in zip(chunk, items) if item[0] is not None]
            images, _labels, skipped = collate_samples(items)
            self.report_skipped(self.data.val, skipped)
            if images is None:
                continue
            with torch.no_grad(), self._autocast():
                probs = torch.softmax(model(self.to_input(images)).float(), dim=1).cpu()
            best, index = probs.max(dim=1)
            for i, p, c in zip(kept, index.tolist(), best.tolist()):
                preds[i], confs[i] = int(p), float(c)
        return preds, confs

    def report_skipped(self, samples, skipped: list[tuple[int, str]]) -> None:
        """Name each file a batch could not decode, once."""
        for index, reason in skipped:
            path = samples[index].path
            if path not in self.skipped:
                self.skipped[path] = reason
                self.notify(Notice("skipped_file", f"skipped {path}: {reason}", path))
