"""InferenceEngine: device, model cache, preprocessing, batched prediction.

One engine is owned by one thread (the GUI's inference worker, or the CLI's
main thread). Decoding runs ahead on a small thread pool (Pillow releases the
GIL while decoding) so the model never waits for JPEGs. The engine returns
plain ``Prediction`` records: no tensors cross into callers.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from core import onnx_cpu, quantize
from core import weights as weights_mod
from core.accel import CudaGraphForward, decode_jpegs, forward_format, use_cuda_graphs, use_gpu_decode
from core.errors import StudioError, WeightsError, WeightsMissingError
from core.images import load_image
from core.meta import build_on_meta
from core.models import get_spec
from core.preprocess import preprocess
from core.quick import file_key as _file_key  # one key for the engine and the export manifests
from core.records import (  # noqa: F401  (re-exported: callers import them from here)
    LoadedModelInfo,
    Prediction,
    TopK,
    _module_bytes,
    available_devices,
    default_memory_budget,
    resolve_device,
)
from core.weights_store import WeightsInfo
from core.zoo import ModelSpec

ProgressFn = Callable[[int, "int | None"], None]  # (bytes done, bytes total or None)
PRECISIONS = ("auto", "fp32", "int8")
SESSION_WAIT_S = 2.0  # the first batch waits this long at most for the ONNX Runtime session of a cached export


@dataclass
class _Loaded:
    module: nn.Module
    spec: ModelSpec
    labels: tuple[str, ...]
    info: LoadedModelInfo
    source: str = "none"  # the weights file as path@mtime@size, or "none" for random init
    file: Path | None = None  # the weights file itself (None: random init)
    graphs: CudaGraphForward | None = None  # CUDA only, made on first use
    fast: Future | None = None  # of an onnx_cpu.OrtForward (or None), CPU only
    fast_soon: bool = False  # its export was already made: only the session is opening (~0.2 s)


def _build_random(spec: ModelSpec, num_classes: int | None = None) -> nn.Module:
    """Random init, reproducible across runs (seed 0), without touching global RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return spec.build(num_classes=num_classes)


