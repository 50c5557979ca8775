"""Running a bake-off's jobs: here one after another, in K worker processes, or as Ray tasks.

* ``local`` (default): the jobs one at a time in this process, with live events for a window or a
  terminal (:class:`BakeoffListener`) and pause / skip / cancel (:class:`BakeoffControl`).
* ``local`` with ``jobs=K``: K worker processes, each pinned to one GPU (``CUDA_VISIBLE_DEVICES``),
  or on a CPU-only machine each with its share of the cores.
* ``ray``: each model's job is a Ray task with its resource needs (CPUs, and a GPU when the job
  trains on one), on the cluster at ``RAY_ADDRESS`` or a local Ray instance. No scheduler of ours:
  Ray places the tasks.

Every executor runs :func:`core.bakeoff.jobs.run_job`, which records each model's result in the
bake-off folder; the leaderboard is built from those records, so it is the same whichever ran them.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from core.errors import Cancelled, StudioError
from core.io import atomic_write_json
from core.models import get_spec
from core.training.callbacks import Callback, EventForwarder
from core.training.trainer import Trainer

from .jobs import EpochLines, run_job
from .leaderboard import Leaderboard
from .plan import BakeoffPlan, ModelJob
from .results import JobResult, read_result, write_result

__all__ = ["BakeoffListener", "BakeoffControl", "EXECUTORS", "run_bakeoff", "leaderboard_of", "run_local",
           "run_processes", "run_ray"]

EXECUTORS = ("local", "ray")


class BakeoffListener:
    """What a window or terminal hears (from the thread that runs the bake-off). Override what you need."""

    def job_started(self, model: str) -> None: ...

    def job_event(self, model: str, name: str, payload: Any) -> None:
        """A training event of the model now training (core.training.events: name and payload)."""

    def job_ended(self, model: str, result: JobResult) -> None: ...


class BakeoffControl:
    """Pause, resume, skip a model, cancel everything: from any thread (the local executor obeys)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._skipped: set[str] = set()
        self._current: tuple[str, Trainer] | None = None
        self._paused = False
        self._cancelled = threading.Event()

    def attach(self, model: str, trainer: Trainer) -> None:
        with self._lock:
            self._current = (model, trainer)
            if self._paused:
                trainer.pause()
            if self._cancelled.is_set() or model in self._skipped:
                trainer.cancel()

    def detach(self) -> None:
        with self._lock:
            self._current = None

    @property
    def current(self) -> str | None:
        with self._lock:
            return self._current[0] if self._current else None

    def skip(self, model: str) -> None:
        """A waiting model will not run; the model now training stops (its checkpoint is kept)."""
        with self._lock:
            self._skipped.add(model)
            if self._current and self._current[0] == model:
                self._current[1].cancel()

    def is_skipped(self, model: str) -> bool:
        with self._lock:
            return model in self._skipped

    def pause(self) -> None:
        with self._lock:
            self._paused = True
            if self._current:
                self._current[1].pause()

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            if self._current:
                self._current[1].resume()

    @property
    def paused(self) -> bool:
        return self._paused

    def cancel(self) -> None:
        """Stop the bake-off: the model now training stops (checkpoint kept), no other starts."""
        self._cancelled.set()
        with self._lock:
            if self._current:
                self._current[1].cancel()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()


def _skipped(job: ModelJob) -> JobResult:
    spec = get_spec(job.model)
    settings = job.train_settings
    result = JobResult(model=job.model, display_name=spec.display_name, status="skipped", message="skipped",
                       strategy=settings.strategy, epochs=settings.epochs)
    write_result(job.result_path, result)
    return result


# -- executors ------------------------------------------------------------------------------------------


