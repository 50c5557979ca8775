"""The whole benchmark suite: every path this machine can run, ours against its baseline.

``python -m benchmarks`` (or ``make bench``) rewrites the tables of
BENCHMARKS.md; ``--quick`` is a smoke run on tiny inputs that writes nothing
unless ``--write`` is given; ``--only NAME ...`` picks sections. A section that
fails is reported and the others still run; the exit status says whether all ran.
About 10 minutes on 2 CPU cores without a GPU.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable

from benchmarks.common import ROOT

SECTIONS = ("core", "folder", "int8", "memory", "gpu", "runtimes", "gui", "startup", "launch", "oneshot")
OPTIONAL = ("training",)  # issue 6's trainer overhead and decode cache: --only training (about 6 minutes)


def _core(quick: bool, write: bool) -> None:
    from benchmarks import core_paths

    core_paths.run(3 if quick else 9, write=write)


def _folder(quick: bool, write: bool) -> None:
    from benchmarks import folder

    folder.run(16 if quick else 120, 1 if quick else 3, write=write, tune=not quick)


def _int8(quick: bool, write: bool) -> None:
    from benchmarks import int8

    if quick:
        int8.run(8, 1, write=write, calibrate=8, check=16)
    else:
        int8.run(48, 3, write=write)


def _memory(quick: bool, write: bool) -> None:
    from benchmarks import memory

    photos = 40 if quick else 2000
    text = memory.report(memory.measure(photos), f"python -m benchmarks.memory --photos {photos}")
    print(text)
    if write:
        from benchmarks.common import write_section

        write_section("memory", text)


def _gpu(quick: bool, write: bool) -> None:
    from benchmarks import gpu

    gpu.main(["--reps", "2" if quick else "7"] + ([] if write else ["--no-write"]))


def _runtimes(quick: bool, write: bool) -> None:
    from benchmarks import runtimes

    if not runtimes.available():
        print("runtimes: neither onnxruntime nor openvino is installed here; the recorded section stays as it is")
        return
    runtimes.main(["--reps", "3" if quick else "15"] + ([] if write else ["--no-write"]))


def _offscreen(module: str, args: list[str], write: bool) -> None:
    """Run ``python -m MODULE`` in its own offscreen process (it needs a QApplication of its own)."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, "-m", module, *args] + (["--write"] if write else []), cwd=ROOT, env=env,
                          timeout=600, capture_output=True, text=True)
    print(done.stdout)
    if done.returncode not in (0, 1):  # 1: ran, but missed its goal (the table says so)
        raise RuntimeError(f"{module} exited {done.returncode}: {done.stderr.strip()[-2000:]}")


def _gui(quick: bool, write: bool) -> None:
    """The GUI stall while classifying a large drop."""
    _offscreen("benchmarks.gui_stall", ["--photos", "24" if quick else "200"], write)


def _startup(quick: bool, write: bool) -> None:
    """Launch to first paint, in fresh processes."""
    _offscreen("benchmarks.startup", ["--runs", "2" if quick else "7"], write)


def _launch(quick: bool, write: bool) -> None:
    """Launch to first prediction (the quick route) and the window's memory, in fresh processes."""
    _offscreen("benchmarks.launch", ["--runs", "2" if quick else "5"], write)


def _oneshot(quick: bool, write: bool) -> None:
    """One photo from the command line, whole process, against the naive torchvision script."""
    from benchmarks import oneshot

    oneshot.main(["--runs", "2" if quick else "7"] + (["--write"] if write else []))


def _training(quick: bool, write: bool) -> None:
    from benchmarks import training

    training.main(["--reps", "1" if quick else "3", "--epochs", "1" if quick else "2",
                   "--photos", "8" if quick else "48"] + ([] if write else ["--no-write"]))


RUNNERS: dict[str, Callable[[bool, bool], None]] = {
    "core": _core, "folder": _folder, "int8": _int8, "memory": _memory, "gpu": _gpu, "runtimes": _runtimes,
    "gui": _gui, "startup": _startup, "launch": _launch, "oneshot": _oneshot, "training": _training,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny inputs, few repetitions; writes nothing by default")
    parser.add_argument("--write", action="store_true", help="with --quick: write BENCHMARKS.md all the same")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    parser.add_argument("--only", nargs="+", choices=SECTIONS + OPTIONAL, default=list(SECTIONS), metavar="NAME",
                        help=f"sections to run ({', '.join(SECTIONS)}; also {', '.join(OPTIONAL)})")
    args = parser.parse_args(argv)
    write = not args.no_write and (args.write or not args.quick)
    failed: list[str] = []
    start = time.perf_counter()
    for name in args.only:
        began = time.perf_counter()
        print(f"\n== {name} ==", flush=True)
        try:
            RUNNERS[name](args.quick, write)
        except Exception:  # noqa: BLE001 - one broken section must not hide the others' figures
            traceback.print_exc()
            failed.append(name)
        print(f"-- {name}: {time.perf_counter() - began:.0f} s", flush=True)
    outcome = f"FAILED: {', '.join(failed)}" if failed else "all sections ran"
    print(f"\nsuite: {time.perf_counter() - start:.0f} s; {outcome}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
