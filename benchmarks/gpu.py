"""CUDA paths: batch-1 latency (CUDA graphs + AMP), pre-decoded throughput, nvJPEG decode.

Run on a machine with an NVIDIA GPU: ``python -m benchmarks.gpu`` (rewrites
the ``gpu`` section of BENCHMARKS.md unless ``--no-write``). Without CUDA it
writes "not yet measured" rows with this command, and measures nothing.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from benchmarks.common import (
    interleaved,
    machine,
    median_ms,
    record_goal,
    temporary_torch_home,
    write_random_weights,
    write_section,
)

MODEL = "resnet50"
COMMAND = "python -m benchmarks.gpu"
ROWS = (
    ("batch-1 latency, one photo already decoded", "eager fp32, channels_last",
     "CUDA graph + AMP fp16 + channels_last (`cuda_graphs=True`)", "ours < 5 ms"),
    ("throughput, pre-decoded batches of 64", "eager fp32", "eager AMP fp16 + channels_last", ">= 3x"),
    ("decode + preprocess of 32 x 12 MP JPEGs", "Pillow draft decode on the CPU pool",
     "nvJPEG batch decode + tensor preprocess (`gpu_decode=True`)", "> 1x (used only where it wins)"),
)

TRAINING_NOTE = ("\nFine-tuning images per second with AMP + channels_last against fp32 eager (goal >= 2x): the "
                 "trainer turns both on for CUDA (`core/training/runtime.py`); not yet measured (no GPU here). "
                 "Correctness of these paths is tested on the CPU (`tests/core/test_fast_paths.py`).\n")


GOALS = (  # BENCHMARKS.md's summary: key, what, target
    ("gpu-latency", "4. GPU batch-1 latency, ResNet-50, CUDA graphs + AMP", "< 5 ms GPU time"),
    ("gpu-throughput", "4. GPU throughput, AMP + channels_last vs eager fp32", ">= 3x"),
    ("gpu-training", "4. GPU fine-tuning, AMP vs fp32", ">= 2x"),
)


def record_goals(figures: dict[str, tuple[str, bool]] | None) -> None:
    """The GPU rows of the summary: measured figures, or "not yet measured" (never an estimate)."""
    for key, what, target in GOALS:
        measured, meets = (figures or {}).get(key, ("not yet measured: no GPU lent to this machine", None))
        record_goal(key, what=what, goal=target, measured=measured, meets=meets, command=COMMAND)


def not_measured() -> str:
    rows = "".join(f"| {what} | {base} | {ours} | not yet measured (no GPU on this machine) | {goal} |\n"
                   for what, base, ours, goal in ROWS)
    return (f"Machine: {machine()}.\nCommand to run on a machine with a GPU: `{COMMAND}`.\n\n"
            "| path | baseline | ours | ratio | goal |\n|---|---|---|---|---|\n" + rows + TRAINING_NOTE)


def measure(reps: int) -> tuple[str, dict[str, tuple[str, bool]]]:
    from core.accel import CudaGraphForward, decode_jpegs
    from core.inference import InferenceEngine
    from core.zoo import get_spec
    from tests.support.photos import write_12mp_jpeg

    device = torch.device("cuda")
    spec = get_spec(MODEL)
    engine = InferenceEngine(device="cuda", channels_last=True)
    module, _, _ = engine.module(MODEL)
    one = engine.on_device(torch.randn(1, 3, 224, 224))
    graphs = CudaGraphForward(module, device)

    def sync(fn):
        def run():
            with torch.inference_mode():
                fn()
            torch.cuda.synchronize()
        return run

    latency = interleaved({"eager": sync(lambda: module(one)), "graph": sync(lambda: graphs(one))},
                          reps=reps * 10, warmup=3)
    big = engine.on_device(torch.randn(64, 3, 224, 224))

    def amp():
        with torch.autocast("cuda", dtype=torch.float16):
            module(big)

    batch = interleaved({"fp32": sync(lambda: module(big)), "amp": sync(amp)}, reps=reps, warmup=2)
    with tempfile.TemporaryDirectory() as tmp:
        first = write_12mp_jpeg(Path(tmp) / "a.jpg")
        paths = [str(first)] + [str(Path(tmp) / f"{i}.jpg") for i in range(1, 32)]
        for p in paths[1:]:
            Path(p).write_bytes(first.read_bytes())
        cpu = InferenceEngine(device="cpu")
        decode = interleaved({
            "cpu": lambda: [f.result() for f in cpu._submit(paths, spec)],
            "gpu": sync(lambda: decode_jpegs(paths, spec.preprocess, device, lambda p: cpu._decode(p, spec))),
        }, reps=reps, warmup=1)
        cpu.close()
    rows = []
    timings = ((latency, "eager", "graph"), (batch, "fp32", "amp"), (decode, "cpu", "gpu"))
    for (what, base, ours, goal), (t, b, o) in zip(ROWS, timings):
        rows.append(f"| {what} | {base}: {median_ms(t[b]):.2f} ms | {ours}: {median_ms(t[o]):.2f} ms "
                    f"| {median_ms(t[b]) / median_ms(t[o]):.2f}x | {goal} |\n")
    graph_ms, fp32_ms, amp_ms = median_ms(latency["graph"]), median_ms(batch["fp32"]), median_ms(batch["amp"])
    figures = {"gpu-latency": (f"{graph_ms:.2f} ms", graph_ms < 5.0),
               "gpu-throughput": (f"{fp32_ms / amp_ms:.2f}x", fp32_ms / amp_ms >= 3.0)}
    text = (f"Machine: {machine()}.\nCommand: `{COMMAND} --reps {reps}`; medians of interleaved runs.\n\n"
            "| path | baseline | ours | speed-up | goal |\n|---|---|---|---|---|\n" + "".join(rows))
    return text, figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    figures = None
    if torch.cuda.is_available():
        with temporary_torch_home():
            write_random_weights(MODEL)
            text, figures = measure(args.reps)
    else:
        text = not_measured()
    print(text)
    if not args.no_write:
        write_section("gpu", text)
        record_goals(figures)


if __name__ == "__main__":
    main()
