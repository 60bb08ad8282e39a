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
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from curate.dedup_stage import DedupBucketStep
from curate.errors import ConfigError, CurateError
from curate.inputs import DEFAULT_BASE_URL, resolve_inputs
from curate.mix import MixSummary
from curate.recipe import Recipe, load_recipe
from curate.resources import SAMPLE_DIR
from curate.schema import DEDUP_NAME, LANGID_NAME, LICENSE_TAGGER_NAME, READER_NAME, SCHEMA_VERSION
from curate.store import STORE_NAME, RunCounts


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
        "mgt_model": recipe.score.model,
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


def _executor(
    recipe: Recipe, pipeline: list[object], tasks: int, logs: Path, *, skip_completed: bool = False
) -> object:
    """The datatrove executor the recipe names. With ``skip_completed`` (resume), finished tasks are not rerun."""
    e = recipe.executor
    if e.kind == "local":
        from datatrove.executor import LocalPipelineExecutor

        return LocalPipelineExecutor(
            pipeline=pipeline,
            tasks=tasks,
            workers=min(e.workers, tasks),
            logging_dir=str(logs),
            skip_completed=skip_completed,
        )
    raise ConfigError(
        f"executor.kind = {e.kind!r}: `curate run` drives stage 1 and the final stage in one process and supports only "
        "'local' so far; use curate.pipeline.stage1_pipeline with datatrove's Slurm/Ray executors (see README)"
    )


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


def stage1_pipeline(recipe: Recipe, files: list[str], run_id: str, work: Path) -> list[object]:
    """The stage-1 datatrove pipeline: usable with any datatrove executor (each task writes its own shards)."""
    from curate.read import ProvenanceWarcReader
    from curate.steps import DateStep, DecideStep, ExtractStep, LicenseStep, ScoreStep, ShardWriter, SignatureStep

    return [
        ProvenanceWarcReader(files, run_id, str(work / "inputs"), recipe.extract.max_payload_bytes),
        LicenseStep(recipe),
        ExtractStep(recipe.extract.extractor, recipe.extract.page_dates, recipe.extract.timeout_s),
        DateStep(recipe),
        ScoreStep(recipe.score.model),
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
) -> RunResult:
    """Run the whole pipeline on ``paths`` (the bundled sample crawl when empty) into ``out``.

    Writes ``out/provenance.duckdb``, ``out/mix/`` and ``out/report.html``; per-task shards, logs and datatrove's
    ``stats.json`` stay under ``out/work/``. With ``resume``, stage-1 tasks that finished in an interrupted run
    of the same inputs, recipe and versions are kept (datatrove's completion markers) and the rest rerun; the
    store, mix and report are then rebuilt from all shards, so a resumed run ends as a fresh one would. With ``quiet``, datatrove's task logs (which it writes to the
    process's stderr) go to ``out/work/logs/stage1.log`` instead.

    Raises:
        ConfigError: bad recipe, ``out`` already holds a run and neither ``force`` nor ``resume`` is set, or
            ``resume`` finds work of a different run.
        InputError: a path is missing, or no record at all could be read from any input.
        ModelError: the recipe's classifier is missing or corrupt.
    """
    from curate.errors import InputError
    from curate.mgt import load_model
    from curate.mix import build_mix, encoding
    from curate.report import export_provenance, render_report
    from curate.store import build_store, open_store

    started = dt.datetime.now(dt.UTC)
    recipe = load_recipe(recipe_path)
    files = resolve_inputs(list(paths) if paths else [str(SAMPLE_DIR)], base_url)
    load_model(recipe.score.model)
    encoding(recipe.mix.tokenizer)
    versions = component_versions(recipe)
    run_id = _run_id(recipe, files, versions)
    out = Path(out)
    _prepare_out(out, force, resume, run_id)
    work = out / "work"
    tasks = recipe.executor.tasks or len(files)
    executor = _executor(
        recipe, stage1_pipeline(recipe, files, run_id, work), tasks, work / "logs", skip_completed=resume
    )
    with _stderr_to(work / "logs" / "stage1.log" if quiet else None):
        executor.run()  # type: ignore[attr-defined]
    failed = executor.get_incomplete_ranks(skip_completed=True)  # type: ignore[attr-defined]
    if failed:
        raise CurateError(f"{len(failed)} of {tasks} stage-1 tasks failed (ranks {failed[:10]}); see {work / 'logs'}")
    if recipe.dedup.near:
        buckets = _executor(
            recipe,
            [DedupBucketStep(str(work), recipe.dedup_params.bands, recipe.executor.duckdb_memory)],
            recipe.dedup_params.bands,
            work / "logs-buckets",
        )
        with _stderr_to(work / "logs-buckets" / "buckets.log" if quiet else None):
            buckets.run()  # type: ignore[attr-defined]
        if buckets.get_incomplete_ranks(skip_completed=True):  # type: ignore[attr-defined]
            raise CurateError(f"dedup bucket tasks failed; see {work / 'logs-buckets'}")
    store_path = out / STORE_NAME
    counts = build_store(work, store_path, recipe, run_id=run_id, versions=versions, started_at=started)
    if counts.read == counts.quarantined and counts.read > 0:
        con = open_store(store_path)
        reasons = con.execute(
            "SELECT reason, any_value(warc_file), any_value(reason_detail) FROM documents GROUP BY 1"
        ).fetchall()
        con.close()
        if [r[0] for r in reasons] == ["unreadable_file"]:
            raise InputError(
                f"no record could be read from any input; e.g. {reasons[0][1]}: {reasons[0][2]} (all rows in {store_path})"
            )
    con = open_store(store_path)
    try:
        mix_summary = build_mix(con, out / "mix", recipe)
        export_provenance(con, out / "provenance", out / "mix")
        render_report(con, recipe, out / "report.html", out / "mix")
    finally:
        con.close()
    return RunResult(run_id, store_path, out / "mix", out / "report.html", counts, mix_summary, files)
