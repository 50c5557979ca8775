"""Run entry points on hostile files in a child process under a memory cap and a time cap.

``run_jobs(jobs)`` (the parent side) starts ``python -m tests.reliability.capped_runner``
with a JSON file of jobs; the child imports torch and the app, warms up (one
real classify), then caps its own address space at what it has mapped plus
``MEMORY_CAP`` (``RLIMIT_AS``: a CUDA build of torch maps GBs at import, so a
flat 2 GB limit would not even let it start) and runs the jobs one by one:

- a soft time cap: ``SIGALRM`` after ``TIME_CAP_S`` of CPU time (all threads:
  the box is shared, so wall time says little), after ``WALL_CAP_S`` of wall
  time, or after ``BLOCKED_S`` in which the process used almost no CPU (a read
  that blocks forever: a FIFO), raises :class:`TimeCapHit` (a
  ``BaseException``, so no ``except Exception`` in the app can swallow it);
- hard ones, for a long C call that holds the GIL (no Python-level signal
  handler runs then): ``RLIMIT_CPU`` (the kernel's SIGXCPU) a few CPU seconds
  past the soft cap, and ``faulthandler.dump_traceback_later`` past the wall cap;
- stdout is strict UTF-8 (``PYTHONIOENCODING=utf-8:strict``, as on a desktop),
  stderr backslash-escapes, both captured per job.

Each job prints one JSON line with its outcome: ``ok``, ``refused`` (exit 1/2
with a message, or a StudioError from an API), ``traceback`` (an exception
escaped, or the output holds a traceback or "unexpected error"),
``over_memory`` (a MemoryError, torch's allocation failure, or a peak RSS over
the cap), ``over_time``, or, written by the parent when the child died,
``crashed`` / ``over_time``. The parent starts a fresh child after a death,
or after a job left threads or memory behind.
"""

from __future__ import annotations

import contextlib
import faulthandler
import io
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MEMORY_CAP = 2 * 2**30  # bytes above the warmed-up process
TIME_CAP_S = float(os.environ.get("CONVNET_STUDIO_TIME_CAP", "15"))  # CPU s per job unless it says "time_cap"
WALL_CAP_S = 180.0  # per job, whatever else runs on the machine
BLOCKED_S = 6.0  # this long with (almost) no CPU used = blocked for good
HARD_EXTRA_S = 5.0
OUTCOMES = ("ok", "refused", "traceback", "over_memory", "over_time", "crashed")
_MEMORY_WORDS = re.compile(r"MemoryError|alloc_cpu|DefaultCPUAllocator|Cannot allocate memory|out of memory|"
                           r"std::bad_alloc|not enough memory", re.I)
_TRACE_WORDS = re.compile(r"Traceback \(most recent call last\)|unexpected error")


class TimeCapHit(BaseException):
    """Raised in the main thread by the time cap."""


# ------------------------------------------------------------------ parent side


def run_jobs(jobs: list[dict], *, env: dict[str, str] | None = None, deadline_s: float = 3300) -> dict[str, dict]:
    """Run every job (dicts with ``id``, ``entry``, ``args``, optional ``env``); returns id -> result."""
    results: dict[str, dict] = {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cns-capped-") as tmp:
        spec = Path(tmp) / "jobs.json"
        spec.write_text(json.dumps(jobs))
        index = 0
        while index < len(jobs):
            left = deadline_s - (time.monotonic() - started)
            if left <= 0:
                for job in jobs[index:]:
                    results[job["id"]] = _dead(job, "over_time", "the whole batch ran past its deadline")
                break
            index = _one_child(spec, jobs, index, results, env, Path(tmp), left)
    return results


def _one_child(spec: Path, jobs: list[dict], index: int, results: dict, env: dict | None, tmp: Path,
               left: float) -> int:
    """Run jobs from ``index`` in one child until it ends; returns the index to go on from."""
    errors, first = tmp / f"stderr-{index}.txt", index
    current = None
    with open(errors, "wb") as err, subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.capped_runner", str(spec), str(index)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=err, env={**os.environ, **(env or {})}) as child:
        timer = threading.Timer(left, child.kill)
        timer.start()
        try:
            for line in child.stdout:  # type: ignore[union-attr]
                message = json.loads(line)
                if "start" in message:
                    current = message["start"]
                elif "result" in message:
                    results[message["result"]["id"]] = message["result"]
                    current = None
                    index = message["index"] + 1
        finally:
            child.wait()
            timer.cancel()
    if current is not None:  # the child died inside a job
        tail = errors.read_text(errors="replace")[-3000:]
        killed_by_cpu_cap = child.returncode == -signal.SIGXCPU
        outcome = "over_time" if "Timeout (" in tail or killed_by_cpu_cap else "crashed"
        results[current] = _dead(jobs[index], outcome, f"child exit {child.returncode}; stderr: {tail}")
        return index + 1
    if index == first and index < len(jobs):  # no job even started: the runner itself is broken
        tail = errors.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"the capped runner failed before job {index}: exit {child.returncode}\n{tail}")
    return index


