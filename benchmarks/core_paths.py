"""Drop-to-prediction and model-switch benchmarks: ours against the naive pipeline, interleaved.

Run: ``python -m benchmarks.core_paths`` (rewrites its sections of BENCHMARKS.md).
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


def drop_to_prediction(photo: Path, reps: int) -> str:
    """One 12 MP JPEG, resnet50 on CPU, model already loaded in both pipelines."""
    weights = torchvision.models.ResNet50_Weights.DEFAULT
    naive_model = torchvision.models.resnet50(weights=weights).eval()  # loads the cached file
    transform = weights.transforms()

    def naive() -> int:
        image = Image.open(photo).convert("RGB")
        with torch.no_grad():
            return int(naive_model(transform(image)[None]).argmax())

    engine = InferenceEngine(device="cpu")
    engine.load(MODEL)

    def ours() -> int:
        return engine.classify([photo], model=MODEL)[0].topk[0].index

    times = interleaved({"naive": naive, "ours": ours}, reps=reps)
    engine.close()
    naive_ms, ours_ms = median_ms(times["naive"]), median_ms(times["ours"])
    verdict = "meets" if ours_ms / naive_ms <= 0.6 else "misses"
    return (
        "| pipeline | median ms |\n|---|---|\n"
        f"| naive: PIL open + convert + `weights.transforms()` + eager fp32 forward | {naive_ms:.1f} |\n"
        f"| ours: `InferenceEngine.classify` (draft decode, channels_last, inference_mode) | {ours_ms:.1f} |\n"
        f"| **ratio ours / naive** | **{ours_ms / naive_ms:.2f}x** (goal <= 0.6x: {verdict}) |\n"
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

    def cold() -> None:
        engine = InferenceEngine(device="cpu", cache_size=1)
        engine.load(MODEL)
        engine.close()

    cached_engine = InferenceEngine(device="cpu", cache_size=2)
    cached_engine.load(MODEL)
    cached_engine.load("resnet18", "none")

    def cached() -> None:  # switch back and forth between two cached models
        cached_engine.load(MODEL)
        cached_engine.load("resnet18", "none")

    times = interleaved({"baseline": baseline, "cold": cold, "cached": cached}, reps=reps)
    base_ms, cold_ms = median_ms(times["baseline"]), median_ms(times["cold"])
    cached_ms = median_ms(times["cached"]) / 2
    return (
        "| switch to resnet50 | median ms | vs baseline |\n|---|---|---|\n"
        f"| baseline: `torchvision.models.resnet50()` + `load_state_dict(torch.load(...))` | {base_ms:.1f} | 1.00x |\n"
        f"| ours, cold from the local weights file (meta-device build, mmap, assign) | {cold_ms:.1f} | {cold_ms / base_ms:.2f}x |\n"
        f"| ours, cached (LRU hit) | {cached_ms:.3f} | {cached_ms / base_ms:.4f}x |\n"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    torch.set_num_threads(torch.get_num_threads())
    with temporary_torch_home(), tempfile.TemporaryDirectory() as tmp:
        write_random_weights(MODEL)
        photo = write_12mp_jpeg(Path(tmp) / "12mp.jpg")
        header = f"Machine: {machine()}.\nCommand: `python -m benchmarks.core_paths --reps {args.reps}`; medians of {args.reps} interleaved runs.\n\n"
        drop = header + drop_to_prediction(photo, args.reps)
        switch = header + model_switch(args.reps)
    print(drop, switch, sep="\n")
    if not args.no_write:
        write_section("drop-to-prediction", drop)
        write_section("model-switch", switch)


if __name__ == "__main__":
    main()
