"""``curate ingest``: WARC files in, appended to a store as one ``runs`` row.

Stage 1 runs per input file as datatrove tasks (read → licence/opt-out evidence → extract → date → score →
sign → Parquet shards under ``STORE/work/ingest-<id>/``); a one-task load step then inserts every shard into
the store in one transaction. A kill before the load leaves the store as it was (``--resume`` keeps the
finished tasks); a kill during the load rolls it back; a load that already completed is not run twice.

Inputs the store already holds are not read again: a local file whose name and SHA-256 match a recorded
input adds nothing (and is named in the result), a different file under a recorded name is refused, since
document ids derive from the file name. All ingests into one store use the same ingest-time recipe keys
(:data:`curate.recipe.INGEST_KEYS`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from datatrove.pipeline.base import PipelineStep

from curate import __version__
from curate.dating import DateStep
from curate.decide import check_ingest_settings
from curate.dedup.step import SignatureStep
from curate.errors import InputError, Interrupted
from curate.extract import ExtractStep, extractor_name
from curate.licenses.step import LicenseStep
from curate.read.inputs import DEFAULT_BASE_URL, is_remote, resolve_inputs
from curate.read.warc import ProvenanceWarcReader
from curate.recipe import Recipe, ingest_settings
from curate.run.executors import Stage, check_completed, make_executor, stderr_to, torch_threads
from curate.run.progress import NullReporter, Reporter, watching
from curate.run.shards import ShardWriter
from curate.schema import (
    DEDUP_NAME,
    LANGID_NAME,
    LICENSE_TAGGER_NAME,
    READER_NAME,
    REASON_STATUS,
    SCHEMA_VERSION,
    Status,
)
from curate.score.model import load_card
from curate.score.registry import TORCH_KINDS, load_model
from curate.score.step import ScoreStep
from curate.store import STORE_FILE, WORK_DIR, known_inputs, load_shards, open_store, store_file, store_lock, writing


@dataclass(frozen=True)
class IngestResult:
    """What an ingest added to the store."""

    run_id: str
    store: Path
    inputs: list[str]  # the files read
    skipped: list[str]  # files the store already held (same name and SHA-256): not read again
    added: int  # documents added
    quarantined: int
    submitted: list[str] = field(default_factory=list)  # Slurm job ids, when the ingest was submitted


def mgt_model_version(recipe: Recipe) -> str:
    """The classifier's name, plus the device setting for kinds that run in torch (their numbers depend on it)."""
    name = recipe.score.model
    return f"{name} device={recipe.score.device}" if load_card(name).get("kind") in TORCH_KINDS else name


def component_versions(recipe: Recipe) -> dict[str, str]:
    """Versioned names of everything that changes what ingest writes."""
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
        "datatrove": version("datatrove"),
        "warcio": version("warcio"),
        "duckdb": version("duckdb"),
    }


def ingest_id(recipe: Recipe, files: Sequence[str], versions: dict[str, str]) -> str:
    """A stable id for ingesting ``files`` with this recipe and these versions (the work folder's name)."""
    h = hashlib.sha1()
    h.update(json.dumps(ingest_settings(recipe), sort_keys=True, default=str).encode())
    h.update(json.dumps(versions, sort_keys=True).encode())
    for f in files:
        h.update(Path(f).name.encode() + b"\0")
    return h.hexdigest()[:16]


def stage1_pipeline(recipe: Recipe, files: list[str], run_id: str, work: Path) -> list[object]:
    """The stage-1 datatrove pipeline: usable with any datatrove executor (each task writes its own shards)."""
    return [
        ProvenanceWarcReader(files, run_id, str(work / "inputs"), recipe.extract.max_payload_bytes),
        LicenseStep(recipe),
        ExtractStep(recipe.extract.extractor, recipe.extract.page_dates, recipe.extract.timeout_s),
        DateStep(),
        ScoreStep(recipe.score.model, recipe.score.device, recipe.score.batch_docs, torch_threads(recipe, len(files))),
        SignatureStep(recipe),
        ShardWriter(str(work)),
    ]


