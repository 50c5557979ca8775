"""Headless subcommands over the public core API (``python main.py SUBCOMMAND``).

Exit codes: 0 all good, 1 some inputs failed (the rest still printed),
2 usage errors (unknown model, bad option values). Messages go to stderr,
results to stdout; with ``--json`` stdout is exactly one JSON document.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable, Sequence

from core import __version__
from core.errors import StudioError, UnknownModelError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
SUBCOMMANDS = ("models", "classify", "weights", "explain", "compare", "evaluate", "train", "export")


class UsageError(StudioError):
    """Bad command line: exit code 2."""


def _eprint(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


def _progress_printer(label: str) -> Callable[[int, int | None], None] | None:
    """A download progress line on a terminal's stderr; nothing when piped."""
    if not sys.stderr.isatty():
        return None

    def report(done: int, total: int | None) -> None:
        if total:
            pct = 100 * done / total
            bar = "#" * int(pct / 4)
            sys.stderr.write(f"\r{label} [{bar:<25}] {pct:5.1f}% of {total / 2**20:.1f} MiB")
        else:
            sys.stderr.write(f"\r{label} {done / 2**20:.1f} MiB")
        if total and done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return report


# -- models -----------------------------------------------------------------


def _spec_row(spec) -> dict:
    return {
        "name": spec.name,
        "display_name": spec.display_name,
        "family": spec.family,
        "year": spec.year,
        "paper": spec.paper,
        "input_size": spec.input_size,
        "min_input_size": spec.min_input_size,
        "params": spec.params,
        "gflops": spec.gflops,
        "acc1": spec.acc1,
        "acc5": spec.acc5,
        "pretrained": spec.pretrained,
        "weights_file": spec.weights_file,
        "weights_size": spec.weights_size,
        "num_classes": spec.num_classes,
        "gradcam_layer": spec.gradcam_layer,
    }


