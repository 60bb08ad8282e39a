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

import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from datatrove.io import get_datafolder
from datatrove.pipeline.base import PipelineStep

from curate import __version__
from curate.dating import DateStep
from curate.decide import check_ingest_settings
from curate.dedup.step import SignatureStep
from curate.digests import file_sha256
from curate.errors import ConfigError, CurateError, InputError, Interrupted
from curate.extract import ExtractStep, extractor_name
from curate.licenses.step import LicenseStep
from curate.read.inputs import DEFAULT_BASE_URL, is_remote, resolve_inputs
from curate.read.warc import ProvenanceWarcReader
from curate.recipe import Recipe, ingest_settings
from curate.run.executors import (
    Stage,
    check_completed,
    folder_name,
    log_folders,
    make_executor,
    run_to_end,
    stderr_to,
    task_errors,
    torch_threads,
)
from curate.run.progress import NullReporter, Reporter, watching
from curate.run.shards import ShardWriter
from curate.schema import (
    DEDUP_NAME,
    LANGID_NAME,
    LICENSE_TAGGER_NAME,
    READER_NAME,
    REASON_STATUS,
    SCHEMA_VERSION,
    Reason,
    Status,
)
from curate.score.model import load_card
from curate.score.registry import TORCH_KINDS, load_model
from curate.score.step import ScoreStep
from curate.store import STORE_FILE, WORK_DIR, known_inputs, load_shards, open_store, store_file, store_lock, writing

STAGE1_OUTPUTS = ("inputs", "documents", "evidence", "optout")  # what stage-1 tasks write for the load
FILE_REASONS = (Reason.UNREADABLE_FILE, Reason.UNREACHABLE_INPUT, Reason.FILE_FAILED)  # a whole input not read


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
    unread: list[str] = field(default_factory=list)  # "path: reason: detail" of each input that could not be read
    logs: list[str] = field(default_factory=list)  # where submitted jobs write their logs (executors.log_folders)


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


def stage1_pipeline(recipe: Recipe, files: list[str], run_id: str, work: Path | str) -> list[object]:
    """The stage-1 datatrove pipeline: usable with any datatrove executor (each task writes its own shards; a file
    on which a step raises becomes one ``file_failed`` row and the task goes on, see :mod:`curate.run.shards`)."""
    reader = ProvenanceWarcReader(
        files,
        run_id,
        f"{work}/inputs",
        recipe.extract.max_payload_bytes,
        attempts=recipe.read.attempts,
        backoff_s=recipe.read.backoff_s,
    )
    steps: list[PipelineStep] = [
        LicenseStep(recipe),
        ExtractStep(recipe.extract.extractor, recipe.extract.page_dates, recipe.extract.timeout_s),
        DateStep(),
        ScoreStep(recipe.score.model, recipe.score.device, recipe.score.batch_docs, torch_threads(recipe, len(files))),
        SignatureStep(recipe),
    ]
    # the writer runs the reader and the steps itself, file by file (a file on which a step raises is quarantined
    # alone); they stay in the list so that datatrove logs them and saves their statistics
    return [reader, *steps, ShardWriter(str(work), reader, steps)]


def fetch_shards(source: str, work: Path) -> None:
    """Copy the stage-1 output of a work folder on other storage (``executor.work``, e.g. ``s3://…``) into the
    local ``work`` folder the load reads: the inventories and the finished shards (never a ``.tmp``)."""
    folder = get_datafolder(source)
    for sub in STAGE1_OUTPUTS:
        if not folder.isdir(sub):
            continue
        for rel in folder.list_files(sub, recursive=False):
            if rel.endswith((".parquet", ".json")):
                (work / rel).parent.mkdir(parents=True, exist_ok=True)
                folder.get_file(rel, str(work / rel))


