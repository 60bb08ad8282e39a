"""``run_pipeline``: WARC files in, provenance store + token mix + report out.

Stage 1 runs per task on a datatrove executor (local by default): read → licence → extract → date → score →
signature → decide → Parquet shards. Stage 2 runs once: load the shards into DuckDB (the only writer), dedup
globally, write the mix and the report. Everything a run needs is checked before any work starts: the
recipe, the inputs, the classifier, the tokenizer and the output folder.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from datatrove.pipeline.base import PipelineStep

from curate.dedup.buckets import DedupBucketStep
from curate.errors import ConfigError, CurateError
from curate.mix import MixSummary
from curate.read.inputs import DEFAULT_BASE_URL, resolve_inputs
from curate.recipe import Recipe, load_recipe, with_device
from curate.resources import SAMPLE_DIR
from curate.schema import DEDUP_NAME, LANGID_NAME, LICENSE_TAGGER_NAME, READER_NAME, SCHEMA_VERSION
from curate.store import STORE_NAME, RunCounts


@dataclass(frozen=True)
class SubmittedRun:
    """A run handed to Slurm: its jobs run stage 1, the dedup buckets and the finalize step in turn."""

    run_id: str
    out: Path
    job_ids: list[str]
    inputs: list[str]


@dataclass(frozen=True)
class RunResult:
    """Where a run's outputs went and how its records ended."""

    run_id: str
    store: Path
    mix: Path
    report: Path
    counts: RunCounts
    mix_summary: MixSummary
    inputs: list[str]


def mgt_model_version(recipe: Recipe) -> str:
    """The classifier's name, plus the device setting for kinds that run in torch (their numbers depend on it)."""
    from curate.score.model import load_card
    from curate.score.registry import TORCH_KINDS

    name = recipe.score.model
    return f"{name} device={recipe.score.device}" if load_card(name).get("kind") in TORCH_KINDS else name


def component_versions(recipe: Recipe) -> dict[str, str]:
    """Versioned names of everything that changes outputs."""
    from curate import __version__
    from curate.extract import extractor_name

    return {
        "curate": __version__,
        "schema": SCHEMA_VERSION,
        "reader": READER_NAME,
        "extractor": extractor_name(recipe.extract.extractor),
        "langid": LANGID_NAME,
        "license_tagger": LICENSE_TAGGER_NAME,
        "mgt_model": mgt_model_version(recipe),
        "dedup": DEDUP_NAME,
        "dedup_params": recipe.dedup_params.name,
        "tokenizer": f"tiktoken-{version('tiktoken')}:{recipe.mix.tokenizer}",
        "datatrove": version("datatrove"),
        "warcio": version("warcio"),
        "duckdb": version("duckdb"),
    }


def _run_id(recipe: Recipe, files: Sequence[str], versions: dict[str, str]) -> str:
    h = hashlib.sha1()
    h.update(recipe.source.encode())
    h.update(json.dumps(versions, sort_keys=True).encode())
    for f in files:
        h.update(Path(f).name.encode() + b"\0")
    return h.hexdigest()[:16]


def _prepare_out(out: Path, force: bool, resume: bool, run_id: str) -> None:
    """Clear a previous run's outputs (``force``), or keep its finished stage-1 tasks (``resume``)."""
    final = [out / STORE_NAME, out / "mix", out / "report.html", out / "provenance"]
    work = out / "work"
    if resume:
        marker = work / "RUN_ID"
        if work.exists() and (not marker.exists() or marker.read_text().strip() != run_id):
            raise ConfigError(
                f"{out} holds work of another run (different inputs, recipe or versions); use --force to start over"
            )
        for p in [*final, work / "edges", work / "logs-buckets"]:
            if p.exists():
                shutil.rmtree(p) if p.is_dir() else p.unlink()
    else:
        existing = [p for p in [*final, work] if p.exists()]
        if existing and not force:
            raise ConfigError(
                f"{out} already holds a run ({existing[0].name}); pass --force to replace it or --resume to finish it"
            )
        for p in existing:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    work.mkdir(parents=True, exist_ok=True)
    (work / "RUN_ID").write_text(run_id + "\n")


