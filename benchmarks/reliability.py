"""The reliability table: run tests/reliability with a ledger and summarise it in RELIABILITY.md.

``python -m benchmarks.reliability`` (about as long as the reliability tests
take under ``make test``). Every row in the ledger is written by a test after
its assertions held (see tests/reliability/conftest.py), so the table counts
only what was really tried and really survived; a failing test fails this
command too and the table is not rewritten.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from benchmarks.common import ROOT, machine

OUT = ROOT / "RELIABILITY.md"
HEADER = """# Reliability

What ConvNet Studio survives, from the reliability suite in `tests/reliability/`
(which `make test` runs as part of the whole suite). Each row is written by a
test after its assertions held. Regenerate with `python -m benchmarks.reliability`.

"""


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def summarise(rows: list[dict]) -> str:
    by_kind: dict[str, list[dict]] = {}
    for row in rows:
        by_kind.setdefault(row["kind"], []).append(row)
    bad = by_kind.get("bad_input", [])
    hostile = by_kind.get("hostile_model", [])
    faults = by_kind.get("fault", [])
    stalls = [r["value"] for r in by_kind.get("stall_ms", []) if r["value"] is not None]
    cancels = [r["value"] for r in by_kind.get("cancel_ms", []) if r["value"] is not None]
    vias = Counter(r["via"] or "-" for r in bad)
    lines = [
        "| what | tried | survived / refused | code executed | data lost |",
        "|---|---|---|---|---|",
        f"| bad or odd input files ({len({r['name'] for r in bad})} distinct; "
        + ", ".join(f"{n} via {v}" for v, n in sorted(vias.items())) + ") "
        f"| {len(bad)} | {sum(r['outcome'] == 'survived' for r in bad)} | - | - |",
        f"| hostile model files | {len(hostile)} | {sum(r['outcome'] == 'refused' for r in hostile)} "
        f"| {sum(bool(r['executed']) for r in hostile)} | - |",
        f"| injected faults | {len(faults)} | {sum(r['outcome'] == 'survived' for r in faults)} | - "
        f"| {sum(int(r['lost']) for r in faults)} |",
        "",
        f"Data lost counts saved work (checkpoints, models, files) destroyed or damaged. Separately, "
        f"{sum(int(r['value'] or 0) for r in faults)} finished epoch(s) could not be saved because the injected "
        f"fault (a full disk, a read-only folder) hit their own save; the run resumed from the checkpoint "
        f"before them.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| longest GUI stall during the stress test | {max(stalls):.1f} ms |" if stalls
        else "| longest GUI stall during the stress test | not measured |",
        f"| cancel latency, p95 of {len(cancels)} | {_p95(cancels):.1f} ms |" if cancels
        else "| cancel latency (p95) | not measured |",
    ] + _capped(by_kind.get("capped", []))
    details = ["", "<details><summary>Every file and fault tried</summary>", "",
               "| kind | name | via | outcome |", "|---|---|---|---|"]
    for row in sorted(rows, key=lambda r: (r["kind"], r["name"], r["via"])):
        if row["kind"] in ("bad_input", "hostile_model", "fault", "capped"):
            name = str(row["name"]).replace("|", "\\|")
            details.append(f"| {row['kind']} | `{name}` | {row['via'] or '-'} | {row['outcome']} |")
    details += ["", "</details>"]
    return "\n".join(lines + details) + "\n"


def _capped(rows: list[dict]) -> list[str]:
    """Issue 13's hostile corpus: per entry point, files tried under the memory and time caps, and the worst case."""
    if not rows:
        return []
    by_via: dict[str, list[dict]] = {}
    for row in rows:
        by_via.setdefault(row["via"] or "-", []).append(row)
    lines = ["", "Hostile files (tests/reliability/hostile_corpus.py) through every entry point that reads a user "
             "file, each in a child process whose address space is capped at 2 GiB above its warmed-up size, "
             "with a 15 s CPU-time cap per file (90 s per folder, 180 s of wall time) and a 6 s cap on blocking "
             "without CPU; the window's drop, My models and Import Weights run in-process, held to the same "
             "2 GiB. "
             "Peak is the most any one file took above the process's baseline (GUI rows: the longest GUI "
             "stall, ms).", "",
             "| entry point | files | held | worst peak | slowest |", "|---|---|---|---|---|"]
    for via, group in sorted(by_via.items()):
        peaks = [r["value"] for r in group if r["value"] is not None]
        seconds = [r.get("seconds") for r in group if r.get("seconds") is not None]
        gui = via.startswith("gui:")
        peak = (f"{max(peaks):.0f} ms stall" if gui else f"{max(peaks):.0f} MB") if peaks else "-"
        lines.append(f"| {via} | {len({r['name'] for r in group})} | {sum(r['outcome'] == 'held' for r in group)} "
                     f"| {peak} | {f'{max(seconds):.1f} s' if seconds else '-'} |")
    lines.append(f"| **all** | {len(rows)} pairs, {len({r['name'] for r in rows})} distinct files "
                 f"| {sum(r['outcome'] == 'held' for r in rows)} | | |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reliability", description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only; leave RELIABILITY.md alone")
    parser.add_argument("pytest_args", nargs="*", help="extra arguments for pytest")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cns-ledger-") as tmp:
        ledger = Path(tmp) / "ledger.jsonl"
        env = {**os.environ, "CONVNET_STUDIO_LEDGER": str(ledger), "QT_QPA_PLATFORM": "offscreen"}
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/reliability",
                               *args.pytest_args], cwd=ROOT, env=env)
        rows = [json.loads(line) for line in ledger.read_text(encoding="utf-8").splitlines()] if ledger.exists() else []
    text = summarise(rows)
    print(text)
    if done.returncode != 0:
        print(f"pytest exited {done.returncode}: RELIABILITY.md left as it is", file=sys.stderr)
        return 1
    if not args.no_write:
        body = (HEADER + f"Machine: {machine()}. Command: `python -m benchmarks.reliability`.\n\n" + text)
        body = body.encode("utf-8", "backslashreplace").decode("utf-8")  # file names that are not UTF-8
        from core.io import atomic_write_text

        atomic_write_text(OUT, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