class InferenceEngine:
    """Loads models (LRU cache), decodes images ahead, runs batches, returns Predictions."""

    def __init__(
        self,
        device: str = "auto",
        *,
        cache_size: int = 3,
        memory_budget: int | None = None,
        draft: bool = True,
        channels_last: bool = True,
        decode_workers: int | None = None,
        cuda_graphs: bool = False,
        gpu_decode: bool = False,
        onnx: bool | None = None,
        precision: str = "auto",
    ) -> None:
        """``cuda_graphs`` and ``gpu_decode`` (see core.accel) take effect on CUDA only;
        ``onnx`` (default: when onnxruntime is installed, see core.onnx_cpu) on the CPU only, and with it
        ``precision`` (fp32 | int8 | auto, see ``core.quantize.pick``; settable between requests)."""
        self.precision = precision
        self._device = resolve_device(device)
        self._cache: OrderedDict[tuple[str, str], _Loaded] = OrderedDict()
        self.cache_size = max(1, cache_size)
        self.memory_budget = memory_budget if memory_budget is not None else default_memory_budget()
        self.draft = draft
        self.channels_last = channels_last
        self.cuda_graphs = cuda_graphs
        self.gpu_decode = gpu_decode
        self._onnx = onnx_cpu.Preparer() if (onnx_cpu.enabled() if onnx is None else onnx) else None
        self._decode_workers = decode_workers or max(2, min(4, os.cpu_count() or 2))
        self._pool: ThreadPoolExecutor | None = None

    # -- device, precision and models ----------------------------------------

    @property
    def precision(self) -> str:
        """fp32 | int8 | auto: which ONNX Runtime file classify runs once the export is ready (torch never
        changes: int8 is a CPU ONNX Runtime path). auto: int8 where its verdict accepted it, else fp32."""
        return self._precision

    @precision.setter
    def precision(self, value: str) -> None:
        if value not in PRECISIONS:
            raise StudioError(f"precision must be fp32, int8 or auto, not {value!r}")
        self._precision = value

    def precision_note(self, model: str, weights: str = "default") -> str | None:
        """Why int8 does not run for ``model`` (loaded or not), in words; None when fp32 was asked, int8
        runs, or auto runs fp32 with nothing to say (``core.quantize.pick``'s note)."""
        if self.precision == "fp32":
            return None
        spec = get_spec(model)
        loaded = self._cache.get((spec.name, self._weights_key(weights, spec)))
        runner = _ready(loaded.fast) if loaded is not None else None
        if runner is None:
            return self._torch_note(weights, loaded) if self.precision == "int8" else None
        if runner.int8_failed():
            return "int8 not used, fp32 kept: ONNX Runtime could not open the int8 file (see the log)"
        return quantize.pick(runner.path, self.precision)[2]

    def _torch_note(self, weights: str, loaded: _Loaded | None) -> str:
        """Why torch, not int8, runs a model (int8 is a CPU ONNX Runtime path)."""
        lead = "int8 not used: it is a CPU ONNX Runtime path, and torch runs this model"
        if self._device.type != "cpu":
            return f"{lead} on {self.device}"
        if self._onnx is None:
            return f"{lead} (ONNX Runtime is off or not installed)"
        if weights == "none" or (loaded is not None and loaded.file is None):
            return f"{lead} (untrained weights are never exported to ONNX)"
        return (f"{lead} until its ONNX export is ready (made in the background on a first CPU run; "
                "then: python main.py quantize MODEL --images FOLDER)")

    @property
    def device(self) -> str:
        return self._device.type

    @property
    def memory_format(self) -> torch.memory_format:
        """The memory format of this engine's models and of every batch they run on."""
        return forward_format(self.channels_last)

    def on_device(self, batch: torch.Tensor, *, non_blocking: bool = False) -> torch.Tensor:
        """``batch`` ready for a forward pass of this engine's models: on their device, in their memory format.

        The one rule for a forward pass's device and memory format: classify, explain, compare and the
        benchmarks all go through here (and ``_prepare`` puts the models in the same format).
        """
        return batch.to(self._device, memory_format=self.memory_format, non_blocking=non_blocking)

    def set_device(self, device: str) -> None:
        new = resolve_device(device)
        if new != self._device:
            self._device = new
            self._cache.clear()

    def load(
        self,
        model: str,
        weights: str = "default",
        *,
        download: bool = True,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> LoadedModelInfo:
        """Make ``model`` ready (cached after the first call) and describe it."""
        return self._get(model, weights, download=download, progress=progress, cancel=cancel).info

    def _get(self, model: str, weights: str, **download_opts) -> _Loaded:
        spec = get_spec(model)
        key = (spec.name, self._weights_key(weights, spec))
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        loaded = self._load_uncached(spec, weights, **download_opts)
        if self._onnx is not None and self._device.type == "cpu" and loaded.file is not None:
            # an untrained (random-init) model stays on torch: nothing to export it from
            loaded.fast = self._onnx.request(spec, weights, loaded.file, loaded.source)
            loaded.fast_soon = onnx_cpu.cache_file(spec.name, loaded.source, spec.input_size).is_file()
        self._cache[key] = loaded
        while len(self._cache) > 1 and (len(self._cache) > self.cache_size or self.cached_bytes() > self.memory_budget):
            self._cache.popitem(last=False)
        return loaded

    def cached_bytes(self) -> int:
        """Bytes held by the parameters and buffers of every cached model."""
        return sum(_module_bytes(loaded.module) for loaded in self._cache.values())

    def cached_models(self) -> list[str]:
        """Names of the cached models, least recently used first."""
        return [name for name, _ in self._cache]

    @staticmethod
    def _weights_key(weights: str, spec: ModelSpec | None = None) -> str:
        if weights == "default" and spec is not None and spec.pretrained:
            installed = weights_mod.cached_path(spec)  # a newer import or download is another model
            return weights if installed is None else f"{weights}@{_file_key(installed)}"
        if weights in ("default", "none"):
            return weights
        path = Path(weights).expanduser().resolve()
        with contextlib.suppress(OSError):
            return f"{path}@{path.stat().st_mtime_ns}"
        return str(path)

    def _load_uncached(
        self,
        spec: ModelSpec,
        weights: str,
        *,
        download: bool = True,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> _Loaded:
        start = time.perf_counter()
        source = self._weights_source(spec, weights, download, progress, cancel)
        file = source.path
        if file is None:
            module = _build_random(spec)
        else:
            state = weights_mod.load_state_dict_file(file, spec=spec)
            module = build_on_meta(spec)
            try:
                module = weights_mod.load_into(module, state, spec)
            except WeightsError as exc:
                raise WeightsError(f"{file}: {exc}") from None
        module = self._prepare(module)
        info = LoadedModelInfo(
            name=spec.name,
            display_name=spec.display_name,
            untrained=file is None,
            weights=weights,
            device=self.device,
            load_ms=(time.perf_counter() - start) * 1000,
            num_classes=spec.num_classes,
            source=source,
        )
        key = "none" if file is None else _file_key(file)
        return _Loaded(module=module, spec=spec, labels=spec.categories, info=info, source=key, file=file)

    @staticmethod
    def _weights_source(spec, weights, download, progress, cancel) -> WeightsInfo:
        """What to load (``.path``; None for random init) and what it is, for labels."""
        if weights == "none":
            return WeightsInfo("none")
        if weights != "default":
            path = Path(weights).expanduser()
            return WeightsInfo("file", path, source_name=path.name)
        if not spec.pretrained:
            return WeightsInfo("none")
        found = weights_mod.weights_info(spec)
        if found.path is not None:
            return found
        if not download:
            raise WeightsMissingError(spec.name, spec.weights_size)
        weights_mod.download(spec, progress=progress, cancel=cancel)
        return weights_mod.weights_info(spec)

    def _prepare(self, module: nn.Module) -> nn.Module:
        module.eval()
        return module.to(self._device, memory_format=self.memory_format)

    # -- prediction --------------------------------------------------------

    def classify(self, paths: Iterable[str | Path], **kwargs) -> list[Prediction]:
        return list(self.classify_iter(paths, **kwargs))

    def classify_iter(
        self,
        paths: Iterable[str | Path],
        *,
        model: str,
        weights: str = "default",
        topk: int = 5,
        batch_size: int = 8,
        cancel: threading.Event | None = None,
        download: bool = True,
        progress: ProgressFn | None = None,
    ) -> Iterator[Prediction]:
        """Yield one Prediction per path, in input order, batch by batch.

        Decoding runs one batch ahead of the model, and the first batch decodes
        while the model loads. ``paths`` is read lazily, so a generator over a
        huge folder streams. A bad file becomes ``ok=False`` with its reason; it
        never stops the rest. Setting ``cancel`` stops after the batch in flight.
        """
        spec = get_spec(model)
        if not 1 <= topk <= spec.num_classes:
            raise StudioError(f"top-k must be between 1 and {spec.num_classes}, got {topk}")
        chunks = _chunked((os.fspath(p) for p in paths), max(1, batch_size))
        current = next(chunks, None)
        pending = self._submit(current, spec) if current else []
        try:
            loaded = self._get(model, weights, download=download, progress=progress, cancel=cancel)
        except BaseException:
            self._discard(pending)
            raise
        while current:
            if cancel is not None and cancel.is_set():
                self._discard(pending)
                return
            following = next(chunks, None)
            decoding, pending = pending, (self._submit(following, loaded.spec) if following else [])
            yield from self._run_batch(current, self._collect(current, decoding, loaded.spec), loaded, topk)
            current = following
        self._discard(pending)

    def _submit(self, chunk: list[str], spec: ModelSpec) -> list[Future] | None:
        """Start decoding ``chunk`` on the pool; None when the batch will decode on the GPU."""
        if use_gpu_decode(self.gpu_decode, self._device, chunk):
            return None
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._decode_workers, thread_name_prefix="decode")
        return [self._pool.submit(self._decode, path, spec) for path in chunk]

    def _collect(self, chunk: list[str], futures: list[Future] | None, spec: ModelSpec) -> list:
        if futures is None:
            return decode_jpegs(chunk, spec.preprocess, self._device, lambda path: self._decode(path, spec))
        return [f.result() for f in futures]

    @staticmethod
    def _discard(futures: list[Future] | None) -> None:
        for future in futures or ():
            future.cancel()

    def _decode(self, path: str, spec: ModelSpec) -> tuple[torch.Tensor | None, str | None, float]:
        """Decode + preprocess one image: (tensor, None, ms) or (None, reason, ms). Never raises."""
        start = time.perf_counter()
        try:
            tensor = self.prepare(path, spec)
            return tensor, None, (time.perf_counter() - start) * 1000
        except StudioError as exc:
            return None, str(exc), (time.perf_counter() - start) * 1000
        except Exception as exc:  # noqa: BLE001 - a bug must not stop the batch; report it on the image
            return None, f"{path}: unexpected error ({type(exc).__name__}: {exc})", 0.0

    def _run_batch(self, chunk, decoded, loaded: _Loaded, topk: int) -> Iterator[Prediction]:
        good = [i for i, (tensor, _, _) in enumerate(decoded) if tensor is not None]
        results: dict[int, tuple[list[int], list[float]]] = {}
        infer_ms, runtime = 0.0, "torch"
        if good:
            start = time.perf_counter()
            batch = torch.stack([decoded[i][0].to(self._device) for i in good])
            probs, indices, runtime = self._forward(loaded, batch, topk)
            infer_ms = (time.perf_counter() - start) * 1000 / len(good)
            for row, i in enumerate(good):
                results[i] = (indices[row], probs[row])
        for i, path in enumerate(chunk):
            _, error, decode_ms = decoded[i]
            base = dict(path=path, model=loaded.spec.name, untrained=loaded.info.untrained, decode_ms=decode_ms)
            if i not in results:
                yield Prediction(ok=False, error=error, **base)
                continue
            idx, prob = results[i]
            if not all(math.isfinite(p) for p in prob):  # finite weights can still overflow (damaged BatchNorm stats)
                yield Prediction(ok=False, error=f"{path}: {loaded.spec.name} produced NaN or infinite scores for "
                                 "this image; its weights look damaged (import them again)", **base)
                continue
            top = tuple(TopK(index=k, label=loaded.labels[k], prob=p) for k, p in zip(idx, prob))
            yield Prediction(ok=True, topk=top, infer_ms=infer_ms, runtime=runtime, **base)

    def _forward(self, loaded: _Loaded, batch: torch.Tensor, topk: int) -> tuple[list, list, str]:
        """(top-k probabilities, their indices, the runtime that ran the forward pass)."""
        if loaded.fast_soon and loaded.fast is not None and not loaded.fast.done():
            # the export exists: its session opens faster than torch runs a batch, and the first answers then
            # come from the same runtime (and precision) as the rest
            with contextlib.suppress(TimeoutError):
                loaded.fast.result(timeout=SESSION_WAIT_S)
        runner = _ready(loaded.fast)
        if runner is not None:
            runner = runner.variant(self.precision)
        with torch.inference_mode():
            logits = runner(batch) if runner is not None else self._logits(loaded, batch)
        probs = torch.softmax(logits.float(), dim=1)
        values, indices = probs.topk(topk, dim=1)
        return values.cpu().tolist(), indices.cpu().tolist(), "torch" if runner is None else runner.runtime

    def _logits(self, loaded: _Loaded, batch: torch.Tensor) -> torch.Tensor:
        """The torch module's forward pass (ONNX Runtime is chosen in ``_forward``)."""
        batch = self.on_device(batch, non_blocking=True)
        if use_cuda_graphs(self.cuda_graphs, self._device):
            if loaded.graphs is None:
                loaded.graphs = CudaGraphForward(loaded.module, self._device)
            return loaded.graphs(batch)
        if self._device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.float16):
                return loaded.module(batch)
        return loaded.module(batch)

    def backend(self, model: str, weights: str = "default", *, wait: float | None = 0.0) -> str:
        """'onnxruntime' once classify uses it for this (loaded) model, else 'torch'.

        ``wait`` seconds (None: no limit) lets a caller, such as a benchmark,
        wait for the background preparation to finish.
        """
        loaded = self._get(model, weights)
        if loaded.fast is not None and wait != 0.0:
            with contextlib.suppress(TimeoutError):
                loaded.fast.result(timeout=wait)
        return "onnxruntime" if _ready(loaded.fast) is not None else "torch"

    def onnx_file(self, model: str, weights: str = "default", *, wait: float | None = 0.0) -> Path | None:
        """The fp32 ONNX export classify runs for this model once it is ready (None: torch); ``wait`` as in
        ``backend``. ``core.quantize`` makes its int8 variant beside it."""
        if self.backend(model, weights, wait=wait) != "onnxruntime":
            return None
        return _ready(self._get(model, weights).fast).path

    # -- raw access for explain, compare and tests ----------------------------

    def module(self, model: str, weights: str = "default",
               **download_opts) -> tuple[nn.Module, ModelSpec, LoadedModelInfo]:
        """The loaded (eval, on-device) module; owned by the engine's thread."""
        loaded = self._get(model, weights, **download_opts)
        return loaded.module, loaded.spec, loaded.info

    def decode(self, path: str | Path, spec: ModelSpec) -> Image.Image:
        """Decode one image exactly as classify does (draft-mode JPEG when ``draft``); raises ImageError."""
        return load_image(path, draft_size=draft_size(spec) if self.draft else None)

    def prepare(self, path: str | Path, spec: ModelSpec) -> torch.Tensor:
        """Decode and preprocess one image exactly as classify does; raises ImageError."""
        return preprocess(self.decode(path, spec), spec.preprocess)

    def logits(self, paths: Iterable[str | Path], *, model: str, weights: str = "default") -> torch.Tensor:
        """Raw fp32 logits [N, classes] on the CPU for images that must all decode."""
        module, spec, _ = self.module(model, weights)
        batch = torch.stack([self.prepare(p, spec) for p in paths])
        with torch.inference_mode():
            return module(self.on_device(batch)).float().cpu()

    def close(self) -> None:
        """Release the decode pool, the background preparer and cached models."""
        if self._onnx is not None:
            self._onnx.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._cache.clear()

    def __enter__(self) -> InferenceEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _ready(future: Future | None):
    """The finished, successful result of ``future``, else None (never blocks)."""
    if future is None or not future.done() or future.cancelled() or future.exception() is not None:
        return None
    return future.result()


def _chunked(items: Iterator[str], size: int) -> Iterator[list[str]]:
    while chunk := list(itertools.islice(items, size)):
        yield chunk


def draft_size(spec: ModelSpec) -> int:
    """JPEG draft target: twice the size the transform resizes to.

    DCT-domain downscaling to just the resize size (1/8 for a 12 MP photo)
    shifts pixel values by about one grey level on average; at twice the size
    (1/4) the preprocessed tensor stays within 0.01 mean absolute difference of
    a full decode, for ~10 % more decode time than 1/8 and ~40 % less than 1/1.
    """
    return 2 * spec.preprocess.resize_size
