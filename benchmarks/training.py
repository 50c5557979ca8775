"""Training benchmarks: Trainer overhead against a bare PyTorch loop, and what the decode cache buys.

Run: ``python -m benchmarks.training`` (rewrites its sections of BENCHMARKS.md).

1. Trainer overhead: the same model, data, batch, optimizer (fused AdamW),
   one-cycle schedule, label smoothing and validation pass, from the same
   decoded uint8 images. The bare loop is what a user would write; the Trainer
   adds events, callbacks (recorder, NaN guard, stop/pause checks) and an
   atomic checkpoint at every epoch end. Interleaved: Trainer fit, bare fit,
   Trainer fit, ...; each fit starts from a fresh model.
2. Decode cache: one epoch over a camera roll of JPEGs (3 to 12 MP) at 64 px,
   decoding every file every epoch (draft mode) against reading the decoded
   cache; both the data pipeline alone and a training epoch of ResNet-18.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from benchmarks.common import interleaved, machine, write_section
from core.training.callbacks import Callback

MODEL = "resnet18"


def _isolated_dirs(root: Path) -> None:
    for var in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "TORCH_HOME"):
        (root / var).mkdir(exist_ok=True)
        os.environ[var] = str(root / var)


def trainer_overhead(data: Path, *, epochs: int, batch: int, size: int, reps: int) -> tuple[str, float]:
    from core.data import DecodedImages, scan_folder, split_samples
    from core.training import Trainer, TrainSettings
    from core.training.setup import EpochSampler, batched, build_optimizer, build_scheduler, param_groups, replace_head
    from core.zoo import get_spec

    settings = TrainSettings(data=str(data), model=MODEL, weights="none", strategy="scratch", epochs=epochs,
                             batch_size=batch, lr=3e-3, image_size=size, augment="none", name="bench")
    split = split_samples(scan_folder(data), settings.val_fraction, settings.seed)
    decoded = DecodedImages.build(list(split.train) + list(split.val), size)
    n = len(split.train)
    train_x = torch.from_numpy(decoded.array[:n]).permute(0, 3, 1, 2).contiguous()
    val_x = torch.from_numpy(decoded.array[n:]).permute(0, 3, 1, 2).contiguous()
    train_y = torch.tensor([s.label for s in split.train])
    val_y = torch.tensor([s.label for s in split.val])
    spec = get_spec(MODEL)
    mean = torch.tensor(spec.preprocess.mean).view(1, 3, 1, 1) * 255
    std = torch.tensor(spec.preprocess.std).view(1, 3, 1, 1) * 255
    loop_seconds: dict[str, list[float]] = {"bare": [], "trainer": []}

    def bare() -> None:
        torch.manual_seed(0)
        model = spec.build()
        replace_head(model, len(split.classes))
        optimizer = build_optimizer(param_groups(model, "fc", 3e-3, 0.05, "scratch", 1.0), "adamw", 0.9)
        steps = len(batched(list(range(n)), batch))
        scheduler = build_scheduler(optimizer, "onecycle", epochs * steps, 0.05)
        loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
        start = time.perf_counter()
        for epoch in range(epochs):
            model.train()
            for idx in batched(list(EpochSampler(n, seed=0, epoch=epoch)), batch):
                x = (train_x[idx].float() - mean) / std
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(x), train_y[idx])
                loss.backward()
                optimizer.step()
                scheduler.step()
                loss.item()
            model.eval()
            with torch.no_grad():
                for first in range(0, len(val_x), batch):
                    logits = model((val_x[first:first + batch].float() - mean) / std)
                    float(nn.functional.cross_entropy(logits, val_y[first:first + batch], reduction="sum"))
        loop_seconds["bare"].append(time.perf_counter() - start)

    def trainer() -> None:
        timer = _FitTimer()
        Trainer(settings, data=split, callbacks=[timer]).fit()
        loop_seconds["trainer"].append(timer.seconds)

    times = interleaved({"bare": bare, "trainer": trainer}, reps=reps, warmup=0)
    bare_s = statistics.median(loop_seconds["bare"])
    trainer_loop_s = statistics.median(loop_seconds["trainer"])
    trainer_s = statistics.median(times["trainer"])
    bare_ips = n * epochs / bare_s
    loop_ips = n * epochs / trainer_loop_s
    ratio = loop_ips / bare_ips
    verdict = "meets" if ratio >= 0.9 else "misses"
    table = (
        f"{len(split.train)} training / {len(split.val)} validation digit images at {size} px, {MODEL}, batch {batch}, "
        f"{epochs} epochs, fused AdamW + one-cycle, label smoothing 0.1, CPU.\n\n"
        "| loop | median s per fit | training images/s | vs bare |\n|---|---|---|---|\n"
        f"| bare PyTorch loop: epochs + validation each epoch | {bare_s:.1f} | {bare_ips:.1f} | 1.00x |\n"
        f"| Trainer, `fit_start` to `fit_end`: the same plus events, callbacks, a checkpoint every epoch "
        f"and the bundle | {trainer_loop_s:.1f} | {loop_ips:.1f} | **{ratio:.2f}x** (goal >= 0.9x: {verdict}) |\n"
        f"| Trainer, whole `fit()`: also decoding the images and building the model | {trainer_s:.1f} | "
        f"{n * epochs / trainer_s:.1f} | {n * epochs / trainer_s / bare_ips:.2f}x |\n"
    )
    return table, ratio


class _FitTimer(Callback):
    """Times the training part of a fit: ``fit_start`` to ``fit_end``."""

    order = -1000

    def __init__(self) -> None:
        self.start = 0.0
        self.seconds = 0.0

    def fit_start(self, event) -> None:
        self.start = time.perf_counter()

    def fit_end(self, event) -> None:
        self.seconds = time.perf_counter() - self.start


def decode_cache(folder: Path, *, size: int, batch: int, reps: int) -> str:
    from core.data import DecodedImages, ImageDataset, Sample, collate_samples, scan_folder
    from core.training.setup import replace_head
    from core.zoo import get_spec

    samples = [Sample(s.path, i % 2, s.digest) for i, s in enumerate(scan_folder(folder).samples)]
    start = time.perf_counter()
    decoded = DecodedImages.build(samples, size)
    build_s = time.perf_counter() - start
    uncached_set = ImageDataset(samples, size)
    cached_set = ImageDataset(samples, size, decoded=decoded)
    model = get_spec(MODEL).build()
    replace_head(model, 2)
    optimizer = torch.optim.AdamW(model.parameters(), 1e-3)

    def loader(dataset):
        return torch.utils.data.DataLoader(dataset, batch_size=batch, collate_fn=collate_samples)

    def epoch(dataset, train: bool) -> None:
        for images, labels, _ in loader(dataset):
            if train:
                optimizer.zero_grad()
                nn.functional.cross_entropy(model(images.float() / 255), labels).backward()
                optimizer.step()

    data_times = interleaved({"decode": lambda: epoch(uncached_set, False), "cache": lambda: epoch(cached_set, False)},
                             reps=reps, warmup=1)
    train_times = interleaved({"decode": lambda: epoch(uncached_set, True), "cache": lambda: epoch(cached_set, True)},
                              reps=max(2, reps // 2), warmup=1)
    n = len(samples)

    def ips(seconds: list[float]) -> float:
        return n / statistics.median(seconds)

    mib = statistics.mean(Path(s.path).stat().st_size for s in samples) / 2**20
    return (
        f"{n} JPEGs (a camera roll of 0.3 to 12 MP, {mib:.1f} MiB on average) at {size} px, batch {batch}, "
        f"CPU. Building the cache once took {build_s:.1f} s ({n / build_s:.1f} images/s on "
        f"{min(4, os.cpu_count() or 1)} decode threads).\n\n"
        "| one epoch | decode every epoch, images/s | decoded cache, images/s | speedup |\n|---|---|---|---|\n"
        f"| data pipeline only | {ips(data_times['decode']):.1f} | {ips(data_times['cache']):.0f} | "
        f"**{statistics.median(data_times['decode']) / statistics.median(data_times['cache']):.0f}x** |\n"
        f"| ResNet-18 training epoch | {ips(train_times['decode']):.1f} | {ips(train_times['cache']):.1f} | "
        f"**{statistics.median(train_times['decode']) / statistics.median(train_times['cache']):.1f}x** |\n"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--photos", type=int, default=48)
    parser.add_argument("--size", type=int, default=64, help="training image size for the overhead run (the "
                        "digits acceptance run trains at 64 px)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    from tests.support.digits import write_digits
    from tests.support.photos import write_mixed_photos

    with tempfile.TemporaryDirectory(prefix="cns-bench-train-") as tmp:
        root = Path(tmp)
        _isolated_dirs(root)
        digits, _ = write_digits(root / "digits", size=args.size)
        command = (f"`python -m benchmarks.training --reps {args.reps} --epochs {args.epochs} --photos {args.photos} "
                   f"--size {args.size}`")
        header = f"Machine: {machine()}.\nCommand: {command}; medians of interleaved runs.\n\n"
        overhead, _ = trainer_overhead(digits, epochs=args.epochs, batch=64, size=args.size, reps=args.reps)
        write_mixed_photos(root / "photos" / "a", args.photos)
        cache = decode_cache(root / "photos", size=64, batch=32, reps=args.reps)
    print(header + overhead, header + cache, sep="\n")
    if not args.no_write:
        write_section("trainer-overhead", header + overhead)
        write_section("decode-cache", header + cache)


if __name__ == "__main__":
    main()
