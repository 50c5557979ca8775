"""The doctor's examination of a training folder, start to end: scan, split, embed, find.

>>> report = run_doctor("~/pets", model="pets-resnet18")   # a saved model, a registry name or None
>>> report.label_issues[0].path, report.label_issues[0].suggested
('/home/me/pets/cat/0042.jpg', 'dog')

``progress(stage, done, total)`` names the stage: "scanning", "embedding", "analysing".
The split is the one training would use (``core.data.split_samples`` with the same fraction and seed),
so a near-duplicate pair that straddles it is the leak training would suffer.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.data import SPLIT_NAMES, ScanReport, scan_folder, split_samples
from core.doctor.embed import Embeddings, choose_source, embed_samples
from core.doctor.report import DoctorReport, EmbeddingSource, MapPoint
from core.errors import Cancelled, StudioError
from core.models import resolve
from core.records import resolve_device

try:
    from core.doctor import findings
except ImportError as exc:  # the doctor extra is not installed: said when the doctor is asked for
    findings = None  # type: ignore[assignment]
    _MISSING = exc.name or str(exc)
else:
    _MISSING = ""

__all__ = ["run_doctor", "map_points", "estimate_seconds", "MIN_IMAGES", "INSTALL_HINT"]

StageProgress = Callable[[str, int, int], None]  # (stage, done, total)
MIN_IMAGES = 10  # fewer: nothing to compare an image with
INSTALL_HINT = "pip install 'convnet-studio[doctor]'"
# Rough costs on a 2-core CPU (measured: ResNet-18 ~36 GFLOP/s at 224 px, NiN/AlexNet/VGG ~50, DenseNet ~8),
# for the wizard's estimate only.
_CPU_GFLOPS = {"DenseNet": 8.0, "ResNet": 36.0, "Variants": 36.0, "default": 45.0}
_GPU_SPEEDUP = 20.0
_DECODE_SECONDS = 0.002  # per image, a small PNG or JPEG in draft mode
_ANALYSIS_SECONDS = 0.006  # per image: the t-SNE map, the cross-validated classifier, neighbours
_ANALYSIS_FIXED = 2.0


@dataclass
class _Examined:
    """The scan's usable images that were embedded, as parallel lists."""

    scan: ScanReport
    embeddings: Embeddings
    paths: list[str]
    labels: np.ndarray
    digests: list[str]
    subsets: list[str]


def run_doctor(folder: str | os.PathLike[str], *, model: str | os.PathLike[str] | None = None,
               device: str = "auto", scan: ScanReport | None = None, val_fraction: float = 0.2, seed: int = 0,
               progress: StageProgress | None = None, cancel: threading.Event | None = None,
               cache_dir: str | os.PathLike[str] | None = None) -> DoctorReport:
    """Examine ``folder`` through ``model`` (see ``choose_source``; None: what is here) and report.

    ``scan`` reuses a scan of the folder already made (the wizard's data check). Raises StudioError
    for a folder with fewer than two classes or too few readable images, ``Cancelled`` on ``cancel``.
    """
    start = time.perf_counter()
    _require_extra()
    source = choose_source(model)
    examined = _examine(folder, source, device, scan, val_fraction, seed, progress, cancel, cache_dir)
    emb = examined.embeddings
    steps = ("map", "label issues", "duplicates", "outliers")
    _tick(progress, cancel, 0, len(steps))
    xy = findings.project_2d(emb.vectors, seed)
    _tick(progress, cancel, 1, len(steps))
    classes = examined.scan.classes
    issues = findings.label_issues(emb.vectors, examined.labels, classes, examined.paths, seed=seed)
    _tick(progress, cancel, 2, len(steps))
    duplicates = _duplicates(examined)
    _tick(progress, cancel, 3, len(steps))
    unusual = findings.outliers(emb.vectors, examined.labels, classes, examined.paths, signatures=emb.signatures)
    _tick(progress, cancel, 4, len(steps))
    return DoctorReport(
        folder=str(examined.scan.root), source=source, classes=list(classes),
        points=_points(examined, xy), label_issues=issues, duplicates=duplicates, outliers=unusual,
        unreadable=_unreadable(examined), seconds=time.perf_counter() - start, embed_seconds=emb.seconds,
        cached=emb.cached)


def map_points(folder_or_scan: str | os.PathLike[str] | ScanReport, model: str | os.PathLike[str] | None, *,
               device: str = "auto", val_fraction: float = 0.2, seed: int = 0,
               progress: StageProgress | None = None, cancel: threading.Event | None = None,
               cache_dir: str | os.PathLike[str] | None = None) -> tuple[EmbeddingSource, list[MapPoint]]:
    """The map alone through another model (the wizard's second map): its source and the points."""
    _require_extra()
    source = choose_source(model)
    scan = folder_or_scan if isinstance(folder_or_scan, ScanReport) else None
    folder = scan.root if scan is not None else folder_or_scan
    examined = _examine(folder, source, device, scan, val_fraction, seed, progress, cancel, cache_dir)
    _tick(progress, cancel, 0, 1)
    xy = findings.project_2d(examined.embeddings.vectors, seed)
    _tick(progress, cancel, 1, 1)
    return source, _points(examined, xy)


