"""int8 variants of an ONNX export, offered only where they keep the fp32 answers.

ONNX Runtime static quantization: per-channel int8 weights, uint8 activations
calibrated (MinMax) on the user's own images, QDQ format, after
``quant_pre_process``. Measured on this 2-core AVX2 CPU (no VNNI), random-init
ResNet-50: batch 1 0.67x and batch 8 0.57x the fp32 ORT time; QOperator and
``reduce_range`` were slower at batch 1 (0.85x, 0.86x), ``reduce_range`` also
flipped more answers, Percentile and Entropy calibration kept no more of them
(BENCHMARKS.md, "int8 on the CPU").

The int8 file is used only when it agrees with fp32 on images the user has:
top-1 agreement >= 99 %, mean top-5 overlap >= 97 %, and for a labelled set an
accuracy drop of at most 0.5 points. The verdict, with its figures and the
reason in words, is written next to the export (``<stem>.int8.json``); a refused
model has no ``<stem>.int8.onnx`` at all, so nothing can run it by mistake.
Torch-free: images decode with ``core.images`` + ``core.fastprep``.
"""

from __future__ import annotations

import contextlib
import json
import math
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import Cancelled, StudioError
from core.fastprep import preprocess_array, softmax_topk
from core.images import load_image
from core.io import atomic_path, atomic_write_json

__all__ = ["Verdict", "int8_path", "verdict_path", "read_verdict", "quantize", "pick", "agreement",
           "TOP1_MIN", "TOP5_MIN", "ACC_DROP_MAX", "RUNTIME_FP32", "RUNTIME_INT8"]

TOP1_MIN = 0.99  # top-1 agreement with fp32
TOP5_MIN = 0.97  # mean |top5 ∩ top5'| / 5
ACC_DROP_MAX = 0.5  # accuracy points, labelled sets only
RUNTIME_FP32, RUNTIME_INT8 = "onnxruntime", "onnxruntime-int8"
BATCH = 8
MAX_VERDICT_BYTES = 64 * 1024
MAX_SKIPPED_NAMES = 20  # names kept in the verdict (the count is always exact)
# (no "CalibMaxIntermediateOutputs": in onnxruntime 1.32 it drops the batches collected before each merge,
# and MinMax's augmented graph keeps two scalars per tensor and batch, so memory stays small without it)

ProgressFn = Callable[[str, int, int], None]  # (phase, done, total)


def int8_path(fp32: Path) -> Path:
    """``<stem>.int8.onnx`` beside the fp32 export."""
    return fp32.with_name(f"{fp32.stem}.int8.onnx")


def verdict_path(fp32: Path) -> Path:
    """``<stem>.int8.json`` beside the fp32 export."""
    return fp32.with_name(f"{fp32.stem}.int8.json")


