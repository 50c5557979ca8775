"""The window's torch-free first predictions (issue 18): ONNX Runtime before torch has loaded.

Importing torch and torchvision takes seconds; a model that has run before
has an ONNX export in the user cache (``core.onnx_cpu``) with a sidecar that
says what it answers to. Until the torch engine exists, ``InferenceClient``
sends classify requests here first: a second ``EngineWorker`` whose engine is
a ``core.quick.QuickEngine`` (numpy, Pillow and ONNX Runtime: ~0.3 s to
import). ``quick_job`` asks ``core.quick.find`` for the model; when there is
no usable export it answers ``quickDeclined`` and the client sends the same
request to the torch engine, so the labels are the same either way.

Torch waits for the first quick request (``InferenceClient.hold_loading``):
on two cores, importing it next to the first prediction would slow both.
Once the torch engine is ready the quick engine is closed and every request
goes to torch (which runs ONNX Runtime itself once its session is ready).

Torch-free, like everything the window imports before its first paint.
"""

from __future__ import annotations

import os

from gui.engine_worker import JobContext

QUICK_HOLD_MS = 5_000  # torch starts loading at the latest this long after it was asked for
OFF_VALUES = {"0", "false", "no", "off"}


def enabled() -> bool:
    """The route is on unless ONNX Runtime is turned off (``CONVNET_STUDIO_ONNX=0``)."""
    return os.environ.get("CONVNET_STUDIO_ONNX", "").strip().lower() not in OFF_VALUES


def quick_engine(_device: str, **_options):
    """The quick thread's engine (``EngineWorker`` factory): made on the first request, on that thread."""
    from core.quick import QuickEngine  # noqa: PLC0415 - lazy: numpy, Pillow and onnxruntime wait for a request

    return QuickEngine()


def quick_job(paths: list, model: str, weights: str, batch_size: int, ctx: JobContext) -> None:
    """Classify ``paths`` with ``model``'s ONNX export, or answer ``quickDeclined`` when it has none."""
    from core import quick  # noqa: PLC0415 - lazy: numpy and Pillow, on the quick thread

    found = quick.find(model, weights)
    if found is None:
        ctx.emit("quickDeclined")  # not final: the client hands the request to torch before this one retires
        return
    if not paths or ctx.cancel.is_set():
        return
    ctx.emit("batchStarted", paths[:batch_size])
    stream = ctx.engine.classify_iter(paths, model=found, batch_size=batch_size, cancel=ctx.cancel)
    for done, prediction in enumerate(stream, start=1):
        ctx.emit("predicted", prediction)
        if done % batch_size == 0 and done < len(paths) and not ctx.cancel.is_set():
            ctx.emit("batchStarted", paths[done : done + batch_size])


def close_job(ctx: JobContext) -> None:
    """Drop the quick engine's sessions (the torch engine has taken over)."""
    if ctx.has_engine:
        ctx.engine.close()
