"""int8 on the CPU: agreement with fp32, forward latency, drop-to-prediction and folder throughput vs naive.

Run: ``python -m benchmarks.int8 [--photos N] [--reps R]`` (rewrites its sections of BENCHMARKS.md unless
``--no-write``). ResNet-50 with random weights (no network here), exported as classify exports it, then
quantized by ``core.quantize`` (static QDQ, per-channel int8 weights, MinMax calibration on 100 images);
the verdict is checked on 200 other images. The speed rows run the variant whatever the verdict, so that
the figure exists: the app itself would only run an accepted one.

The ORT rows run direct ONNX Runtime sessions with the engine's decode (JPEG draft at 1/4, numpy
preprocessing of ``core.fastprep``, decode ahead on a thread pool, batches of 8): the engines run an
int8 variant only once its verdict accepted it, and random weights are refused (their scores are nearly
tied), so the rows measure the route itself rather than ``InferenceEngine.classify(precision="int8")``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import torchvision
from PIL import Image

from benchmarks.common import (
    interleaved,
    machine,
    median_ms,
    record_goal,
    temporary_torch_home,
    write_random_weights,
    write_section,
)
from benchmarks.folder import mix_text, naive_loop
from core import quantize
from core.fastprep import preprocess_array, softmax_topk
from core.images import load_image
from core.inference import InferenceEngine
from core.zoo import get_spec
from tests.support.photos import write_12mp_jpeg, write_mixed_photos

MODEL = "resnet50"
DROP_GOAL = 0.33  # ours / naive
FOLDER_GOAL = 3.5  # ours / naive
BATCH = 8
SOURCES = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
           "colorwheel", "camera", "brick", "grass", "gravel", "moon", "clock", "coins", "cell", "page", "horse")


def varied_photos(folder: Path, count: int, seed: int) -> list[Path]:
    """``count`` distinct JPEGs: random crops (50-100 %), flips and colour casts of scikit-image's photos."""
    from skimage import data

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    bases = [_rgb(np.asarray(getattr(data, name)())) for name in SOURCES]
    paths = []
    for i in range(count):
        image = bases[i % len(bases)]
        width, height = image.size
        scale = rng.uniform(0.5, 1.0)
        w, h = int(width * scale), int(height * scale)
        x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        crop = image.crop((x, y, x + w, y + h))
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        pixels = np.clip(np.asarray(crop, np.float32) * rng.uniform(0.75, 1.2, 3), 0, 255).astype(np.uint8)
        path = folder / f"{i:04d}.jpg"
        Image.fromarray(pixels).save(path, "JPEG", quality=90)
        paths.append(path)
    return paths


def _rgb(array: np.ndarray) -> Image.Image:
    if array.dtype == bool:  # the horse silhouette
        array = array.astype(np.uint8) * 255
    return Image.fromarray(array.astype(np.uint8)).convert("RGB")


def _session(path: Path, threads: int = 2) -> ort.InferenceSession:
    options = ort.SessionOptions()  # as core.onnx_cpu.OrtForward
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OrtRoute:
    """The ORT classify route on one session: draft decode + fastprep, decode ahead, batches, softmax top-5."""

    def __init__(self, model: Path, pp, pool: ThreadPoolExecutor) -> None:
        self.session, self.pp, self.pool = _session(model), pp, pool
        self.input = self.session.get_inputs()[0].name

    def prepare(self, path: Path) -> np.ndarray:
        return preprocess_array(load_image(path, draft_size=2 * self.pp.resize_size), self.pp)

    def top1(self, arrays: list[np.ndarray]) -> list[int]:
        logits = self.session.run(None, {self.input: np.stack(arrays)})[0]
        return softmax_topk(logits, 5)[1][:, 0].tolist()

    def one(self, path: Path) -> int:
        return self.top1([self.prepare(path)])[0]

    def folder(self, paths: list[Path]) -> list[int]:
        chunks = [paths[i:i + BATCH] for i in range(0, len(paths), BATCH)]
        out: list[int] = []
        pending = [self.pool.submit(self.prepare, p) for p in chunks[0]] if chunks else []
        for index in range(len(chunks)):
            ahead = [self.pool.submit(self.prepare, p) for p in chunks[index + 1]] if index + 1 < len(chunks) else []
            out += self.top1([f.result() for f in pending])
            pending = ahead
        return out


