"""Each image of a folder as the network sees it: the input of its classification head.

The embedding of an image is what the model's head (``core.zoo.heads.head_name``) receives, caught
with a forward pre-hook: ResNet's pooled 512 numbers, VGG's last 4,096 hidden units; NiN's head is
a 1x1 convolution, so its input maps are averaged over space. Images are decoded and preprocessed
exactly as classify does (``InferenceEngine.decode`` + the model's own ``Preprocess``).

Beside it, each image gets a perceptual signature (16x16 grayscale, zero mean, unit norm) that
confirms near-duplicates without the network.

Both are cached per (model identity, preprocessing, file content) in one ``.npz`` per model under
``core.paths.cache_dir() / "doctor"``: a second look at the same folder decodes nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from core import paths
from core import weights as weights_mod
from core.data import Sample
from core.doctor.report import EmbeddingSource
from core.errors import Cancelled, ImageError, StudioError
from core.inference import InferenceEngine
from core.io import atomic_write
from core.models import resolve
from core.preprocess import preprocess
from core.zoo import ModelSpec, list_specs
from core.zoo.heads import head_name

__all__ = ["Embeddings", "choose_source", "embed_samples", "head_inputs", "signature", "cache_key",
           "SIGNATURE_SIDE", "PREFERRED_MODEL"]

ProgressFn = Callable[[int, int], None]  # (images done, images in all)
SIGNATURE_SIDE = 16
PREFERRED_MODEL = "resnet18"
_CACHE_FORMAT = "doctor-v1"
_MAX_CACHED_ROWS = 200_000  # one model's cache file beyond this keeps only the latest folder's rows
_DECODE_WORKERS = 2


@dataclass
class Embeddings:
    """Rows for the readable samples only, in the samples' order (``rows[i]`` is the sample's index)."""

    source: EmbeddingSource
    rows: list[int]
    vectors: np.ndarray  # float32 [len(rows), D]: the head's input
    signatures: np.ndarray  # float32 [len(rows), SIGNATURE_SIDE**2]: zero mean, unit norm (or all zero)
    unreadable: list[dict[str, str]] = field(default_factory=list)  # {"path", "reason"}: skipped
    cached: int = 0  # rows that came from the cache
    seconds: float = 0.0  # spent computing the rows that were not cached


# -- which network --------------------------------------------------------------------------------


def choose_source(model: str | os.PathLike[str] | None = None) -> EmbeddingSource:
    """The network to look through: ``model`` when given (a registry name, a saved model's name or
    folder), else a registry model whose pretrained weights are already here (ResNet-18 first, then the
    cheapest), else a randomly initialised ResNet-18, said plainly. Never downloads anything."""
    if model is not None:
        resolved = resolve(model)
        if resolved.is_saved:
            return EmbeddingSource(resolved.name, resolved.display_name, "saved")
        if weights_mod.cached_path(resolved.spec) is not None:
            return EmbeddingSource(resolved.name, resolved.display_name, "pretrained")
        return _random_source(resolved.spec, f"No pretrained weights for {resolved.display_name} are on this "
                                             "machine, so its map uses a randomly initialised network")
    for spec in _pretrained_here():
        return EmbeddingSource(spec.name, spec.display_name, "pretrained")
    fallback = resolve(PREFERRED_MODEL).spec
    return _random_source(fallback, "No pretrained weights or saved model were chosen, so the map uses a "
                                    f"randomly initialised {fallback.display_name}")


def _random_source(spec: ModelSpec, why: str) -> EmbeddingSource:
    note = (f"{why}: a random network's map means little. Pick a saved model, or download pretrained "
            f"weights (classifying any image with {spec.display_name} fetches them), and look again.")
    return EmbeddingSource(spec.name, spec.display_name, "random", note)


def _pretrained_here() -> list[ModelSpec]:
    """Registry models with weights on disk: the preferred one first, then by compute (cheapest first)."""
    here = [spec for spec in list_specs() if spec.pretrained and weights_mod.cached_path(spec) is not None]
    return sorted(here, key=lambda spec: (spec.name != PREFERRED_MODEL, spec.gflops, spec.name))


# -- what the network sees ------------------------------------------------------------------------


def head_inputs(module: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """What ``module``'s classification head receives for ``batch``: [N, D] (maps averaged over space)."""
    caught: list[torch.Tensor] = []

    def catch(_head: nn.Module, args: tuple) -> None:
        value = args[0]
        caught.append(value.mean(dim=(2, 3)) if value.ndim == 4 else value.flatten(1))

    handle = module.get_submodule(head_name(module)).register_forward_pre_hook(catch)
    try:
        module(batch)
    finally:
        handle.remove()
    if not caught:
        raise StudioError(f"{type(module).__name__}'s head was never reached in the forward pass")
    return caught[-1]


