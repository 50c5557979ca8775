"""Optional ONNX Runtime forward for CPU classification (the ``onnx`` extra).

On the CPU, ONNX Runtime runs ResNet-50 1.35x (batch 1) to 1.4x (batch 8)
faster than our eager forward, with the same top-5 (BENCHMARKS.md,
"Alternative runtimes"). Its first-use cost (ONNX export ~3 s, session ~0.3 s)
never sits on the path of a model switch or a prediction: after a model loads,
a single background thread exports it once into the user cache (keyed by model,
weights file and torch version; atomic writes) and opens a session; until that
session is ready, and whenever anything fails, the engine runs the torch
module as before. Only ``classify`` uses it: explain and compare keep the
torch module. ``CONVNET_STUDIO_ONNX=0`` turns it off. ``OrtForward.variant`` runs
the int8 variant beside the export instead where its verdict accepted it
(``core.quantize``; precision fp32 | int8 | auto).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib.util
import logging
import os
import subprocess
import sys
import threading
from concurrent.futures import Future
from pathlib import Path

import torch
from torch import nn

from core import paths, quantize, quick, weights
from core.fastprep import Numbers
from core.io import atomic_path, atomic_write_json
from core.meta import build_on_meta
from core.models import get_spec
from core.zoo import ModelSpec

try:  # the TorchScript-based exporter, see _legacy_export
    from torch.onnx._internal.torchscript_exporter.utils import export as _torchscript_export
except ImportError:  # a torch that moved it
    _torchscript_export = None

log = logging.getLogger(__name__)
ENV = "CONVNET_STUDIO_ONNX"
OPSET = 17


def enabled() -> bool:
    """True when onnxruntime and onnx are installed and the user has not turned this off."""
    if os.environ.get(ENV, "").strip().lower() in {"0", "false", "no", "off"}:
        return False
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


def cache_dir() -> Path:
    return paths.onnx_cache_dir()


def cache_file(model: str, source: str, input_size: int) -> Path:
    """Where the export of ``model`` with weights ``source`` (a path@mtime key, or 'none') lives."""
    key = hashlib.sha256(f"{model}|{source}|{input_size}|{torch.__version__}|{OPSET}".encode()).hexdigest()[:20]
    return cache_dir() / f"{model}-{key}.onnx"


class OrtForward:
    """``logits = runner(batch)`` for a float32 NCHW CPU batch, through one ORT session."""

    def __init__(self, path: Path, threads: int) -> None:
        # no spinning (the cores are left to decoding); ORT's optimized graph is saved beside the export
        self.session = quick.open_session(path, threads)
        self.input = self.session.get_inputs()[0].name
        self.path = path
        self.threads = threads
        self.runtime = quantize.RUNTIME_FP32  # Prediction.runtime of what this runs
        self._int8: tuple[str, OrtForward | None] | None = None  # (int8 file key, its runner or None: failed)

    def variant(self, precision: str) -> OrtForward:
        """The runner for ``precision`` (fp32 | int8 | auto, see ``core.quantize.pick``): this one, or a
        cached runner on the int8 file beside this export when its verdict accepted it.

        Picked again on every call (a small JSON read), so a new verdict or a new int8 file is seen at the
        next batch. An int8 file ONNX Runtime cannot open means fp32 (logged once), never an error.
        """
        path, runtime, _ = quantize.pick(self.path, precision)
        if runtime != quantize.RUNTIME_INT8:
            return self
        key = quantize.file_key(path)
        if self._int8 is None or self._int8[0] != key:
            self._int8 = (key, self._open_int8(path))
        return self._int8[1] or self

    def int8_failed(self) -> bool:
        """True when the int8 file now beside this export was tried and could not be opened."""
        return (self._int8 is not None and self._int8[1] is None
                and self._int8[0] == quantize.file_key(quantize.int8_path(self.path)))

    def _open_int8(self, path: Path) -> OrtForward | None:
        try:
            runner = OrtForward(path, self.threads)
        except Exception as exc:  # noqa: BLE001 - an optional speed-up: fp32 runs instead
            log.warning("int8 variant not used, fp32 kept: %s: %s", path.name, str(exc)[:200])
            return None
        runner.runtime = quantize.RUNTIME_INT8
        return runner

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        array = batch.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(self.session.run(None, {self.input: array})[0])


def export(module: nn.Module, path: Path, input_size: int) -> Path:
    """Export a copy of ``module`` (batch dimension dynamic) to ``path`` atomically."""
    model = copy.deepcopy(module).to("cpu", memory_format=torch.contiguous_format).eval()
    example = torch.zeros(2, 3, input_size, input_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".export") as tmp, torch.no_grad():
        _legacy_export()(model, (example,), str(tmp), input_names=["image"], output_names=["logits"],
                         dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, opset_version=OPSET)
    return path


def _legacy_export():
    """The TorchScript-based exporter: ~3 s for ResNet-50 and no onnxscript needed.

    Called directly because ``torch.onnx.export(dynamo=False)`` only adds a
    DeprecationWarning in front of it, and silencing that with
    ``warnings.catch_warnings`` from a background thread would swap the whole
    process's warning filters under the other threads.
    """
    if _torchscript_export is None:  # a torch that moved it: the public door, warning and all
        return functools.partial(torch.onnx.export, dynamo=False)
    return _torchscript_export


EXPORT_TIMEOUT_S = 600


def export_in_child(weights_file: Path, model: str, path: Path, input_size: int) -> Path:
    """``export`` of ``model`` with ``weights_file`` in a separate process (own GIL, one thread, niced).

    The child loads the same file the engine loaded, through the same checks
    (``weights_only``, finite, fits); nothing is serialised in this process, so
    the GIL stays free for the window and the classification.
    """
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "core.onnx_cpu", model, str(weights_file), str(input_size),
                           str(path)], capture_output=True, text=True, timeout=EXPORT_TIMEOUT_S, env=env, cwd=root)
    if done.returncode != 0:
        raise RuntimeError(f"the export process exited {done.returncode}: {done.stderr.strip()[-400:]}")
    return path


def _child(argv: list[str]) -> int:
    """In the child: build ``model`` on the meta device, load the weights file into it, export."""
    model, weights_file, input_size, out = argv
    torch.set_num_threads(1)
    if hasattr(os, "nice"):
        os.nice(10)  # background work: the window and the classification in the parent come first
    spec = get_spec(model)
    module = weights.load_into(build_on_meta(spec), weights.load_state_dict_file(Path(weights_file)), spec)
    export(module.eval(), Path(out), int(input_size))
    return 0


def weights_kind(spec: ModelSpec, weights: str) -> str:
    """What the engine loaded: the registry's default file, a saved bundle's, or a file named explicitly."""
    if weights != "default":
        return quick.KIND_FILE
    return quick.KIND_BUNDLE if spec.local_weights is not None else quick.KIND_REGISTRY


def manifest(spec: ModelSpec, weights: str, weights_file: Path, source: str, onnx_path: Path) -> dict:
    """Everything ``core.quick`` needs to use the export at ``onnx_path`` without torch (its sidecar)."""
    kind = weights_kind(spec, weights)
    names = [spec.name] if kind == quick.KIND_BUNDLE else [spec.name, spec.display_name]
    if kind == quick.KIND_BUNDLE:
        names.append(str(spec.local_weights.expanduser().resolve().parent))
    return {
        "format": quick.MANIFEST_FORMAT, "version": quick.MANIFEST_VERSION,
        "model": spec.name, "display_name": spec.display_name, "names": list(dict.fromkeys(names)), "kind": kind,
        "weights": str(weights_file.expanduser().resolve()), "weights_key": source,
        "weights_file_name": spec.weights_file if kind == quick.KIND_REGISTRY else None,
        "input_size": spec.input_size, "labels": list(spec.categories),
        "preprocess": Numbers.of(spec.preprocess).to_json(), "onnx": onnx_path.name,
        "torch": torch.__version__, "opset": OPSET,
        # a saved model's labels and preprocessing live in its meta.json: a changed one is another model
        "meta_key": quick.file_key(spec.local_weights.parent / "meta.json") if kind == quick.KIND_BUNDLE else None,
    }


def write_manifest(onnx_path: Path, data: dict) -> None:
    """Write the sidecar (atomic) unless the same one is already there."""
    target = quick.manifest_path(onnx_path)
    if quick.read_manifest(target) == data:
        return
    atomic_write_json(target, data)


class Preparer:
    """Makes ``OrtForward`` runners in the background, one model at a time.

    Daemon threads, not a pool: a command-line run must not wait at exit for
    an export it will not use. The export is a child process, which finishes
    on its own (atomic write into the cache) so the next run finds it ready.
    """

    def __init__(self) -> None:
        self._one_at_a_time = threading.Lock()
        self._session = threading.Lock()  # held while ORT builds a session: close() waits for that (< 1 s)
        self._closed = threading.Event()

    def request(self, spec: ModelSpec, weights: str, weights_file: Path, source: str) -> Future:
        """A Future of an OrtForward, or of None when anything fails (the caller stays on torch).

        ``weights`` is what the engine was asked for ("default" or a file), ``weights_file`` the file it
        loaded and ``source`` that file's key (path@mtime_ns@size): with ``spec`` they go into the
        export's manifest, which lets ``core.quick`` use the export before torch is imported.
        """
        future: Future = Future()

        def work() -> None:
            if not future.set_running_or_notify_cancel():
                return
            with self._one_at_a_time:
                runner = None if self._closed.is_set() else self._prepare(spec, weights, weights_file, source)
            future.set_result(runner)

        # (a daemon thread may be abandoned at exit while it waits for the export process, never while
        # native code builds a session: that aborts the interpreter's shutdown)

        threading.Thread(target=work, name=f"onnx-prepare-{spec.name}", daemon=True).start()
        return future

    def _prepare(self, spec: ModelSpec, weights: str, weights_file: Path, source: str) -> OrtForward | None:
        model, input_size = spec.name, spec.input_size
        path = cache_file(model, source, input_size)
        try:
            if not path.is_file():
                export_in_child(weights_file, model, path, input_size)
            write_manifest(path, manifest(spec, weights, weights_file, source, path))
            with self._session:
                return None if self._closed.is_set() else OrtForward(path, torch.get_num_threads())
        except Exception as exc:  # noqa: BLE001 - an optional speed-up: never an error for the user
            log.warning("ONNX Runtime not used for %s: %s: %s", model, type(exc).__name__, str(exc)[:200])
            return None

    def close(self) -> None:
        """Requests not yet started give None; a session being built is waited for (under a second); an
        export under way finishes on its own, in its process (atomic write into the cache)."""
        self._closed.set()
        with self._session:
            pass


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