def estimate_seconds(n_images: int, model: str | os.PathLike[str] | None = None, *, device: str = "auto") -> float:
    """A rough time for ``run_doctor`` on ``n_images`` images none of which is cached yet (the wizard's
    estimate): the network's compute at its input size, decoding, and the analysis."""
    resolved = resolve(choose_source(model).model if model is None else model)
    spec = resolved.spec
    scale = (spec.preprocess.crop_size / 224) ** 2
    rate = _CPU_GFLOPS.get(resolved.architecture.family, _CPU_GFLOPS["default"])
    forward = spec.gflops * scale / rate / (_GPU_SPEEDUP if resolve_device(device).type != "cpu" else 1.0)
    n = max(0, int(n_images))
    return _ANALYSIS_FIXED + n * (forward + _DECODE_SECONDS + _ANALYSIS_SECONDS)


# -- the steps --------------------------------------------------------------------------------------


def _require_extra() -> None:
    if findings is None:
        raise StudioError(f"the dataset doctor needs scikit-learn and cleanlab ({_MISSING} is missing): "
                          f"{INSTALL_HINT}")


def _tick(progress: StageProgress | None, cancel: threading.Event | None, done: int, total: int) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("the dataset doctor")
    if progress is not None:
        progress("analysing", done, total)


def _examine(folder: str | os.PathLike[str], source: EmbeddingSource, device: str, scan: ScanReport | None,
             val_fraction: float, seed: int, progress: StageProgress | None, cancel: threading.Event | None,
             cache_dir: str | os.PathLike[str] | None) -> _Examined:
    if scan is None:
        scan = scan_folder(Path(folder).expanduser(), cancel=cancel,
                           progress=None if progress is None else lambda d, t: progress("scanning", d, t))
    _check_enough(scan.classes, len(scan.samples), scan.root)
    split = split_samples(scan, val_fraction, seed)
    subset_of = {s.path: "train" for s in split.train} | {s.path: "val" for s in split.val}
    samples = list(split.train) + list(split.val)
    samples.sort(key=lambda s: (s.label, s.path))
    emb = embed_samples(samples, source, device=device, cancel=cancel, cache_dir=cache_dir,
                        progress=None if progress is None else lambda d, t: progress("embedding", d, t))
    used = [samples[i] for i in emb.rows]
    _check_enough([scan.classes[label] for label in sorted({s.label for s in used})], len(used), scan.root,
                  readable=True)
    return _Examined(scan, emb, [s.path for s in used], np.array([s.label for s in used], dtype=np.int64),
                     [s.digest for s in used], [subset_of[s.path] for s in used])


def _check_enough(classes: list[str], images: int, root: str, *, readable: bool = False) -> None:
    what = "readable images" if readable else "images"
    if len(classes) < 2:
        raise StudioError(f"{root}: the doctor needs at least two classes (one folder of {what} per class); "
                          f"found {len(classes)}")
    if images < MIN_IMAGES:
        raise StudioError(f"{root}: the doctor needs at least {MIN_IMAGES} {what} to compare; found {images}")


def _points(examined: _Examined, xy: np.ndarray) -> list[MapPoint]:
    return [MapPoint(path=path, label=int(label), subset=subset, x=float(x), y=float(y))
            for path, label, subset, (x, y) in zip(examined.paths, examined.labels, examined.subsets, xy)]


def _duplicates(examined: _Examined) -> list:
    """Near-duplicates among the embedded images, plus the exact copies the scan set aside (same contents
    as a kept image: the same embedding; where the folder came split, the copy's subset is its folder's)."""
    emb = examined.embeddings
    row_of = {path: i for i, path in enumerate(examined.paths)}
    extra = [(row_of[group[0]], copy) for group in examined.scan.duplicates if group and group[0] in row_of
             for copy in group[1:]]
    index = [i for i, _ in extra]
    return findings.near_duplicates(
        np.concatenate([emb.vectors, emb.vectors[index]]) if index else emb.vectors,
        np.concatenate([emb.signatures, emb.signatures[index]]) if index else emb.signatures,
        examined.digests + [examined.digests[i] for i in index], examined.paths + [copy for _, copy in extra],
        examined.subsets + [_folder_subset(examined.scan, copy) for _, copy in extra])


def _folder_subset(scan: ScanReport, path: str) -> str:
    """'train'/'val' for a file under a split folder's train/ or val/; '' in a class layout (a copy set
    aside by the scan is not used by training at all)."""
    if scan.layout != "split":
        return ""
    try:
        top = Path(path).relative_to(scan.root).parts[0].lower()
    except (ValueError, IndexError):
        return ""
    return next((subset for subset, names in SPLIT_NAMES.items() if top in names), "")


def _unreadable(examined: _Examined) -> list[dict[str, str]]:
    seen: set[str] = set()
    out = []
    for item in [*examined.scan.unreadable, *examined.embeddings.unreadable]:
        if item["path"] not in seen:
            seen.add(item["path"])
            out.append({"path": str(item["path"]), "reason": str(item["reason"])})
    return out