def remove_stage1_outputs(source: str, work: Path) -> None:
    """Remove what the load has put in the store from the local work folder and, when stage 1 wrote elsewhere,
    from there too (the completion markers and logs stay: a later ``--resume`` reads them)."""
    for sub in (*STAGE1_OUTPUTS[1:], "progress", "spool"):
        shutil.rmtree(work / sub, ignore_errors=True)
    if source and source != str(work):
        folder = get_datafolder(source)
        for sub in (*STAGE1_OUTPUTS[1:], "progress"):
            if folder.isdir(sub):
                folder.rm(sub, recursive=True)


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
        if entry is None or is_remote(f) or not entry.get("sha256"):  # new, remote, or never read: read it
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
    store: Path,
    work: Path,
    recipe: Recipe,
    *,
    run_id: str,
    versions: dict[str, str],
    started: dt.datetime,
    lock: bool,
    source: str | None = None,
) -> int:
    """Insert an ingest's shards into the store and record it in ``runs``, in one transaction; returns the
    documents added. Remote inputs that turn out to be files the store holds are left out. ``source``: the work
    folder stage 1 wrote to when it is not ``work`` (``executor.work``); its shards are copied into ``work`` first.

    Raises:
        InputError: a remote input differs from the recorded file of its name.
    """
    if source is not None and source != str(work):
        fetch_shards(source, work)
    with writing(
        store, "curate ingest (load)", lock=lock, memory_limit=recipe.executor.duckdb_memory, create=True
    ) as con:
        recipe = check_ingest_settings(con, recipe)
        known = known_inputs(con)
        read = inventory(work)
        skip: set[str] = set()
        retried: set[str] = set()  # inputs no earlier ingest could read: their file-level rows are replaced
        for entry in read:
            old = known.get(Path(str(entry["path"])).name)
            if old is None:
                continue
            if not old.get("sha256"):
                retried.add(Path(str(entry["path"])).name)
                continue
            if entry["sha256"] is not None and old["sha256"] != entry["sha256"]:
                raise InputError(
                    f"{entry['path']}: the store already holds a different file of this name (ingest {old['run_id']})"
                )
            skip.add(Path(str(entry["path"])).name)
        if retried:
            con.execute(
                "DELETE FROM documents WHERE list_contains(?, warc_file_name) AND list_contains(?, ingest_reason)",
                [sorted(retried), [r.value for r in FILE_REASONS]],
            )
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
        source: str | None = None,
    ) -> None:
        super().__init__()
        self.store, self.work, self.recipe, self.run_id = store, work, recipe, run_id
        self.versions, self.started, self.lock, self.source = versions, started, lock, source

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
            source=self.source,
        )
        self.stat_update("documents", value=n)
        return
        yield


TASKS_FILE = "tasks.json"  # in an ingest's work folder: the task count its stage-1 tasks were split into


def check_task_count(work: Path | str, tasks: int) -> None:
    """Record the stage-1 task count in ``work`` or, when an interrupted attempt is there, check it is the same.

    A task reads the files ``files[rank::tasks]``, so the finished tasks of an attempt with another count hold
    other files: resuming them would lose or duplicate documents.

    Raises:
        ConfigError: the work folder was started with another task count; says how to go on.
    """
    folder = get_datafolder(str(work))
    if folder.exists(TASKS_FILE):
        with folder.open(TASKS_FILE, "r", encoding="utf-8") as fh:
            before = int(json.load(fh)["tasks"])
        if before != tasks:
            raise ConfigError(
                f"the interrupted ingest in {work} was split into {before} tasks and this one into {tasks} "
                f"(executor.tasks): resume it with executor.tasks = {before}, or start it over without --resume"
            )
        return
    with folder.open(f".{TASKS_FILE}.tmp", "w", encoding="utf-8") as fh:
        fh.write(json.dumps({"tasks": tasks}) + "\n")
    folder.mv(f".{TASKS_FILE}.tmp", TASKS_FILE)