def make_executor(
    recipe: Recipe,
    pipeline: list[object],
    *,
    tasks: int,
    logs: Path,
    name: str,
    depends: object = None,
    skip_completed: bool = False,
    gpus: int = 0,
) -> object:
    """The datatrove executor the recipe names (local, slurm or ray) for one stage of the run; ``gpus`` is
    reserved per task on Slurm and Ray (a local run uses the machine's GPU, if any, as it is)."""
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


class FinalizeStep(PipelineStep):
    """The run's last stage, one task: load the shards into the store, then write the mix, exports and report."""

    name = "finalize: store, mix, report"
    type = "WRITER"

    def __init__(
        self, out: str, recipe: Recipe, run_id: str, versions: dict[str, str], started_at: dt.datetime
    ) -> None:
        super().__init__()
        self.out, self.recipe, self.run_id, self.versions, self.started_at = out, recipe, run_id, versions, started_at

    def run(self, data: object = None, rank: int = 0, world_size: int = 1) -> Iterator[object]:
        """Build everything downstream of the shards."""
        from curate.mix import build_mix
        from curate.report import export_provenance, render_report
        from curate.store import build_store, open_store

        out = Path(self.out)
        build_store(
            out / "work",
            out / STORE_NAME,
            self.recipe,
            run_id=self.run_id,
            versions=self.versions,
            started_at=self.started_at,
        )
        con = open_store(out / STORE_NAME)
        try:
            build_mix(con, out / "mix", self.recipe)
            export_provenance(con, out / "provenance", out / "mix")
            render_report(con, self.recipe, out / "report.html", out / "mix")
        finally:
            con.close()
        return
        yield


def plan_executors(
    recipe: Recipe,
    files: list[str],
    out: Path,
    *,
    run_id: str,
    versions: dict[str, str],
    started: dt.datetime,
    resume: bool = False,
) -> list[object]:
    """The run's executors, each depending on the one before: stage 1, dedup buckets (one task per band), finalize.
    Running the last one runs (or, on Slurm, submits) the whole chain."""
    work = out / "work"
    stage1 = make_executor(
        recipe,
        stage1_pipeline(recipe, files, run_id, work),
        tasks=recipe.executor.tasks or len(files),
        logs=work / "logs",
        name="stage1",
        skip_completed=resume,
        gpus=recipe.executor.gpus_per_task,
    )
    chain = [stage1]
    if recipe.dedup.near:
        bands = recipe.dedup_params.bands
        chain.append(
            make_executor(
                recipe,
                [DedupBucketStep(str(work), bands, recipe.executor.duckdb_memory)],
                tasks=bands,
                logs=work / "logs-buckets",
                name="buckets",
                depends=stage1,
            )
        )
    chain.append(
        make_executor(
            recipe,
            [FinalizeStep(str(out), recipe, run_id, versions, started)],
            tasks=1,
            logs=work / "logs-finalize",
            name="finalize",
            depends=chain[-1],
        )
    )
    return chain


@contextlib.contextmanager
def _stderr_to(path: Path | None) -> Iterator[None]:
    """Point file descriptor 2 at ``path`` (inherited by worker processes) for the block; no-op for None."""
    if path is None:
        yield
        return
    import os
    import sys

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


