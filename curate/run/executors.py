"""datatrove executors for curate's stages: local processes, Slurm jobs or Ray tasks, as the recipe says.

Every heavy stage is a list of datatrove steps run by one executor; a command is a chain of executors, each
depending on the one before (``depends=``), so the same chain runs on one machine or is submitted to a
cluster. Nothing here schedules work itself: Ray's tasks are placed by Ray (the cluster named by ``RAY_ADDRESS``,
or a fresh local one), Slurm's jobs by Slurm; :func:`run_to_end` only waits for them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datatrove.executor.ray import RayPipelineExecutor

from curate.errors import CurateError, TasksFailed
from curate.recipe import Recipe

# the line that ends a Python traceback: "OSError: [Errno 28] No space left on device", "duckdb.IOException: …"
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Failed|Warning)\b.*$", re.MULTILINE)
SQUEUE_POLL_S = 5.0  # how often run_to_end asks Slurm whether a stage's jobs have left the queue


CLUSTER_MEMORY_SHARE = 0.75
"""On Slurm and Ray a task's DuckDB limit is at most this share of ``executor.mem_per_cpu_gb`` (the
memory its one CPU is given): DuckDB's limit covers its buffers, not the whole process."""

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_UNITS |= {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def memory_bytes(limit: str) -> int | None:
    """Bytes of a DuckDB memory limit such as ``"2GB"`` or ``"512MiB"`` (DuckDB's units: KB/MB/GB/TB are powers
    of 1000, KiB/MiB/GiB/TiB of 1024); None when it is not a plain amount."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", limit)
    if m is None or m.group(2).lower() not in _UNITS:
        return None
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


@dataclass(frozen=True)
class Stage:
    """One executor of a chain, with the name progress and errors use for it; ``progress``: the folder (local or
    fsspec URL) whose ``progress/*.json`` its tasks write, when not the caller's work folder."""

    name: str
    executor: object
    tasks: int
    progress: str = ""


def make_executor(
    recipe: Recipe,
    pipeline: list[object],
    *,
    tasks: int,
    logs: Path | str,
    name: str,
    depends: object = None,
    skip_completed: bool = True,
    gpus: int = 0,
    slurm_logs: Path | None = None,
) -> object:
    """The datatrove executor the recipe names (local, slurm or ray) for one stage; ``gpus`` is reserved per
    task on Slurm and Ray (a local run uses the machine's GPU, if any, as it is). With ``skip_completed`` a
    task whose completion marker exists under ``logs`` (a local folder or an fsspec URL such as ``s3://``) is not
    run again (datatrove's resume).

    Slurm writes each task's own output (``%A_%a.out``: what the job printed, a crash before Python started)
    to a path on a filesystem the nodes see, never to an object store: ``slurm_logs`` when given, else
    ``LOGS/slurm`` when ``logs`` is a local folder.

    Raises:
        ValueError: a Slurm stage whose ``logs`` is remote (an fsspec URL) without ``slurm_logs`` (a caller's bug).
    """
    e = recipe.executor
    common: dict[str, object] = {
        "pipeline": pipeline,
        "tasks": tasks,
        "logging_dir": str(logs),
        "skip_completed": skip_completed,
        "depends": depends,
    }
    if e.kind == "local":
        from datatrove.executor import LocalPipelineExecutor

        return LocalPipelineExecutor(workers=min(e.workers, tasks), **common)  # type: ignore[arg-type]
    if e.kind == "slurm":
        from datatrove.executor import SlurmPipelineExecutor

        if slurm_logs is None and "://" in str(logs):
            raise ValueError(f"{name}: Slurm cannot write its logs under {logs}; give a local folder (slurm_logs)")
        return SlurmPipelineExecutor(
            time=e.time,
            partition=e.partition,
            cpus_per_task=1,
            gpus_per_task=gpus,
            mem_per_cpu_gb=e.mem_per_cpu_gb,
            job_name=f"curate-{name}",
            env_command=e.env_command or None,
            slurm_logs_folder=str(slurm_logs or f"{logs}/slurm"),
            **common,  # type: ignore[arg-type]
        )
    return RayExecutor(
        workers=e.workers,
        cpus_per_task=1,
        gpus_per_task=gpus,
        mem_per_cpu_gb=e.mem_per_cpu_gb,
        **common,  # type: ignore[arg-type]
    )


def task_bounds(recipe: Recipe, tasks: int) -> tuple[str, int]:
    """The DuckDB memory limit and threads (0: DuckDB's default, every core) of each of ``tasks`` tasks of a
    stage that query the store (dedup bucket tasks, the mix's tokenize and merge tasks).

    Local: the tasks that run at once (``min(executor.workers, tasks)``) share ``executor.duckdb_memory`` and
    the usable cores evenly; one task gets them whole. Slurm and Ray: each task has the one CPU the scheduler
    gives it (one thread) and ``executor.duckdb_memory``, capped at :data:`CLUSTER_MEMORY_SHARE` of
    ``executor.mem_per_cpu_gb``.
    """
    e = recipe.executor
    total = memory_bytes(e.duckdb_memory)
    if e.kind != "local":
        cap = int(e.mem_per_cpu_gb * 2**30 * CLUSTER_MEMORY_SHARE)
        return (e.duckdb_memory if total is not None and total <= cap else f"{cap // 2**20}MiB"), 1
    concurrent = max(1, min(e.workers, tasks))
    if concurrent == 1:
        return e.duckdb_memory, 0
    memory = e.duckdb_memory if total is None else f"{max(1, total // concurrent // 2**20)}MiB"
    return memory, max(1, len(os.sched_getaffinity(0)) // concurrent)


def torch_threads(recipe: Recipe, n_files: int) -> int:
    """CPU threads for each stage-1 task's torch work: the usable cores shared by the local workers running at
    once, or the one CPU a Slurm/Ray task is given. torch's default (every core in every process) oversubscribes
    the machine as soon as two workers run."""
    if recipe.executor.kind != "local":
        return 1
    concurrent = max(1, min(recipe.executor.workers, recipe.executor.tasks or n_files))
    return max(1, len(os.sched_getaffinity(0)) // concurrent)


@contextlib.contextmanager
def stderr_to(path: Path | None) -> Iterator[None]:
    """Point file descriptor 2 at ``path`` (inherited by worker processes) for the block; no-op for None.
    datatrove's task logs go there instead of the terminal."""
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    with path.open("ab") as fh:
        os.dup2(fh.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def folder_name(folder: Any) -> str:
    """A datatrove ``DataFolder`` as a user would type it: a local path, or its URL (``s3://bucket/prefix``)."""
    return str(folder.path) if folder.is_local() else str(folder.fs.unstrip_protocol(folder.path))


def log_folders(stages: list[Stage]) -> list[str]:
    """Where each stage's tasks write, in order: datatrove's per-task logs (``logs/task_NNNNN.log``) and, for a
    Slurm stage, each job's own output (``%A_%a.out``: what the job printed, a crash before Python started)."""
    out: list[str] = []
    for stage in stages:
        folder = getattr(stage.executor, "logging_dir", None)
        if folder is not None:
            out.append(folder_name(folder))
        slurm = getattr(stage.executor, "slurm_logs_folder", None)
        if slurm:
            out.append(str(slurm))
    return list(dict.fromkeys(out))


def task_errors(stage: Stage, ranks: list[int]) -> dict[int, str]:
    """For each of ``ranks`` whose datatrove log holds a traceback (a task that raised, as opposed to one whose
    worker was killed), the last line of its last traceback (``OSError: [Errno 28] …``), or "" when that line
    is not recognised."""
    logs = stage.executor.logging_dir  # type: ignore[attr-defined]
    out: dict[int, str] = {}
    for rank in ranks:
        try:
            with logs.open(f"logs/task_{rank:05d}.log", "r", errors="replace") as fh:
                text = fh.read()
        except OSError:
            continue
        if "Traceback" in text:
            found = EXCEPTION_LINE.search(text, text.rindex("Traceback"))
            out[rank] = found.group(0).strip()[:500] if found else ""
    return out


def check_completed(stage: Stage, logs: Path | str) -> None:
    """Raise when a stage that ran locally left tasks unfinished.

    Raises:
        TasksFailed: naming the stage, the failed ranks, the first task's error and where their logs are.
    """
    failed = stage.executor.get_incomplete_ranks(skip_completed=True)  # type: ignore[attr-defined]
    if failed:
        causes = task_errors(stage, failed[:10])
        first = next((cause for cause in causes.values() if cause), "")
        why = f": {first}" if first else ""
        raise TasksFailed(
            f"{len(failed)} {stage.name} task(s) failed (ranks {failed[:10]}){why}; see the logs under {logs}", causes
        )


def connect_ray() -> None:
    """Connect this process to Ray once: the cluster ``RAY_ADDRESS`` names (``host:port`` of a ``ray start --head``),
    or, without it, a Ray instance started for this process (Ray's own default)."""
    import ray

    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS") or None, logging_level=logging.WARNING)


class RayExecutor(RayPipelineExecutor):  # type: ignore[misc]
    """datatrove's Ray executor, connecting to the cluster (:func:`connect_ray`) when it is run, so a chain built
    without a cluster (the tests that check a chain) needs none. Tasks are placed and retried by Ray; ``run`` blocks."""

    def run(self) -> None:
        """Connect, then run every incomplete task (and any dependency not run yet) on the cluster."""
        connect_ray()
        super().run()


def _queued(job_ids: list[str]) -> bool | None:
    """Whether any of ``job_ids`` (array jobs included) is still pending or running; None when squeue failed."""
    done = subprocess.run(
        ["squeue", "-h", "-o", "%i", "-j", ",".join(job_ids)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        # squeue refuses ids it no longer knows (a finished job leaves its table after MinJobAge)
        return False if "Invalid job id" in done.stderr else None
    return bool(done.stdout.strip())


def _dependents(job_id: str, name: str) -> list[str]:
    """Jobs waiting on ``job_id``: the stats-merge job datatrove submits after every Slurm stage (same job name,
    ``afterok`` on the stage's array). Found by their dependency, or, when the stage already ended and Slurm
    cleared it, by name among the plain jobs submitted after it."""
    listed = subprocess.run(["squeue", "-h", "-o", "%i|%j|%E"], capture_output=True, text=True, check=False)
    if listed.returncode != 0:
        return []
    out = []
    for line in listed.stdout.splitlines():
        jid, jname, dependency = [*line.split("|", 2), "", ""][:3]
        later = jid.isdigit() and job_id.isdigit() and int(jid) > int(job_id)
        if f":{job_id}" in dependency or (later and jname == name):
            out.append(jid)
    return out


def _never_runnable(job_ids: list[str]) -> bool:
    """Whether every one of ``job_ids`` still queued waits on a dependency that can no longer be met (its stage
    failed, so datatrove's ``afterok`` stats-merge job would stay pending for ever)."""
    listed = subprocess.run(
        ["squeue", "-h", "-o", "%r", "-j", ",".join(job_ids)], capture_output=True, text=True, check=False
    )
    reasons = listed.stdout.split() if listed.returncode == 0 else []
    return bool(reasons) and all(r == "DependencyNeverSatisfied" for r in reasons)


def _wait(jobs: list[str], poll_s: float, squeue_failures: int, *, give_up_on_unrunnable: bool = False) -> None:
    """Poll ``squeue`` until ``jobs`` have left the queue (or, with ``give_up_on_unrunnable``, until those left
    can never run: they are cancelled)."""
    failures = 0
    while True:
        queued = _queued(jobs)
        if queued is False:
            return
        if queued and give_up_on_unrunnable and _never_runnable(jobs):
            subprocess.run(["scancel", *jobs], capture_output=True, check=False)
            return
        failures = failures + 1 if queued is None else 0
        if failures >= squeue_failures:
            raise CurateError(f"squeue failed {failures} times while waiting for Slurm jobs {', '.join(jobs)}")
        time.sleep(poll_s)


def run_to_end(executor: object, *, poll_s: float = SQUEUE_POLL_S, squeue_failures: int = 12) -> None:
    """Run an executor and return when every one of its tasks has ended (finished or failed; the caller checks
    which with :func:`check_completed`). Local and Ray executors block; a Slurm executor's jobs are submitted
    (also from inside a Slurm job, as a run's finish job does for the mix) and then ``squeue`` is polled every
    ``poll_s`` seconds until they have left the queue, with the stats-merge job datatrove submits after them
    (it reads the stage's logs, which the caller may delete once this returns).

    Raises:
        CurateError: squeue failed ``squeue_failures`` times in a row (no controller to ask).
    """
    from datatrove.executor import SlurmPipelineExecutor

    if not isinstance(executor, SlurmPipelineExecutor):
        executor.run()  # type: ignore[attr-defined]
        return
    executor.launch_job()  # not run(): inside a Slurm job run() would take itself for one of the new tasks
    if executor.job_id in (None, -1):  # every task had completed: nothing was submitted
        return
    job = str(executor.job_id)
    stats = _dependents(job, str(getattr(executor, "job_name", "")))
    _wait([job], poll_s, squeue_failures)
    if stats:  # a failed stage leaves its stats-merge job pending for ever: cancelled, not waited on
        _wait(stats, poll_s, squeue_failures, give_up_on_unrunnable=True)