@dataclass(frozen=True)
class Verdict:
    """Whether the int8 variant of an export may be used, and the figures that decided it."""

    accepted: bool
    reason: str
    top1_agreement: float  # fraction of check images whose top-1 is the same
    top5_overlap: float  # mean |top5 ∩ top5'| / 5
    images: int  # check images both ran on
    val_acc_fp32: float | None = None  # percent, labelled sets only
    val_acc_int8: float | None = None
    calibration_images: int = 0
    seconds: float = 0.0
    check_overlaps_calibration: bool = False  # too few images: the check reused calibration images
    skipped: int = 0  # images that could not be decoded (left out by name)
    skipped_names: tuple[str, ...] = ()
    fp32_key: str = ""  # size@mtime of the fp32 export the verdict is about

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["skipped_names"] = list(self.skipped_names)
        return data

    @classmethod
    def from_json(cls, data: Any) -> Verdict:
        """Strict: a wrong type anywhere raises ValueError."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        kinds = {"accepted": bool, "reason": str, "top1_agreement": float, "top5_overlap": float, "images": int,
                 "val_acc_fp32": float, "val_acc_int8": float, "calibration_images": int, "seconds": float,
                 "check_overlaps_calibration": bool, "skipped": int, "fp32_key": str}
        values: dict[str, Any] = {}
        for field in fields(cls):
            if field.name not in data:
                continue
            values[field.name] = _typed(field.name, data[field.name], kinds.get(field.name))
        for name in ("accepted", "reason", "top1_agreement", "top5_overlap", "images"):
            if name not in values:
                raise ValueError(f"'{name}' missing")
        return cls(**values)


def _typed(name: str, value: Any, kind: type | None) -> Any:
    if name == "skipped_names":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError("'skipped_names' must be a list of strings")
        return tuple(v[:300] for v in value[:MAX_SKIPPED_NAMES])
    if value is None and name.startswith("val_acc"):
        return None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(f"'{name}' must be {kind.__name__}")
    if kind is float and not math.isfinite(value):
        raise ValueError(f"'{name}' must be finite")
    return value[:2000] if kind is str else value


def file_key(path: Path) -> str:
    """``size@mtime_ns`` of a file ('' when it is missing): a new export makes an old verdict stale."""
    with contextlib.suppress(OSError):
        stat = path.stat()
        return f"{stat.st_size}@{stat.st_mtime_ns}"
    return ""


def read_verdict(fp32: Path) -> Verdict | None:
    """The verdict recorded for ``fp32``'s int8 variant; None when there is none, it is malformed, or it is
    about an older export than the file there now."""
    path = verdict_path(fp32)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_VERDICT_BYTES + 1)
        if len(raw) > MAX_VERDICT_BYTES:
            return None
        verdict = Verdict.from_json(json.loads(raw.decode("utf-8")))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return None
    if verdict.fp32_key and verdict.fp32_key != file_key(fp32):
        return None
    return verdict


# -- choosing what runs --------------------------------------------------------------------------


def pick(fp32: Path, precision: str) -> tuple[Path, str, str | None]:
    """(ONNX file to run, its runtime, a note for the user or None) for ``precision`` fp32 | int8 | auto.

    int8 only where its verdict accepted it and the file is there; "int8" otherwise falls back to fp32 with
    the reason (the refusal's figures, or how to make one); "auto" says something only about a refusal.
    """
    if precision not in ("fp32", "int8", "auto"):
        raise StudioError(f"precision must be fp32, int8 or auto, not {precision!r}")
    if precision == "fp32":
        return fp32, RUNTIME_FP32, None
    verdict = read_verdict(fp32)
    quantized = int8_path(fp32)
    if verdict is not None and verdict.accepted and quantized.is_file():
        return quantized, RUNTIME_INT8, None
    if verdict is not None and not verdict.accepted:
        return fp32, RUNTIME_FP32, f"int8 not used, fp32 kept: {verdict.reason}"
    if precision == "int8":
        return fp32, RUNTIME_FP32, ("int8 not used, fp32 kept: this model has no checked int8 variant yet "
                                    "(make one with: python main.py quantize MODEL --images FOLDER)")
    return fp32, RUNTIME_FP32, None


# -- quantizing ----------------------------------------------------------------------------------


@dataclass
class _Decoded:
    arrays: list[np.ndarray]
    paths: list[Path]
    skipped: list[str]


def _decode_all(paths: Sequence[Path], pp: Any, phase: str, progress: ProgressFn | None,
                cancel: threading.Event | None) -> _Decoded:
    """Decode + preprocess as classify does (JPEG draft at twice the resize size); bad files skipped by name."""
    out = _Decoded([], [], [])
    for done, path in enumerate(paths, 1):
        _check(cancel)
        try:
            image = load_image(path, draft_size=2 * int(pp.resize_size))
            out.arrays.append(preprocess_array(image, pp))
            out.paths.append(Path(path))
        except Exception as exc:  # noqa: BLE001 - a user's file: any failure skips it by name, never a crash
            out.skipped.append(f"{Path(path).name}: {str(exc)[-200:]}")
        if progress is not None:
            progress(phase, done, len(paths))
    return out


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("quantization")


class _Calibration:
    """onnxruntime's CalibrationDataReader over decoded arrays, in batches (duck-typed: ``get_next``)."""

    def __init__(self, arrays: list[np.ndarray], input_name: str, cancel: threading.Event | None) -> None:
        self._batches: Iterator[np.ndarray] = (np.stack(arrays[i:i + BATCH]) for i in range(0, len(arrays), BATCH))
        self._input = input_name
        self._cancel = cancel

    def get_next(self) -> dict[str, np.ndarray] | None:
        _check(self._cancel)
        batch = next(self._batches, None)
        return None if batch is None else {self._input: batch}


def _session(path: Path, threads: int = 0):
    import onnxruntime as ort  # noqa: PLC0415 - optional extra (onnx): may not be installed

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # leave the cores to the rest
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def quantize_file(fp32: Path, out: Path, arrays: list[np.ndarray], cancel: threading.Event | None = None) -> Path:
    """Write the int8 QDQ variant of ``fp32`` to ``out`` (atomically), calibrated on ``arrays``."""
    from onnxruntime.quantization import (  # noqa: PLC0415 - optional extra (onnx), and onnx itself is slow to import
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process  # noqa: PLC0415 - as above

    input_name = _session(fp32, 1).get_inputs()[0].name
    with tempfile.TemporaryDirectory(prefix="cns-quant-") as tmp, atomic_path(out, suffix=".onnx") as target:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(target), _Calibration(arrays, input_name, cancel),
                        quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=False,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
    return out


def _logits(session, arrays: list[np.ndarray], cancel: threading.Event | None,
            tick: Callable[[int], None]) -> np.ndarray:
    name = session.get_inputs()[0].name
    rows = []
    for start in range(0, len(arrays), BATCH):
        _check(cancel)
        rows.append(session.run(None, {name: np.stack(arrays[start:start + BATCH])})[0])
        tick(min(start + BATCH, len(arrays)))
    return np.concatenate(rows).astype(np.float32)


def agreement(fp32_logits: np.ndarray, int8_logits: np.ndarray) -> tuple[float, float]:
    """(top-1 agreement, mean top-5 overlap / 5) of two [N, C] score arrays (k = min(5, C))."""
    k = min(5, fp32_logits.shape[1])
    _, top_a = softmax_topk(fp32_logits, k)
    _, top_b = softmax_topk(int8_logits, k)
    top1 = float(np.mean(top_a[:, 0] == top_b[:, 0]))
    overlap = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(top_a.tolist(), top_b.tolist())]))
    return top1, overlap