def file_sha256(path: str) -> str:
    """SHA-256 of a local file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def inventory(work: Path) -> list[dict[str, Any]]:
    """Every input the tasks read: path, size, SHA-256 and record count (written by the reader)."""
    out: list[dict[str, Any]] = []
    folder = work / "inputs"
    for name in sorted(os.listdir(folder)) if folder.exists() else []:
        out.extend(json.loads((folder / name).read_text(encoding="utf-8")))
    return sorted(out, key=lambda e: str(e["path"]))


def split_known(files: list[str], known: dict[str, dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(files to read, files the store already holds), given the store's ``known`` inputs
    (:func:`curate.store.known_inputs`). Local files are compared by SHA-256 with the recorded input of the
    same name; a remote one is compared after reading, at load.

    Raises:
        InputError: two inputs share a file name, or a local file differs from the recorded file of its name.
    """
    names: dict[str, str] = {}
    for f in files:
        name = Path(f).name
        if name in names:
            raise InputError(
                f"two inputs are named {name} ({names[name]} and {f}); document ids derive from file names: rename one"
            )
        names[name] = f
    todo, skipped = [], []
    for f in files:
        entry = known.get(Path(f).name)
        if entry is None or is_remote(f):
            todo.append(f)
        elif file_sha256(f) == entry["sha256"]:
            skipped.append(f)
        else:
            raise InputError(
                f"{f}: the store already holds a different file named {Path(f).name} (ingest {entry['run_id']}, "
                f"SHA-256 {str(entry['sha256'])[:12]}…); document ids derive from file names: rename the new file"
            )
    return todo, skipped


def _ingest_counts(con: Any, run_id: str) -> tuple[int, int, int, int]:
    quarantine = [r.value for r, s in REASON_STATUS.items() if s == Status.QUARANTINED]
    row = con.execute(
        """SELECT count(*), count(*) FILTER (ingest_reason IS NULL),
                  count(*) FILTER (ingest_reason IS NOT NULL AND NOT list_contains(?, ingest_reason)),
                  count(*) FILTER (list_contains(?, ingest_reason)) FROM documents WHERE run_id = ?""",
        [quarantine, quarantine, run_id],
    ).fetchone()
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


def load_ingest(
    store: Path, work: Path, recipe: Recipe, *, run_id: str, versions: dict[str, str], started: dt.datetime, lock: bool
) -> int:
    """Insert an ingest's shards into the store and record it in ``runs``, in one transaction; returns the
    documents added. Remote inputs that turn out to be files the store holds are left out.

    Raises:
        InputError: a remote input differs from the recorded file of its name.
    """
    with writing(
        store, "curate ingest (load)", lock=lock, memory_limit=recipe.executor.duckdb_memory, create=True
    ) as con:
        check_ingest_settings(con, recipe)
        known = known_inputs(con)
        read = inventory(work)
        skip: set[str] = set()
        for entry in read:
            old = known.get(Path(str(entry["path"])).name)
            if old is None:
                continue
            if old["sha256"] != entry["sha256"]:
                raise InputError(
                    f"{entry['path']}: the store already holds a different file of this name (ingest {old['run_id']})"
                )
            skip.add(Path(str(entry["path"])).name)
        added = load_shards(con, work, skip_files=frozenset(skip))
        n_read, n_passed, n_dropped, n_quarantined = _ingest_counts(con, run_id)
        inputs = [e for e in read if Path(str(e["path"])).name not in skip]
        if inputs:
            con.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    run_id,
                    SCHEMA_VERSION,
                    started,
                    dt.datetime.now(dt.UTC),
                    recipe.name,
                    recipe.version,
                    recipe.source,
                    json.dumps(versions, sort_keys=True),
                    json.dumps(inputs, sort_keys=True),
                    n_read,
                    n_passed,
                    n_dropped,
                    n_quarantined,
                ],
            )
        con.execute(
            "INSERT OR IGNORE INTO store_meta VALUES ('ingest_settings', ?)",
            [json.dumps(ingest_settings(recipe), sort_keys=True, default=str)],
        )
    return added


