"""Drop-to-prediction and model-switch benchmarks: ours against the naive pipeline, interleaved.

Run: ``python -m benchmarks.core_paths`` (rewrites its sections of BENCHMARKS.md).
Where onnxruntime is installed (the ``onnx`` extra) the engine classifies
through it once prepared, and the drop figure goes to its own ``-onnx`` section.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
import torchvision
from PIL import Image

from benchmarks.common import interleaved, machine, median_ms, temporary_torch_home, write_random_weights, write_section
from core.inference import InferenceEngine
from tests.support.photos import write_12mp_jpeg

MODEL = "resnet50"
DROP_GOAL = 0.5  # ours / naive
COLD_GOAL = 0.3  # ours / baseline
CACHED_GOAL_MS = 50.0


def drop_to_prediction(photo: Path, reps: int) -> tuple[str, str]:
    """One 12 MP JPEG, resnet50 on CPU, model already loaded in both pipelines. Returns (backend, table)."""
    weights = torchvision.models.ResNet50_Weights.DEFAULT
    naive_model = torchvision.models.resnet50(weights=weights).eval()  # loads the cached file
    transform = weights.transforms()

    def naive() -> int:
        image = Image.open(photo).convert("RGB")
        with torch.no_grad():
            return int(naive_model(transform(image)[None]).argmax())

    engine = InferenceEngine(device="cpu")
    engine.load(MODEL)
    backend = engine.backend(MODEL, wait=None)  # ONNX Runtime (when installed) prepares in the background

    def ours() -> int:
        return engine.classify([photo], model=MODEL)[0].topk[0].index

    times = interleaved({"naive": naive, "ours": ours}, reps=reps)
    engine.close()
    naive_ms, ours_ms = median_ms(times["naive"]), median_ms(times["ours"])
    ratio = ours_ms / naive_ms
    verdict = "meets" if ratio <= DROP_GOAL else "MISSES"
    how = "ONNX Runtime forward" if backend == "onnxruntime" else "eager channels_last forward under inference_mode"
    return backend, (
        "| pipeline | median ms |\n|---|---|\n"
        f"| naive: PIL open + convert + `weights.transforms()` + eager fp32 forward | {naive_ms:.1f} |\n"
        f"| ours: `InferenceEngine.classify` (JPEG draft decode at 1/4, {how}) | {ours_ms:.1f} |\n"
        f"| **ratio ours / naive** | **{ratio:.2f}x** (goal <= {DROP_GOAL}x: {verdict}) |\n"
    )


def model_switch(reps: int) -> str:
    """Cached switch, and a cold load from the local weights file, against torchvision + load_state_dict."""
    from core import weights
    from core.zoo import get_spec

    file = weights.expected_path(get_spec(MODEL))

    def baseline() -> None:
        model = torchvision.models.resnet50()
        model.load_state_dict(torch.load(file, weights_only=True))
        model.eval()

    def cold() -> None:  # onnx off: its preparation runs after the switch, in the background
        engine = InferenceEngine(device="cpu", cache_size=1, onnx=False)
        engine.load(MODEL)
        engine.close()

    cached_engine = InferenceEngine(device="cpu", cache_size=2, onnx=False)
    cached_engine.load(MODEL)
    cached_engine.load("resnet18", "none")

    def cached() -> None:  # switch back and forth between two cached models
        cached_engine.load(MODEL)
        cached_engine.load("resnet18", "none")

    times = interleaved({"baseline": baseline, "cold": cold, "cached": cached}, reps=reps)
    cached_engine.close()
    base_ms, cold_ms = median_ms(times["baseline"]), median_ms(times["cold"])
    cached_ms = median_ms(times["cached"]) / 2
    cold_verdict = "meets" if cold_ms / base_ms <= COLD_GOAL else "MISSES"
    cached_verdict = "meets" if cached_ms < CACHED_GOAL_MS else "MISSES"
    return (
        "| switch to resnet50 | median ms | vs baseline | goal |\n|---|---|---|---|\n"
        "| baseline: `torchvision.models.resnet50()` + `load_state_dict(torch.load(..., weights_only=True))` "
        f"| {base_ms:.1f} | 1.00x | |\n"
        f"| ours, cold from the local weights file (meta build without init, mmap, one-pass finiteness check, assign) "
        f"| {cold_ms:.1f} | **{cold_ms / base_ms:.2f}x** | <= {COLD_GOAL}x: {cold_verdict} |\n"
        f"| ours, cached (LRU hit) | {cached_ms:.3f} | {cached_ms / base_ms:.4f}x "
        f"| < {CACHED_GOAL_MS:.0f} ms: {cached_verdict} |\n"
    )


def run(reps: int, *, write: bool, switch: bool = True) -> None:
    with temporary_torch_home(), tempfile.TemporaryDirectory() as tmp:
        write_random_weights(MODEL)
        photo = write_12mp_jpeg(Path(tmp) / "12mp.jpg")
        header = (f"Machine: {machine()}.\nCommand: `python -m benchmarks.core_paths --reps {reps}`; "
                  f"medians of {reps} interleaved runs.\n\n")
        backend, drop = drop_to_prediction(photo, reps)
        drop = header + drop
        text = header + model_switch(reps) if switch else ""
    print(drop, text, sep="\n")
    if write:
        write_section("drop-to-prediction" + ("-onnx" if backend == "onnxruntime" else ""), drop)
        if switch:
            write_section("model-switch", text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    run(args.reps, write=not args.no_write)


if __name__ == "__main__":
    main()
