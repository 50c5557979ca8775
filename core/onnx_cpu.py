"""Optional ONNX Runtime forward for CPU classification (the ``onnx`` extra).

On the CPU, ONNX Runtime runs ResNet-50 1.35x (batch 1) to 1.4x (batch 8)
faster than our eager forward, with the same top-5 (BENCHMARKS.md,
"Alternative runtimes"). Its first-use cost (ONNX export ~3 s, session ~0.3 s)
never sits on the path of a model switch or a prediction: after a model loads,
a single background thread exports it once into the user cache (keyed by model,
weights file and torch version; atomic writes) and opens a session; until that
session is ready, and whenever anything fails, the engine runs the torch
module as before. Only ``classify`` uses it: explain and compare keep the
torch module. ``CONVNET_STUDIO_ONNX=0`` turns it off.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib.util
import logging
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)
ENV = "CONVNET_STUDIO_ONNX"
OPSET = 17


def enabled() -> bool:
    """True when onnxruntime and onnx are installed and the user has not turned this off."""
    if os.environ.get(ENV, "").strip().lower() in {"0", "false", "no", "off"}:
        return False
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


def cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("convnet-studio")) / "onnx"


def cache_file(model: str, source: str, input_size: int) -> Path:
    """Where the export of ``model`` with weights ``source`` (a path@mtime key, or 'none') lives."""
    key = hashlib.sha256(f"{model}|{source}|{input_size}|{torch.__version__}|{OPSET}".encode()).hexdigest()[:20]
    return cache_dir() / f"{model}-{key}.onnx"


class OrtForward:
    """``logits = runner(batch)`` for a float32 NCHW CPU batch, through one ORT session."""

    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # leave the cores to decoding
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.path = path

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        array = batch.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(self.session.run(None, {self.input: array})[0])


def export(module: nn.Module, path: Path, input_size: int) -> Path:
    """Export a copy of ``module`` (batch dimension dynamic) to ``path`` atomically."""
    from core.io import atomic_write

    model = copy.deepcopy(module).to("cpu", memory_format=torch.contiguous_format).eval()
    example = torch.zeros(2, 3, input_size, input_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.export")
    try:
        with torch.no_grad():
            _legacy_export()(model, (example,), str(tmp), input_names=["image"], output_names=["logits"],
                             dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, opset_version=OPSET)
        atomic_write(path, lambda handle: handle.write(tmp.read_bytes()))
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _legacy_export():
    """The TorchScript-based exporter: ~3 s for ResNet-50 and no onnxscript needed.

    Called directly because ``torch.onnx.export(dynamo=False)`` only adds a
    DeprecationWarning in front of it, and silencing that with
    ``warnings.catch_warnings`` from a background thread would swap the whole
    process's warning filters under the other threads.
    """
    try:
        from torch.onnx._internal.torchscript_exporter.utils import export as legacy
    except ImportError:  # a torch that moved it: the public door, warning and all
        return functools.partial(torch.onnx.export, dynamo=False)
    return legacy


class Preparer:
    """One background thread that makes ``OrtForward`` runners, one model at a time."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None

    def request(self, module: nn.Module, model: str, source: str, input_size: int) -> Future:
        """A Future of an OrtForward, or of None when anything fails (the caller stays on torch)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="onnx-prepare")
        return self._pool.submit(self._prepare, module, model, source, input_size)

    @staticmethod
    def _prepare(module: nn.Module, model: str, source: str, input_size: int) -> OrtForward | None:
        path = cache_file(model, source, input_size)
        try:
            if not path.is_file():
                export(module, path, input_size)
            return OrtForward(path, torch.get_num_threads())
        except Exception as exc:  # noqa: BLE001 - an optional speed-up: never an error for the user
            log.warning("ONNX Runtime not used for %s: %s: %s", model, type(exc).__name__, str(exc)[:200])
            return None

    def close(self) -> None:
        """Cancel what has not started; an export under way finishes on its own (atomic write)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
