"""Shared benchmark plumbing: interleaved timing, machine facts, BENCHMARKS.md sections.

Speed is always a ratio against a baseline measured in the same run, with the
two interleaved so that thermal drift and background load hit both alike.
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"


def machine() -> str:
    """CPU model and cores, GPU, torch version: one line for the tables."""
    import torch

    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} cores, {gpu}, torch {torch.__version__}, Python {platform.python_version()}"


def interleaved(candidates: dict[str, Callable[[], object]], *, reps: int = 7,
                warmup: int = 1) -> dict[str, list[float]]:
    """Run each candidate ``warmup`` times, then ``reps`` rounds alternating them; seconds per call."""
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(reps):
        for name, fn in candidates.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


@contextmanager
def temporary_torch_home() -> Iterator[Path]:
    """A throwaway TORCH_HOME so benchmarks never touch the user's cache."""
    old = os.environ.get("TORCH_HOME")
    with tempfile.TemporaryDirectory(prefix="cns-bench-") as tmp:
        os.environ["TORCH_HOME"] = tmp
        try:
            yield Path(tmp)
        finally:
            if old is None:
                os.environ.pop("TORCH_HOME", None)
            else:
                os.environ["TORCH_HOME"] = old


def write_random_weights(name: str) -> Path:
    """Random-init weights under the model's real file name in the current hub cache."""
    import torch

    from core import weights
    from core.zoo import get_spec

    spec = get_spec(name)
    path = weights.expected_path(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save(spec.build().state_dict(), path)
    return path


def command_line() -> str:
    args = " ".join(sys.argv[1:])
    return f"python -m {Path(sys.argv[0]).stem if sys.argv[0].endswith('.py') else 'benchmarks'} {args}".strip()


def write_section(section: str, markdown: str) -> None:
    """Replace the text between ``<!-- bench:NAME -->`` markers in BENCHMARKS.md (append if new)."""
    begin, end = f"<!-- bench:{section} -->", f"<!-- /bench:{section} -->"
    block = f"{begin}\n{markdown.strip()}\n{end}"
    text = BENCHMARKS_MD.read_text(encoding="utf-8") if BENCHMARKS_MD.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    tmp = BENCHMARKS_MD.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, BENCHMARKS_MD)


def spin_until(predicate, timeout_s: float) -> bool:
    """Run the Qt event loop until ``predicate()`` holds; False when ``timeout_s`` passed first (the GUI
    benchmarks wait this way so that the GUI thread's own timers keep measuring meanwhile)."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    deadline = time.monotonic() + timeout_s
    check = QTimer(interval=20)
    check.timeout.connect(lambda: (predicate() or time.monotonic() > deadline) and loop.quit())
    check.start()
    if not predicate():
        loop.exec()
    check.stop()
    return predicate()


GOALS_JSON = ROOT / "benchmarks" / "goals.json"
GOAL_ORDER = ("launch", "oneshot", "int8-drop", "int8-folder", "int8-agreement", "gpu-latency", "gpu-throughput",
              "gpu-training", "startup-rss", "gui-stall")


def record_goal(key: str, *, what: str, goal: str, measured: str, meets: bool | None, command: str) -> None:
    """Record one goal's latest figure (``meets`` None: not measured here) and rewrite BENCHMARKS.md's summary.

    The table between the ``bench:summary`` markers is made from ``benchmarks/goals.json``: every benchmark
    that measures a goal records it here when it writes its own section, so the summary is always the last
    measured figure of each goal, with the command that produced it.
    """
    goals = json.loads(GOALS_JSON.read_text(encoding="utf-8")) if GOALS_JSON.exists() else {}
    goals[key] = {"what": what, "goal": goal, "measured": measured, "meets": meets, "command": command}
    tmp = GOALS_JSON.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(goals, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, GOALS_JSON)
    write_section("summary", summary_table(goals))


def summary_table(goals: dict) -> str:
    order = [k for k in GOAL_ORDER if k in goals] + sorted(k for k in goals if k not in GOAL_ORDER)
    verdict = {True: "meets", False: "**misses**", None: "not yet measured"}
    rows = [f"| {goals[k]['what']} | {goals[k]['goal']} | {goals[k]['measured']} | {verdict[goals[k]['meets']]} "
            f"| `{goals[k]['command']}` |" for k in order]
    return "\n".join(["| goal (issue 18) | target | measured here | | command |", "|---|---|---|---|---|", *rows])
