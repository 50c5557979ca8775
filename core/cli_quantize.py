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
import sys

from core.cli_common import EXIT_FAILED, EXIT_OK, UsageError, check_model, emit, emit_json, eprint, whole_number

__all__ = ["register", "cmd_quantize"]

DEFAULT_CALIBRATE = 100  # core.quantize_model's defaults (not imported here: it imports numpy)
DEFAULT_CHECK = 200


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
    from core.quantize_model import MAX_IMAGES, make_int8  # noqa: PLC0415 - lazy: numpy, Pillow, onnxruntime, torch

    if not (1 <= args.calibrate <= MAX_IMAGES and 1 <= args.check <= MAX_IMAGES):
        raise UsageError(f"--calibrate and --check must be between 1 and {MAX_IMAGES}")
    if args.weights == "none":
        raise UsageError("--weights none: a random-init model has nothing worth quantizing")
    check_model(args.model)
    result = make_int8(args.model, args.images, weights=args.weights, calibrate=args.calibrate, check=args.check,
                       progress=_phase_printer())
    for note in result.notes:
        eprint(f"note: {note}")
    _report(args, result)
    return EXIT_OK if result.verdict.accepted else EXIT_FAILED


def _phase_printer():
    if not sys.stderr.isatty():
        return None

    def report(phase: str, done: int, total: int) -> None:
        sys.stderr.write(f"\r{phase}: {done}/{total}   ")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return report


def _report(args, result) -> None:
    name, fp32, verdict, int8 = result.model, result.fp32, result.verdict, result.int8
    check_source, overlapping = result.check_source, result.overlapping
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