class IngestLoadStep(PipelineStep):
    """datatrove step (one task): load an ingest's shards into the store (see :func:`load_ingest`)."""

    name = "load into the store"
    type = "WRITER"

    def __init__(
        self,
        store: str,
        work: str,
        recipe: Recipe,
        *,
        run_id: str,
        versions: dict[str, str],
        started: dt.datetime,
        lock: bool,
    ) -> None:
        super().__init__()
        self.store, self.work, self.recipe, self.run_id = store, work, recipe, run_id
        self.versions, self.started, self.lock = versions, started, lock

    def run(self, data: object = None, rank: int = 0, world_size: int = 1) -> Any:
        """Load once."""
        n = load_ingest(
            Path(self.store),
            Path(self.work),
            self.recipe,
            run_id=self.run_id,
            versions=self.versions,
            started=self.started,
            lock=self.lock,
        )
        self.stat_update("documents", value=n)
        return
        yield


@dataclass(frozen=True)
class IngestPlan:
    """An ingest ready to run: its stages (stage 1, load), work folder and inputs."""

    run_id: str
    work: Path
    files: list[str]
    skipped: list[str]
    stages: list[Stage]


def plan_ingest(
    store: Path, recipe: Recipe, files: list[str], *, resume: bool, started: dt.datetime, depends: object = None
) -> IngestPlan:
    """Check the inputs against the store and build the stage-1 and load executors (nothing runs yet).

    Raises:
        InputError: conflicting input names (see :func:`split_known`).
        ConfigError: the recipe's ingest-time keys differ from the store's.
    """
    known: dict[str, dict[str, Any]] = {}
    if store_file(store).exists():
        con = open_store(store)
        try:
            check_ingest_settings(con, recipe)
            known = known_inputs(con)
        finally:
            con.close()
    todo, skipped = split_known(files, known)
    versions = component_versions(recipe)
    run_id = ingest_id(recipe, todo, versions)
    work = Path(store) / WORK_DIR / f"ingest-{run_id}"
    if not todo:
        return IngestPlan(run_id, work, [], skipped, [])
    if work.exists() and not resume:
        shutil.rmtree(work)  # an earlier, unfinished attempt at the same ingest: start it over
    local = recipe.executor.kind == "local"
    stage1 = make_executor(
        recipe,
        stage1_pipeline(recipe, todo, run_id, work),
        tasks=recipe.executor.tasks or len(todo),
        logs=work / "logs",
        name="ingest",
        skip_completed=resume,
        gpus=recipe.executor.gpus_per_task,
        depends=depends,
    )
    load = make_executor(
        recipe,
        [
            IngestLoadStep(
                str(store), str(work), recipe, run_id=run_id, versions=versions, started=started, lock=not local
            )
        ],
        tasks=1,
        logs=work / "logs-load",
        name="load",
        depends=stage1,
    )
    return IngestPlan(
        run_id,
        work,
        todo,
        skipped,
        [
            Stage("stage 1 (read, extract, score, sign)", stage1, recipe.executor.tasks or len(todo)),
            Stage("load", load, 1),
        ],
    )


def run_stages(
    plan_stages: list[Stage], work: Path, reporter: Reporter, *, total_bytes: int | None, quiet: bool
) -> None:
    """Run local stages in order, reporting progress; raise when a stage left tasks unfinished."""
    for stage in plan_stages:
        reporter.stage(stage.name, stage.tasks, total_bytes if stage is plan_stages[0] else None)
        logs = Path(stage.executor.logging_dir.path)  # type: ignore[attr-defined]
        watch = watching(reporter, stage.name, work, logs, stage.tasks) if stage is plan_stages[0] else nullcontext()
        with watch, stderr_to(work / "run.log" if quiet else None):
            stage.executor.run()  # type: ignore[attr-defined]
        check_completed(stage, logs)
        reporter.end(stage.name, f"{stage.tasks}/{stage.tasks} tasks done")


