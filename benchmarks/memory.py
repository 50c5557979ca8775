"""Peak memory while classifying a large folder: growth beyond the loaded model.

Run: ``python -m benchmarks.memory [--photos N]``. A child process loads the
model, classifies one batch (so oneDNN's primitives and the decode pool
exist), resets its high-water mark (``echo 5 > /proc/self/clear_refs``), then
streams the whole folder through ``classify_iter`` keeping only the small
``Prediction`` records, as the CLI and the GUI do. The figure is VmHWM after
minus VmRSS at the reset. ``ru_maxrss`` is not used: it is inherited across
fork+exec, so a child would report its parent's peak.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, machine, write_section

GOAL_BYTES = 2**30
MODEL = "resnet50"
SIZES = (((640, 480), 3), ((1024, 768), 3), ((1280, 960), 2), ((1600, 1200), 2), ((1200, 1600), 1))


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(folder: str, model: str) -> None:
    """In the child: load, warm, reset the high-water mark, stream the folder; print JSON."""
    from core.images import collect_images
    from core.inference import InferenceEngine

    paths = collect_images([folder]).images
    engine = InferenceEngine(device="cpu")
    engine.load(model)
    engine.backend(model, wait=None)  # ONNX Runtime's session (where installed) is part of the loaded model
    list(engine.classify_iter(paths[:8], model=model))
    Path("/proc/self/clear_refs").write_text("5")
    base = _status_kib("VmRSS")
    start = time.perf_counter()
    kept = [p for p in engine.classify_iter(iter(paths), model=model)]
    seconds = time.perf_counter() - start
    print(json.dumps({"photos": len(kept), "ok": sum(p.ok for p in kept), "base_kib": base,
                      "hwm_kib": _status_kib("VmHWM"), "end_kib": _status_kib("VmRSS"), "seconds": seconds,
                      "model_bytes": engine.cached_bytes()}))


def measure(photos: int, model: str = MODEL) -> dict:
    from benchmarks.common import temporary_torch_home, write_random_weights
    from tests.support.photos import write_mixed_photos

    with temporary_torch_home(), tempfile.TemporaryDirectory(prefix="cns-memory-") as tmp:
        write_random_weights(model)
        write_mixed_photos(Path(tmp) / "photos", photos, sizes=SIZES, variants=3)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        out = subprocess.run([sys.executable, "-m", "benchmarks.memory", "--child", str(Path(tmp) / "photos"),
                              "--model", model], capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(result: dict, command: str, model: str = MODEL) -> str:
    growth = (result["hwm_kib"] - result["base_kib"]) * 1024
    verdict = "meets" if growth < GOAL_BYTES else "MISSES"
    mib = 2**20
    return (
        f"Machine: {machine()}.\nCommand: `{command}`.\n\n"
        "| photos | model | time | RSS with model loaded | peak RSS while classifying | **peak growth** "
        "| RSS at the end |\n"
        "|---|---|---|---|---|---|---|\n"
        f"| {result['photos']} JPEGs, 640x480 to 1600x1200 ({result['ok']} classified) | {model} "
        f"({result['model_bytes'] / mib:.0f} MiB of weights) | {result['seconds']:.0f} s "
        f"| {result['base_kib'] / 1024:.0f} MiB "
        f"| {result['hwm_kib'] / 1024:.0f} MiB | **{growth / mib:.0f} MiB** | {result['end_kib'] / 1024:.0f} MiB |\n\n"
        f"Goal: peak growth beyond the loaded model < 1 GiB ({verdict} it). Decoding runs one batch ahead, "
        "so at most two batches of decoded images exist at any time; nothing else grows with the folder.\n"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=2000)
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--child", metavar="FOLDER", help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.model)
        return
    text = report(measure(args.photos, args.model), f"python -m benchmarks.memory --photos {args.photos}", args.model)
    print(text)
    if not args.no_write:
        write_section("memory", text)


if __name__ == "__main__":
    main()
