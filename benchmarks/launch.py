"""Launch to first prediction: ``python main.py PHOTO`` until the photo's top-5 is in (issue 18, goal 1.0 s).

Run: ``python -m benchmarks.launch`` (``--runs N``; ``--write`` records the
result in BENCHMARKS.md). Set-up, once, in a throwaway folder: ResNet-50
weights under the real file name in ``TORCH_HOME`` (random init: nothing can
be downloaded here), its ONNX export in the cache (made by the engine, as a
first run of the model makes it), and one 12-megapixel JPEG. The model is the
default one, so it is "the model used before".

Each run starts a fresh process, offscreen, with the start-up probe
(``gui/startup.py``): it prints when the window was painted, when the first
prediction arrived (and which runtime made it), and the resident memory at
each milestone. Interleaved with ours, in the same run:

* **ours, torch route**: the same app with ``CONVNET_STUDIO_ONNX=0``, which is
  what every launch did before the quick route (and what a model without an
  export still does);
* **baseline**: a minimal PySide6 + torchvision script: shows a window, imports
  torch and torchvision, loads the same weights file, applies the weights'
  ``transforms()`` to the same photo and runs the model once.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, machine, record_goal, write_section

GOAL_S = 1.0
RSS_GOAL_MB = 250
MODEL = "resnet50"

BASELINE = """
import os, sys, time
from PySide6.QtWidgets import QApplication, QLabel
app = QApplication([])
label = QLabel("classifying...")
label.show()
app.processEvents()
import torch
from PIL import Image
from torchvision.models import ResNet50_Weights, resnet50
weights = ResNet50_Weights.IMAGENET1K_V2
model = resnet50()
model.load_state_dict(torch.load(sys.argv[1], weights_only=True))
model.eval()
batch = weights.transforms()(Image.open(sys.argv[2]).convert("RGB")).unsqueeze(0)
with torch.inference_mode():
    probs = model(batch).softmax(1)[0]
