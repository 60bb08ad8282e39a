"""A whole run as one chain on datatrove's Slurm and Ray executors (stage 1, load into the store, finish:
dedup, decide, mix, report): built, chained and picklable. tests/test_cluster.py runs them on real clusters."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from curate.errors import ConfigError
from curate.recipe import load_recipe
from curate.run.commands import FinishRunStep, plan_run
from curate.run.executors import log_folders
from curate.run.ingest import IngestLoadStep


def chain_for(tmp_path: Path, kind: str) -> list:
    recipe_file = tmp_path / "r.toml"
    recipe_file.write_text(
        f'[executor]\nkind = "{kind}"\npartition = "cpu"\nenv_command = "source .venv/bin/activate"\n'
        'gpus_per_task = 1\n[score]\nmodel = "mgt-ensemble-v1"\ndevice = "cuda"\n'
    )
    recipe = load_recipe(recipe_file)
    files = []
    for i in range(40):
        f = tmp_path / "data" / f"CC-MAIN-2020-34-{i:05d}.warc.gz"
        f.parent.mkdir(exist_ok=True)
        f.write_bytes(b"")
        files.append(str(f))
    return [s.executor for s in plan_run(files, tmp_path / "out", recipe)]


def test_slurm_chain(tmp_path: Path) -> None:
    from datatrove.executor import SlurmPipelineExecutor

    stage1, load, final = chain_for(tmp_path, "slurm")
    assert all(isinstance(e, SlurmPipelineExecutor) for e in (stage1, load, final))
    assert final.depends is load and load.depends is stage1
    assert (stage1.world_size, load.world_size, final.world_size) == (40, 1, 1)
    script = stage1.get_launch_file_contents(stage1.get_sbatch_args(40), "launch_pickled_pipeline x")
    assert (
        "#SBATCH --partition=cpu" in script
        and "#SBATCH --array=0-39" in script
        and "source .venv/bin/activate" in script
        and "#SBATCH --gpus=1" in script  # the stage with the transformer pass gets its GPU
    )
    assert "--gpus" not in final.get_launch_file_contents(final.get_sbatch_args(1), "x")
    assert isinstance(pickle.loads(pickle.dumps(final.pipeline[0])), FinishRunStep)
    assert pickle.loads(pickle.dumps(load.pipeline[0])).lock  # on the nodes, the load takes the store's lock
    assert isinstance(load.pipeline[0], IngestLoadStep)
    pickle.dumps(stage1.pipeline)  # every stage-1 step travels to the nodes


def test_ray_chain(tmp_path: Path) -> None:
    from datatrove.executor.ray import RayPipelineExecutor

    stage1, load, final = chain_for(tmp_path, "ray")
    assert all(isinstance(e, RayPipelineExecutor) for e in (stage1, load, final))
    assert (stage1.gpus_per_task, load.gpus_per_task, final.gpus_per_task) == (1, 0, 0)
    assert final.depends is load and load.depends is stage1
    # the driver holds the store's lock while Ray's tasks run, so the load task must not take it again
    assert not load.pipeline[0].lock
    again = pickle.loads(pickle.dumps(final))  # Ray ships the whole executor, its dependencies with it
    assert type(again) is type(final) and isinstance(again.depends.depends.pipeline[-1], type(stage1.pipeline[-1]))


def test_slurm_needs_a_partition(tmp_path: Path) -> None:
    r = tmp_path / "r.toml"
    r.write_text('[executor]\nkind = "slurm"\n')
    with pytest.raises(ConfigError, match="partition"):
        load_recipe(r)


def test_torch_threads_share_the_cores(tmp_path: Path) -> None:
    import os

    from curate.run.executors import torch_threads

    cores = len(os.sched_getaffinity(0))
    local = tmp_path / "local.toml"
    local.write_text("[executor]\nworkers = 4\n")
    assert torch_threads(load_recipe(local), 1) == cores  # one file: one worker runs
    assert torch_threads(load_recipe(local), 10) == max(1, cores // 4)
    stage1 = chain_for(tmp_path, "slurm")[0]
    assert stage1.pipeline[4].threads == 1  # a Slurm task has one CPU


def test_dedup_bucket_tasks_follow_the_recipe_and_the_executor(tmp_path: Path) -> None:
    """``dedup.tasks = 0``: one task on the local executor, ``executor.workers`` on Slurm and Ray; a count is
    capped at the band count. Local tasks running at once share the DuckDB memory and the cores; a Slurm or Ray
    task has one thread and fits the memory its CPU is given."""
    import os

    from curate.dedup.buckets import bucket_tasks
    from curate.run.executors import task_bounds

    def recipe(body: str):
        (tmp_path / "r.toml").write_text(body)
        return load_recipe(tmp_path / "r.toml")

    local = recipe("")
    assert local.dedup.tasks == 0 and bucket_tasks(local, 81) == 1  # pipelines/default.toml
    assert task_bounds(local, 1) == (local.executor.duckdb_memory, 0)  # one task: DuckDB's every core
    three = recipe('[dedup]\ntasks = 3\n[executor]\nworkers = 2\nduckdb_memory = "2GB"\n')
    assert bucket_tasks(three, 81) == 3 and bucket_tasks(three, 2) == 2
    assert task_bounds(three, 3) == ("953MiB", max(1, len(os.sched_getaffinity(0)) // 2))  # 2 at once
    assert bucket_tasks(recipe("[dedup]\ntasks = 500\n"), 81) == 81
    slurm = recipe('[executor]\nkind = "slurm"\npartition = "cpu"\nworkers = 8\nmem_per_cpu_gb = 2\n')
    assert bucket_tasks(slurm, 81) == 8
    assert task_bounds(slurm, 8) == ("1536MiB", 1)  # 2GB of DuckDB would not fit in the CPU's 2 GiB
    ray = recipe('[executor]\nkind = "ray"\nworkers = 4\nmem_per_cpu_gb = 8\nduckdb_memory = "3GB"\n')
    assert bucket_tasks(ray, 81) == 4 and task_bounds(ray, 4) == ("3GB", 1)
    with pytest.raises(ConfigError, match=r"dedup\.tasks must be >= 0"):
        recipe("[dedup]\ntasks = -1\n")


def test_slurm_logs_of_a_remote_work_folder_go_beside_the_store(tmp_path: Path) -> None:
    """With ``executor.work`` remote (an fsspec URL: here fsspec's in-memory store, as S3 would be), stage 1's
    datatrove logs and markers go there, but Slurm's own output (sbatch --output/--error) is a local folder:
    ``STORE/work/ingest-<id>/logs/slurm``, as without it."""
    recipe_file = tmp_path / "r.toml"
    recipe_file.write_text('[executor]\nkind = "slurm"\npartition = "cpu"\nwork = "memory://bucket/curate"\n')
    data = tmp_path / "data"
    data.mkdir()
    (data / "CC-MAIN-2020-34-00000.warc.gz").write_bytes(b"")
    out = tmp_path / "out"
    stages = plan_run([str(data)], out, load_recipe(recipe_file))
    stage1, load, final = (s.executor for s in stages)
    # what `curate run` and `curate ingest` print after submitting: every place a job writes its logs
    listed = log_folders(stages)
    assert listed[:2] == [f"memory://{stage1.logging_dir.path}", stage1.slurm_logs_folder]
    assert load.slurm_logs_folder in listed and final.slurm_logs_folder in listed and len(listed) == 6
    assert not stage1.logging_dir.is_local() and stage1.logging_dir.path.startswith("/bucket/curate/ingest-")
    folder = Path(stage1.slurm_logs_folder)
    assert folder.parent.parent.parent == out / "work" and folder.parent.parent.name.startswith("ingest-")
    assert folder.parts[-2:] == ("logs", "slurm") and not folder.exists()
    script = stage1.get_launch_file_contents(stage1.get_sbatch_args(1), "launch_pickled_pipeline x")
    assert f"#SBATCH --output={folder}/%A_%a.out" in script and f"#SBATCH --error={folder}/%A_%a.out" in script
    assert folder.is_dir()  # made when the script is written: Slurm does not make it
    for e in (load, final):  # the other stages' logs are local already
        assert e.slurm_logs_folder.startswith(str(out / "work"))
    local = tmp_path / "local.toml"
    local.write_text('[executor]\nkind = "slurm"\npartition = "cpu"\n')
    stage1 = plan_run([str(data)], tmp_path / "out2", load_recipe(local))[0].executor
    assert stage1.logging_dir.is_local()  # the same place as with a remote work folder: LOGS/slurm
    assert stage1.slurm_logs_folder == str(Path(stage1.logging_dir.path) / "slurm")
    assert Path(stage1.slurm_logs_folder).relative_to(tmp_path / "out2" / "work").parts[1:] == ("logs", "slurm")


def test_tokenize_tasks_grow_with_the_kept_text_not_the_task_memory(tmp_path: Path) -> None:
    """A mix runs one tokenize task per worker until a task's share of the kept text would pass a quarter of its
    DuckDB memory (local workers running at once share executor.duckdb_memory); then more, smaller tasks.
    mix.tasks, when set, is taken as it is."""
    from curate.run.commands import TEXT_SHARE, tokenize_tasks

    def recipe(text: str):
        f = tmp_path / "r.toml"
        f.write_text(text)
        return load_recipe(f)

    two = recipe('[executor]\nworkers = 2\nduckdb_memory = "2GiB"\n')
    per_task = 2**30  # 2 GiB shared by the two workers running at once
    assert tokenize_tasks(two, 0) == 2 and tokenize_tasks(two, per_task // TEXT_SHARE * 2) == 2
    assert tokenize_tasks(two, per_task // TEXT_SHARE * 2 + 1) == 3
    # the default recipe (2 workers, duckdb_memory "2GB") on the kept text of the 4 GB benchmark (docs/scale.md)
    assert tokenize_tasks(load_recipe(None), 2_318_640_931) == 10
    assert tokenize_tasks(recipe("[executor]\nworkers = 2\n[mix]\ntasks = 5\n"), 10**12) == 5
    ray = recipe('[executor]\nkind = "ray"\nworkers = 4\nmem_per_cpu_gb = 4\nduckdb_memory = "2GiB"\n')
    assert tokenize_tasks(ray, 10**10) == -(-(10**10) * TEXT_SHARE // 2**31)  # each Ray task its own 2 GiB
