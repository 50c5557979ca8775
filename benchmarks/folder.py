"""Folder throughput (ours against a naive loop), the decode/thread tuning, and a profile of ours.

Run: ``python -m benchmarks.folder [--photos N] [--reps R]`` (rewrites its
sections of BENCHMARKS.md unless ``--no-write``). The folder is a camera roll
made by ``tests.support.photos.write_mixed_photos``: 12 and 8 MP phone photos,
downloads and screenshots, as JPEGs with sensor-like noise.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import torch
import torchvision
from PIL import Image

from benchmarks.common import interleaved, machine, median_ms, temporary_torch_home, write_random_weights, write_section
from core.inference import InferenceEngine
from tests.support.photos import write_mixed_photos

MODEL = "resnet50"
GOAL = 1.7  # ours at least 1.7x the naive loop's throughput
BATCH_SIZE = 8


def naive_loop(paths: list[Path]):
    """What a user would write: open, convert, the weights' transforms, one forward per photo."""
    weights = torchvision.models.ResNet50_Weights.DEFAULT
    model = torchvision.models.resnet50(weights=weights).eval()  # loads the cached file
    transform = weights.transforms()

    def run() -> list[int]:
        out = []
        for path in paths:
            image = Image.open(path).convert("RGB")
            with torch.no_grad():
                out.append(int(model(transform(image)[None]).argmax()))
        return out

    return run


def ours_loop(engine: InferenceEngine, paths: list[Path], batch_size: int = BATCH_SIZE):
    def run() -> list[int]:
        return [p.topk[0].index for p in engine.classify_iter(paths, model=MODEL, batch_size=batch_size)]

    return run


def mix_text(paths: list[Path]) -> str:
    counts = Counter(p.stem.split("_", 1)[1] for p in paths)
    def pixels(size: str) -> int:
        width, height = size.split("x")
        return int(width) * int(height)

    sizes = [f"{n} x {size}" for size, n in sorted(counts.items(), key=lambda kv: -pixels(kv[0]))]
    return ", ".join(sizes)


def throughput(paths: list[Path], reps: int, decode_workers: int | None = None) -> tuple[str, dict]:
    engine = InferenceEngine(device="cpu", decode_workers=decode_workers)
    engine.load(MODEL)
    backend = engine.backend(MODEL, wait=None)
    naive, ours = naive_loop(paths), ours_loop(engine, paths)
    agree = sum(a == b for a, b in zip(naive(), ours()))
    times = interleaved({"naive": naive, "ours": ours}, reps=reps, warmup=0)
    engine.close()
    naive_s, ours_s = median_ms(times["naive"]) / 1000, median_ms(times["ours"]) / 1000
    n = len(paths)
    ratio = naive_s / ours_s
    verdict = "meets" if ratio >= GOAL else "MISSES"
    table = (
        "| pipeline | median s | photos/s |\n|---|---|---|\n"
        "| naive loop: PIL open + convert + `weights.transforms()` + one forward per photo "
        f"| {naive_s:.1f} | {n / naive_s:.2f} |\n"
        f"| ours: `InferenceEngine.classify_iter` (batch {BATCH_SIZE}, decode ahead on {engine._decode_workers} "
        f"threads, draft JPEG, {'ONNX Runtime' if backend == 'onnxruntime' else 'eager torch'} forward) "
        f"| {ours_s:.1f} | {n / ours_s:.2f} |\n"
        f"| **throughput ours / naive** | | **{ratio:.2f}x** (goal >= {GOAL}x: {verdict}) |\n\n"
        f"Top-1 agreement between the two on these {n} photos: {agree}/{n} "
        "(random weights; draft decoding may flip near-ties).\n"
    )
    return table, {"naive_s": naive_s, "ours_s": ours_s, "ratio": ratio, "backend": backend}


def tuning(paths: list[Path], reps: int) -> str:
    """Photos/s of ours for decode workers x batch size (torch keeps its default intra-op threads)."""
    configs = [(w, b) for w in (1, 2, 3) for b in (4, 8, 16)]
    engines = {w: InferenceEngine(device="cpu", decode_workers=w) for w in (1, 2, 3)}
    for engine in engines.values():
        engine.load(MODEL)
        engine.backend(MODEL, wait=None)
    runs = {f"{w}/{b}": ours_loop(engines[w], paths, b) for w, b in configs}
    times = interleaved(runs, reps=reps, warmup=0)
    for engine in engines.values():
        engine.close()
    rows = "".join(f"| {w} | {b} | {len(paths) / (median_ms(times[f'{w}/{b}']) / 1000):.2f} |\n" for w, b in configs)
    return (f"Tuning on {len(paths)} of the photos (torch intra-op threads: {torch.get_num_threads()}; "
            f"medians of {reps}):\n\n| decode workers | batch size | photos/s |\n|---|---|---|\n" + rows)