def run_local(jobs: list[ModelJob], *, listener: BakeoffListener | None = None,
              control: BakeoffControl | None = None,
              callbacks_for: Callable[[ModelJob], list[Callback]] | None = None) -> list[JobResult]:
    """The jobs one after another in this process. A cancel raises Cancelled after the current job."""
    listener = listener or BakeoffListener()
    control = control or BakeoffControl()
    results = []
    for job in jobs:
        if control.cancelled:
            raise Cancelled("bake-off")
        if control.is_skipped(job.model):
            result = _skipped(job)
        else:
            listener.job_started(job.model)
            forward = EventForwarder(lambda name, payload, model=job.model: listener.job_event(model, name, payload))
            extra = callbacks_for(job) if callbacks_for else []
            try:
                result = run_job(job, callbacks=[forward, *extra],
                                 on_trainer=lambda trainer, model=job.model: control.attach(model, trainer))
            except Cancelled:
                if not control.is_skipped(job.model):
                    listener.job_ended(job.model, JobResult(job.model, get_spec(job.model).display_name,
                                                            "cancelled", "cancelled; its checkpoint is kept"))
                    raise
                result = _skipped(job)
            finally:
                control.detach()
        listener.job_ended(job.model, result)
        results.append(result)
    return results


def _pin(devices: Any, threads: int) -> None:
    """A worker process's initializer: one GPU of its own (or a share of the CPU cores)."""
    if devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(devices.get())
    torch.set_num_threads(max(1, threads))


def _job_in_process(job: ModelJob) -> JobResult:
    return run_job(job, callbacks=[EpochLines(job.model, sys.stderr)])  # stderr: the parent's stdout may be JSON


