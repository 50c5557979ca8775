"""Classify through ONNX Runtime before torch is imported: the route of a model that has run before.

``core.onnx_cpu`` exports every CPU model it runs into the user cache and writes a
manifest beside each export (``<stem>.json``: names, labels, preprocessing, and
the weights file it came from with its key ``path@mtime_ns@size``). This module
reads those manifests with numpy, Pillow and onnxruntime alone, so a one-photo
``classify`` or the window's first prediction pays ~0.2 s of imports instead of
torch and torchvision's ~2.7 s.

>>> found = find("resnet50")            # None: no export, or it is not what torch would load now
>>> with QuickEngine() as engine:
...     predictions = engine.classify(["cat.jpg"], model=found)

:func:`find` returns a model only when its export is still what the torch path would
load: the same weights file (the default recomputed torch-free, through
``core.weights_store.choose``), unchanged (same key), and the ``.onnx`` present.
Anything else, a damaged manifest included, is None and the caller uses torch.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core import paths, quantize, weights_store
from core.errors import StudioError
from core.fastprep import PIL_FILTERS, Numbers, preprocess_array, softmax_topk
from core.images import load_image
from core.io import atomic_path
from core.prediction import Prediction, TopK
from core.userfiles import UnreadableFile, read_json

__all__ = ["QuickModel", "QuickEngine", "find", "note", "enabled", "file_key", "manifest_path", "read_manifest",
           "MANIFEST_FORMAT", "MANIFEST_VERSION", "KIND_REGISTRY", "KIND_BUNDLE", "KIND_FILE", "RUNTIME"]

log = logging.getLogger(__name__)
ENV = "CONVNET_STUDIO_ONNX"  # the same switch as core.onnx_cpu's
MANIFEST_FORMAT = "convnet-studio.onnx-export"
MANIFEST_VERSION = 1
KIND_REGISTRY, KIND_BUNDLE, KIND_FILE = "registry", "bundle", "file"
RUNTIME = "onnxruntime"
MAX_MANIFEST_BYTES = 1 << 20  # 1000 labels take ~25 KB
MAX_MANIFESTS = 256  # the newest ones; an older export is simply not found (torch then)
SESSIONS_KEPT = 2


def enabled() -> bool:
    """True when onnxruntime is installed and ``CONVNET_STUDIO_ONNX`` does not turn the route off."""
    if os.environ.get(ENV, "").strip().lower() in {"0", "false", "no", "off"}:
        return False
    return importlib.util.find_spec("onnxruntime") is not None


def file_key(path: Path) -> str:
    """``resolved-path@mtime_ns@size``: what a weights file is, for caches (the engine's key too)."""
    resolved = Path(path).expanduser().resolve()
    with contextlib.suppress(OSError):
        st = resolved.stat()
        return f"{resolved}@{st.st_mtime_ns}@{st.st_size}"
    return str(resolved)


def manifest_path(onnx_path: Path) -> Path:
    return onnx_path.with_suffix(".json")


@dataclass(frozen=True)
class QuickModel:
    """A model the ORT route can run: what the torch path would load, as its export."""

    name: str
    display_name: str
    labels: tuple[str, ...] = field(repr=False)
    preprocess: Numbers
    onnx: Path
    source: str  # the weights file's key (path@mtime_ns@size)
    kind: str  # KIND_REGISTRY, KIND_BUNDLE or KIND_FILE

    @property
    def num_classes(self) -> int:
        return len(self.labels)


# -- manifests ------------------------------------------------------------------------------------


def _strings(value: Any, *, limit: int = 100_000) -> list[str] | None:
    if isinstance(value, list) and 0 < len(value) <= limit and all(isinstance(v, str) for v in value):
        return value
    return None


def _numbers(value: Any) -> Numbers | None:
    try:
        pp = Numbers.of(value)
    except (TypeError, ValueError, KeyError, AttributeError):
        return None
    ok = (0 < pp.crop_size <= 4096 and 0 < pp.resize_size <= 8192 and len(pp.mean) == 3 and len(pp.std) == 3
          and all(math.isfinite(v) for v in pp.mean + pp.std) and all(v > 0 for v in pp.std)
          and pp.interpolation in PIL_FILTERS)
    return pp if ok else None


def read_manifest(path: Path) -> dict | None:
    """The manifest at ``path`` if it is a small, well-formed one of this format; else None."""
    try:
        data = read_json(path, max_bytes=MAX_MANIFEST_BYTES, follow_links=False)
    except (OSError, UnreadableFile):
        return None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT or data.get("version") != MANIFEST_VERSION:
        return None
    texts = ("model", "display_name", "kind", "weights", "weights_key", "onnx")
    if not all(isinstance(data.get(key), str) and data[key] for key in texts):
        return None
    onnx = data["onnx"]
    if (data["kind"] not in (KIND_REGISTRY, KIND_BUNDLE, KIND_FILE) or Path(onnx).name != onnx
            or not onnx.endswith(".onnx") or _strings(data.get("names"), limit=16) is None
            or _strings(data.get("labels")) is None or _numbers(data.get("preprocess")) is None):
        return None
    if data["kind"] == KIND_REGISTRY and not isinstance(data.get("weights_file_name"), str):
        return None
    if data.get("input_size") != data["preprocess"]["crop_size"]:  # an export at another size cannot run these
        return None
    return data


def _manifests() -> list[tuple[Path, dict]]:
    """The readable manifests of the export cache, newest first (at most MAX_MANIFESTS looked at)."""
    root = paths.onnx_cache_dir()
    try:
        found = [(entry.stat().st_mtime_ns, Path(entry.path)) for entry in os.scandir(root)
                 if entry.name.endswith(".json") and not entry.name.startswith(".")]
    except OSError:
        return []
    found.sort(reverse=True)
    return [(path, data) for _, path in found[:MAX_MANIFESTS] if (data := read_manifest(path)) is not None]


# -- finding --------------------------------------------------------------------------------------


def _matches(data: dict, model: str) -> int:
    """0: no; 1: by folder (a saved model named by its path); 2: by name (case-insensitive, as registry names)."""
    query = model.strip()
    if query.lower() in (name.lower() for name in data["names"]):
        return 2
    if data["kind"] == KIND_BUNDLE and query:
        with contextlib.suppress(OSError, RuntimeError, ValueError):
            folder = Path(query).expanduser()
            if folder.is_dir() and str(folder.resolve()) in data["names"]:
                return 1
    return 0


def _default_file(weights_file_name: str) -> Path | None:
    """The file torch's engine would load as this registry model's default weights (torch-free)."""
    if Path(weights_file_name).name != weights_file_name:
        return None
    official = paths.torch_hub_dir() / "checkpoints" / weights_file_name
    return weights_store.choose(official if official.is_file() else None, weights_file_name, verify=False).path


def _still_current(data: dict, weights: str) -> bool:
    """True when the export is what the torch path would load now for ``weights``."""
    if data["kind"] == KIND_REGISTRY:
        current = _default_file(data["weights_file_name"])
    else:
        current = Path(data["weights"])
        if data["kind"] == KIND_FILE and Path(weights).expanduser().resolve() != current:
            return False
        if data["kind"] == KIND_BUNDLE and data.get("meta_key") != file_key(current.parent / "meta.json"):
            return False
    return current is not None and file_key(current) == data["weights_key"]


def _wanted_kinds(weights: str) -> tuple[str, ...]:
    return (KIND_REGISTRY, KIND_BUNDLE) if weights == "default" else (KIND_FILE,)


def find(model: str, weights: str = "default") -> QuickModel | None:
    """The export of ``model`` with ``weights`` ("default" or a weights file) if it is current; else None.

    None too for ``weights="none"`` (random init is never exported), when the route is off
    (``CONVNET_STUDIO_ONNX=0``) or onnxruntime is missing. Never raises for what it reads.
    """
    if weights == "none" or not model or not enabled():
        return None
    kinds = _wanted_kinds(weights)
    ranked = []
    for path, data in _manifests():
        score = _matches(data, model) if data["kind"] in kinds else 0
        if score:  # registry entries win over saved models, as name resolution does; newest first
            ranked.append((-score, data["kind"] != KIND_REGISTRY, len(ranked), path, data))
    for *_, path, data in sorted(ranked, key=lambda r: r[:3]):
        onnx = path.parent / data["onnx"]
        try:
            usable = onnx.is_file() and _still_current(data, weights)
        except (OSError, RuntimeError, ValueError):
            usable = False
        if usable:
            return QuickModel(name=data["model"], display_name=data["display_name"], labels=tuple(data["labels"]),
                              preprocess=_numbers(data["preprocess"]), onnx=onnx, source=data["weights_key"],
                              kind=data["kind"])
    return None


def note(model: QuickModel, precision: str) -> str | None:
    """Why int8 is not used for ``model`` at ``precision`` (fp32 | int8 | auto), or None: pick's note."""
    return quantize.pick(model.onnx, precision)[2]


# -- running --------------------------------------------------------------------------------------


def _usable_cores() -> int:
    with contextlib.suppress(AttributeError, OSError):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


class QuickEngine:
    """Runs QuickModels: decodes ahead on a small pool, one ORT session per export (the last two kept).

    Owned by one thread, like ``core.inference.InferenceEngine``; predictions come back in input order.
    """

    def __init__(self, threads: int | None = None, *, decode_workers: int | None = None) -> None:
        self.threads = max(1, threads or _usable_cores())
        self._decode_workers = decode_workers or max(2, min(4, os.cpu_count() or 2))
        self._sessions: OrderedDict[Path, Any] = OrderedDict()
        self._pool: ThreadPoolExecutor | None = None

    # sessions

    def session(self, model: QuickModel, precision: str = "auto"):
        """The ORT session of ``model``'s export at ``precision`` (see ``runner``); raises StudioError if the
        fp32 export cannot be opened."""
        return self.runner(model, precision)[0]

    def runner(self, model: QuickModel, precision: str = "auto") -> tuple[Any, str]:
        """(session, runtime) for ``model`` at ``precision`` (fp32 | int8 | auto, ``core.quantize.pick``):
        the int8 file where its verdict accepted it, else the fp32 export. An int8 file ONNX Runtime cannot
        open means fp32 (logged), never an error; an fp32 export it cannot open raises StudioError."""
        path, runtime, _ = quantize.pick(model.onnx, precision)
        if runtime == quantize.RUNTIME_INT8:
            try:
                return self._open(path), runtime
            except StudioError as exc:
                log.warning("int8 variant not used, fp32 kept: %s", exc)
        return self._open(model.onnx), RUNTIME

    def _open(self, onnx: Path):
        """The session on ``onnx`` (opened once, then cached: the last SESSIONS_KEPT files)."""
        if onnx in self._sessions:
            self._sessions.move_to_end(onnx)
            return self._sessions[onnx]
        session = open_session(onnx, self.threads)
        self._sessions[onnx] = session
        while len(self._sessions) > SESSIONS_KEPT:
            self._sessions.popitem(last=False)
        return session

    # prediction

    def classify(self, paths: Iterable[str | os.PathLike[str]], **kwargs) -> list[Prediction]:
        return list(self.classify_iter(paths, **kwargs))

    def classify_iter(self, paths: Iterable[str | os.PathLike[str]], *, model: QuickModel, topk: int = 5,
                      batch_size: int = 8, cancel: threading.Event | None = None,
                      precision: str = "auto") -> Iterator[Prediction]:
        """One Prediction per path, in input order, batch by batch (decoding one batch ahead).

        A bad file is ``ok=False`` with its reason; it never stops the rest. ``cancel`` stops
        after the batch in flight. ``precision`` (fp32 | int8 | auto) picks the file once per call
        (``runner``); ``Prediction.runtime`` says which ran. Raises StudioError for a bad ``topk``,
        a bad ``precision`` or an export ORT refuses.
        """
        if not 1 <= topk <= model.num_classes:
            raise StudioError(f"top-k must be between 1 and {model.num_classes}, got {topk}")
        quantize.pick(model.onnx, precision)  # a bad precision raises before anything starts
        items = iter([os.fspath(p) for p in paths] if isinstance(paths, (list, tuple)) else
                     (os.fspath(p) for p in paths))
        size = max(1, batch_size)
        current = _take(items, size)
        pending = self._submit(current, model)  # the first batch decodes while the session opens
        try:
            session, runtime = self.runner(model, precision)
        except BaseException:
            _discard(pending)
            raise
        while current:
            if cancel is not None and cancel.is_set():
                _discard(pending)
                return
            following = _take(items, size)
            decoding, pending = pending, self._submit(following, model)
            yield from self._run_batch((session, runtime), model, current, [f.result() for f in decoding], topk)
            current = following
        _discard(pending)

    def _submit(self, chunk: list[str], model: QuickModel) -> list[Future]:
        if not chunk:
            return []
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._decode_workers, thread_name_prefix="quick-decode")
        return [self._pool.submit(_decode, path, model.preprocess) for path in chunk]

    def _run_batch(self, runner: tuple[Any, str], model: QuickModel, chunk: list[str], decoded: list,
                   topk: int) -> Iterator[Prediction]:
        session, runtime = runner
        good = [i for i, (array, _, _) in enumerate(decoded) if array is not None]
        results: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        infer_ms = 0.0
        if good:
            start = time.perf_counter()
            batch = np.stack([decoded[i][0] for i in good])
            try:
                logits = session.run(None, {session.get_inputs()[0].name: batch})[0]
            except Exception as exc:  # noqa: BLE001 - ORT's own error types; said in our words
                raise StudioError(f"{model.name}: ONNX Runtime could not run the model "
                                  f"({type(exc).__name__}: {str(exc)[:200]})") from None
            probs, indices = softmax_topk(logits, topk)
            infer_ms = (time.perf_counter() - start) * 1000 / len(good)
            results = {i: (indices[row], probs[row]) for row, i in enumerate(good)}
        for i, path in enumerate(chunk):
            _, error, decode_ms = decoded[i]
            base = dict(path=path, model=model.name, decode_ms=decode_ms, runtime=runtime)
            if i not in results:
                yield Prediction(ok=False, error=error, **base)
                continue
            idx, prob = results[i]
            if not np.isfinite(prob).all():  # finite weights can still overflow (damaged BatchNorm stats)
                yield Prediction(ok=False, error=f"{path}: {model.name} produced NaN or infinite scores for "
                                 "this image; its weights look damaged (import them again)", **base)
                continue
            top = tuple(TopK(index=int(k), label=model.labels[int(k)], prob=float(p)) for k, p in zip(idx, prob))
            yield Prediction(ok=True, topk=top, infer_ms=infer_ms, **base)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._sessions.clear()

    def __enter__(self) -> QuickEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _take(items: Iterator[str], size: int) -> list[str]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            break
    return chunk