def signature(image: Image.Image) -> np.ndarray:
    """A small perceptual signature: the image as 16x16 grayscale (area averages), zero mean, unit norm.

    A flat image (no variation) gives all zeros: it resembles nothing, not everything."""
    small = image.convert("L").resize((SIGNATURE_SIDE, SIGNATURE_SIDE), Image.Resampling.BOX)
    values = np.asarray(small, dtype=np.float32).ravel()
    values = values - values.mean()
    norm = float(np.linalg.norm(values))
    return values / norm if norm > 1e-6 else np.zeros_like(values)


# -- the cache ------------------------------------------------------------------------------------


def cache_key(source: EmbeddingSource, spec: ModelSpec) -> str:
    """Names one network's view: architecture, weights file (path, size, mtime) or "random", preprocessing."""
    weights = "random" if source.kind == "random" else _file_identity(weights_mod.cached_path(spec))
    text = "|".join((_CACHE_FORMAT, spec.name, str(spec.params), weights, repr(spec.preprocess),
                     str(SIGNATURE_SIDE)))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _file_identity(path: Path | None) -> str:
    if path is None:
        return "none"
    resolved = path.expanduser().resolve()
    try:
        stat = resolved.stat()
    except OSError:
        return str(resolved)
    return f"{resolved}@{stat.st_size}@{stat.st_mtime_ns}"


@dataclass
class _Cache:
    """One model's cached rows: content digest -> (embedding, signature). Unreadable files are not kept:
    decoding them again costs little, and the reason may have been passing (a file moved meanwhile)."""

    file: Path
    rows: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @classmethod
    def load(cls, file: Path) -> _Cache:
        """The rows in ``file``; a missing, corrupt or foreign file gives an empty cache (rebuilt)."""
        try:  # numpy leaves its own handle open when the zip is corrupt: open (and close) the file here
            with open(file, "rb") as handle, np.load(handle, allow_pickle=False) as data:
                digests, vectors, signatures = data["digests"], data["vectors"], data["signatures"]
        except Exception:  # noqa: BLE001 - OSError, BadZipFile, ValueError, KeyError...: a bad cache is rebuilt
            return cls(file)
        if not _well_formed(digests, vectors, signatures):
            return cls(file)
        return cls(file, {str(d): (v, s) for d, v, s in zip(digests, vectors, signatures)})

    def save(self, keep: set[str]) -> None:
        """Write every row atomically (only ``keep``'s when there are too many); a failure keeps the old file."""
        rows = self.rows if len(self.rows) <= _MAX_CACHED_ROWS else {d: self.rows[d] for d in keep if d in self.rows}
        if not rows:
            return
        digests = np.array(list(rows), dtype=np.str_)
        vectors = np.stack([v for v, _ in rows.values()])
        signatures = np.stack([s for _, s in rows.values()])
        with contextlib.suppress(StudioError, OSError):  # a cache that cannot be written is only slower next time
            self.file.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.file, lambda handle: np.savez(handle, digests=digests, vectors=vectors,
                                                             signatures=signatures))


def _well_formed(digests: np.ndarray, vectors: np.ndarray, signatures: np.ndarray) -> bool:
    return (digests.ndim == 1 and digests.dtype.kind == "U" and vectors.ndim == 2
            and vectors.dtype == np.float32 and signatures.dtype == np.float32
            and len(vectors) == len(digests) and signatures.shape == (len(digests), SIGNATURE_SIDE ** 2)
            and bool(np.isfinite(vectors).all()) and bool(np.isfinite(signatures).all()))


# -- computing ------------------------------------------------------------------------------------


def embed_samples(samples: Sequence[Sample], source: EmbeddingSource, *, device: str = "auto",
                  batch_size: int = 32, progress: ProgressFn | None = None,
                  cancel: threading.Event | None = None,
                  cache_dir: str | os.PathLike[str] | None = None) -> Embeddings:
    """Embeddings and signatures of ``samples`` through ``source``'s network, from the cache where it has them.

    Unreadable files are skipped and listed with their reason. ``progress(done, total)`` after every
    batch; ``cancel`` (checked between batches) raises ``Cancelled``, keeping the finished rows cached.
    ``cache_dir`` defaults to ``core.paths.cache_dir() / "doctor"``.
    """
    spec = resolve(source.model).spec
    folder = Path(cache_dir) if cache_dir is not None else paths.cache_dir() / "doctor"
    cache = _Cache.load(folder / f"{cache_key(source, spec)}.npz")
    missing = [i for i, s in enumerate(samples) if s.digest not in cache.rows]
    cached = len(samples) - len(missing)
    failed: dict[str, str] = {}  # path -> reason
    seconds = 0.0
    if progress is not None:
        progress(cached, len(samples))
    if missing:
        start = time.perf_counter()
        before = len(cache.rows)
        try:
            _compute(samples, missing, source, spec, cache, failed, device, batch_size, progress, cancel)
        finally:
            seconds = time.perf_counter() - start
            if len(cache.rows) > before:  # also on cancel: the finished batches are not computed again
                cache.save({s.digest for s in samples})
    return _collect(samples, source, cache, failed, cached, seconds)