def run_processes(jobs: list[ModelJob], count: int, *,
                  listener: BakeoffListener | None = None) -> list[JobResult]:
    """``count`` worker processes at once: one per GPU when there are that many, else CPU cores shared."""
    listener = listener or BakeoffListener()
    gpus = torch.cuda.device_count()
    context = multiprocessing.get_context("spawn")
    devices = None
    if gpus >= count:
        devices = context.Queue()
        for index in range(count):
            devices.put(index)
    threads = max(1, (os.cpu_count() or 1) // count) if devices is None else max(1, torch.get_num_threads())
    jobs = [_with_threads(job, threads) for job in jobs]
    by_model: dict[str, JobResult] = {}
    with cf.ProcessPoolExecutor(max_workers=count, mp_context=context, initializer=_pin,
                                initargs=(devices, threads)) as pool:
        futures = {pool.submit(_job_in_process, job): job for job in jobs}
        for job in jobs:
            listener.job_started(job.model)
        for future in cf.as_completed(futures):
            job = futures[future]
            by_model[job.model] = _collect(job, future.result)
            listener.job_ended(job.model, by_model[job.model])
    return [by_model[job.model] for job in jobs]


def _with_threads(job: ModelJob, threads: int) -> ModelJob:
    return ModelJob(job.model, job.settings, job.split, job.run_dir, job.models_root, job.result_path, threads)


def _collect(job: ModelJob, get: Callable[[], JobResult]) -> JobResult:
    """A job's result; a worker that died is a failed model, named, not a traceback."""
    try:
        return get()
    except Exception as exc:  # noqa: BLE001 - a worker process or Ray task died: that model failed, the rest go on
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        result = JobResult(job.model, get_spec(job.model).display_name, "failed",
                           f"its worker stopped: {type(exc).__name__}: {first}")
        write_result(job.result_path, result)
        return result


# Every task's workers can import this source tree (a session the caller started with ray.init() too); on a
# cluster whose nodes have the project installed (or a Ray job's working_dir) the entry is harmless.
# ${PYTHONPATH}: Ray appends to the node's own value instead of replacing it.
_RAY_ENV = {"env_vars": {"PYTHONPATH": f"{Path(__file__).resolve().parents[2]}{os.pathsep}${{PYTHONPATH}}"}}


def _ray_job(job: ModelJob) -> JobResult:
    return run_job(job, callbacks=[EpochLines(job.model, sys.stderr)])  # stderr: the driver's stdout may be JSON


def run_ray(jobs: list[ModelJob], *, listener: BakeoffListener | None = None,
            address: str | None = None) -> list[JobResult]:
    """Each job as a Ray task (CPUs: the job's threads; one GPU when it trains on CUDA).

    Connects to ``address`` or ``RAY_ADDRESS`` (a running cluster), else starts a local Ray instance;
    a Ray session already started by the caller (``ray.init(...)``) is used as it is.
    """
    try:
        import ray  # noqa: PLC0415 - lazy: Ray is the optional extra [cluster]
    except ImportError:
        raise StudioError("the Ray executor needs Ray: pip install 'convnet-studio[cluster]'") from None
    listener = listener or BakeoffListener()
    if not ray.is_initialized():
        ray.init(address=address or os.environ.get("RAY_ADDRESS") or None)
    task = ray.remote(_ray_job)
    # A task asking for more CPUs than any node has would wait for ever: ask for at most the largest node's
    # (the job still runs job.threads torch threads, so the numbers are the same wherever it lands).
    largest = max((node["Resources"].get("CPU", 0) for node in ray.nodes() if node.get("Alive")), default=0)
    refs = {}
    for job in jobs:
        cuda = job.train_settings.device in ("auto", "cuda") and torch.cuda.is_available()
        options = {"num_cpus": max(1, min(job.threads or 1, int(largest) or 1)), "num_gpus": 1 if cuda else 0,
                   "name": f"bakeoff-{job.model}", "runtime_env": _RAY_ENV}
        refs[task.options(**options).remote(job)] = job
        listener.job_started(job.model)
    by_model: dict[str, JobResult] = {}
    pending = list(refs)
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            job = refs[ready[0]]
            by_model[job.model] = _collect(job, lambda ref=ready[0]: ray.get(ref))
            listener.job_ended(job.model, by_model[job.model])
    except KeyboardInterrupt:  # Ctrl+C: stop the tasks too (each keeps its last checkpoint for --resume)
        for ref in pending:
            ray.cancel(ref)
        raise
    return [by_model[job.model] for job in jobs]


# -- the whole bake-off ------------------------------------------------------------------------------------


def leaderboard_of(plan: BakeoffPlan) -> Leaderboard:
    """The ranking of every model of ``plan`` from the results on disk (a model without one is "waiting")."""
    results = []
    for entry in plan.entries:
        result = read_result(plan.result_path(entry.model))
        if result is None:
            result = JobResult(entry.model, get_spec(entry.model).display_name, "cancelled", "not run yet",
                               strategy=entry.strategy, epochs=entry.epochs)
        results.append(result)
    labels = [s.label for s in plan.split.val]
    paths = [s.path for s in plan.split.val]
    return Leaderboard.build(plan.split.classes, labels, paths, results, seed=plan.base.seed)


def run_bakeoff(plan: BakeoffPlan, *, executor: str = "local", jobs: int = 1,
                listener: BakeoffListener | None = None, control: BakeoffControl | None = None,
                callbacks_for: Callable[[ModelJob], list[Callback]] | None = None) -> Leaderboard:
    """Run every job of ``plan`` that has no result yet, then write and return the leaderboard.

    The plan is saved first, so a bake-off killed at any point goes on with ``load_plan(out)`` and
    this function again: finished models are read back, the one in progress resumes from its checkpoint.
    """
    if executor not in EXECUTORS:
        raise StudioError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    plan.save()
    work = plan.jobs(threads=torch.get_num_threads())
    if executor == "ray":
        run_ray(work, listener=listener)
    elif jobs > 1:
        run_processes(work, jobs, listener=listener)
    else:
        run_local(work, listener=listener, control=control, callbacks_for=callbacks_for)
    board = leaderboard_of(plan)
    atomic_write_json(plan.leaderboard_path(), board.to_json())
    return board