def _discard(futures: list[Future]) -> None:
    for future in futures:
        future.cancel()


def _decode(path: str, pp: Numbers) -> tuple[np.ndarray | None, str | None, float]:
    """Decode (JPEG draft at twice the resize size, as the engine) and preprocess; never raises."""
    start = time.perf_counter()
    try:
        array = preprocess_array(load_image(path, draft_size=2 * pp.resize_size), pp)
        return array, None, (time.perf_counter() - start) * 1000
    except StudioError as exc:
        return None, str(exc), (time.perf_counter() - start) * 1000
    except Exception as exc:  # noqa: BLE001 - a bug must not stop the batch; report it on the image
        return None, f"{path}: unexpected error ({type(exc).__name__}: {exc})", 0.0


def optimized_path(onnx: Path, version: str) -> Path:
    """Where ORT's optimized copy of ``onnx`` is kept (per ORT version: it may hold that version's own ops)."""
    return onnx.with_name(f"{onnx.name}.opt-{version}")


def open_session(onnx: Path, threads: int):
    """An ORT CPU session on ``onnx`` (set up as core.onnx_cpu.OrtForward's: no spinning).

    The first open saves ORT's optimized graph beside the export (atomic); later opens load that
    copy, which skips the graph optimisation: ResNet-50 opens in ~0.20 s instead of ~0.33 s here.
    """
    import onnxruntime as ort  # noqa: PLC0415 - lazy: optional extra (onnx), 0.2 s, only when a model runs

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    optimized = optimized_path(onnx, ort.__version__)
    try:
        if _newer_or_same(optimized, onnx):
            with contextlib.suppress(Exception):  # a damaged copy: the export itself below
                return ort.InferenceSession(str(optimized), options, providers=["CPUExecutionProvider"])
        return _open_and_save(ort, onnx, optimized, options)
    except Exception as exc:  # noqa: BLE001 - ORT's own error types (a damaged export): the caller uses torch
        raise StudioError(f"{onnx.name}: ONNX Runtime cannot open this export ({type(exc).__name__})") from None


def _newer_or_same(copy: Path, source: Path) -> bool:
    try:
        return copy.stat().st_mtime_ns >= source.stat().st_mtime_ns
    except OSError:
        return False


class _NotSaved(Exception):
    """ORT opened the export but wrote no optimized copy: nothing to publish."""


def _open_and_save(ort, onnx: Path, optimized: Path, options):
    """Open ``onnx``, having ORT write its optimized graph to a temp file that then becomes ``optimized``."""
    session = None
    try:
        with atomic_path(optimized, suffix=".opt-tmp") as tmp:  # fsync + rename; removed on any failure
            options.optimized_model_filepath = str(tmp)
            session = ort.InferenceSession(str(onnx), options, providers=["CPUExecutionProvider"])
            if tmp.stat().st_size == 0:
                raise _NotSaved
    except (_NotSaved, StudioError):  # no copy (a read-only cache, a full disk): the session still serves
        pass
    if session is None:  # the temp file could not even be made: open without saving a copy
        options.optimized_model_filepath = ""
        session = ort.InferenceSession(str(onnx), options, providers=["CPUExecutionProvider"])
    return session