def _accuracy(logits: np.ndarray, labels: list[int | None]) -> float | None:
    known = [(row, label) for row, label in enumerate(labels) if label is not None]
    if not known:
        return None
    hits = sum(int(np.argmax(logits[row]) == label) for row, label in known)
    return 100.0 * hits / len(known)


def _judge(top1: float, top5: float, images: int, acc32: float | None, acc8: float | None) -> tuple[bool, str]:
    problems = []
    if top1 < TOP1_MIN:
        problems.append(f"top-1 agreement {100 * top1:.1f}% < {100 * TOP1_MIN:.0f}%")
    if top5 < TOP5_MIN:
        problems.append(f"top-5 overlap {100 * top5:.1f}% < {100 * TOP5_MIN:.0f}%")
    if acc32 is not None and acc8 is not None and acc32 - acc8 > ACC_DROP_MAX:
        problems.append(f"validation accuracy {acc8:.1f}% vs {acc32:.1f}% in fp32 "
                        f"(drop {acc32 - acc8:.1f} points > {ACC_DROP_MAX})")
    where = f" on {images} images"
    if problems:
        return False, "; ".join(problems) + where
    accuracy = f", validation accuracy {acc8:.1f}% vs {acc32:.1f}%" if acc32 is not None and acc8 is not None else ""
    return True, f"top-1 agreement {100 * top1:.1f}%, top-5 overlap {100 * top5:.1f}%{accuracy}{where}"


