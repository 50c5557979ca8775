"""Headless subcommands over the public core API (``python main.py SUBCOMMAND``).

Exit codes: 0 all good, 1 some inputs failed (the rest still printed) or a
runtime failure, 2 usage errors (unknown model, bad option values, a device
this machine lacks), 130/143 interrupted by SIGINT/SIGTERM (what was finished
is printed), 141 the reader of stdout went away (``... | head``; quietly).
Messages go to stderr, results to stdout; with ``--json`` stdout is exactly
one strict JSON document, also when the command fails: a command that stops
before it has results prints ``{"ok": false, "error": ..., "exit_code": N}``.
Text output is sanitised (``core.textout.clean``): names cannot forge lines.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
from collections.abc import Sequence

from core import __version__
from core.bakeoff.cli import register as register_bakeoff
from core.cli_classify import cmd_classify, cmd_explain, explain_image  # noqa: F401  (explain_image: re-exported)
from core.cli_common import (  # noqa: F401  (EXIT_*, UsageError: re-exported for callers of core.cli)
    EXIT_FAILED,
    EXIT_OK,
    EXIT_PIPE,
    EXIT_USAGE,
    Interrupted,
    UsageError,
    check_model,
    debug,
    documents_printed,
    emit,
    emit_json,
    eprint,
    plain_error,
    progress_printer,
    whole_number,
)
from core.cli_compare import cmd_compare, cmd_evaluate
from core.cli_quantize import register as register_quantize
from core.defaults import DEFAULT_MODEL, SUBCOMMANDS  # noqa: F401 - SUBCOMMANDS: re-exported (main.py reads it there)
from core.doctor.cli import register as register_doctor
from core.errors import StudioError
from core.live.cli import register as register_live
from core.textout import human_count, human_size
from core.training.cli import register as register_training
from core.training.manage_cli import register as register_storage

_eprint = eprint
_check_model = check_model
_progress_printer = progress_printer


# -- models -----------------------------------------------------------------


def _spec_row(spec) -> dict:
    return {
        "name": spec.name,
        "kind": "registry",
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


def _fraction(value) -> float | None:
    """A bundle's stored accuracy (0..1) if it is one, else None (meta.json is untrusted)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1:
        return float(value)
    return None


def _bundle_row(bundle) -> dict:
    size = None
    try:
        size = bundle.weights_path.stat().st_size
    except OSError:
        pass
    return {
        "name": bundle.name,
        "kind": "saved",
        "display_name": bundle.display_name,
        "family": "My models",
        "architecture": bundle.architecture,
        "folder": str(bundle.folder),
        "classes": list(bundle.classes),
        "num_classes": len(bundle.classes),
        "val_acc": _fraction(bundle.metrics.get("val_acc")),
        "params": bundle.params if isinstance(bundle.params, int) and 0 <= bundle.params < 10**15 else None,
        "weights_size": size,
        "created": bundle.created,
    }


def _saved_models() -> list[dict]:
    from core.bundle_files import list_bundles  # noqa: PLC0415 - lazy: imports the zoo, so torch (~2 s)

    return [_bundle_row(bundle) for bundle in list_bundles()]


def cmd_models(args: argparse.Namespace) -> int:
    from core.bundle_files import models_dir  # noqa: PLC0415 - lazy: imports the zoo, so torch (~2 s)
    from core.zoo import list_specs  # noqa: PLC0415 - as above

    rows = [_spec_row(spec) for spec in list_specs()]
    saved = _saved_models()
    if args.json:
        emit_json(rows + saved)
        return EXIT_OK
    emit(f"{'name':<16}{'family':<11}{'year':>5}{'params':>10}{'GFLOPs':>8}{'acc@1':>8}  weights")
    for r in rows:
        acc = f"{r['acc1']:.2f}" if r["acc1"] is not None else "—"
        size = human_size(r["weights_size"]) if r["weights_size"] else "none (runs untrained)"
        emit(f"{r['name']:<16}{r['family']:<11}{r['year']:>5}{human_count(r['params']):>10}"
             f"{r['gflops']:>8.2f}{acc:>8}  {size}")
    emit()
    if not saved:
        emit(f"My models: none saved yet (train one: python main.py train FOLDER); folder {models_dir()}")
        return EXIT_OK
    emit(f"My models ({models_dir()}):")
    emit(f"{'name':<24}{'based on':<16}{'classes':>8}{'val acc':>9}{'size':>10}  class names")
    for r in saved:
        acc = f"{100 * r['val_acc']:.1f}%" if r["val_acc"] is not None else "—"
        names = ", ".join(r["classes"][:6]) + (f", … ({r['num_classes'] - 6} more)" if r["num_classes"] > 6 else "")
        emit(f"{r['name']:<24}{r['architecture']:<16}{r['num_classes']:>8}{acc:>9}{human_size(r['weights_size']):>10}"
             f"  {names}")
    return EXIT_OK