def cmd_models(args: argparse.Namespace) -> int:
    from core.zoo import list_specs

    rows = [_spec_row(spec) for spec in list_specs()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    print(f"{'name':<16}{'family':<11}{'year':>5}{'params':>9}{'GFLOPs':>8}{'acc@1':>8}  weights")
    for r in rows:
        acc = f"{r['acc1']:.2f}" if r["acc1"] is not None else "-"
        size = f"{r['weights_size'] / 2**20:.0f} MiB" if r["weights_size"] else "none (untrained)"
        print(
            f"{r['name']:<16}{r['family']:<11}{r['year']:>5}{r['params'] / 1e6:>8.1f}M"
            f"{r['gflops']:>8.2f}{acc:>8}  {size}"
        )
    return EXIT_OK


# -- classify ---------------------------------------------------------------


def _check_model(name: str):
    from core.zoo import get_spec

    try:
        return get_spec(name)
    except UnknownModelError as exc:
        raise UsageError(str(exc)) from None


def cmd_classify(args: argparse.Namespace) -> int:
    from core.images import collect_images
    from core.inference import InferenceEngine, Prediction

    spec = _check_model(args.model)
    if not 1 <= args.topk <= spec.num_classes:
        raise UsageError(f"--topk must be between 1 and {spec.num_classes}, got {args.topk}")
    collection = collect_images(args.paths)
    failed: list[Prediction] = [
        Prediction(path=err.path, model=spec.name, ok=False, error=str(err)) for err in collection.errors
    ]
    for folder in args.paths:
        if Path(folder).is_dir() and not any(_is_under(p, folder) for p in collection.images):
            failed.append(Prediction(path=str(folder), model=spec.name, ok=False, error=f"{folder}: no images found in this folder"))
    if collection.skipped:
        _eprint(f"skipped {len(collection.skipped)} non-image file(s)")
    engine = InferenceEngine(device=args.device)
    try:
        engine.load(spec.name, args.weights, progress=_progress_printer(f"downloading {spec.name}"))
        results = list(engine.classify_iter(collection.images, model=spec.name, weights=args.weights, topk=args.topk))
    finally:
        engine.close()
    ordered = _in_input_order(failed + results, args.paths)
    if any(r.untrained for r in results):
        _eprint(f"note: {spec.name} runs with untrained (random) weights: its predictions mean nothing")
    if args.json:
        print(json.dumps([r.to_json() for r in ordered], indent=2))
    else:
        for r in ordered:
            _print_prediction(r)
    for r in ordered:
        if not r.ok:
            _eprint(f"error: {r.error}")
    return EXIT_OK if all(r.ok for r in ordered) and ordered else EXIT_FAILED


def _is_under(path: Path, folder: str) -> bool:
    try:
        Path(path).resolve().relative_to(Path(folder).resolve())
        return True
    except ValueError:
        return False


def _in_input_order(predictions: list, inputs: Sequence[str]) -> list:
    """Results sorted by the position of the argument they came from, stable within it."""

    def rank(prediction) -> int:
        for i, arg in enumerate(inputs):
            if prediction.path == arg or _is_under(Path(prediction.path), arg):
                return i
        return len(inputs)

    return sorted(predictions, key=rank)


def _print_prediction(r) -> None:
    if not r.ok:
        print(f"{r.path}\n   failed: {r.error}")
        return
    tag = " (untrained)" if r.untrained else ""
    print(f"{r.path}  [{r.model}{tag}, decode {r.decode_ms:.0f} ms, infer {r.infer_ms:.0f} ms]")
    for rank, t in enumerate(r.topk, 1):
        print(f"  {rank:>2}. {t.label:<32} {100 * t.prob:6.2f}%")


# -- weights ----------------------------------------------------------------


def cmd_weights(args: argparse.Namespace) -> int:
    from core import weights

    if args.action == "list":
        rows = []
        for spec, path in weights.list_weights():
            rows.append({"model": spec.name, "file": spec.weights_file, "cached": path is not None,
                         "path": str(path) if path else None, "size": spec.weights_size})
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            print(f"cache: {weights.checkpoints_dir()}")
            for r in rows:
                state = "cached" if r["cached"] else "not downloaded"
                print(f"{r['model']:<16}{r['file']:<36}{(r['size'] or 0) / 2**20:>7.0f} MiB  {state}")
        return EXIT_OK
    if args.model:
        _check_model(args.model)
    spec, path = weights.import_weights(args.file, model=args.model)
    if args.json:
        print(json.dumps({"model": spec.name, "path": str(path)}))
    else:
        print(f"imported {args.file} as {spec.name} weights: {path}")
    return EXIT_OK


# -- explain ----------------------------------------------------------------


def cmd_explain(args: argparse.Namespace) -> int:
    from core.explain import list_layers
    from core.images import load_image
    from core.inference import InferenceEngine
    from core.io import atomic_write_bytes, atomic_write_text, png_bytes

    spec = _check_model(args.model)
    layers = list_layers(spec)
    names = {layer.name for layer in layers}
    for option, layer in (("--layer", args.layer), ("--cam-layer", args.cam_layer)):
        if layer is not None and layer not in names:
            raise UsageError(f"{option}: model '{spec.name}' has no layer '{layer}' (see layers.json for the list)")
    if args.cam_class is not None and not 0 <= args.cam_class < spec.num_classes:
        raise UsageError(f"--cam-class must be between 0 and {spec.num_classes - 1}, got {args.cam_class}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "layers.json", json.dumps([layer.to_json() for layer in layers], indent=2))
    photo = load_image(args.image)  # a bad image fails here with its name and reason
    engine = InferenceEngine(device=args.device, onnx=False)
    try:
        engine.load(spec.name, args.weights, progress=_progress_printer(f"downloading {spec.name}"))
        report = explain_image(engine, spec, args.image, photo, weights=args.weights, layer=args.layer or spec.stages[-1],
                               cam_layer=args.cam_layer or spec.gradcam_layer, cam_class=args.cam_class)
    finally:
        engine.close()
    for name, image in report.pop("images").items():
        atomic_write_bytes(out / name, png_bytes(image))
    if report["untrained"]:
        _eprint(f"note: {spec.name} runs with untrained (random) weights: its Grad-CAM means nothing")
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{args.image}: layer {report['layer']} {report['layer_shape']}, Grad-CAM of "
              f"'{report['cam_label']}' ({100 * report['cam_prob']:.1f}%) at {report['cam_layer']}")
        print(f"wrote {out / 'features.png'}, {out / 'gradcam.png'}, {out / 'layers.json'}")
    return EXIT_OK


def explain_image(engine, spec, path, photo, *, weights: str, layer: str, cam_layer: str, cam_class: int | None) -> dict:
    """Feature grid of ``layer`` and Grad-CAM overlay of one image: the report plus its pictures."""
    from PIL import Image

    from core import render
    from core.explain import capture, gradcam, rank_channels

    module, _, info = engine.module(spec.name, weights)
    batch = engine.prepare(path, spec)[None].to(engine.device)
    activation = capture(module, layer, batch, model_name=spec.name)[0]
    order = rank_channels(activation) if activation.dim() == 3 else []
    grid = render.channel_grid(activation, order) if order else render.vector_image(activation)

    cam = gradcam(module, cam_layer, batch, class_index=cam_class, model_name=spec.name)
    view = render.center_crop_view(photo, spec.preprocess.resize_size, spec.preprocess.crop_size)
    images = {"features.png": Image.fromarray(grid), "gradcam.png": render.overlay(view, cam.heatmap, opacity=0.5)}
    return {
        "image": str(path), "model": spec.name, "untrained": info.untrained,
        "layer": layer, "layer_shape": list(activation.shape), "channels_shown": min(64, len(order)),
        "strongest_channels": order[:16], "cam_layer": cam_layer, "cam_class": cam.class_index,
        "cam_label": spec.categories[cam.class_index], "cam_prob": cam.probability, "images": images,
    }


# -- compare and evaluate -----------------------------------------------------


def _model_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise UsageError("--models needs at least one model name, e.g. --models resnet18,vgg16")
    return [_check_model(name).name for name in names]


def cmd_compare(args: argparse.Namespace) -> int:
    from core.compare import compare
    from core.images import collect_images
    from core.inference import InferenceEngine

    models = _model_list(args.models)
    if not 1 <= args.topk <= 1000:
        raise UsageError(f"--topk must be between 1 and 1000, got {args.topk}")
    collection = collect_images(args.paths)
    for err in collection.errors:
        _eprint(f"error: {err}")
    if not collection.images:
        _eprint("error: no images to compare on")
        return EXIT_FAILED
    engine = InferenceEngine(device=args.device, onnx=False, cache_size=1)
    try:
        rows = compare(engine, collection.images, models, weights=args.weights, topk=args.topk, runs=args.runs,
                       progress=_step_printer())
    finally:
        engine.close()
    if args.json:
        print(json.dumps([row.to_json() for row in rows], indent=2))
    else:
        _print_comparison(rows)
    failed = collection.errors or any(not p.ok for row in rows for p in row.predictions)
    return EXIT_FAILED if failed else EXIT_OK


def _step_printer() -> Callable[[int, int, str], None] | None:
    if not sys.stderr.isatty():
        return None
    return lambda done, total, what: _eprint(f"[{done}/{total}] {what}")


def _print_comparison(rows) -> None:
    print(f"{'model':<16}{'latency ms':>11}{'params':>9}{'GFLOPs':>8}{'acc@1':>7}  weights")
    for row in rows:
        acc = f"{row.acc1:.1f}" if row.acc1 is not None else "-"
        print(f"{row.model:<16}{row.latency_ms:>11.1f}{row.params / 1e6:>8.1f}M{row.gflops:>8.2f}{acc:>7}  "
              f"{'untrained' if row.untrained else 'pretrained'}")
    for i, first in enumerate(rows[0].predictions):
        print(f"\n{first.path}")
        for row in rows:
            p = row.predictions[i]
            text = f"{p.topk[0].label} ({100 * p.topk[0].prob:.1f}%)" if p.ok else f"failed: {p.error}"
            print(f"  {row.model:<16}{text}")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from core.compare import evaluate
    from core.inference import InferenceEngine

    models = _model_list(args.models)
    engine = InferenceEngine(device=args.device, onnx=False, cache_size=1)
    try:
        results = [evaluate(engine, args.folder, name, weights=args.weights) for name in models]
    finally:
        engine.close()
    if args.json:
        print(json.dumps([r.to_json() for r in results], indent=2))
    else:
        print(f"{'model':<16}{'top-1':>8}{'top-5':>8}{'images':>8}{'img/s':>8}")
        for r in results:
            tag = "  (untrained)" if r.untrained else ""
            print(f"{r.model:<16}{100 * r.top1:>7.1f}%{100 * r.top5:>7.1f}%{r.images:>8}{r.images_per_second:>8.1f}{tag}")
            for cls, acc in r.per_class.items():
                print(f"    {cls:<28}{100 * acc:6.1f}%")
    return EXIT_FAILED if any(r.failed for r in results) else EXIT_OK


# -- parser -----------------------------------------------------------------


def _positive_or_zero_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convnet-studio", description="ConvNet Studio: classic CNNs on your photos.")
    parser.add_argument("--version", action="version", version=f"ConvNet Studio {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list the model registry")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("classify", help="classify images or folders of images")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (searched recursively)")
    p.add_argument("--model", default="resnet50", help="registry name (default: resnet50)")
    p.add_argument("--weights", default="default", help="default | none | FILE (default: the pretrained weights)")
    p.add_argument("--topk", type=_positive_or_zero_int, default=5, help="labels per image (default: 5)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--json", action="store_true", help="print a JSON list, one object per image")
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("weights", help="list or import pretrained weights")
    wsub = p.add_subparsers(dest="action", required=True)
    w = wsub.add_parser("list", help="registry weights and whether they are cached")
    w.add_argument("--json", action="store_true")
    w = wsub.add_parser("import", help="verify a weights file and install it into the cache")
    w.add_argument("file", help="a .pth state dict")
    w.add_argument("--model", default=None, help="architecture (detected when omitted)")
    w.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_weights)

    p = sub.add_parser("explain", help="feature maps and Grad-CAM of one image")
    p.add_argument("image", help="an image file")
    p.add_argument("--model", default="resnet50", help="registry name (default: resnet50)")
    p.add_argument("--weights", default="default", help="default | none | FILE")
    p.add_argument("--layer", default=None, help="layer for features.png (default: the last stage)")
    p.add_argument("--cam-layer", default=None, help="Grad-CAM target layer (default: the registry's choice)")
    p.add_argument("--cam-class", type=_positive_or_zero_int, default=None, help="class index (default: top-1)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--out", required=True, help="folder for features.png, gradcam.png, layers.json")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("compare", help="several models on the same images: predictions, latency, size")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders")
    p.add_argument("--models", required=True, help="comma-separated registry names, e.g. alexnet,vgg16,resnet50")
    p.add_argument("--weights", default="default", choices=["default", "none"])
    p.add_argument("--topk", type=_positive_or_zero_int, default=5)
    p.add_argument("--runs", type=int, default=5, help="timed runs per model for the latency median (default: 5)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("evaluate", help="top-1/top-5 accuracy on a folder of class subfolders")
    p.add_argument("folder", help="one subfolder per class, named like the model's categories")
    p.add_argument("--models", required=True, help="comma-separated registry names")
    p.add_argument("--weights", default="default", choices=["default", "none"])
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    from core.training.cli import register

    register(sub)
    return parser


def run_cli(argv: Sequence[str]) -> int:
    """Parse and run; every StudioError becomes one clear stderr line, never a traceback."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exc:  # argparse: --help/--version exit 0, bad usage exits 2
        return int(exc.code or 0)
    try:
        return args.func(args)
    except UsageError as exc:
        _eprint(f"error: {exc}")
        return EXIT_USAGE
    except StudioError as exc:
        _eprint(f"error: {exc}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        _eprint("interrupted")
        return 130
