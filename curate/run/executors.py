"""datatrove executors for curate's stages: local processes, Slurm jobs or Ray tasks, as the recipe says.

Every heavy stage is a list of datatrove steps run by one executor; a command is a chain of executors, each
depending on the one before (``depends=``), so the same chain runs on one machine or is submitted to a
cluster. Nothing here schedules work itself.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from curate.errors import CurateError
from curate.recipe import Recipe


@dataclass(frozen=True)
class Stage:
    """One executor of a chain, with the name progress and errors use for it."""

    name: str
    executor: object
    tasks: int


def make_executor(
    recipe: Recipe,
    pipeline: list[object],
    *,
    tasks: int,
    logs: Path,
    name: str,
    depends: object = None,
    skip_completed: bool = True,
    gpus: int = 0,
) -> object:
    """The datatrove executor the recipe names (local, slurm or ray) for one stage; ``gpus`` is reserved per
    task on Slurm and Ray (a local run uses the machine's GPU, if any, as it is). With ``skip_completed`` a
    task whose completion marker exists under ``logs`` is not run again (datatrove's resume)."""
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

        return SlurmPipelineExecutor(
            time=e.time,
            partition=e.partition,
            cpus_per_task=1,
            gpus_per_task=gpus,
            mem_per_cpu_gb=e.mem_per_cpu_gb,
            job_name=f"curate-{name}",
            env_command=e.env_command or None,
            slurm_logs_folder=str(logs / "slurm"),
            **common,  # type: ignore[arg-type]
        )
    from datatrove.executor.ray import RayPipelineExecutor

    return RayPipelineExecutor(
        workers=e.workers,
        cpus_per_task=1,
        gpus_per_task=gpus,
        mem_per_cpu_gb=e.mem_per_cpu_gb,
        **common,  # type: ignore[arg-type]
    )


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


def check_completed(stage: Stage, logs: Path) -> None:
    """Raise when a stage that ran locally left tasks unfinished.

    Raises:
        CurateError: naming the stage, the failed ranks and where their logs are.
    """
    failed = stage.executor.get_incomplete_ranks(skip_completed=True)  # type: ignore[attr-defined]
    if failed:
        raise CurateError(f"{len(failed)} {stage.name} task(s) failed (ranks {failed[:10]}); see the logs under {logs}")