# -- weights ----------------------------------------------------------------


def cmd_weights(args: argparse.Namespace) -> int:
    from core import weights, weights_store  # noqa: PLC0415 - lazy: core.weights imports torch (~2 s)

    if args.action == "list":
        rows = weights.installed_rows()
        if args.json:
            emit_json(rows)
            return EXIT_OK
        emit(f"official weights (torch hub cache): {weights.checkpoints_dir()}")
        emit(f"imported weights: {weights_store.imports_dir()}")
        for r in rows:
            size = f"{human_size(r['size'] or 0):>10}"
            use = "  (in use)" if r["in_use"] else ""
            if r["kind"] == "imported":
                emit(f"{r['model']:<16}{'imported ' + (r['source_name'] or ''):<44}{size}  {r['imported_at']}{use}")
            else:
                state = r["status"] if r["cached"] else "not downloaded"
                emit(f"{r['model']:<16}{r['file']:<44}{size}  {state}{use}")
        for path in sorted({r["path"] for r in rows if r["status"].startswith("hash mismatch")}):
            eprint(f"warning: {path} is not the official file (its SHA-256 does not match its name); the app uses "
                           "it as unverified weights. Delete it, then download or import the official file.")
        return EXIT_OK
    if args.model:
        _check_model(args.model)
    spec, path = weights.import_weights(args.file, model=args.model)
    official = path.parent == weights.checkpoints_dir()
    if args.json:
        emit_json({"model": spec.name, "path": str(path), "kind": "official" if official else "imported"})
    elif official:
        emit(f"imported {args.file} as {spec.name} weights: its SHA-256 matches the official file, "
             f"installed as {path}")
    else:
        emit(f"imported {args.file} as {spec.name} weights: {path}")
        emit(f"(not the official file: its SHA-256 does not match {spec.weights_file}; "
              f"{spec.name} now uses it and is labelled 'imported')")
    return EXIT_OK


# -- parser -----------------------------------------------------------------


_positive_or_zero_int = whole_number
DEVICES = ["auto", "cpu", "cuda", "mps"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convnet-studio", description="ConvNet Studio: classic CNNs on your photos.")
    parser.add_argument("--version", action="version", version=f"ConvNet Studio {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list the model registry, then your saved models")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_models)
    models_parser = p

    p = sub.add_parser("classify", help="classify images or folders of images")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (searched recursively)")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"registry name (default: {DEFAULT_MODEL})")
    p.add_argument("--weights", default="default", help="default | none | FILE (default: the pretrained weights)")
    p.add_argument("--topk", type=whole_number, default=None,
                   help="labels per image (default: 5, or the number of classes if fewer)")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "int8"),
                   help="CPU ONNX Runtime file to run: int8 where `quantize` accepted it (auto, the default), "
                        "fp32, or int8 (fp32 with a note when it has none)")
    output = p.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print one JSON list, one object per image, at the end")
    output.add_argument("--jsonl", action="store_true", help="print JSON Lines: one object per image as it finishes")
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
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"registry name (default: {DEFAULT_MODEL})")
    p.add_argument("--weights", default="default", help="default | none | FILE")
    p.add_argument("--layer", default=None, help="layer for features.png (default: the last stage)")
    p.add_argument("--cam-layer", default=None, help="Grad-CAM target layer (default: the registry's choice)")
    p.add_argument("--cam-class", type=whole_number, default=None, help="class index (default: top-1)")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--out", required=True, help="folder (existing or new) for features.png, gradcam.png, layers.json")
    p.add_argument("--force", action="store_true", help="replace those files if they exist")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("compare", help="several models on the same images: predictions, latency, size")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders")
    p.add_argument("--models", required=True, help="comma-separated registry names, e.g. alexnet,vgg16,resnet50")
    p.add_argument("--weights", default="default", choices=["default", "none"])
    p.add_argument("--topk", type=whole_number, default=None, help="labels per image (default: 5)")
    p.add_argument("--runs", type=whole_number, default=5,
                   help="timed runs per model for the latency median, 1-100 (default: 5)")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("evaluate", help="top-1/top-5 accuracy on a folder of class subfolders")
    p.add_argument("folder", help="one subfolder per class, named like the model's categories")
    p.add_argument("--models", required=True, help="comma-separated registry names")
    p.add_argument("--weights", default="default", choices=["default", "none"])
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    register_training(sub)
    register_bakeoff(sub)
    register_doctor(sub)
    register_live(sub)
    register_quantize(sub)
    register_storage(sub, models_parser)  # models saved / models delete NAME / runs list / runs delete NAME
    return parser


