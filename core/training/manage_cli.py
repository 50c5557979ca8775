"""``models saved``, ``models delete NAME``, ``runs list``, ``runs delete NAME``: see and free disk space.

One small grammar: ``models`` and ``runs`` are the two things the app keeps on
disk; ``saved``/``list`` show them with their sizes, ``delete NAME`` removes one
after asking (``--yes`` skips the question; without a terminal to ask on it is
required). ``--json`` prints one JSON document.
"""

from __future__ import annotations

import argparse
import sys

from core.cli_common import EXIT_OK, UsageError, emit, emit_json
from core.cli_common import eprint as _eprint
from core.training.storage import (
    delete_run,
    delete_saved_model,
    human_size,
    list_runs,
    list_saved_models,
    runs_root,
)

__all__ = ["register"]


def _safe(text: str) -> str:
    """A name fit for a terminal line: control characters and undecodable bytes become '?'."""
    return "".join(c if c.isprintable() else "?" for c in text)


def _table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        emit("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def cmd_models_saved(args: argparse.Namespace) -> int:
    from core.training.bundles import models_dir  # noqa: PLC0415 - lazy: imports torch (~2 s); core.cli imports this module

    models = list_saved_models()
    if args.json:
        emit_json({"folder": str(models_dir()), "models": [m.to_json() for m in models],
                   "total_size": sum(m.size for m in models)})
        return EXIT_OK
    if not models:
        emit(f"no saved models in {models_dir()}")
        return EXIT_OK
    rows = [[_safe(m.name), m.architecture or "-", str(m.classes or "-"),
             f"{100 * m.val_acc:.1f}%" if m.val_acc is not None else "-", human_size(m.size),
             m.created[:10] if not m.problem else _safe(f"unusable: {m.problem}")[:100]] for m in models]
    _table(rows, ["name", "architecture", "classes", "val acc", "size", "created"])
    emit(f"{len(models)} saved model{'s' * (len(models) != 1)}, {human_size(sum(m.size for m in models))} "
          f"in {models_dir()}")
    return EXIT_OK


def cmd_runs_list(args: argparse.Namespace) -> int:
    runs = list_runs()
    if args.json:
        emit_json({"folder": str(runs_root()), "runs": [r.to_json() for r in runs],
                   "total_size": sum(r.size for r in runs)})
        return EXIT_OK
    if not runs:
        emit(f"no training runs in {runs_root()}")
        return EXIT_OK
    rows = [[_safe(r.name), r.status, str(r.epochs_done) if r.epochs_done is not None else "-", human_size(r.size),
             r.modified[:16].replace("T", " ")] for r in runs]
    _table(rows, ["name", "status", "epochs", "size", "modified"])
    emit(f"{len(runs)} run{'s' * (len(runs) != 1)}, {human_size(sum(r.size for r in runs))} in {runs_root()}; "
          "resume one with: python main.py train --resume FOLDER")
    return EXIT_OK


def _confirm(question: str, yes: bool) -> bool:
    if yes:
        return True
    if not sys.stdin.isatty():
        raise UsageError(f"{question}: add --yes to delete without being asked")
    sys.stderr.write(f"{question}? [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _delete(args: argparse.Namespace, what: str, entries: list, delete) -> int:
    found = next((e for e in entries if e.name == args.name), None)
    if found is None:
        raise UsageError(f"no {what} called '{args.name}' (see the list: python main.py "
                         f"{'models saved' if what == 'saved model' else 'runs list'})")
    extra = " (it can no longer be resumed)" if getattr(found, "status", "") == "resumable" else ""
    if not _confirm(f"delete the {what} '{_safe(found.name)}' ({human_size(found.size)}, {found.folder}){extra}",
                    args.yes):
        _eprint("nothing deleted")
        return EXIT_OK
    freed = delete(found.name)
    if args.json:
        emit_json({"deleted": found.name, "what": what, "folder": str(found.folder), "freed": freed})
    else:
        emit(f"deleted the {what} '{_safe(found.name)}': {human_size(freed)} freed")
    return EXIT_OK


def cmd_models_delete(args: argparse.Namespace) -> int:
    return _delete(args, "saved model", list_saved_models(), delete_saved_model)


def cmd_runs_delete(args: argparse.Namespace) -> int:
    return _delete(args, "training run", list_runs(), delete_run)


def register(sub: argparse._SubParsersAction, models: argparse.ArgumentParser) -> None:
    """``saved``/``delete`` under the ``models`` parser, and the ``runs`` command."""
    actions = models.add_subparsers(dest="models_action", required=False, metavar="{saved,delete}")
    p = actions.add_parser("saved", help="your trained models with their sizes")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models_saved)
    p = actions.add_parser("delete", help="delete one of your trained models")
    p.add_argument("name")
    p.add_argument("--yes", action="store_true", help="do not ask")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models_delete)

    runs = sub.add_parser("runs", help="training runs (checkpoints) with their sizes; delete them")
    actions = runs.add_subparsers(dest="runs_action", required=True)
    p = actions.add_parser("list", help="every run folder, its size and whether it can be resumed")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs_list)
    p = actions.add_parser("delete", help="delete one run folder (its checkpoints)")
    p.add_argument("name")
    p.add_argument("--yes", action="store_true", help="do not ask")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs_delete)
