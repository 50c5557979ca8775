"""What every headless subcommand shares: exit codes, output, checks of options, plain error messages.

Text output goes line by line through :func:`emit` (stdout) and :func:`eprint`
(stderr), both through ``core.textout.clean``; JSON through :func:`emit_json`
(strict, ``core.textout.json_text``). Anything raised below the command line
that is not a ``StudioError`` is turned into a plain sentence by
:func:`plain_error` at the CLI boundary: torch's own text ("enforce fail at
alloc_cpu.cpp", "expected ... got ...") never reaches the user.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
from collections.abc import Callable
from typing import Any

from core.errors import DownloadError, StudioError, UnknownModelError, WeightsMissingError
from core.textout import clean, human_size, json_text, write_line

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_PIPE = 128 + signal.SIGPIPE  # 141, what a shell reports for a writer whose reader went away
EXIT_SIGINT, EXIT_SIGTERM = 128 + signal.SIGINT, 128 + signal.SIGTERM  # 130, 143
DEBUG_ENV = "CONVNET_STUDIO_DEBUG"
MAX_RUNS = 100


class UsageError(StudioError):
    """Bad command line: exit code 2."""


class Interrupted(KeyboardInterrupt):
    """SIGTERM (or SIGINT) while a command runs; ``code`` is the exit status to end with."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.code = 128 + signum


def emit(line: object = "") -> None:
    """One line of text output on stdout (sanitised, flushed)."""
    write_line(sys.stdout, line)


def eprint(*parts: object) -> None:
    """One message line on stderr (sanitised); a closed stderr is ignored."""
    try:
        write_line(sys.stderr, " ".join(str(p) for p in parts))
    except (BrokenPipeError, ValueError, OSError):
        pass


_printed = {"documents": 0}


def emit_json(value: Any, *, lines: bool = False) -> None:
    """A strict JSON document on stdout (``lines``: one compact line, for JSON Lines).

    SIGINT and SIGTERM wait until it is written whole, so an interrupted command never
    leaves half a document behind.
    """
    text = json_text(value, indent=None if lines else 2) + "\n"
    with _signals_held():
        sys.stdout.write(text)
        sys.stdout.flush()
        _printed["documents"] += 1


def documents_printed() -> int:
    """How many JSON documents (or JSON lines) this process has printed so far."""
    return _printed["documents"]


class _signals_held:
    """Hold SIGINT and SIGTERM back while a block runs; they are delivered right after it."""

    HELD = {signal.SIGINT, signal.SIGTERM}

    def __enter__(self):
        try:
            self.previous = signal.pthread_sigmask(signal.SIG_BLOCK, self.HELD)
        except (AttributeError, OSError, ValueError):  # no pthread_sigmask (Windows)
            self.previous = None
        return self

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self.previous)


def check_model(name: str):
    """The spec of a registry model or saved bundle; an unknown name is a usage error."""
    from core.models import get_spec  # noqa: PLC0415 - lazy: torch (~2 s) only for commands that name a model

    try:
        return get_spec(name)
    except UnknownModelError as exc:
        raise UsageError(str(exc)) from None


def check_device(name: str) -> str:
    """``--device`` must exist here: asking for cuda or mps on a machine without one is a usage error."""
    from core.records import available_devices  # noqa: PLC0415 - lazy: imports torch (~2 s)

    available = available_devices()
    if name not in available:
        raise UsageError(f"--device {name}: no such device on this machine (available: {', '.join(available)})")
    return name


def resolve_topk(requested: int | None, num_classes: int, what: str) -> int:
    """The default 5 shrinks to the number of classes; an explicit value must fit them."""
    if requested is None:
        return min(5, num_classes)
    if not 1 <= requested <= num_classes:
        raise UsageError(f"--topk must be between 1 and {num_classes} ({what} has {num_classes} classes), "
                         f"got {requested}")
    return requested


def check_runs(runs: int) -> int:
    if not 1 <= runs <= MAX_RUNS:
        raise UsageError(f"--runs must be between 1 and {MAX_RUNS} (timed forward passes per model), got {runs}")
    return runs


def whole_number(text: str) -> int:
    """argparse type: a plain whole number ("5", not "5.0" or "1e9"), at most 18 digits."""
    if not re.fullmatch(r"\s*[+-]?\d+\s*", text):
        raise argparse.ArgumentTypeError(f"not a whole number: {text}")
    if len(text.strip().lstrip("+-")) > 18:
        raise argparse.ArgumentTypeError(f"far too large: {text}")
    return int(text)


def weights_failure(spec, weights: str, exc: BaseException) -> str:
    """Why ``spec`` could not get its weights: for missing pretrained weights, the file, why it
    could not be downloaded, and the import command; otherwise the error itself."""
    from core import weights as weights_mod  # noqa: PLC0415 - lazy: imports torch (~2 s)

    if weights != "default" or not spec.weights_file or not isinstance(exc, (DownloadError, WeightsMissingError)):
        return plain_error(exc, model=spec.name)
    if os.environ.get(weights_mod.OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}:
        why = f"{weights_mod.OFFLINE_ENV} is set"
    elif isinstance(exc, WeightsMissingError):
        why = "downloads are off"
    else:
        why = str(exc).split("; import a weights file")[0]
    return (f"{spec.name}: its pretrained weights file {spec.weights_file} is not on this computer and could "
            f"not be downloaded ({why}); copy the file from a machine that has it and run: python main.py "
            f"weights import {spec.weights_file} --model {spec.name} (or pass --weights none to run it with "
            "random, untrained weights)")


_OOM = re.compile(r"out of memory|alloc_cpu|DefaultCPUAllocator|can't allocate memory|CUBLAS_STATUS_ALLOC|"
                  r"not enough memory|MPS backend out of memory", re.I)
_SHAPE = re.compile(r"output size is too small|expected .* got|size mismatch|shape .* is invalid|"
                    r"sizes of tensors must match|kernel size can't be greater|padded input size", re.I)


def plain_error(exc: BaseException, *, model: str | None = None) -> str:
    """A sentence for the user about an exception that is not a StudioError (no torch internals)."""
    if isinstance(exc, StudioError):
        return str(exc)
    where = f"{model}: " if model else ""
    text = str(exc)
    if isinstance(exc, MemoryError) or _OOM.search(text):
        return (f"{where}not enough memory to run this model on these images (the input size or the model is "
                "too large for this machine); try a smaller model, fewer images at once, or another device")
    if isinstance(exc, RuntimeError) and _SHAPE.search(text):
        return (f"{where}the model cannot run on input of this size or shape (its layers shrink the image to "
                "nothing or the sizes do not fit); use a larger image size or another model")
    if isinstance(exc, OSError):
        name = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        return f"{where}{name}{exc.strerror or 'input/output error'}"
    return (f"{where}unexpected internal error ({type(exc).__name__}); set {DEBUG_ENV}=1 to see the details "
            "and please report it")


def debug() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")


def progress_printer(label: str) -> Callable[[int, int | None], None] | None:
    """A download progress line on a terminal's stderr; nothing when piped."""
    if not sys.stderr.isatty():
        return None
    label = clean(label)

    def report(done: int, total: int | None) -> None:
        if total:
            pct = 100 * done / total
            bar = "#" * int(pct / 4)
            sys.stderr.write(f"\r{label} [{bar:<25}] {pct:5.1f}% of {human_size(total)}")
        else:
            sys.stderr.write(f"\r{label} {human_size(done)}")
        if total and done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return report