def profile(paths: list[Path]) -> str:
    """cProfile of ours over ``paths``: the engine's thread and every decode thread, merged."""
    engine = InferenceEngine(device="cpu")
    engine.load(MODEL)
    engine.backend(MODEL, wait=None)
    list(engine.classify_iter(paths[:BATCH_SIZE], model=MODEL))  # warm: pool up, oneDNN primitives made
    local = threading.local()
    profiles: list[cProfile.Profile] = []
    decode = engine._decode

    def profiled_decode(path, spec):
        if not hasattr(local, "profile"):
            local.profile = cProfile.Profile()
            profiles.append(local.profile)
        return local.profile.runcall(decode, path, spec)

    engine._decode = profiled_decode  # type: ignore[method-assign]
    main = cProfile.Profile()
    start = time.perf_counter()
    predictions = main.runcall(lambda: list(engine.classify_iter(paths, model=MODEL, batch_size=BATCH_SIZE)))
    wall = time.perf_counter() - start
    engine.close()
    main_stats = pstats.Stats(main)
    forward = _cumulative(main_stats, "_logits")
    waiting = _cumulative(main_stats, "result")
    decode_s = sum(p.decode_ms for p in predictions) / 1000
    stats = pstats.Stats(main)
    for p in profiles:
        stats.add(p)
    return (
        f"One pass over {len(paths)} photos under cProfile: {wall:.1f} s wall. Engine thread: forward "
        f"{forward:.1f} s ({forward / wall:.0%}), waiting for decodes {waiting:.1f} s ({waiting / wall:.0%}), the rest "
        f"(batching, softmax/top-k, Prediction records) {max(0.0, wall - forward - waiting):.1f} s. Decode threads: "
        f"{decode_s:.1f} s of decoding + preprocessing in all ({decode_s / wall:.0%} of wall, "
        "overlapping the forward).\n\n"
        "Top functions by own time, all threads:\n\n| function | calls | own s | cumulative s |\n|---|---|---|---|\n"
        + _top(stats, 10)
    )


def _cumulative(stats: pstats.Stats, name: str) -> float:
    return max((v[3] for k, v in stats.stats.items() if k[2] == name), default=0.0)  # type: ignore[attr-defined]


def _top(stats: pstats.Stats, n: int) -> str:
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:n]  # type: ignore[attr-defined]
    out = io.StringIO()
    for (file, line, func), (_, calls, own, cum, _) in rows:
        where = f"{Path(file).name}:{line} " if line else ""
        out.write(f"| `{where}{func.strip('<>')}` | {calls} | {own:.2f} | {cum:.2f} |\n")
    return out.getvalue()


def run(photos: int, reps: int, *, write: bool, tune: bool = True) -> dict:
    with temporary_torch_home(), tempfile.TemporaryDirectory(prefix="cns-folder-") as tmp:
        write_random_weights(MODEL)
        paths = write_mixed_photos(Path(tmp), photos)
        command = f"python -m benchmarks.folder --photos {photos} --reps {reps}"
        header = (f"Machine: {machine()}.\nCommand: `{command}`; medians of {reps} interleaved passes over "
                  f"{photos} photos ({mix_text(paths)}; {photos} rather than 500 keeps the suite under 15 minutes "
                  f"on 2 cores, with the same mix).\n\n")
        table, figures = throughput(paths, reps)
        text = header + table
        if tune:
            text += "\n" + tuning(paths[: max(BATCH_SIZE * 4, photos // 3)], max(1, reps - 1))
        prof = f"Machine: {machine()}.\nCommand: `{command}`.\n\n" + profile(paths[: max(BATCH_SIZE * 2, photos // 2)])
    print(text, prof, sep="\n")
    if write:
        suffix = "-onnx" if figures["backend"] == "onnxruntime" else ""
        write_section("folder-throughput" + suffix, text)
        write_section("folder-profile" + suffix, prof)
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=120)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--no-tune", action="store_true", help="skip the decode-workers x batch-size table")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    run(args.photos, args.reps, write=not args.no_write, tune=not args.no_tune)


if __name__ == "__main__":
    main()
