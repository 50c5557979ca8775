"""``classify`` and ``explain``: results stream out as they are finished.

classify prints each image's result as soon as it is done (text: a block per
image; ``--jsonl``: one JSON object per line), in input order; ``--json``
keeps its single document, printed at the end. When the model cannot be
loaded (no weights offline, a bad ``--weights`` file) every image fails with
that reason: stdout still holds one result per image. SIGINT/SIGTERM stop
the run: what was finished is printed (a valid document with ``--json``) and
the exit status is 130/143.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from core.cli_common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    check_device,
    check_model,
    emit,
    emit_json,
    eprint,
    plain_error,
    progress_printer,
    resolve_topk,
    weights_failure,
)
from core.errors import StudioError
from core.io import check_user_target, png_bytes, write_user_file
from core.prediction import Prediction
from core.textout import json_text

# core.inference and core.explain (torch, 2-5 s), core.images and Pillow (numpy + Pillow, ~0.3 s) are imported
# inside the commands that need them: `models`, `--help` and every other subcommand import this module at start-up.

UNTRAINED_NOTE = "note: {} runs with untrained (random) weights: its {} mean nothing"


# -- classify -----------------------------------------------------------------------


def cmd_classify(args: argparse.Namespace) -> int:
    from core.images import collect_images  # noqa: PLC0415 - lazy: numpy + Pillow (~0.3 s) stay out of CLI start-up

    route = _quick_route(args)
    if route is None:
        route = _torch_route(args)
    name, topk, engine, results_of, failure_of, note = route
    if note:
        eprint(f"note: {note}")
    collection = collect_images(args.paths)
    failed = [Prediction(path=err.path, model=name, ok=False, error=str(err)) for err in collection.errors]
    for folder in args.paths:
        if Path(folder).is_dir() and not any(_is_under(p, folder) for p in collection.images):
            failed.append(Prediction(path=str(folder), model=name, ok=False,
                                     error=f"{folder}: no images found in this folder"))
    if collection.skipped:
        eprint(f"skipped {len(collection.skipped)} non-image file{'s' * (len(collection.skipped) != 1)}")
    if collection.left_out:
        first = collection.left_out[0]
        eprint(f"not followed: {len(collection.left_out)} link{'s' * (len(collection.left_out) != 1)} to folders, "
               f"links leaving the folder or second paths to the same file (e.g. {first})")
    entries = _in_input_order([(os.fspath(p), None) for p in collection.images]
                              + [(p.path, p) for p in failed], args.paths)
    total = len(entries)
    finished: list = []
    load_failure: list[str] = []  # the one reason every remaining image failed, said once on stderr
    try:
        for prediction in _stream(name, entries, lambda images: results_of(images, topk), failure_of, load_failure):
            finished.append(prediction)
            _show(prediction, args, load_failure)
    except KeyboardInterrupt as exc:
        code = getattr(exc, "code", 130)
        if args.json:
            emit_json([p.to_json() for p in finished])
        eprint(f"interrupted: {len(finished)} of {total} images finished and printed")
        return code
    finally:
        engine.close()
    if args.json:
        emit_json([p.to_json() for p in finished])
    if any(p.ok and p.untrained for p in finished):
        eprint(UNTRAINED_NOTE.format(name, "predictions"))
    return EXIT_OK if finished and all(p.ok for p in finished) else EXIT_FAILED


# (model name, top-k, engine to close, images + topk -> Predictions, exception -> reason, precision note or None)
Route = tuple[str, int, Any, Callable[[list[str], int], Iterator], Callable[[BaseException], str], str | None]


def _torch_route(args: argparse.Namespace) -> Route:
    from core.inference import InferenceEngine  # noqa: PLC0415 - lazy: torch (2-5 s) stays out of CLI start-up

    spec = check_model(args.model)
    topk = resolve_topk(args.topk, spec.num_classes, spec.name)
    check_device(args.device)
    engine = InferenceEngine(device=args.device, precision=args.precision)

    def results_of(images: list[str], k: int) -> Iterator:
        return engine.classify_iter(images, model=spec.name, weights=args.weights, topk=k,
                                    progress=progress_printer(f"downloading {spec.name}"))

    note = engine.precision_note(spec.name, args.weights)
    return spec.name, topk, engine, results_of, lambda exc: weights_failure(spec, args.weights, exc), note


def _quick_route(args: argparse.Namespace) -> Route | None:
    """ONNX Runtime on a current export, torch never imported (core.quick); None: the torch route.

    Only where torch would run on the CPU too: ``--device cpu``, or ``auto`` on a machine without
    a GPU driver. Unknown names, ``--weights none`` and models without a current export go to torch,
    which also gives their errors.
    """
    from core import quick  # noqa: PLC0415 - lazy: numpy + Pillow (~0.3 s) stay out of CLI start-up

    if args.device not in ("auto", "cpu") or (args.device == "auto" and _gpu_driver_present()):
        return None
    model = quick.find(args.model, args.weights)
    if model is None:
        return None
    topk = resolve_topk(args.topk, model.num_classes, model.name)
    engine = quick.QuickEngine()
    try:
        engine.session(model, args.precision)  # opened before anything is printed: an export ORT refuses: torch
    except StudioError:
        engine.close()
        return None

    def results_of(images: list[str], k: int) -> Iterator:
        return engine.classify_iter(images, model=model, topk=k, precision=args.precision)

    return (model.name, topk, engine, results_of, lambda exc: plain_error(exc, model=model.name),
            quick.note(model, args.precision))


def _gpu_driver_present() -> bool:
    """Whether ``--device auto`` may mean a GPU for torch (NVIDIA or ROCm driver, Apple silicon), torch-free."""
    if sys.platform == "darwin":
        return platform.machine() == "arm64"
    return any(os.path.exists(p) for p in ("/proc/driver/nvidia/version", "/dev/nvidia0", "/dev/kfd"))


def _stream(name: str, entries: list, results_of: Callable[[list[str]], Iterator],
            failure_of: Callable[[BaseException], str], load_failure: list[str]) -> Iterator:
    """Yield one Prediction per entry, in order: known failures as they come, images from the engine.

    If the model cannot be loaded, or a batch fails in a way the engine does not
    catch (out of memory), every image still waiting gets that reason.
    """
    images = [path for path, known in entries if known is None]
    results = results_of(images)
    reason = None
    for path, known in entries:
        if known is not None:
            yield known
            continue
        if reason is None:
            try:
                result = next(results, None)
            except (StudioError, RuntimeError, MemoryError, OSError) as exc:
                result, reason = None, failure_of(exc)
            if result is not None:
                yield result
                continue
            reason = reason or f"{name} stopped before reaching this image"
            load_failure.append(reason)
            eprint(f"error: {reason}")
        yield Prediction(path=path, model=name, ok=False, error=reason)


def _show(prediction, args: argparse.Namespace, load_failure: list[str]) -> None:
    if args.jsonl:
        emit_json(prediction.to_json(), lines=True)
    elif not args.json:
        _print_prediction(prediction)
    if not prediction.ok and prediction.error not in load_failure:
        eprint(f"error: {prediction.error}")


def _is_under(path, folder: str) -> bool:
    try:
        Path(path).resolve().relative_to(Path(folder).resolve())
        return True
    except (ValueError, OSError, RuntimeError):
        return False


def _in_input_order(entries: list, inputs: Sequence[str]) -> list:
    """Entries (path first) sorted by the position of the argument they came from, stable within it."""

    def rank(entry) -> int:
        for i, arg in enumerate(inputs):
            if entry[0] == arg or _is_under(Path(entry[0]), arg):
                return i
        return len(inputs)

    return sorted(entries, key=rank)


def _print_prediction(r) -> None:
    if not r.ok:
        emit(r.path)
        emit(f"   failed: {r.error}")
        return
    tag = " (untrained)" if r.untrained else ""
    emit(f"{r.path}  [{r.model}{tag}, decode {r.decode_ms:.0f} ms, infer {r.infer_ms:.0f} ms]")
    for rank, t in enumerate(r.topk, 1):
        emit(f"  {rank:>2}. {t.label:<32} {100 * t.prob:6.2f}%")


# -- explain ------------------------------------------------------------------------

OUTPUTS = ("features.png", "gradcam.png", "layers.json")


def cmd_explain(args: argparse.Namespace) -> int:
    from core.explain import list_layers  # noqa: PLC0415 - lazy: torch (2-5 s) stays out of CLI start-up
    from core.images import load_image  # noqa: PLC0415 - lazy: numpy + Pillow (~0.3 s) stay out of CLI start-up
    from core.inference import InferenceEngine  # noqa: PLC0415 - as above

    spec = check_model(args.model)
    layers = list_layers(spec)
    _check_layers(spec, layers, args)
    check_device(args.device)
    out = _out_folder(args.out, force=args.force)
    failure = {"image": str(args.image), "ok": False, "model": spec.name, "untrained": None}
    try:
        photo = load_image(args.image)
    except StudioError as exc:
        return _explain_failed(args, {**failure, "error": str(exc)})
    engine = InferenceEngine(device=args.device, onnx=False)
    try:
        try:
            engine.load(spec.name, args.weights, progress=progress_printer(f"downloading {spec.name}"))
        except StudioError as exc:
            return _explain_failed(args, {**failure, "error": weights_failure(spec, args.weights, exc)})
        try:
            report = explain_image(engine, spec, args.image, photo, weights=args.weights,
                                   layer=args.layer or spec.stages[-1],
                                   cam_layer=args.cam_layer or spec.gradcam_layer, cam_class=args.cam_class)
        except (RuntimeError, MemoryError) as exc:
            return _explain_failed(args, {**failure, "error": plain_error(exc, model=spec.name)})
    finally:
        engine.close()
    # written only once everything worked, so a failed run leaves nothing that needs --force next time
    write_user_file(out / "layers.json", json_text([layer.to_json() for layer in layers]),
                    overwrite=args.force, hint="use --force to replace it")
    for name, image in report.pop("images").items():
        write_user_file(out / name, png_bytes(image), overwrite=args.force, hint="use --force to replace it")
    report["outputs"] = [str(out / name) for name in OUTPUTS]
    if report["untrained"]:
        eprint(UNTRAINED_NOTE.format(spec.name, "Grad-CAM"))
    if args.json:
        emit_json(report)
    else:
        emit(f"{args.image}: layer {report['layer']} {report['layer_shape']}, Grad-CAM of "
             f"'{report['cam_label']}' ({100 * report['cam_prob']:.1f}%) at {report['cam_layer']}")
        emit(f"wrote {', '.join(report['outputs'])}")
    return EXIT_OK


def _explain_failed(args: argparse.Namespace, report: dict) -> int:
    eprint(f"error: {report['error']}")
    if args.json:
        emit_json(report)
    else:
        emit(args.image)
        emit(f"   failed: {report['error']}")
    return EXIT_FAILED


def _out_folder(text: str, *, force: bool) -> Path:
    """``--out`` must be a folder or a new name; the three outputs inside it may only replace regular files
    (and those only with ``--force``): all of it is checked before any work starts."""
    out = Path(text)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {text}: this is a file, not a folder; give a folder (or a new name for one) "
                         f"to write {', '.join(OUTPUTS)} into")
    for name in OUTPUTS:
        target = out / name
        if target.is_symlink() or (target.exists() and not target.is_file()):
            raise UsageError(f"--out {text}: {target} exists and is not a regular file; it is left alone, "
                             "choose another folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StudioError(f"cannot create the folder {out}: {exc.strerror or exc}") from None
    for name in OUTPUTS:
        check_user_target(out / name, overwrite=force, hint="use --force to replace it")
    return out


def _check_layers(spec, layers, args: argparse.Namespace) -> None:
    names = {layer.name: layer for layer in layers}
    for option, layer in (("--layer", args.layer), ("--cam-layer", args.cam_layer)):
        if layer is not None and layer not in names:
            raise UsageError(f"{option}: model '{spec.name}' has no layer '{layer}'; "
                             f"layers with a spatial map: {_spatial_list(layers)}")
    if args.cam_layer is not None and not _spatial(names[args.cam_layer], _min_side(layers)):
        shape = "x".join(map(str, names[args.cam_layer].shape)) or "a scalar"
        raise UsageError(f"--cam-layer {args.cam_layer}: its output ({shape}) has no spatial map, so Grad-CAM "
                         f"cannot show where anything is; choose one of: {_spatial_list(layers)}")
    if args.cam_class is not None and not 0 <= args.cam_class < spec.num_classes:
        raise UsageError(f"--cam-class must be between 0 and {spec.num_classes - 1}, got {args.cam_class}")


def _spatial(layer, min_side: int = 2) -> bool:
    """Has a map Grad-CAM can point into: channels x height x width, at least 2x2 (1x1 only if nothing is larger)."""
    return len(layer.shape) == 3 and min(layer.shape[1:]) >= min_side


def _min_side(layers) -> int:
    return 2 if any(_spatial(layer, 2) for layer in layers) else 1


def _spatial_list(layers, limit: int = 12) -> str:
    side = _min_side(layers)
    good = sorted((layer for layer in layers if _spatial(layer, side)), key=lambda layer: layer.depth)
    names = [layer.name for layer in good[:limit]]
    more = f" and {len(good) - limit} more (every layer with its shape is in layers.json)" if len(good) > limit else ""
    return ", ".join(names) + more


def explain_image(engine, spec, path, photo, *, weights: str, layer: str, cam_layer: str,
                  cam_class: int | None) -> dict:
    """Feature grid of ``layer`` and Grad-CAM overlay of one image: the report plus its pictures.

    Both come from ``core.explain.ExplainSession``, as in the window and Compare; the overlay is
    drawn over ``photo`` (decoded in full, not draft-mode) for a sharp ``gradcam.png``.
    """
    from PIL import Image  # noqa: PLC0415 - lazy: Pillow stays out of CLI start-up (numpy + Pillow ~0.3 s)

    from core import render  # noqa: PLC0415 - as above
    from core.explain import ExplainSession  # noqa: PLC0415 - lazy: torch (2-5 s) stays out of CLI start-up

    session = ExplainSession(engine, view_scale=None)
    maps = session.feature_maps(spec.name, weights, str(path), layer)
    cam = session.gradcam(spec.name, weights, str(path), cam_layer, cam_class)
    view = render.center_crop_view(photo, spec.preprocess.resize_size, spec.preprocess.crop_size)
    images = {"features.png": Image.fromarray(maps.picture()),
              "gradcam.png": render.overlay(view, cam.heatmap, opacity=0.5)}
    shown = [] if maps.is_vector else list(maps.channels)
    return {
        "image": str(path), "ok": True, "error": None, "model": spec.name, "untrained": cam.untrained,
        "layer": layer, "layer_shape": list(maps.shape), "channels_shown": len(shown),
        "strongest_channels": shown[:16], "cam_layer": cam.layer, "cam_class": cam.class_index,
        "cam_label": cam.label, "cam_prob": cam.probability, "images": images,
    }