def _dead(job: dict, outcome: str, detail: str) -> dict:
    return {"id": job["id"], "entry": job["entry"], "outcome": outcome, "rc": None, "seconds": None,
            "peak_mb": None, "stdout": "", "stderr": detail[-3000:], "message": "", "data": None}


# ------------------------------------------------------------------ child side


def _status(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets VmHWM to the current RSS
    except OSError:
        pass


class _Watchdog:
    """Raises TimeCapHit in the main thread after TIME_CAP_S, or after BLOCKED_S without CPU progress."""

    def __init__(self) -> None:
        self.armed_at: float | None = None
        self.fired = ""
        self._lock = threading.Lock()
        threading.Thread(target=self._run, daemon=True, name="capped-watchdog").start()

    def arm(self, cap: float) -> None:
        with self._lock:
            self.armed_at, self.fired, self.cap = time.monotonic(), "", cap
            self._cpu = [(time.monotonic(), time.process_time())]
            self.cpu_at_arm = self._cpu[0][1]
        faulthandler.dump_traceback_later(WALL_CAP_S + HARD_EXTRA_S, exit=True)
        self._hard_cpu = cap + HARD_EXTRA_S
        used = resource.getrusage(resource.RUSAGE_SELF)
        # the kernel's own CPU cap: SIGXCPU ends a long C call that holds the GIL (no Python thread can)
        resource.setrlimit(resource.RLIMIT_CPU, (int(used.ru_utime + used.ru_stime + self._hard_cpu) + 1,
                                                 resource.getrlimit(resource.RLIMIT_CPU)[1]))

    def disarm(self) -> None:
        with self._lock:
            self.armed_at = None
        faulthandler.cancel_dump_traceback_later()
        resource.setrlimit(resource.RLIMIT_CPU, (resource.RLIM_INFINITY, resource.getrlimit(resource.RLIMIT_CPU)[1]))

    def _run(self) -> None:
        while True:
            time.sleep(0.25)
            with self._lock:
                if self.armed_at is None:
                    continue
                now, cpu = time.monotonic(), time.process_time()
                if cpu - self.cpu_at_arm > self._hard_cpu:  # the soft cap could not get in: a long C call
                    faulthandler.dump_traceback(all_threads=True)
                    sys.stderr.write(f"\nTimeout (CPU {cpu - self.cpu_at_arm:.0f} s)!\n")
                    sys.stderr.flush()
                    os._exit(124)
                if self.fired:
                    continue
                self._cpu.append((now, cpu))
                self._cpu = [(t, c) for t, c in self._cpu if now - t <= BLOCKED_S + 1]
                oldest_t, oldest_c = self._cpu[0]
                if cpu - self.cpu_at_arm > self.cap:
                    self.fired = f"over the {self.cap:.0f} s CPU time cap"
                elif now - self.armed_at > WALL_CAP_S:
                    self.fired = f"over the {WALL_CAP_S:.0f} s wall time cap"
                elif now - oldest_t >= BLOCKED_S and cpu - oldest_c < 0.05:
                    self.fired = f"blocked: no CPU used for {BLOCKED_S:.0f} s"
                else:
                    continue
            os.kill(os.getpid(), signal.SIGALRM)


def _on_alarm(_signum, _frame) -> None:
    raise TimeCapHit()


def _strict_streams() -> tuple[io.BytesIO, io.BytesIO, io.TextIOWrapper, io.TextIOWrapper]:
    out, err = io.BytesIO(), io.BytesIO()
    return (out, err, io.TextIOWrapper(out, encoding="utf-8", errors="strict", write_through=True),
            io.TextIOWrapper(err, encoding="utf-8", errors="backslashreplace", write_through=True))


def _text(data: bytes, limit: int = 6000) -> str:
    text = data.decode("utf-8", errors="backslashreplace")
    return text if len(text) <= limit else text[:limit // 2] + "\n[...]\n" + text[-limit // 2:]


def _entry(job: dict) -> tuple[int | None, Any]:
    """Run one job's entry point; returns (exit code for CLI entries or None, data)."""
    entry, args = job["entry"], job["args"]
    if entry == "cli":
        from core.cli import run_cli

        return run_cli(args), None
    if entry == "list_bundles":
        from core.training.bundles import list_bundles

        return None, [b.name for b in list_bundles(args["root"])]
    if entry == "collect":
        from core.images import collect_images

        found = collect_images(args["paths"])
        return None, {"images": [str(p) for p in found.images], "errors": [str(e) for e in found.errors]}
    if entry == "scan":
        from core.data import scan_folder

        report = scan_folder(args["root"], verify=args.get("verify", True))
        return None, {"samples": [s.path for s in report.samples], "unreadable": report.unreadable,
                      "duplicates": report.duplicates}
    if entry == "decode":
        from core.data import DecodedImages, scan_folder

        report = scan_folder(args["root"])
        decoded = DecodedImages.build(report.samples, args.get("size", 32), workers=2)
        return None, {"samples": [s.path for s in report.samples], "unreadable": report.unreadable,
                      "failed": {report.samples[i].path: r for i, r in decoded.failed.items()}}
    if entry == "load_image":
        from core.images import load_image

        image = load_image(args["path"])
        return None, {"size": list(image.size), "mode": image.mode}
    if entry == "selftest":
        return None, _self_test(args)
    raise ValueError(f"unknown entry {entry}")


def _self_test(args: dict) -> None:
    """Each way a job can go wrong, on purpose (test_the_harness_sees_every_way_to_fail)."""
    what = args["do"]
    if what == "allocate":
        bytearray(MEMORY_CAP + 2**30)
    elif what == "block":
        fifo = Path(args["tmp"]) / "fifo"
        os.mkfifo(fifo)
        fifo.read_bytes()
    elif what == "spin":
        while True:
            pass
    elif what == "hang_in_c":
        import torch

        torch.zeros(1).expand(10**6, 10**6).sum()  # one C call of 1e12 additions: no signal gets in
    elif what == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif what == "raise":
        raise KeyError("boom")
    elif what == "print_bad_name":
        print(os.fsdecode(b"photo-\xff.jpg"))
    elif what == "refuse":
        from core.errors import StudioError

        raise StudioError(f"{args['tmp']}: refused on purpose")


def _run_one(job: dict, watchdog: _Watchdog) -> dict:
    from core.errors import StudioError

    out, err, text_out, text_err = _strict_streams()
    old_env = {k: os.environ.get(k) for k in job.get("env", {})}
    os.environ.update(job.get("env", {}))
    rc, data, message, escaped = None, None, "", ""
    outcome = ""
    rss0 = _status("VmRSS")
    _reset_peak()
    start = time.monotonic()
    watchdog.arm(float(job.get("time_cap", TIME_CAP_S)))
    try:
        with contextlib.redirect_stdout(text_out), contextlib.redirect_stderr(text_err):
            rc, data = _entry(job)
    except TimeCapHit:
        outcome, escaped = "over_time", traceback.format_exc()[-2500:]
    except MemoryError:
        outcome, escaped = "over_memory", traceback.format_exc()[-2500:]
    except StudioError as exc:
        message = str(exc)
        outcome = "refused"
    except BaseException:  # noqa: BLE001 - this is what we are looking for
        escaped = traceback.format_exc()[-2500:]
        outcome = "over_memory" if _MEMORY_WORDS.search(escaped) else "traceback"
    finally:
        watchdog.disarm()
        seconds = time.monotonic() - start
        for key, value in old_env.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    if outcome == "over_time":
        outcome_detail = watchdog.fired
    else:
        outcome_detail = ""
    peak = max(0, _status("VmHWM") - rss0)
    stdout, stderr = _text(out.getvalue(), 2_000_000), _text(err.getvalue())  # stdout whole: it is parsed
    if not outcome:
        if _MEMORY_WORDS.search(stderr) or peak > MEMORY_CAP:
            outcome = "over_memory"
        elif _TRACE_WORDS.search(stderr) or _TRACE_WORDS.search(stdout):
            outcome = "traceback"
        elif rc is None or rc == 0:
            outcome = "ok"
        elif rc in (1, 2):
            outcome = "refused"
        else:
            outcome = "traceback"
    if rc is not None and not message:
        message = stderr
    return {"id": job["id"], "entry": job["entry"], "outcome": outcome, "detail": outcome_detail, "rc": rc,
            "seconds": round(seconds, 3), "peak_mb": round(peak / 2**20, 1), "stdout": stdout, "stderr": stderr,
            "message": message, "traceback": escaped, "data": data}


def _warm_up() -> None:
    from PIL import Image

    from core.cli import run_cli

    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "warm.jpg"
        Image.new("RGB", (64, 48), (30, 120, 60)).save(photo)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            code = run_cli(["classify", str(photo), "--model", "resnet18", "--weights", "none", "--device", "cpu"])
    if code != 0:
        raise RuntimeError("warmup: classify failed")


def main(argv: list[str]) -> int:
    jobs = json.loads(Path(argv[0]).read_text())
    index = int(argv[1])
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # C-level writes to stdout go to stderr: the protocol channel stays clean
    import torch

    torch.set_num_threads(1)  # two shared cores
    import core.cli  # noqa: F401
    import core.data  # noqa: F401
    import core.training.bundles  # noqa: F401
    import core.training.trainer  # noqa: F401

    _warm_up()
    limit = _status("VmSize") + MEMORY_CAP
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    signal.signal(signal.SIGALRM, _on_alarm)
    watchdog = _Watchdog()
    threads = threading.active_count()
    while index < len(jobs):
        job = jobs[index]
        proto.write(json.dumps({"start": job["id"]}) + "\n")
        result = _run_one(job, watchdog)
        proto.write(json.dumps({"result": result, "index": index}) + "\n")
        index += 1
        # a job that left threads running (a blocked read) or memory behind: go on in a fresh child
        if threading.active_count() > threads or _status("VmRSS") > limit - MEMORY_CAP // 2:
            break
    proto.flush()
    os._exit(0)  # a thread blocked on a FIFO must not keep the child alive


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
