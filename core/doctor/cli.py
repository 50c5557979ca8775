"""``python main.py doctor FOLDER``: the folder seen through a network: likely label errors, near-duplicates, outliers.

Three modes. The report (default): scans the folder, embeds every image with ``--model`` (default: a
pretrained model whose weights are here, else random weights, said so), and prints the findings as a
table, or with ``--json`` one document: the whole report plus a proposed ``"fixes"`` list (move each
likely label error to its suggested class, ignore the extra copies of near-duplicates that straddle the
split, keep each outlier) in the shape ``--apply`` reads. ``--apply FIXES.json`` applies a reviewed list
as moves recorded in ``FOLDER/.convnet-studio/fixes.jsonl``; ``--undo`` reverts the last applied batch.
Registered into core.cli's parser, so nothing here imports torch, numpy or Pillow at module level.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from core.cli_common import EXIT_FAILED, EXIT_OK, UsageError, emit_json
from core.errors import StudioError
from core.text import plural
from core.textout import write_line
from core.training.cli import DEVICES

__all__ = ["register", "cmd_doctor"]

DEFAULT_TOP = 20
KINDS = {"pretrained": "pretrained weights", "saved": "your saved model", "random": "random weights"}


class _Say:
    """Text lines: stdout, or stderr under ``--json`` (stdout is then the one JSON document)."""

    def __init__(self, json_mode: bool) -> None:
        self.stream = sys.stderr if json_mode else sys.stdout

    def __call__(self, line: object = "") -> None:
        write_line(self.stream, line)


class _Progress:
    """One stderr line per stage; on a terminal, a counter redrawn in place."""

    def __init__(self) -> None:
        self.stage = ""
        self.tty = sys.stderr.isatty()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage:
            if self.tty and self.stage:
                sys.stderr.write("\n")
            self.stage = stage
            if not self.tty:
                write_line(sys.stderr, f"{stage}...")
        if self.tty:
            sys.stderr.write(f"\r{stage}: {done}/{total}" if total else f"\r{stage}...")
            sys.stderr.flush()

    def close(self) -> None:
        if self.tty and self.stage:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _rel(root: str, path: str) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return path


def proposed_fixes(report, digests: dict[str, str]) -> list[Any]:
    """What the report suggests, as fixes a user reviews before ``--apply``: every likely label error moved
    to its suggested class, the later copies of each near-duplicate group that straddles the split ignored,
    every outlier kept (change it to "ignore" or "move" if it does not belong)."""
    from core.doctor.fixes import Fix  # noqa: PLC0415 - lazy: core.data imports torch, see the note at the top

    fixes: dict[str, Any] = {}
    for issue in report.label_issues:
        fixes.setdefault(issue.path, Fix.for_file(report.folder, issue.path, "move", issue.suggested,
                                                  digests.get(issue.path)))
    for group in report.duplicates:
        if group.across_split:
            for path in group.paths[1:]:
                fixes.setdefault(path, Fix.for_file(report.folder, path, "ignore", None, digests.get(path)))
    for outlier in report.outliers:
        fixes.setdefault(outlier.path, Fix.for_file(report.folder, outlier.path, "keep", None,
                                                    digests.get(outlier.path)))
    return list(fixes.values())


def _report_lines(report, top: int) -> list[str]:
    root = report.folder
    classes = plural(len(report.classes), "class", "classes")
    lines = [f"doctor: {root}: {plural(len(report.points), 'image')} in {classes}, "
             f"seen through {report.source.display_name} ({KINDS.get(report.source.kind, report.source.kind)}), "
             f"{report.seconds:.1f} s"
             + (f" ({report.cached} embeddings from the cache)" if report.cached else "")]
    if report.source.note:
        lines.append(f"note: {report.source.note}")
    for item in report.unreadable:
        lines.append(f"skipped {_rel(root, item['path'])}: {item['reason']}")
    lines += ["", f"likely label errors: {len(report.label_issues)} (most likely first)"]
    for issue in report.label_issues[:top]:
        lines.append(f"  {issue.confidence:5.2f}  {_rel(root, issue.path)}  in {issue.given}, looks like "
                     f"{issue.suggested}")
    lines += ["", f"near-duplicates: {plural(len(report.duplicates), 'group')} (across the split first)"]
    for group in report.duplicates[:top]:
        kind = "identical" if group.exact else f"{group.similarity:.2f}"
        where = "  ACROSS train/val" if group.across_split else ""
        lines.append(f"  {kind:>9}  {' = '.join(_rel(root, p) for p in group.paths)}{where}")
    lines += ["", f"outliers: {len(report.outliers)} (most unusual first)"]
    for outlier in report.outliers[:top]:
        lines.append(f"  {outlier.score:5.2f}  {_rel(root, outlier.path)}  in {outlier.given}")
    shown = max(len(report.label_issues), len(report.duplicates), len(report.outliers))
    if shown > top:
        lines.append(f"(the first {top} of each; --top N shows more, --json all)")
    lines += ["", f"to fix: python main.py doctor {root} --json > fixes.json, review its \"fixes\", then "
                  f"python main.py doctor {root} --apply fixes.json (undo: --undo)"]
    return lines


def _examine(args: argparse.Namespace, say: _Say) -> int:
    from core.data import scan_folder  # noqa: PLC0415 - lazy: imports torch, see the note at the top
    from core.doctor.examine import run_doctor  # noqa: PLC0415 - as above
    from core.doctor.fixlist import fixes_json  # noqa: PLC0415 - as above

    progress = _Progress()
    try:
        scan = scan_folder(args.folder, progress=lambda done, total: progress("scanning", done, total))
        report = run_doctor(args.folder, model=args.model, device=args.device, scan=scan, seed=args.seed,
                            val_fraction=args.val_fraction, progress=progress)
    finally:
        progress.close()
    if args.json:
        digests = {s.path: s.digest for s in scan.samples}
        emit_json({**report.to_json(), **fixes_json(proposed_fixes(report, digests))})
    else:
        for line in _report_lines(report, args.top):
            say(line)
    return EXIT_OK


def _batch_lines(batch, undo: bool) -> list[str]:
    if batch.recovered:
        lines = [f"closed batch {batch.recovered}, which a crash had interrupted (every file is accounted for)"]
    else:
        lines = []
    if batch.empty:
        return lines + ["nothing to undo" if undo else "nothing to apply"]
    verb = "undid" if undo else "applied"
    marks = len(batch.ignored) + len(batch.unignored)
    lines.append(f"{verb} batch {batch.undoes or batch.batch}: {plural(len(batch.moved), 'move')}, "
                 f"{plural(marks, 'ignore mark')} changed, {len(batch.kept)} kept, {len(batch.skipped)} skipped")
    lines += [f"  moved {old} -> {new}" for old, new in batch.moved]
    lines += [f"  ignore {path}" for path in batch.ignored]
    lines += [f"  no longer ignored {path}" for path in batch.unignored]
    lines += [f"  skipped {path}: {reason}" for path, reason in batch.skipped]
    if not undo and not batch.empty:
        lines.append("undo: python main.py doctor FOLDER --undo")
    return lines


def _change(args: argparse.Namespace, say: _Say) -> int:
    from core.doctor import fixes  # noqa: PLC0415 - lazy: core.data imports torch, see the note at the top

    if args.undo:
        batch = fixes.undo_last(args.folder)
    else:
        batch = fixes.apply_fixes(args.folder, fixes.read_fixes(args.apply))
    if args.json:
        emit_json(batch.to_json())
    for line in _batch_lines(batch, bool(args.undo)):
        say(line.replace("FOLDER", os.fspath(args.folder)))
    return EXIT_FAILED if batch.skipped else EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    if not os.path.isdir(args.folder):
        raise StudioError(f"{args.folder}: {'not a folder' if os.path.exists(args.folder) else 'no such folder'}")
    say = _Say(args.json)
    if args.apply or args.undo:
        given = [flag for flag, value in (("--model", args.model),) if value is not None]
        if given:
            raise UsageError(f"--apply and --undo change the folder only: leave out {', '.join(given)}")
        return _change(args, say)
    return _examine(args, say)


def _top(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"must be from 1 to 100000, got {value}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="find likely label errors, near-duplicates and outliers in a training folder")
    p.add_argument("folder", help="class subfolders, or train/ and val/ folders of them")
    p.add_argument("--model", default=None, metavar="NAME|BUNDLE",
                   help="the network to see the images through: a registry name, a saved model's name or folder "
                        "(default: a pretrained model whose weights are here, else random weights, said so)")
    change = p.add_mutually_exclusive_group()
    change.add_argument("--apply", default=None, metavar="FIXES.json",
                        help='apply a reviewed list of fixes ({"fixes": [...]}, as --json proposes): moves, '
                             "never deletes, recorded in FOLDER/.convnet-studio/fixes.jsonl")
    change.add_argument("--undo", action="store_true", help="revert the last applied batch of fixes")
    p.add_argument("--top", type=_top, default=DEFAULT_TOP, help=f"rows per finding in the table (default: "
                                                                   f"{DEFAULT_TOP})")
    p.add_argument("--val-fraction", type=_fraction, default=0.2,
                   help="the validation share training would use, to flag duplicates across the split (default 0.2)")
    p.add_argument("--seed", type=int, default=0, help="the split's seed, as training's --seed (default 0)")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_doctor)