@dataclass(frozen=True)
class IngestPlan:
    """An ingest ready to run: its stages (stage 1, load), work folder and inputs. ``work`` is local (the load's
    copy of the shards, logs); ``shards`` is where stage-1 tasks write (``work`` itself, or under ``executor.work``)."""

    run_id: str
    work: Path
    files: list[str]
    skipped: list[str]
    stages: list[Stage]
    shards: str = ""


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
            recipe = check_ingest_settings(con, recipe)  # the store's settings where the recipe leaves defaults
            known = known_inputs(con)
        finally:
            con.close()
    todo, skipped = split_known(files, known)
    versions = component_versions(recipe)
    run_id = ingest_id(recipe, todo, versions)
    work = Path(store) / WORK_DIR / f"ingest-{run_id}"
    shards = str(work)
    if recipe.executor.work:  # elsewhere: named after the store too, so that two stores never share a work folder
        of_store = hashlib.sha1(str(Path(store).resolve()).encode()).hexdigest()[:8]
        shards = f"{recipe.executor.work.rstrip('/')}/ingest-{run_id}-{of_store}"
    if not todo:
        return IngestPlan(run_id, work, [], skipped, [], shards)
    if not resume:  # an earlier, unfinished attempt at the same ingest: start it over
        shutil.rmtree(work, ignore_errors=True)
        folder = get_datafolder(shards)
        if folder.exists(""):
            folder.rm("", recursive=True)
    tasks = recipe.executor.tasks or len(todo)
    check_task_count(shards, tasks)
    slurm = recipe.executor.kind == "slurm"  # a submitted load takes the lock; a local or Ray driver holds it
    stage1 = make_executor(
        recipe,
        stage1_pipeline(recipe, todo, run_id, shards),
        tasks=tasks,
        logs=f"{shards}/logs",
        name="ingest",
        skip_completed=resume,
        gpus=recipe.executor.gpus_per_task,
        depends=depends,
        slurm_logs=work / "logs" / "slurm",  # Slurm's own output: local, beside the store, also when shards is remote
    )
    load = make_executor(
        recipe,
        [
            IngestLoadStep(
                str(store),
                str(work),
                recipe,
                run_id=run_id,
                versions=versions,
                started=started,
                lock=slurm,
                source=shards,
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
            Stage("stage 1 (read, extract, score, sign)", stage1, tasks, progress=shards),
            Stage("load", load, 1),
        ],
        shards,
    )


WORKER_DEATHS = 2  # a local stage whose worker processes die this many times (killed, out of memory) fails


class WorkerDied(Exception):
    """Raised in the main thread when a local executor's pool worker died while tasks were unfinished."""


@contextlib.contextmanager
def dead_worker_alarm(stage: Stage, poll_s: float = 0.5) -> Iterator[None]:
    """While the block runs ``stage``'s local executor, raise :class:`WorkerDied` in the main thread when one of
    its pool's worker processes disappears while some task has no completion marker.

    datatrove's local executor hands tasks to a multiprocessing pool; a worker killed by a signal (``kill -9``,
    the kernel's out-of-memory killer) takes its task with it and the pool waits for that task forever. Breaking
    that wait (the pool is terminated as the exception leaves it) lets the caller run the unfinished tasks again;
    a task's shards are published by rename when it ends, so nothing is duplicated. Does nothing outside the main
    thread or for executors that run no pool (one worker, Slurm, Ray).
    """
    from datatrove.executor import LocalPipelineExecutor

    executor = stage.executor
    if (
        not isinstance(executor, LocalPipelineExecutor)
        or min(executor.workers, stage.tasks) <= 1
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return
    import psutil

    died: list[str] = []
    stop = threading.Event()
    interrupted = threading.Event()  # Ctrl-C reaches the workers too: their deaths are then not worker deaths

    def on_alarm(signum: int, frame: object) -> None:
        if not interrupted.is_set():  # a WorkerDied must never replace the KeyboardInterrupt being handled
            raise WorkerDied(died[-1] if died else "a worker died")

    def on_interrupt(signum: int, frame: object) -> None:
        interrupted.set()
        stop.set()
        raise KeyboardInterrupt

    def workers() -> set[int]:
        out: set[int] = set()
        for child in psutil.Process().children():
            try:
                if "forkserver" in " ".join(child.cmdline()):
                    out.update(p.pid for p in child.children())
            except psutil.Error:
                continue
        return out

    def watch() -> None:
        seen: set[int] = set()
        while not stop.wait(poll_s):
            now = workers()
            gone = seen - now
            seen = now | (seen & now)
            if gone and not stop.is_set() and executor.get_incomplete_ranks(skip_completed=True):
                died.append(f"worker pid {min(gone)} ended while tasks were unfinished")
                stop.set()
                os.kill(os.getpid(), signal.SIGUSR1)

    previous = signal.signal(signal.SIGUSR1, on_alarm)
    previous_int = signal.signal(signal.SIGINT, on_interrupt)
    watcher = threading.Thread(target=watch, name="curate-dead-worker-alarm", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()
        signal.signal(signal.SIGUSR1, previous)
        signal.signal(signal.SIGINT, previous_int)


def run_stages(
    plan_stages: list[Stage], work: Path, reporter: Reporter, *, total_bytes: int | None, quiet: bool
) -> None:
    """Run stages in order (to their end, also on Slurm: see :func:`run_to_end`), reporting progress; raise when a
    stage left tasks unfinished."""
    for stage in plan_stages:
        reporter.stage(stage.name, stage.tasks, total_bytes if stage is plan_stages[0] else None)
        logs = stage.executor.logging_dir  # type: ignore[attr-defined]
        shown = folder_name(logs)
        watch = (
            watching(reporter, stage.name, stage.progress or str(work), logs, stage.tasks)
            if stage is plan_stages[0]
            else nullcontext()
        )
        with watch, stderr_to(work / "run.log" if quiet else None):
            for attempt in range(1, WORKER_DEATHS + 2):
                try:
                    with dead_worker_alarm(stage):
                        run_to_end(stage.executor)
                    break
                except WorkerDied as e:  # the pool lost the dead worker's task: run the unfinished tasks again
                    incomplete = stage.executor.get_incomplete_ranks(skip_completed=True)  # type: ignore[attr-defined]
                    if task_errors(stage, incomplete):  # a task raised (the pool ended): not a death, report it
                        break
                    if attempt > WORKER_DEATHS:
                        raise CurateError(
                            f"{stage.name}: a worker process died {attempt} times ({e}); finished tasks are kept "
                            f"under {shown}: resume with --resume"
                        ) from None
                    stage.executor.skip_completed = True  # type: ignore[attr-defined]
        check_completed(stage, shown)
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
    strict: bool = False,
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
        UnreadInputs: ``strict`` and an input could not be read (after the load: the store holds the rest).
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
            return IngestResult(
                plan.run_id, store, plan.files, plan.skipped, 0, 0, submitted=ids, logs=log_folders(plan.stages)
            )
        try:
            run_stages(plan.stages, plan.work, reporter, total_bytes=_local_size(plan.files), quiet=quiet)
        except KeyboardInterrupt:
            raise Interrupted(
                f"ingest {plan.run_id} interrupted; the store is unchanged and finished tasks are kept in {plan.work}: "
                f"resume with the same command and --resume"
            ) from None
    con = open_store(store)
    n_read = n_quarantined = 0
    unread: list[str] = []
    try:
        loaded = con.execute("SELECT count(*) FROM runs WHERE run_id = ? AND started_at = ?", [plan.run_id, started])
        if loaded.fetchone()[0]:  # else every input read turned out to be in the store already: nothing was added
            n_read, _, _, n_quarantined = _ingest_counts(con, plan.run_id)
            if n_read and n_read == n_quarantined:
                raise_if_nothing_readable(con, store, plan.run_id)
            unread = [
                f"{path}: {reason}: {detail}"
                for path, reason, detail in con.execute(
                    """SELECT warc_file, ingest_reason, ingest_detail FROM documents
                       WHERE run_id = ? AND list_contains(?, ingest_reason) ORDER BY warc_file""",
                    [plan.run_id, [r.value for r in FILE_REASONS]],
                ).fetchall()
            ]
    finally:
        con.close()
    remove_stage1_outputs(plan.shards, plan.work)  # loaded: the store holds them now
    if strict and unread:
        raise UnreadInputs(unread_message(unread, len(plan.files), store), unread)
    return IngestResult(plan.run_id, store, plan.files, plan.skipped, n_read, n_quarantined, unread=unread)


class UnreadInputs(InputError):
    """A ``strict`` ingest could not read some inputs (their rows are quarantined; the store holds the rest)."""

    def __init__(self, message: str, unread: list[str]) -> None:
        super().__init__(message)
        self.unread = unread


def unread_message(unread: list[str], n_inputs: int, store: Path) -> str:
    """What a strict ingest or run says when inputs could not be read: each one, and how to retry them alone."""
    listed = "\n".join(f"  {u[:300]}" for u in unread[:20]) + (
        f"\n  … and {len(unread) - 20} more" if len(unread) > 20 else ""
    )
    return (
        f"{len(unread)} of {n_inputs} inputs could not be read (quarantined in {store / STORE_FILE}):\n{listed}\n"
        f"retry them alone with: curate ingest --retry-quarantined --store {store}"
    )


def quarantined_inputs(store: Path) -> list[str]:
    """The inputs no ingest into ``store`` could read (unreachable, or not openable), as they were given: what
    ``curate ingest --retry-quarantined`` reads again.

    Raises:
        StoreError: not a store, or an older schema.
    """
    con = open_store(store)
    try:
        return sorted(str(e["path"]) for e in known_inputs(con).values() if not e.get("sha256"))
    finally:
        con.close()


def raise_if_nothing_readable(con: Any, store: Path, run_id: str) -> None:
    """Raise when every record of an ingest is an unreadable file (no input was a WARC at all).

    Raises:
        InputError: with one example file and its error.
    """
    rows = con.execute(
        "SELECT ingest_reason, any_value(warc_file), any_value(ingest_detail) FROM documents WHERE run_id = ? GROUP BY 1",
        [run_id],
    ).fetchall()
    if {r[0] for r in rows} <= {r.value for r in FILE_REASONS}:
        raise InputError(
            f"no record could be read from any input; e.g. {rows[0][1]}: {rows[0][2]} (rows kept in {store / STORE_FILE})"
        )