def torch_threads(recipe: Recipe, n_files: int) -> int:
    """CPU threads for each stage-1 task's torch work: the usable cores shared by the local workers running at
    once, or the one CPU a Slurm/Ray task is given. torch's default (every core in every process) oversubscribes
    the machine as soon as two workers run."""
    if recipe.executor.kind != "local":
        return 1
    concurrent = max(1, min(recipe.executor.workers, recipe.executor.tasks or n_files))
    return max(1, len(os.sched_getaffinity(0)) // concurrent)


def stage1_pipeline(recipe: Recipe, files: list[str], run_id: str, work: Path) -> list[object]:
    """The stage-1 datatrove pipeline: usable with any datatrove executor (each task writes its own shards)."""
    from curate.dating import DateStep
    from curate.decide import DecideStep
    from curate.dedup.step import SignatureStep
    from curate.extract import ExtractStep
    from curate.licenses.step import LicenseStep
    from curate.read.warc import ProvenanceWarcReader
    from curate.run.shards import ShardWriter
    from curate.score.step import ScoreStep

    return [
        ProvenanceWarcReader(files, run_id, str(work / "inputs"), recipe.extract.max_payload_bytes),
        LicenseStep(recipe),
        ExtractStep(recipe.extract.extractor, recipe.extract.page_dates, recipe.extract.timeout_s),
        DateStep(recipe),
        ScoreStep(recipe.score.model, recipe.score.device, recipe.score.batch_docs, torch_threads(recipe, len(files))),
        SignatureStep(recipe),
        DecideStep(recipe),
        ShardWriter(str(work)),
    ]


def run_pipeline(
    paths: Sequence[str] | None,
    out: Path,
    recipe_path: Path | None = None,
    *,
    force: bool = False,
    resume: bool = False,
    quiet: bool = False,
    base_url: str = DEFAULT_BASE_URL,
    device: str | None = None,
) -> RunResult | SubmittedRun:
    """Run the whole pipeline on ``paths`` (the bundled sample crawl when empty) into ``out``.

    Writes ``out/provenance.duckdb``, ``out/mix/`` and ``out/report.html``; per-task shards, logs and datatrove's
    ``stats.json`` stay under ``out/work/``. With ``resume``, stage-1 tasks that finished in an interrupted run
    of the same inputs, recipe and versions are kept (datatrove's completion markers) and the rest rerun; the
    store, mix and report are then rebuilt from all shards, so a resumed run ends as a fresh one would. With ``quiet``, datatrove's task logs (which it writes to the
    process's stderr) go to ``out/work/logs/stage1.log`` instead. ``device`` (auto, cpu or cuda) overrides the
    recipe's ``score.device``.

    Raises:
        ConfigError: bad recipe or device, ``out`` already holds a run and neither ``force`` nor ``resume`` is set, or
            ``resume`` finds work of a different run.
        InputError: a path is missing, or no record at all could be read from any input.
        ModelError: the recipe's classifier is missing or corrupt.
    """
    from curate.errors import InputError
    from curate.mix import encoding
    from curate.score.registry import load_model
    from curate.store import counts as store_counts
    from curate.store import open_store

    started = dt.datetime.now(dt.UTC)
    recipe = load_recipe(recipe_path)
    if device is not None:
        recipe = with_device(recipe, device)
    files = resolve_inputs(list(paths) if paths else [str(SAMPLE_DIR)], base_url)
    # fail before any work on a missing or corrupt classifier; on Slurm/Ray the device is the nodes' business
    load_model(recipe.score.model, recipe.score.device if recipe.executor.kind == "local" else "cpu")
    encoding(recipe.mix.tokenizer)
    versions = component_versions(recipe)
    run_id = _run_id(recipe, files, versions)
    out = Path(out)
    _prepare_out(out, force, resume, run_id)
    work = out / "work"
    chain = plan_executors(recipe, files, out, run_id=run_id, versions=versions, started=started, resume=resume)
    with _stderr_to(work / "logs" / "run.log" if quiet else None):
        chain[-1].run()  # type: ignore[attr-defined]
    if recipe.executor.kind == "slurm":
        return SubmittedRun(run_id, out, [str(getattr(e, "job_id", "")) for e in chain], files)
    for stage, executor in zip(("stage-1", "dedup bucket", "finalize"), chain, strict=False):
        failed = executor.get_incomplete_ranks(skip_completed=True)  # type: ignore[attr-defined]
        if failed:
            raise CurateError(f"{len(failed)} {stage} task(s) failed (ranks {failed[:10]}); see the logs under {work}")
    store_path = out / STORE_NAME
    con = open_store(store_path)
    try:
        counts = store_counts(con)
        if counts.read == counts.quarantined and counts.read > 0:
            reasons = con.execute(
                "SELECT reason, any_value(warc_file), any_value(reason_detail) FROM documents GROUP BY 1"
            ).fetchall()
            if [r[0] for r in reasons] == ["unreadable_file"]:
                raise InputError(
                    f"no record could be read from any input; e.g. {reasons[0][1]}: {reasons[0][2]} (all rows in {store_path})"
                )
    finally:
        con.close()
    manifest = json.loads((out / "mix" / "manifest.json").read_text(encoding="utf-8"))
    by_bucket = {b["name"]: {k: b[k] for k in ("documents", "tokens", "shards")} for b in manifest["buckets"]}
    summary = MixSummary(
        manifest["documents"], manifest["tokens"], sum(b["shards"] for b in by_bucket.values()), by_bucket
    )
    return RunResult(run_id, store_path, out / "mix", out / "report.html", counts, summary, files)