def _collect(samples: Sequence[Sample], source: EmbeddingSource, cache: _Cache, failed: dict[str, str],
             cached: int, seconds: float) -> Embeddings:
    rows = [i for i, s in enumerate(samples) if s.digest in cache.rows and s.path not in failed]
    if rows:
        vectors = np.stack([cache.rows[samples[i].digest][0] for i in rows])
        signatures = np.stack([cache.rows[samples[i].digest][1] for i in rows])
    else:
        vectors = np.zeros((0, 0), np.float32)
        signatures = np.zeros((0, SIGNATURE_SIDE ** 2), np.float32)
    unreadable = [{"path": path, "reason": reason} for path, reason in failed.items()]
    return Embeddings(source, rows, vectors, signatures, unreadable, cached, seconds)


def _decode(engine: InferenceEngine, spec: ModelSpec, path: str) -> tuple[torch.Tensor, np.ndarray] | str:
    """(preprocessed tensor, signature), or the reason the file cannot be read."""
    try:
        image = engine.decode(path, spec)
        return preprocess(image, spec.preprocess), signature(image)
    except ImageError as exc:
        return exc.reason


def _compute(samples: Sequence[Sample], todo: list[int], source: EmbeddingSource, spec: ModelSpec, cache: _Cache,
             failed: dict[str, str], device: str, batch_size: int, progress: ProgressFn | None,
             cancel: threading.Event | None) -> None:
    """Fill ``cache`` for ``samples[todo]`` batch by batch, decoding the next batch while one runs. The
    network is loaded at the first decodable image (a folder of unreadable files loads none)."""
    size = max(1, batch_size)
    chunks = [[samples[i] for i in todo[at:at + size]] for at in range(0, len(todo), size)]
    done = len(samples) - len(todo)
    with _Network(source, device) as network, \
            ThreadPoolExecutor(_DECODE_WORKERS, thread_name_prefix="doctor-decode") as pool:

        def submit(chunk: list[Sample]) -> list[Future]:
            return [pool.submit(_decode, network.engine, spec, sample.path) for sample in chunk]

        ahead = submit(chunks[0])
        for n, chunk in enumerate(chunks):
            if cancel is not None and cancel.is_set():
                for future in ahead:
                    future.cancel()
                raise Cancelled("computing the embeddings")
            decoded = [future.result() for future in ahead]
            ahead = submit(chunks[n + 1]) if n + 1 < len(chunks) else []
            _embed_batch(network, chunk, decoded, cache, failed)
            done += len(chunk)
            if progress is not None:
                progress(done, len(samples))


class _Network:
    """The source's network in an engine of its own, loaded on first use (never downloading)."""

    def __init__(self, source: EmbeddingSource, device: str) -> None:
        self.source = source
        self.engine = InferenceEngine(device, onnx=False, cache_size=1)
        self._module: nn.Module | None = None

    @property
    def module(self) -> nn.Module:
        if self._module is None:
            weights = "none" if self.source.kind == "random" else "default"
            self._module = self.engine.module(self.source.model, weights, download=False)[0]
        return self._module

    def __enter__(self) -> _Network:
        return self

    def __exit__(self, *exc: object) -> None:
        self.engine.close()


def _embed_batch(network: _Network, chunk: list[Sample], decoded: list, cache: _Cache,
                 failed: dict[str, str]) -> None:
    """One forward pass over the decodable images of ``chunk``; the others are listed as unreadable."""
    good: list[tuple[Sample, torch.Tensor, np.ndarray]] = []
    for sample, item in zip(chunk, decoded):
        if isinstance(item, str):
            failed[sample.path] = item
        else:
            good.append((sample, *item))
    if not good:
        return
    batch = torch.stack([tensor for _, tensor, _ in good])
    with torch.inference_mode():
        vectors = head_inputs(network.module, network.engine.on_device(batch)).float().cpu().numpy()
    for (sample, _, sig), vector in zip(good, vectors):
        cache.rows[sample.digest] = (vector.copy(), sig)