def quantize(fp32: Path, pp: Any, calibration: Sequence[Path], check: Sequence[Path], *,
             labels_of: Callable[[Path], int | None] | None = None, progress: ProgressFn | None = None,
             cancel: threading.Event | None = None) -> Verdict:
    """Calibrate on ``calibration``, quantize ``fp32``, check int8 against fp32 on ``check``; write the verdict.

    ``pp``: the model's preprocessing (``core.zoo.Preprocess`` or ``core.fastprep.Numbers``). ``labels_of``
    (path -> class index or None) adds the accuracy of both. An accepted variant goes to ``int8_path(fp32)``;
    a refused one is removed, so that nothing runs it. Raises ``Cancelled`` when ``cancel`` is set.
    """
    start = time.perf_counter()
    fp32 = Path(fp32)
    calib = _decode_all(list(calibration), pp, "decode calibration images", progress, cancel)
    checked = _decode_all(list(check), pp, "decode check images", progress, cancel)
    skipped = calib.skipped + [s for s in checked.skipped if s not in calib.skipped]
    if not calib.arrays or not checked.arrays:
        raise StudioError(f"no usable images to {'calibrate' if not calib.arrays else 'check'} on "
                          f"({len(skipped)} could not be read)")
    target = int8_path(fp32)
    if progress is not None:
        progress("quantize", 0, 1)
    with tempfile.TemporaryDirectory(prefix="cns-int8-", dir=fp32.parent) as tmp:
        candidate = quantize_file(fp32, Path(tmp) / target.name, calib.arrays, cancel)
        verdict = _verdict(fp32, candidate, calib, checked, labels_of, progress, cancel, skipped, start)
        if verdict.accepted:
            candidate.replace(target)
        else:
            target.unlink(missing_ok=True)
    atomic_write_json(verdict_path(fp32), verdict.to_json())
    return verdict


def _verdict(fp32: Path, candidate: Path, calib: _Decoded, checked: _Decoded, labels_of, progress, cancel,
             skipped: list[str], start: float) -> Verdict:
    total = len(checked.arrays)

    def tick(phase: str) -> Callable[[int], None]:
        return (lambda done: progress(phase, done, total)) if progress is not None else (lambda done: None)

    reference = _logits(_session(fp32), checked.arrays, cancel, tick("run fp32"))
    quantized = _logits(_session(candidate), checked.arrays, cancel, tick("run int8"))
    top1, top5 = agreement(reference, quantized)
    acc32 = acc8 = None
    if labels_of is not None:
        labels = [labels_of(path) for path in checked.paths]
        acc32, acc8 = _accuracy(reference, labels), _accuracy(quantized, labels)
    accepted, reason = _judge(top1, top5, total, acc32, acc8)
    overlaps = bool({str(p) for p in calib.paths} & {str(p) for p in checked.paths})
    return Verdict(accepted=accepted, reason=reason, top1_agreement=top1, top5_overlap=top5, images=total,
                   val_acc_fp32=acc32, val_acc_int8=acc8, calibration_images=len(calib.arrays),
                   seconds=round(time.perf_counter() - start, 2), check_overlaps_calibration=overlaps,
                   skipped=len(skipped), skipped_names=tuple(skipped[:MAX_SKIPPED_NAMES]), fp32_key=file_key(fp32))


def split_images(images: Sequence[Path], calibrate: int, check: int) -> tuple[list[Path], list[Path], bool]:
    """(calibration, check, overlapping): disjoint sets when there are enough images; otherwise the check set
    takes what the calibration set left and tops up from it (``overlapping`` True: say so to the user)."""
    images = list(images)
    if len(images) >= calibrate + check:
        return images[:calibrate], images[calibrate:calibrate + check], False
    calib = images[:min(calibrate, max(1, len(images) // 2))] if len(images) > 1 else images
    rest = images[len(calib):]
    if len(rest) >= check:
        return calib, rest[:check], False
    return calib, (rest + calib)[:check], True