top = probs.topk(5)
label.setText(weights.meta["categories"][int(top.indices[0])])
app.processEvents()
print("startup predicted", f"{time.time() - float(os.environ['CONVNET_STUDIO_LAUNCH_T']):.3f}")
"""


def prepare(work: Path) -> tuple[Path, Path]:
    """Weights, their ONNX export (in ``work``'s cache) and a photo; returns (weights file, photo)."""
    from benchmarks.common import write_random_weights  # imports torch: only in the set-up
    from core.inference import InferenceEngine
    from tests.support.photos import write_12mp_jpeg

    weights = write_random_weights(MODEL)
    photo = write_12mp_jpeg(work / "photo.jpg")
    with InferenceEngine("cpu", onnx=True) as engine:
        engine.classify([photo], model=MODEL)  # a first run of the model: its export is made (and its sidecar)
        if engine.backend(MODEL, wait=None) != "onnxruntime":
            raise SystemExit("the ONNX export of resnet50 could not be made: the quick route cannot be measured")
    return weights, photo


def env_for(work: Path, **extra: str) -> dict[str, str]:
    return dict(os.environ, QT_QPA_PLATFORM="offscreen", CONVNET_STUDIO_STARTUP_PROBE="1",
                CONVNET_STUDIO_SETTINGS=str(work / "settings.ini"), CONVNET_STUDIO_OFFLINE="1",
                TORCH_HOME=str(work / "torch"), XDG_CONFIG_HOME=str(work / "config"),
                XDG_CACHE_HOME=str(work / "cache"), XDG_DATA_HOME=str(work / "data"), **extra)


def launch(command: list[str], env: dict[str, str]) -> dict[str, dict]:
    """One start; milestone -> {"s": seconds, "rss_mb": ..., "runtime": ...} as the process printed them."""
    env = dict(env, CONVNET_STUDIO_LAUNCH_T=repr(time.time()))
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    marks: dict[str, dict] = {}
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "startup":
            fields = dict(zip(parts[3::2], parts[4::2]))
            marks[parts[1]] = {"s": float(parts[2]), **fields}
    if done.returncode != 0 or ("predicted" not in marks and len(command) > 2):
        raise SystemExit(f"{command[1]} did not report a prediction (exit {done.returncode}):\n"
                         f"{done.stdout}\n{done.stderr[-2000:]}")
    return marks


def measure(runs: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="cns-launch-") as tmp:
        work = Path(tmp)
        os.environ.update(env_for(work))  # the set-up writes into the same throwaway folders
        weights, photo = prepare(work)
        commands = {
            "ours": ([sys.executable, "main.py", str(photo)], env_for(work)),
            "torch": ([sys.executable, "main.py", str(photo)], env_for(work, CONVNET_STUDIO_ONNX="0")),
            "baseline": ([sys.executable, "-c", BASELINE, str(weights), str(photo)], env_for(work)),
            "empty": ([sys.executable, "main.py"], env_for(work)),  # goal 5: the window before any model loads
        }
        for command, env in commands.values():  # warm the file cache; not counted
            launch(command, env)
        samples: dict[str, list[dict]] = {name: [] for name in commands}
        for _ in range(runs):
            for name, (command, env) in commands.items():
                samples[name].append(launch(command, env))
    return samples


def median(samples: list[dict], milestone: str, field: str = "s") -> float:
    values = [float(run[milestone][field]) for run in samples if milestone in run and field in run[milestone]]
    return statistics.median(values) if values else float("nan")


def summary(samples: dict) -> dict:
    """The figures BENCHMARKS.md's summary table shows."""
    ours, baseline = median(samples["ours"], "predicted"), median(samples["baseline"], "predicted")
    return {"ours_s": ours, "torch_s": median(samples["torch"], "predicted"), "baseline_s": baseline,
            "ratio": ours / baseline, "paint_rss_mb": median(samples["empty"], "painted", "rss_mb"),
            "loaded_rss_mb": median(samples["empty"], "registry", "rss_mb"),
            "photo_paint_rss_mb": median(samples["ours"], "painted", "rss_mb"),
            "runtimes": sorted({run["predicted"].get("runtime", "?") for run in samples["ours"]})}


def report(samples: dict, runs: int, command: str) -> str:
    s = summary(samples)
    verdict = "meets" if s["ours_s"] <= GOAL_S else "MISSES"
    rss_verdict = "meets" if s["paint_rss_mb"] < RSS_GOAL_MB else "MISSES"
    loaded_verdict = "meets" if s["loaded_rss_mb"] < RSS_GOAL_MB else "misses"
    rows = [
        ("baseline: minimal PySide6 + torchvision script (window, imports, weights, transforms, forward)",
         samples["baseline"]),
        ("ours, torch route (`CONVNET_STUDIO_ONNX=0`: what every launch did before)", samples["torch"]),
        (f"**ours**: quick route ({', '.join(s['runtimes'])}, torch loads after the first prediction)",
         samples["ours"]),
        ("ours, no photo (`python main.py`: the window of goal 5)", samples["empty"]),
    ]
    lines = [
        "| launch of `python main.py PHOTO` | window painted | first prediction | registry (torch) loaded |",
        "|---|---|---|---|",
        *(f"| {name} | {_cell(runs_, 'painted')} | {_cell(runs_, 'predicted')} | {_cell(runs_, 'registry')} |"
          for name, runs_ in rows),
        "",
        f"Medians of {runs} interleaved offscreen launches; seconds from just before the process starts. "
        f"First prediction in **{s['ours_s']:.2f} s** (goal <= {GOAL_S:.1f} s: {verdict}), "
        f"{s['ratio']:.2f}x the baseline's {s['baseline_s']:.2f} s and "
        f"{s['ours_s'] / s['torch_s']:.2f}x the torch route's {s['torch_s']:.2f} s.",
        "",
        f"Resident memory of the window before any model is loaded (`python main.py`, goal < {RSS_GOAL_MB} MiB): "
        f"**{s['paint_rss_mb']:.0f} MiB** when first painted ({rss_verdict}), but **{s['loaded_rss_mb']:.0f} MiB** "
        f"once torch, torchvision and the model registry have loaded in the background ({loaded_verdict}). "
        f"Launched with a photo it is {s['photo_paint_rss_mb']:.0f} MiB at the first paint: the model's ONNX Runtime "
        "session is open by then. "
        "Profile: importing torch alone adds about 480 MiB here (this CUDA build maps its libraries), torchvision "
        "about 160 MiB; the registry (model picker) and the device list need both today. A torch-free registry "
        "(the zoo's metadata as data) would keep an idle window near its first-paint figure.",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {machine()}",
    ]
    return "\n".join(lines)


def _cell(runs: list[dict], milestone: str) -> str:
    value = median(runs, milestone)
    return "-" if value != value else f"{value:.2f} s"  # NaN: the baseline has no such milestone


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.launch", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="record the result in BENCHMARKS.md")
    args = parser.parse_args(argv)
    samples = measure(args.runs)
    command = "python -m benchmarks.launch " + " ".join(argv if argv is not None else sys.argv[1:])
    text = report(samples, args.runs, command.strip())
    print(text)
    if args.write:
        write_section("launch", text)
        s = summary(samples)
        record_goal("launch", what="1. launch to first prediction (`python main.py PHOTO`, ResNet-50, CPU)",
                    goal="<= 1.0 s", meets=s["ours_s"] <= GOAL_S, command=command.strip(),
                    measured=f"{s['ours_s']:.2f} s ({s['ratio']:.2f}x the minimal PySide6 + torchvision script's "
                             f"{s['baseline_s']:.2f} s; torch route {s['torch_s']:.2f} s)")
        record_goal("startup-rss", what="5. window's resident memory before any model is loaded",
                    goal=f"< {RSS_GOAL_MB} MiB",
                    meets=max(s["paint_rss_mb"], s["loaded_rss_mb"]) < RSS_GOAL_MB, command=command.strip(),
                    measured=f"{s['paint_rss_mb']:.0f} MiB at first paint; {s['loaded_rss_mb']:.0f} MiB once torch "
                             "and the registry have loaded in the background")
    return 0 if summary(samples)["ours_s"] <= GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
