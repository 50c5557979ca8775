"""``python main.py quantize MODEL --images FOLDER``: make and check the int8 variant of a model's ONNX export.

The fp32 export is made first when it is missing (the same cached file classify runs through ONNX
Runtime). The int8 variant is calibrated on ``--calibrate`` of the folder's images and checked against
fp32 on ``--check`` others (``core.quantize``): exit 0 when it keeps the answers and is offered, 1 when
it is refused (the reason is printed; fp32 stays in use). For a saved model whose training folder is
still there, the check runs on its validation images, with their labels, so the verdict also compares
validation accuracy. Registered into core.cli's parser: nothing here imports torch, numpy or Pillow at
module level.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from core.cli_common import EXIT_FAILED, EXIT_OK, UsageError, check_model, emit, emit_json, eprint, whole_number
from core.errors import StudioError

__all__ = ["register", "cmd_quantize"]

DEFAULT_CALIBRATE = 100
DEFAULT_CHECK = 200
MAX_IMAGES = 5000


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("quantize", help="make an int8 variant of a model for the CPU, kept only if it agrees with fp32")
    p.add_argument("model", metavar="MODEL", help="registry name or saved model")
    p.add_argument("--images", required=True, metavar="FOLDER", help="your images: calibration and the agreement check")
    p.add_argument("--weights", default="default", help="default | FILE (default: the model's own weights)")
    p.add_argument("--calibrate", type=whole_number, default=DEFAULT_CALIBRATE,
                   help=f"images to calibrate on (default: {DEFAULT_CALIBRATE})")
    p.add_argument("--check", type=whole_number, default=DEFAULT_CHECK,
                   help=f"other images to compare int8 with fp32 on (default: {DEFAULT_CHECK})")
    p.add_argument("--json", action="store_true", help="print the verdict as JSON")
    p.set_defaults(func=cmd_quantize)


def cmd_quantize(args: argparse.Namespace) -> int:
    from core import quantize  # noqa: PLC0415 - lazy: numpy, Pillow and onnxruntime stay out of CLI start-up
    from core.images import collect_images  # noqa: PLC0415 - lazy: numpy + Pillow (~0.3 s)

    if not (1 <= args.calibrate <= MAX_IMAGES and 1 <= args.check <= MAX_IMAGES):
        raise UsageError(f"--calibrate and --check must be between 1 and {MAX_IMAGES}")
    if args.weights == "none":
        raise UsageError("--weights none: a random-init model has nothing worth quantizing")
    spec = check_model(args.model)
    images = sorted(collect_images([args.images]).images, key=str)
    if not images:
        raise StudioError(f"{args.images}: no images found")
    random.Random(0).shuffle(images)  # calibrate on every class of a class-folder layout, not the first ones
    labelled = _validation_images(args.model, spec.categories)
    if labelled:
        calibration, check = images[:args.calibrate], [Path(p) for p in labelled][:args.check]
        overlapping = bool({str(p) for p in calibration} & {str(p) for p in check})
    else:
        calibration, check, overlapping = quantize.split_images(images, args.calibrate, args.check)
    fp32 = _fp32_export(args.model, args.weights)
    verdict = quantize.quantize(fp32, spec.preprocess, calibration, check,
                                labels_of=(lambda path: labelled.get(str(path))) if labelled else None,
                                progress=_phase_printer())
    _report(args, spec.name, fp32, verdict, "validation images of the saved model" if labelled else args.images,
            overlapping)
    return EXIT_OK if verdict.accepted else EXIT_FAILED


def _fp32_export(model: str, weights: str) -> Path:
    """The cached fp32 export classify uses, made now (in a child process) when it is missing."""
    from core.inference import InferenceEngine  # noqa: PLC0415 - lazy: torch (2-5 s) stays out of CLI start-up

    with InferenceEngine(device="cpu", onnx=True) as engine:
        info = engine.load(model, weights)
        if info.untrained:
            raise StudioError(f"{model} has no weights file (random init): nothing worth quantizing")
        path = engine.onnx_file(model, weights, wait=None)
    if path is None:
        raise StudioError(f"could not make the ONNX export of {model} (is the onnx extra installed?)")
    return path


def _validation_images(model: str, classes: tuple[str, ...]) -> dict[str, int]:
    """{path: class index} of a saved model's validation split, re-made from its training folder; {} when it
    is a registry model or the folder is gone or changed."""
    from core.bundle_files import find_bundle  # noqa: PLC0415 - lazy: imports the zoo, so torch (~2 s)
    from core.data import scan_folder, split_samples  # noqa: PLC0415 - as above

    try:
        bundle = find_bundle(model)
        training = bundle.training if bundle is not None else {}
        folder = training.get("data") if isinstance(training, dict) else None
        if not isinstance(folder, str) or not folder or not Path(folder).is_dir():
            return {}
        split = split_samples(scan_folder(folder), float(training.get("val_fraction", 0.2)),
                              int(training.get("seed", 0)))
    except (StudioError, OSError, ValueError, TypeError) as exc:
        eprint(f"note: the saved model's validation images are not used ({exc})")
        return {}
    if tuple(split.classes) != tuple(classes):
        eprint("note: the training folder's classes changed since the model was saved: no accuracy check")
        return {}
    return {str(Path(s.path)): s.label for s in split.val}


def _phase_printer():
    if not sys.stderr.isatty():
        return None

    def report(phase: str, done: int, total: int) -> None:
        sys.stderr.write(f"\r{phase}: {done}/{total}   ")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return report


def _report(args, name: str, fp32: Path, verdict, check_source: str, overlapping: bool) -> None:
    from core import quantize  # noqa: PLC0415 - lazy: see cmd_quantize

    int8 = quantize.int8_path(fp32) if verdict.accepted else None
    if args.json:
        emit_json({"model": name, "accepted": verdict.accepted, "reason": verdict.reason, "fp32": str(fp32),
                   "int8": None if int8 is None else str(int8), "check_images_from": str(check_source),
                   "verdict": verdict.to_json()})
        return
    if verdict.accepted:
        emit(f"int8 accepted for {name}: {verdict.reason}")
        emit(f"int8 model: {int8}")
    else:
        emit(f"int8 refused for {name}, fp32 kept: {verdict.reason}")
    emit(f"calibrated on {verdict.calibration_images} images; checked on {verdict.images} ({check_source}); "
         f"{verdict.seconds:.1f} s")
    if overlapping or verdict.check_overlaps_calibration:
        emit("note: too few images for separate sets: the check reused calibration images")
    for skipped in verdict.skipped_names:
        eprint(f"skipped {skipped}")