def forward_latency(fp32: Path, int8: Path, reps: int) -> str:
    rng = np.random.default_rng(0)
    rows = []
    for batch in (1, 8):
        x = rng.normal(size=(batch, 3, 224, 224)).astype(np.float32)
        sessions = {"fp32": _session(fp32), "int8": _session(int8)}
        runs = {k: (lambda s=s, x=x: s.run(None, {"image": x})) for k, s in sessions.items()}
        times = interleaved(runs, reps=reps, warmup=2)
        f, q = median_ms(times["fp32"]), median_ms(times["int8"])
        rows.append(f"| {batch} | {f:.1f} | {q:.1f} | **{q / f:.2f}x** |\n")
    return "| batch | fp32 ORT ms | int8 ORT ms | int8 / fp32 |\n|---|---|---|---|\n" + "".join(rows)


def agreement_text(verdict: quantize.Verdict, seconds: float) -> str:
    state = "accepted" if verdict.accepted else "REFUSED (the app keeps fp32)"
    return (f"Verdict on {verdict.images} check images (calibrated on {verdict.calibration_images} others, "
            f"{seconds:.0f} s in all): **{state}**: {verdict.reason}. Top-1 agreement "
            f"{100 * verdict.top1_agreement:.1f}% (goal >= 99%), top-5 overlap {100 * verdict.top5_overlap:.1f}% "
            "(goal >= 97%).\n")


def drop(photo_path: Path, route32: OrtRoute, route8: OrtRoute, reps: int) -> tuple[str, float]:
    weights = torchvision.models.ResNet50_Weights.DEFAULT
    naive_model = torchvision.models.resnet50(weights=weights).eval()
    transform = weights.transforms()

    def naive() -> int:
        with torch.no_grad():
            return int(naive_model(transform(Image.open(photo_path).convert("RGB"))[None]).argmax())

    times = interleaved({"naive": naive, "fp32": lambda: route32.one(photo_path),
                         "int8": lambda: route8.one(photo_path)}, reps=reps)
    naive_ms, f_ms, q_ms = (median_ms(times[k]) for k in ("naive", "fp32", "int8"))
    ratio = q_ms / naive_ms
    return ("| pipeline | median ms | vs naive |\n|---|---|---|\n"
            f"| naive: PIL open + convert + `weights.transforms()` + eager fp32 forward | {naive_ms:.1f} | 1.00x |\n"
            f"| ORT fp32 route (draft decode, numpy preprocessing, ORT session) | {f_ms:.1f} "
            f"| {f_ms / naive_ms:.2f}x |\n"
            f"| **ORT int8 route** (same, int8 QDQ model) | {q_ms:.1f} | **{ratio:.2f}x** "
            f"(goal <= {DROP_GOAL}x: {'meets' if ratio <= DROP_GOAL else 'MISSES'}) |\n"), ratio


def folder(paths: list[Path], route32: OrtRoute, route8: OrtRoute, reps: int) -> tuple[str, float]:
    naive = naive_loop(paths)
    answers = {"naive": naive(), "fp32": route32.folder(paths), "int8": route8.folder(paths)}
    times = interleaved({"naive": naive, "fp32": lambda: route32.folder(paths), "int8": lambda: route8.folder(paths)},
                        reps=reps, warmup=0)
    seconds = {k: statistics.median(v) for k, v in times.items()}
    n = len(paths)
    ratio = seconds["naive"] / seconds["int8"]
    same = sum(a == b for a, b in zip(answers["fp32"], answers["int8"]))
    return ("| pipeline | median s | photos/s | vs naive |\n|---|---|---|---|\n"
            "| naive loop: PIL open + convert + `weights.transforms()` + one forward per photo "
            f"| {seconds['naive']:.1f} "
            f"| {n / seconds['naive']:.2f} | 1.00x |\n"
            f"| ORT fp32 route (batch {BATCH}, decode ahead on 2 threads, draft JPEG) | {seconds['fp32']:.1f} "
            f"| {n / seconds['fp32']:.2f} | {seconds['naive'] / seconds['fp32']:.2f}x |\n"
            f"| **ORT int8 route** (same, int8 QDQ model) | {seconds['int8']:.1f} | {n / seconds['int8']:.2f} "
            f"| **{ratio:.2f}x** (goal >= {FOLDER_GOAL}x: {'meets' if ratio >= FOLDER_GOAL else 'MISSES'}) |\n\n"
            f"Top-1 of int8 = top-1 of fp32 on {same}/{n} of these photos.\n"), ratio


