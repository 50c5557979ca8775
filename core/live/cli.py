"""``python main.py live SOURCE``: classify a video file or a camera frame by frame, headless.

A file: every ``--every``-th frame is classified, as fast as the model goes (nothing is dropped).
A camera (``camera:N``, ``/dev/videoN``): a reader thread puts each frame into a ``LatestFrame``
and the model takes the newest whenever it is free; frames that arrive meanwhile are dropped and
counted. ``--json`` prints JSON Lines, one object per classified frame (``frame``, ``t``, ``topk``,
``ms``); text mode one line per frame. The run ends with the file, or on Ctrl+C / SIGTERM, with a
summary on stderr (frames read, classified, dropped, model fps, mean latency) and exit 0; a video
that cannot be read (or fails part way) exits 1 with its message, an unknown model 2. Registered into
core.cli's parser, so nothing here imports torch, numpy, Pillow or PyAV at module level.
"""

from __future__ import annotations

import argparse
import threading
import time
from dataclasses import dataclass, field

from core.cli_common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    check_device,
    check_model,
    emit,
    emit_json,
    eprint,
    resolve_topk,
    weights_failure,
    whole_number,
)
from core.defaults import DEFAULT_MODEL
from core.errors import StudioError
from core.training.cli import DEVICES

__all__ = ["register", "cmd_live"]

READER_JOIN_S = 5.0  # how long the end of a camera run waits for its reader thread


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("live", help="classify a video file or a camera frame by frame")
    p.add_argument("source", metavar="SOURCE",
                   help="a video file (mp4, webm, mkv, avi, mov, gif...) or a camera: camera:N or /dev/videoN")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"registry name or saved model (default: {DEFAULT_MODEL})")
    p.add_argument("--weights", default="default", help="default | none | FILE (default: the pretrained weights)")
    p.add_argument("--every", type=whole_number, default=1,
                   help="a file: classify every Nth frame (default: 1, every frame); a camera: always the newest")
    p.add_argument("--topk", type=whole_number, default=None,
                   help="labels per frame (default: 5, or the number of classes if fewer)")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--json", action="store_true", help="print JSON Lines: one object per classified frame")
    p.set_defaults(func=cmd_live)


@dataclass
class _Tally:
    read: int = 0
    classified: int = 0
    dropped: int = 0
    latencies: list[float] = field(default_factory=list)
    started: float | None = None  # time.monotonic() of the first classification
    ended: float | None = None

    def add(self, result) -> None:
        self.classified += 1
        self.latencies.append(result.latency_ms)
        self.ended = time.monotonic()

    def summary(self, source: str, *, every: int, camera: bool) -> str:
        span = (self.ended or 0) - (self.started or 0)
        fps = self.classified / span if self.started is not None and span > 0 else 0.0
        mean = sum(self.latencies) / len(self.latencies) if self.latencies else 0.0
        skipped = "" if camera or every == 1 else f", {self.read - self.classified} skipped (--every {every})"
        return (f"live: {source}: {self.read} frames read, {self.classified} classified, {self.dropped} dropped"
                f"{skipped}; model {fps:.1f} fps, mean latency {mean:.1f} ms")


def cmd_live(args: argparse.Namespace) -> int:
    """Run ``live``; its own failures print one JSON line under ``--json`` (the stream stays JSON Lines)."""
    try:
        return _live(args)
    except StudioError as exc:
        code = EXIT_USAGE if isinstance(exc, UsageError) else EXIT_FAILED
        eprint(f"error: {exc}")
        if args.json:
            emit_json({"ok": False, "error": str(exc), "exit_code": code}, lines=True)
        return code


def _live(args: argparse.Namespace) -> int:
    from core.inference import InferenceEngine  # noqa: PLC0415 - lazy: torch (2-5 s) stays out of CLI start-up
    from core.live.predict import LivePredictor  # noqa: PLC0415 - lazy: torch, numpy, Pillow
    from core.live.video import is_camera, open_source  # noqa: PLC0415 - lazy: numpy; PyAV is the live extra

    spec = check_model(args.model)
    topk = resolve_topk(args.topk, spec.num_classes, spec.name)
    if args.every < 1:
        raise UsageError(f"--every must be 1 or more (classify every Nth frame), got {args.every}")
    check_device(args.device)
    camera = is_camera(args.source)
    source = open_source(args.source)
    tally = _Tally()
    with source, InferenceEngine(device=args.device) as engine:
        predictor = LivePredictor(engine, spec.name, weights=args.weights, topk=topk)
        try:
            info = predictor.load()
        except (StudioError, RuntimeError, MemoryError, OSError) as exc:
            raise StudioError(weights_failure(spec, args.weights, exc)) from None
        if info.untrained:
            eprint(f"note: {spec.name} runs with untrained (random) weights: its predictions mean nothing")
        failure: StudioError | None = None
        try:
            run = _run_camera if camera else _run_file
            run(source, predictor, tally, args)
        except KeyboardInterrupt:
            eprint("interrupted")
        except StudioError as exc:  # the frames before it were printed; summary first, then the error
            failure = exc
    eprint(tally.summary(args.source, every=args.every, camera=camera))
    if failure is not None:
        raise failure
    return EXIT_OK


def _show(result, tally: _Tally, args: argparse.Namespace) -> None:
    tally.add(result)
    if args.json:
        emit_json(result.to_json(), lines=True)
        return
    labels = ", ".join(f"{label} {prob:.1%}" for label, prob, _ in result.topk)
    emit(f"frame {result.frame_index:>6}  {result.t:8.2f} s  {labels}  ({result.latency_ms:.0f} ms)")


def _run_file(source, predictor, tally: _Tally, args: argparse.Namespace) -> None:
    for frame in source:
        tally.read += 1
        if frame.index % args.every:
            continue
        if tally.started is None:
            tally.started = time.monotonic()
        _show(predictor.predict(frame), tally, args)


def _run_camera(source, predictor, tally: _Tally, args: argparse.Namespace) -> None:
    from core.live.frames import LatestFrame  # noqa: PLC0415 - lazy: numpy stays out of CLI start-up

    box = LatestFrame()
    errors: list[StudioError] = []

    def read() -> None:
        try:
            for frame in source:
                box.put(frame)
        except StudioError as exc:
            errors.append(exc)
        finally:
            box.close()

    reader = threading.Thread(target=read, name="live-reader", daemon=True)
    reader.start()
    try:
        while (frame := box.take()) is not None:
            if tally.started is None:
                tally.started = time.monotonic()
            _show(predictor.predict(frame), tally, args)
    finally:
        source.stop()
        box.close()
        reader.join(READER_JOIN_S)
        tally.read, tally.dropped = source.frames_read, box.dropped
    if errors:
        raise errors[0]
