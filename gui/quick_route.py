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

import contextlib
import dataclasses
import os
import threading
from concurrent.futures import Future

from gui.engine_worker import JobContext

TOPK = 5  # answers per photo card; fewer when the model has fewer classes (a small fine-tuned bundle)

QUICK_HOLD_MS = 5_000  # torch starts loading at the latest this long after it was asked for
OFF_VALUES = {"0", "false", "no", "off"}


def enabled() -> bool:
    """The route is on unless ONNX Runtime is turned off (``CONVNET_STUDIO_ONNX=0``)."""
    return os.environ.get("CONVNET_STUDIO_ONNX", "").strip().lower() not in OFF_VALUES


_prewarmed: Future | None = None  # of a QuickEngine whose session for the launch model is open (or None)
PREWARM_WAIT_S = 30
HEAD_START_WAIT_S = 0.5  # at launch the window's imports wait this long at most for the route's (~0.2 s)
HEAD_START_PHOTOS = 8  # photos named at launch that the prewarm thread classifies itself (one batch)


def prewarm(model: str, weights: str = "default", *, photos: tuple[str, ...] = (), precision: str = "auto",
            head_start_s: float = 0.0) -> None:
    """Launched with photos: import the route and open ``model``'s session on a thread of its own now, while
    the window is being built (ONNX Runtime builds a session without holding the GIL). The quick thread's
    engine is then this one; ``discard_prewarm`` releases it if it was never used.

    ``photos`` (the image files named at launch): the same thread classifies the first of them too, decoding
    while the session opens; ``quick_job`` hands those answers over (``take_head_start``) when it is asked for
    the same files, unchanged, at the same precision."""
    global _prewarmed
    if _prewarmed is not None or weights == "none" or not enabled():
        return
    future: Future = Future()
    imported = threading.Event()

    def work() -> None:
        try:
            from core.quick import QuickEngine, find  # noqa: PLC0415 - lazy: numpy, Pillow, onnxruntime

            engine = QuickEngine()
            found = find(model, weights)
            imported.set()
            if found is not None:
                with contextlib.suppress(Exception):  # only a head start: quick_job meets the failure and declines
                    _head_start(engine, found, photos, precision)
            future.set_result(engine)
        except BaseException as exc:  # noqa: BLE001 - handed to whoever takes the engine
            future.set_exception(exc)
        finally:
            imported.set()

    _prewarmed = future
    threading.Thread(target=work, name="quick-prewarm", daemon=True).start()
    if head_start_s > 0:  # let the route import alone (two threads importing share one GIL: both crawl)
        imported.wait(head_start_s)


def _head_start(engine, found, photos: tuple[str, ...], precision: str) -> None:
    """Open ``found``'s session; with ``photos``, classify the first image files among them on the way."""
    from core.images import IMAGE_EXTENSIONS  # noqa: PLC0415 - already imported by core.quick
    from core.quick import file_key  # noqa: PLC0415 - lazy, as above

    files = [p for p in photos if os.path.splitext(p)[1].lower() in IMAGE_EXTENSIONS and os.path.isfile(p)]
    files = files[:HEAD_START_PHOTOS]
    if not files:
        engine.session(found)
        return
    keys = {p: file_key(p) for p in files}
    answers = engine.classify(files, model=found, topk=min(TOPK, found.num_classes), precision=precision)
    engine.head_start = {(found.onnx, found.source, precision, p, keys[p]): a for p, a in zip(files, answers)}


def take_head_start(engine, found, precision: str, paths: list) -> dict:
    """path -> the prewarm's answer for it, for the photos it classified that are unchanged since (used once)."""
    stored = getattr(engine, "head_start", None)
    if not stored:
        return {}
    from core.quick import file_key  # noqa: PLC0415 - lazy: this runs on the quick thread, which has imported it

    engine.head_start = None
    out = {}
    for path in paths:
        answer = stored.get((found.onnx, found.source, precision, path, file_key(path)))
        if answer is not None:
            out[path] = dataclasses.replace(answer, path=path)
    return out


def prewarm_launch(args: list[str]) -> None:
    """``main.py PHOTO...``: ``prewarm`` the remembered model, and classify the photos named, before the
    window's modules are even imported (they take ~0.3 s). Options, ``--help`` or no photos: nothing."""
    photos = tuple(os.path.abspath(os.path.expanduser(a)) for a in args if a and not a.startswith("-"))
    if not photos or any(a in ("-h", "--help") for a in args):
        return
    from gui.settings import Settings  # noqa: PLC0415 - QtCore only

    settings = Settings()
    prewarm(settings.model, photos=photos, precision=settings.precision, head_start_s=HEAD_START_WAIT_S)


def _take_prewarmed():
    global _prewarmed
    future, _prewarmed = _prewarmed, None
    if future is None:
        return None
    try:
        return future.result(timeout=PREWARM_WAIT_S)
    except Exception:  # noqa: BLE001 - a failed head start: make the engine afresh
        return None


def discard_prewarm() -> None:
    """At shutdown: close a prewarmed engine nobody took (waits for it to be made, at most 30 s)."""
    engine = _take_prewarmed()
    if engine is not None:
        engine.close()


def quick_engine(_device: str, **_options):
    """The quick thread's engine (``EngineWorker`` factory): the prewarmed one, else made on first use there."""
    engine = _take_prewarmed()
    if engine is not None:
        return engine
    from core.quick import QuickEngine  # noqa: PLC0415 - lazy: numpy, Pillow and onnxruntime wait for a request

    return QuickEngine()


def quick_job(paths: list, model: str, weights: str, batch_size: int, ctx: JobContext, *,
              precision: str = "auto") -> None:
    """Classify ``paths`` with ``model``'s ONNX export, or answer ``quickDeclined`` when it has none."""
    from core import quick  # noqa: PLC0415 - lazy: numpy and Pillow, on the quick thread

    found = quick.find(model, weights)
    if found is None:
        ctx.emit("quickDeclined")  # not final: the client hands the request to torch before this one retires
        return
    if not paths or ctx.cancel.is_set():
        return
    ready = take_head_start(ctx.engine, found, precision, paths)  # classified at launch, before the window
    for prediction in ready.values():
        ctx.emit("predicted", prediction)
    paths = [p for p in paths if p not in ready]
    if not paths:
        return
    ctx.emit("batchStarted", paths[:batch_size])
    stream = ctx.engine.classify_iter(paths, model=found, topk=min(TOPK, found.num_classes), batch_size=batch_size,
                                      cancel=ctx.cancel, precision=precision)
    for done, prediction in enumerate(stream, start=1):
        ctx.emit("predicted", prediction)
        if done % batch_size == 0 and done < len(paths) and not ctx.cancel.is_set():
            ctx.emit("batchStarted", paths[done : done + batch_size])


def warm_job(model: str, weights: str, ctx: JobContext) -> None:
    """Import the route and open ``model``'s session while the photos are still being collected."""
    from core import quick  # noqa: PLC0415 - lazy: numpy and Pillow, on the quick thread

    found = quick.find(model, weights)
    if found is not None and not ctx.cancel.is_set():
        try:
            ctx.engine.session(found)
        except Exception:  # noqa: BLE001 - only a head start: quick_job meets the same failure and declines
            return


def close_job(ctx: JobContext) -> None:
    """Drop the quick engine's sessions (the torch engine has taken over)."""
    if ctx.has_engine:
        ctx.engine.close()
