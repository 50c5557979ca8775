"""One-photo CLI: ``python main.py classify PHOTO --json`` as a whole process, against a naive torchvision script.

Run: ``python -m benchmarks.oneshot`` (``--runs N``; ``--write`` records the result
in BENCHMARKS.md). Goal (issue 18): at most 0.25x the naive script's wall time.

Both classify the same 12 MP JPEG with ResNet-50 weights from the same file
(random init under the official file name in a throwaway TORCH_HOME: timing
does not depend on the values). Ours runs with the model's ONNX export already
cached (made once beforehand, as any earlier CPU run of the model makes it), so
it takes the torch-free route (``core.quick``: numpy, Pillow, onnxruntime). The
naive script is what a person writes with torchvision: import torch and
torchvision, build resnet50, load the state dict, the weights' transforms on
``Image.open(...).convert("RGB")``, one forward, softmax, top-5. Each run is a
fresh process; the two alternate (after one warm-up each) and medians are compared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT

GOAL = 0.25
MODEL = "resnet50"
NAIVE = """
import json, sys, torch, torchvision
from PIL import Image
from torchvision import transforms as T
model = torchvision.models.resnet50()
model.load_state_dict(torch.load(sys.argv[1], weights_only=True))
model.eval()
prep = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                  T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
with torch.inference_mode():
    probs = model(prep(Image.open(sys.argv[2]).convert("RGB"))[None]).softmax(1)[0]
top = probs.topk(5)
print(json.dumps([{"index": int(i), "prob": float(p)} for p, i in zip(top.values, top.indices)]))
"""


def _env(work: Path) -> dict[str, str]:
    return dict(os.environ, TORCH_HOME=str(work / "torch"), XDG_CACHE_HOME=str(work / "cache"),
                XDG_DATA_HOME=str(work / "data"), XDG_CONFIG_HOME=str(work / "config"), CONVNET_STUDIO_OFFLINE="1",
                CONVNET_STUDIO_ONNX="1")


def prepare(work: Path) -> tuple[Path, Path]:
    """The weights file, the photo, and the export with its manifest (as a CPU run of the engine leaves them)."""
    os.environ.update(_env(work))
    from benchmarks.common import write_random_weights
    from core.inference import InferenceEngine
    from tests.support.photos import write_12mp_jpeg

    weights_file = write_random_weights(MODEL)
    photo = write_12mp_jpeg(work / "photo.jpg")
    with InferenceEngine(device="cpu", onnx=True) as engine:
        engine.load(MODEL)
        if engine.backend(MODEL, wait=600) != "onnxruntime":
            raise SystemExit("the ONNX export of resnet50 could not be made (is the onnx extra installed?)")
    return weights_file, photo


def _run(argv: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise SystemExit(f"{argv[:3]} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return done.stdout


def measure(runs: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="cns-oneshot-") as tmp:
        work = Path(tmp)
        weights_file, photo = prepare(work)
        env = _env(work)
        ours = [sys.executable, "main.py", "classify", str(photo), "--json"]  # the default model: resnet50
        naive = [sys.executable, "-c", NAIVE, str(weights_file), str(photo)]
        runtime = json.loads(_run(ours, env))[0]["runtime"]  # warm-up, and the route it took
        _run(naive, env)
        times: dict[str, list[float]] = {"ours": [], "naive": []}
        for _ in range(runs):
            for name, argv in (("ours", ours), ("naive", naive)):
                start = time.perf_counter()
                _run(argv, env)
                times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(samples) for name, samples in times.items()}
    return {"runs": runs, "runtime": runtime, "medians": medians, "samples": times}


def report(result: dict, command: str) -> str:
    ours, naive = result["medians"]["ours"], result["medians"]["naive"]
    ratio = ours / naive
    verdict = "meets" if ratio <= GOAL else "MISSES"
    return "\n".join([
        "### One photo from the command line: whole process",
        "",
        "| process | median wall time | vs naive |",
        "|---|---|---|",
        f"| naive: `python -c` importing torch + torchvision, ResNet-50 from the same weights file, "
        f"transforms, one forward | {naive:.2f} s | 1.00x |",
        f"| **ours**: `python main.py classify PHOTO --json` (ResNet-50, the default; export cached; route: "
        f"{result['runtime']}) | {ours:.2f} s | **{ratio:.2f}x** |",
        "",
        f"Fresh processes, alternated, medians of {result['runs']} each after one warm-up; a 12 MP JPEG. "
        f"Goal <= {GOAL:.2f}x the naive script: {ratio:.2f}x ({verdict} it). Ours never imports torch or "
        "torchvision: the model's ONNX export (made by an earlier CPU run) is found through its manifest, "
        "checked against the weights file the torch path would load, and run by ONNX Runtime with numpy/Pillow "
        "preprocessing (`core.quick`).",
        "",
        f"Command: `{command}`",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.oneshot", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--write", action="store_true", help="record the result in BENCHMARKS.md")
    args = parser.parse_args(argv)
    result = measure(args.runs)
    command = "python -m benchmarks.oneshot " + " ".join(argv if argv is not None else sys.argv[1:])
    from benchmarks.common import machine

    text = report(result, command.strip()) + f"\n\nMachine: {machine()}"
    print(text)
    if args.write:
        from benchmarks.common import record_goal, write_section

        write_section("oneshot", text)
        ours, naive = result["medians"]["ours"], result["medians"]["naive"]
        record_goal("oneshot", what="2. one-photo `classify PHOTO --json`, whole process, ResNet-50, CPU",
                    goal=f"<= {GOAL:.2f}x naive", meets=ours <= GOAL * naive, command=command.strip(),
                    measured=f"{ours / naive:.2f}x ({ours:.2f} s against the naive script's {naive:.2f} s)")
    return 0 if result["medians"]["ours"] <= GOAL * result["medians"]["naive"] else 1


if __name__ == "__main__":
    sys.exit(main())