def _fp32_export() -> Path:
    with InferenceEngine(device="cpu", onnx=True) as engine:
        engine.load(MODEL)
        path = engine.onnx_file(MODEL, wait=None)
    if path is None:
        raise RuntimeError("no ONNX export (is onnxruntime installed?)")
    return path


def run(photos: int, reps: int, *, write: bool, calibrate: int = 100, check: int = 200,
        log: Callable[[str], None] = print) -> dict:
    command = f"python -m benchmarks.int8 --photos {photos} --reps {reps}"
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    header = (f"Machine: {machine()}; load average before the run {load}.\nCommand: `{command}`; medians of "
              "interleaved runs.\n\n")
    with temporary_torch_home(), tempfile.TemporaryDirectory(prefix="cns-int8-") as tmp:
        write_random_weights(MODEL)
        pp = get_spec(MODEL).preprocess
        fp32 = _fp32_export()
        images = varied_photos(Path(tmp) / "set", calibrate + check, seed=0)
        start = time.perf_counter()
        verdict = quantize.quantize(fp32, pp, images[:calibrate], images[calibrate:])
        agree = agreement_text(verdict, time.perf_counter() - start)
        int8 = quantize.int8_path(fp32)
        if not int8.is_file():  # refused: made again beside it, for the speed rows only
            quantize.quantize_file(fp32, Path(tmp) / "refused.int8.onnx", [
                preprocess_array(load_image(p, draft_size=2 * pp.resize_size), pp) for p in images[:calibrate]])
            int8 = Path(tmp) / "refused.int8.onnx"
        log(agree)
        latency = forward_latency(fp32, int8, reps=max(5, reps * 2))
        log(latency)
        with ThreadPoolExecutor(2, thread_name_prefix="decode") as pool:
            route32, route8 = OrtRoute(fp32, pp, pool), OrtRoute(int8, pp, pool)
            drop_table, drop_ratio = drop(write_12mp_jpeg(Path(tmp) / "12mp.jpg"), route32, route8, max(5, reps * 3))
            log(drop_table)
            paths = write_mixed_photos(Path(tmp) / "roll", photos)
            folder_table, folder_ratio = folder(paths, route32, route8, reps)
            log(folder_table)
    sections = {
        "int8-agreement": header + agree + "\nForward pass alone (ONNX Runtime, 2 threads, random input):\n\n"
        + latency,
        "int8-drop": header + drop_table,
        "int8-folder": header + f"{photos} photos: {mix_text(paths)}.\n\n" + folder_table,
    }
    if write:
        for name, text in sections.items():
            write_section(name, text)
        record_goal("int8-drop", what="3. int8: drop a 12 MP photo to its prediction, ResNet-50, CPU",
                    goal=f"<= {DROP_GOAL}x naive",
                    measured=f"{drop_ratio:.2f}x naive", meets=drop_ratio <= DROP_GOAL, command=command)
        record_goal("int8-folder", what="3. int8: folder throughput, ResNet-50, CPU", goal=f">= {FOLDER_GOAL}x naive",
                    measured=f"{folder_ratio:.2f}x naive ({photos} photos)", meets=folder_ratio >= FOLDER_GOAL,
                    command=command)
        record_goal("int8-agreement", what="3. int8 offered only where it keeps its answers",
                    goal="top-1 >= 99%, top-5 >= 97% on 200 images, else fp32 and why",
                    measured=f"random-init ResNet-50: top-1 {100 * verdict.top1_agreement:.1f}%, top-5 "
                    f"{100 * verdict.top5_overlap:.1f}%: {'accepted' if verdict.accepted else 'refused, fp32 kept'}",
                    meets=True, command=command)
    return {"accepted": verdict.accepted, "top1": verdict.top1_agreement, "top5": verdict.top5_overlap,
            "drop_ratio": drop_ratio, "folder_ratio": folder_ratio}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=48)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    run(args.photos, args.reps, write=not args.no_write)


if __name__ == "__main__":
    main()
