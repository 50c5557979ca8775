"""The Live view on a generated video: display fps, each model's fps and latency, lag, the GUI's longest stall.

Run: ``python -m benchmarks.live`` (offscreen; ``--write`` records it in BENCHMARKS.md, "Live view"). It
writes a 10 s, 25 fps video of scikit-image photos and sklearn digits (PyAV), plays it in a real
LiveWindow in split view (ResNet-18 and AlexNet, random init, CPU by default) and measures:

* display fps: frames drawn per second of playing;
* per model: results per second, median latency, frames dropped (replaced in its one-slot mailbox), and
  the lag from a content change (the first frame of a new scene drawn) to the first result on it;
* the longest gap between ticks of a 5 ms QTimer on the GUI thread, minus the period (goal: < 50 ms),
  from the first frame drawn to the end of the video.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer

from benchmarks.common import machine, spin_until, temporary_torch_home, write_section
from tests.support.video import digit_scenes, photo_scenes, write_video

GOAL_MS = 50.0
PERIOD_MS = 5
FPS = 25
MODELS = ("resnet18", "alexnet")


def write_test_video(path: Path, size: int = 224) -> list[tuple[float, float]]:
    """10 s: four photos of 1.5 s, then four digits of 1 s."""
    return write_video(path, photo_scenes(1.5) + digit_scenes(1.0, (0, 1, 2, 3)), fps=FPS, size=size)


def _lags(spans, drawn: dict[int, float], results: list[tuple[float, object]]) -> list[float]:
    """Per scene change: seconds from its first frame drawn to the first result on a frame of it."""
    lags = []
    for start, end in spans[1:]:
        first_drawn = [when for index, when in drawn.items() if start <= index / FPS < end]
        first_result = [when for when, r in results if start <= r.t < end]
        if first_drawn and first_result:
            lags.append(min(first_result) - min(first_drawn))
    return lags


def measure(models=MODELS, device: str = "cpu", size: int = 224) -> dict:
    from gui.app import create_app  # noqa: PLC0415 - lazy: after the offscreen platform and settings are set
    from gui.live.window import LiveWindow  # noqa: PLC0415 - as above

    with tempfile.TemporaryDirectory(prefix="cns-live-") as tmp, temporary_torch_home():
        work = Path(tmp)
        os.environ["CONVNET_STUDIO_SETTINGS"] = str(work / "settings.ini")
        video = work / "live.mp4"
        spans = write_test_video(video, size)
        app = create_app()
        window = LiveWindow(None, model=models[0], second_model=models[1], device=device)
        window.resize(1280, 800)
        window.show()
        window.set_split(True)
        # warm up: both models loaded before the video starts (first use is not what this measures)
        ready: set[str] = set()
        for pane in window.panes:
            pane.inference.modelReady.connect(lambda model, _u: ready.add(model))
        spin_until(lambda: len(ready) == len(models), 300)
        drawn: dict[int, float] = {}
        results = {pane: [] for pane in window.panes}
        gaps: list[float] = []
        clock = QElapsedTimer()
        probe = QTimer(interval=PERIOD_MS)
        probe.setTimerType(Qt.TimerType.PreciseTimer)
        probe.timeout.connect(lambda: (gaps.append(clock.nsecsElapsed() / 1e6), clock.restart()))

        def on_frame(frame) -> None:
            if not drawn:
                clock.start()
                probe.start()
            drawn.setdefault(frame.index, time.monotonic())

        window.frameShown.connect(on_frame)
        for pane in window.panes:
            pane.resultShown.connect(lambda r, pane=pane: results[pane].append((time.monotonic(), r)))
        ended: list[bool] = []
        window.source.ended.connect(lambda: ended.append(True))
        window.open_file(str(video))
        if not spin_until(lambda: bool(ended) or bool(window.error()), 120):
            raise SystemExit("the video did not end in 2 minutes")
        probe.stop()
        playing = max(drawn.values()) - min(drawn.values())
        out = {"device": device, "size": size, "frames": len(drawn), "seconds": playing,
               "display_fps": (len(drawn) - 1) / playing if playing > 0 else 0.0, "error": window.error(),
               "longest_stall_ms": max(gaps[1:]) - PERIOD_MS if len(gaps) > 1 else float("nan"), "models": []}
        for pane, got in results.items():
            times = [when for when, _r in got]
            lags = _lags(spans, drawn, got)
            out["models"].append({
                "model": pane.model, "results": len(got), "dropped": pane.inference.dropped,
                "fps": (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0,
                "latency_ms": statistics.median(r.latency_ms for _w, r in got) if got else float("nan"),
                "lag_ms": statistics.median(lags) * 1000 if lags else float("nan"),
                "max_lag_ms": max(lags) * 1000 if lags else float("nan")})
        window.close()
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents)
        return out


def report(result: dict, command: str) -> str:
    verdict = "meets" if result["longest_stall_ms"] < GOAL_MS else "MISSES"
    rows = "\n".join(
        f"| {m['model']} | {m['fps']:.1f} | {m['latency_ms']:.0f} ms | {m['results']} | {m['dropped']} | "
        f"{m['lag_ms']:.0f} ms (max {m['max_lag_ms']:.0f} ms) | {m['lag_ms'] / m['latency_ms']:.1f} |"
        for m in result["models"])
    return (
        "## Live view\n\n"
        f"A generated {result['seconds']:.1f} s video ({result['frames']} frames drawn, {FPS} fps, "
        f"{result['size']}x{result['size']}: four photos, then four digits) played in the Live window's split view, "
        f"both models random-init on {result['device']}. Display: **{result['display_fps']:.1f} fps**; longest "
        f"GUI stall **{result['longest_stall_ms']:.0f} ms** ({verdict} the {GOAL_MS:.0f} ms goal).\n\n"
        "| model | model fps | median latency | frames classified | frames dropped | lag to a content change "
        "(median) | median lag / latency |\n"
        "|---|---|---|---|---|---|---|\n"
        f"{rows}\n\n"
        "Lag: from the first frame of a new scene drawn to the first result on a frame of that scene (7 changes). "
        "Because older frames are dropped, never queued, it is at most the frame in flight plus the newest one: "
        "about two model latencies (more at the maximum when both models share few CPU cores).\n\n"
        f"Machine: {machine()}. Command: `{command}`.\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.live", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=224, help="video side in pixels")
    parser.add_argument("--write", action="store_true", help='record the result in BENCHMARKS.md ("Live view")')
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["CONVNET_STUDIO_OFFLINE"] = "1"
    result = measure(device=args.device, size=args.size)
    if result["error"]:
        raise SystemExit(f"the video failed: {result['error']}")
    text = report(result, "python -m benchmarks.live" + (f" --device {args.device}" if args.device != "cpu" else ""))
    print(text)
    if args.write:
        write_section("live", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