def _local_size(files: list[str]) -> int | None:
    try:
        return sum(os.path.getsize(f) for f in files)
    except OSError:
        return None


def ingest(
    paths: Sequence[str],
    store: Path,
    recipe: Recipe,
    *,
    base_url: str = DEFAULT_BASE_URL,
    resume: bool = False,
    quiet: bool = True,
    reporter: Reporter | None = None,
    command: str = "curate ingest",
    lock: bool = True,
) -> IngestResult:
    """Ingest ``paths`` (files, globs, folders, URLs, ``*.paths.gz`` listings) into the store folder ``store``,
    creating it when it does not exist; ``lock``: take the store's write lock (False when the caller holds it).
    With ``quiet``, datatrove's task logs go to the work folder's
    ``run.log`` instead of stderr. On Slurm the stages are submitted and the result lists the job ids.

    Raises:
        InputError: a path is missing, two inputs share a name, or a file differs from the recorded one of its name.
        ConfigError: the recipe's ingest-time keys differ from the store's.
        StoreError: the folder is not a curate store, or another process holds its lock.
        ModelError: the recipe's classifier is missing or corrupt.
        Interrupted: Ctrl-C; the message names the command that resumes.
    """
    reporter = reporter or NullReporter()
    started = dt.datetime.now(dt.UTC)
    files = resolve_inputs(list(paths), base_url)
    # fail before any work on a missing or corrupt classifier; on Slurm/Ray the device is the nodes' business
    load_model(recipe.score.model, recipe.score.device if recipe.executor.kind == "local" else "cpu")
    store = Path(store)
    with store_lock(store, command) if lock else nullcontext():
        plan = plan_ingest(store, recipe, files, resume=resume, started=started)
        if not plan.files:
            return IngestResult(plan.run_id, store, [], plan.skipped, 0, 0)
        if recipe.executor.kind == "slurm":
            plan.stages[-1].executor.run()  # type: ignore[attr-defined]
            ids = [str(getattr(s.executor, "job_id", "")) for s in plan.stages]
            return IngestResult(plan.run_id, store, plan.files, plan.skipped, 0, 0, submitted=ids)
        try:
            run_stages(plan.stages, plan.work, reporter, total_bytes=_local_size(plan.files), quiet=quiet)
        except KeyboardInterrupt:
            raise Interrupted(
                f"ingest {plan.run_id} interrupted; the store is unchanged and finished tasks are kept in {plan.work}: "
                f"resume with the same command and --resume"
            ) from None
    con = open_store(store)
    try:
        n_read, _, _, n_quarantined = _ingest_counts(con, plan.run_id)
        if n_read and n_read == n_quarantined:
            raise_if_nothing_readable(con, store, plan.run_id)
    finally:
        con.close()
    for sub in ("documents", "evidence", "optout", "progress"):  # loaded: the store holds them now
        shutil.rmtree(plan.work / sub, ignore_errors=True)
    return IngestResult(plan.run_id, store, plan.files, plan.skipped, n_read, n_quarantined)


def raise_if_nothing_readable(con: Any, store: Path, run_id: str) -> None:
    """Raise when every record of an ingest is an unreadable file (no input was a WARC at all).

    Raises:
        InputError: with one example file and its error.
    """
    rows = con.execute(
        "SELECT ingest_reason, any_value(warc_file), any_value(ingest_detail) FROM documents WHERE run_id = ? GROUP BY 1",
        [run_id],
    ).fetchall()
    if [r[0] for r in rows] == ["unreadable_file"]:
        raise InputError(
            f"no record could be read from any input; e.g. {rows[0][1]}: {rows[0][2]} (rows kept in {store / STORE_FILE})"
        )
