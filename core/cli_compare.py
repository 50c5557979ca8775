"""``compare`` and ``evaluate``: several models, one row each; one failing model never loses the others.

compare with ``--weights default`` runs each model with its pretrained weights
where they are here (or can be downloaded) and untrained where they are not,
per model; such a row says ``untrained: true``, its ``acc1`` is null (the
registry's figure stays in ``published_acc1``), and the text table says why.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from core.cli_common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    check_device,
    check_model,
    check_runs,
    emit,
    emit_json,
    eprint,
    resolve_topk,
    weights_failure,
)
from core.errors import Cancelled, StudioError
from core.textout import human_count


def model_list(text: str) -> list:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise UsageError("--models needs at least one model name, e.g. --models resnet18,vgg16")
    return [check_model(name) for name in names]


def weights_note(spec, untrained: bool | None, requested: str, used=None) -> str:
    """What ran: "pretrained", "imported (FILE)", ..., or why it ran untrained."""
    if untrained is None:
        return "failed"
    if not untrained:
        return used.label if used is not None else "pretrained"
    if requested == "none":
        return "untrained (--weights none)"
    return "untrained (weights not here)" if spec.pretrained else "untrained (none published)"


def cmd_compare(args: argparse.Namespace) -> int:
    # lazy (here and in cmd_evaluate): core.cli imports this module; torch loads in run_cli, which handles Ctrl+C
    from core.compare import compare_model  # noqa: PLC0415 - lazy: torch, see the comment above
    from core.images import collect_images  # noqa: PLC0415 - lazy: numpy + Pillow (~0.3 s) stay out of CLI start-up
    from core.inference import InferenceEngine, Prediction  # noqa: PLC0415 - as above

    specs = model_list(args.models)
    fewest = min(specs, key=lambda spec: spec.num_classes)  # --topk must fit every model; its default shrinks
    topk = resolve_topk(args.topk, fewest.num_classes, fewest.name)
    runs = check_runs(args.runs)
    check_device(args.device)
    collection = collect_images(args.paths)
    for err in collection.errors:
        eprint(f"error: {err}")
    if not collection.images:
        unreadable = " (none of the paths could be read)" if collection.errors else ""
        raise StudioError("no images to compare on" + unreadable)
    paths = [str(p) for p in collection.images]
    progress = _step_printer()
    results: list[dict] = []
    engine = InferenceEngine(device=args.device, onnx=False, cache_size=1)
    try:
        for step, spec in enumerate(specs):
            if progress:
                progress(step, len(specs), spec.display_name)
            try:
                row = compare_model(engine, spec.name, paths, weights=args.weights, topk=topk, runs=runs,
                                    fallback=True)
            except Cancelled:
                raise
            except (StudioError, RuntimeError, MemoryError) as exc:
                error = weights_failure(spec, args.weights, exc)
                eprint(f"error: {error}")
                failed = [Prediction(path=p, model=spec.name, ok=False, error=error).to_json() for p in paths]
                results.append({"model": spec.name, "display_name": spec.display_name, "family": spec.family,
                                "ok": False, "error": error, "untrained": None, "latency_ms": None,
                                "params": spec.params, "gflops": spec.gflops, "weights_size": spec.weights_size,
                                "acc1": None, "published_acc1": spec.acc1, "weights": "failed",
                                "predictions": failed})
                continue
            results.append({**row.to_json(), "ok": True, "error": None,
                            "weights": weights_note(spec, row.untrained, args.weights, row.weights_used)})
    finally:
        engine.close()
    if args.json:
        emit_json(results)
    else:
        _print_comparison(results, paths)
    _note_untrained(specs, results, args.weights)
    failed = (collection.errors or any(not r["ok"] for r in results)
              or any(not p["ok"] for r in results for p in r["predictions"]))
    return EXIT_FAILED if failed else EXIT_OK


def _note_untrained(specs, results: list[dict], requested: str) -> None:
    missing = [r["model"] for spec, r in zip(specs, results) if r["untrained"] and spec.pretrained]
    if missing and requested == "default":
        eprint(f"note: {', '.join(missing)} ran untrained: pretrained weights are not on this computer "
               "(import them with: python main.py weights import FILE --model NAME); their predictions mean nothing")


def _step_printer() -> Callable[[int, int, str], None] | None:
    if not sys.stderr.isatty():
        return None
    return lambda done, total, what: eprint(f"[{done}/{total}] {what}")


def _acc(value) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) else "—"


def _print_comparison(results: list[dict], paths: list[str]) -> None:
    emit(f"{'model':<16}{'latency ms':>11}{'params':>10}{'GFLOPs':>8}{'acc@1':>7}  weights")
    for r in results:
        latency = f"{r['latency_ms']:.1f}" if r["latency_ms"] is not None else "—"
        gflops = f"{r['gflops']:.2f}" if isinstance(r["gflops"], (int, float)) else "—"
        emit(f"{r['model']:<16}{latency:>11}{human_count(r['params']):>10}{gflops:>8}{_acc(r['acc1']):>7}  "
             f"{r['weights']}")
    shown = [r for r in results if r["acc1"] is None and r["published_acc1"] is not None]
    if shown:
        published = ", ".join(f"{r['model']} {r['published_acc1']:.1f}" for r in shown)
        emit(f"acc@1: ImageNet top-1 published for the pretrained weights; — where this run did not use them "
             f"(published, not these weights: {published})")
    for i, path in enumerate(paths):
        emit()
        emit(path)
        for r in results:
            p = r["predictions"][i]
            if p["ok"]:
                top = p["topk"][0]
                text = f"{top['label']} ({100 * top['prob']:.1f}%)"
            else:
                text = f"failed: {p['error']}"
            emit(f"  {r['model']:<16}{text}")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from core.evaluation import evaluate_folder, labelled_images  # noqa: PLC0415 - lazy: torch, as in cmd_compare
    from core.inference import InferenceEngine  # noqa: PLC0415 - as above

    specs = model_list(args.models)
    check_device(args.device)
    labelled_images(args.folder)  # a folder that cannot be scored fails once, not once per model
    results: list[dict] = []
    engine = InferenceEngine(device=args.device, onnx=False, cache_size=1)
    try:
        for spec in specs:
            try:
                r = evaluate_folder(engine, args.folder, spec.name, weights=args.weights)
            except Cancelled:
                raise
            except (StudioError, RuntimeError, MemoryError) as exc:
                error = weights_failure(spec, args.weights, exc)
                eprint(f"error: {error}")
                results.append({"model": spec.name, "ok": False, "error": error})
                continue
            results.append({**r.to_json(), "ok": r.failed == 0, "error": None})
    finally:
        engine.close()
    if args.json:
        emit_json(results)
    else:
        emit(f"{'model':<16}{'top-1':>8}{'top-5':>8}{'images':>8}{'img/s':>8}")
        for r in results:
            if r["error"]:
                emit(f"{r['model']:<16}failed: {r['error']}")
                continue
            tag = "  (untrained)" if r["untrained"] else ""
            emit(f"{r['model']:<16}{100 * r['top1']:>7.1f}%{100 * r['top5']:>7.1f}%{r['images']:>8}"
                 f"{r['images_per_second']:>8.1f}{tag}")
            for cls, acc in r["per_class"].items():
                emit(f"    {cls:<28}{100 * acc:6.1f}%")
    return EXIT_FAILED if any(not r["ok"] for r in results) else EXIT_OK