def run_cli(argv: Sequence[str]) -> int:
    """Parse and run one subcommand; never a traceback, whatever happens.

    StudioError -> one clear stderr line (exit 1, 2 for UsageError); any other
    exception -> a plain sentence (``plain_error``); SIGTERM is handled like
    SIGINT (exit 143 and 130); a closed stdout pipe ends quietly with 141.
    With ``--json`` a failure before any result still prints one JSON document.
    """
    argv = list(argv)
    wants_json = "--json" in argv or "--jsonl" in argv
    before = documents_printed()
    try:
        with _terminate_as_interrupt():
            code = _run(argv, wants_json, before)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_PIPE
    except KeyboardInterrupt as exc:  # Ctrl+C or SIGTERM, also while torch was still loading
        code = getattr(exc, "code", 130)
        eprint("interrupted")
        if wants_json and ("--jsonl" in argv or documents_printed() == before):
            _json_failure("interrupted", code, lines="--jsonl" in argv)
        return code


def _run(argv: list[str], wants_json: bool, before: int) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help/--version exit 0, bad usage exits 2 (its message on stderr)
        code = int(exc.code or 0)
        if code and wants_json:
            _json_failure("bad command line (see the usage message on stderr)", code, lines="--jsonl" in argv)
        return code
    lines = bool(getattr(args, "jsonl", False))
    wants_json = bool(getattr(args, "json", False) or lines)
    try:
        return args.func(args)
    except UsageError as exc:
        message, code = str(exc), EXIT_USAGE
    except StudioError as exc:
        message, code = str(exc), EXIT_FAILED
    except (BrokenPipeError, KeyboardInterrupt):  # run_cli handles both
        raise
    except (Exception, RecursionError) as exc:  # noqa: BLE001 - the CLI boundary: a sentence, not a traceback
        if debug():
            traceback.print_exc()
        message, code = plain_error(exc), EXIT_FAILED
    eprint(f"error: {message}")
    if wants_json and (lines or documents_printed() == before):  # --json: one document, never a second
        _json_failure(message, code, lines=lines)
    return code


def _json_failure(message: str, code: int, *, lines: bool = False) -> None:
    emit_json({"ok": False, "error": message, "exit_code": code}, lines=lines)


def _silence_stdout() -> None:
    """The reader went away: point stdout at /dev/null so the interpreter's final flush is quiet too."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


class _terminate_as_interrupt:
    """While a command runs, SIGTERM raises ``Interrupted`` (a KeyboardInterrupt) in the main thread,
    so every handler of Ctrl+C (print what is finished, keep the checkpoint) handles it too."""

    def __enter__(self):
        self.previous = None
        try:
            self.previous = signal.signal(signal.SIGTERM, self._raise)
        except (ValueError, OSError):  # not the main thread: leave signals alone
            pass
        return self

    @staticmethod
    def _raise(signum, _frame) -> None:
        raise Interrupted(signum)

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
