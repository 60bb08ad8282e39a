"""The commands over a store after ingest: dedup, decide, mix, report, migrate; and ``run``, all of them in turn.

Each takes the store folder and a recipe, holds the store's write lock while it writes, and changes the store
in one transaction, so an interrupted command leaves the store as it was. Nothing here reads a WARC.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datatrove.pipeline.base import PipelineStep

from curate.decide import Decision, check_ingest_settings, decide_store, mgt_rule_lines
from curate.dedup.buckets import DedupBucketStep, bucket_tasks
from curate.dedup.cluster import DedupPass, record_pass, unmatched
from curate.errors import ConfigError, Interrupted, OutputError, StoreError, TasksFailed
from curate.mix import (
    ATTRIBUTION,
    MANIFEST,
    MixSummary,
    finish_mix,
    is_mix,
    mix_spec,
    plan_mix,
    prepare,
    select_buckets,
)
from curate.read.inputs import DEFAULT_BASE_URL, resolve_inputs
from curate.recipe import Recipe, load_mix_recipe, recipe_from_source
from curate.remote import (
    RemotePath,
    check_mix_prefix,
    fetch_mix,
    is_url,
    publish,
    remove_others,
    staging,
    upload,
)
from curate.report import export_provenance, render_report
from curate.run.executors import Stage, log_folders, make_executor, memory_bytes, task_bounds
from curate.run.ingest import IngestResult, UnreadInputs, ingest, plan_ingest, run_stages
from curate.run.progress import NullReporter, Reporter
from curate.schema import Status
from curate.store import (
    STORE_FILE,
    WORK_DIR,
    RunCounts,
    counts,
    open_store,
    remove_outputs,
    store_file,
    store_lock,
    writing,
)
from curate.tokens.step import MergeStep, TokenizeStep

COMPLETE_FILE = "COMPLETE.json"  # written last by `curate run`: its outputs were published together


def dedup(store: Path, recipe: Recipe, *, reporter: Reporter | None = None, lock: bool = True) -> DedupPass:
    """Match the documents no earlier pass has matched against everything in the store (exact keys, and LSH
    bands grouped by datatrove tasks on the recipe's executor: ``dedup.tasks``, see
    :func:`curate.dedup.buckets.bucket_tasks`), and recluster. The tasks write their edges under
    ``STORE/work/dedup-N`` (also when ``executor.work`` is remote) and open the store read-only, so on Slurm
    or Ray the store's folder must be on a filesystem every node sees. ``lock``: take the store's write lock
    (False when the caller holds it).

    Raises:
        StoreError: not a store, locked, or an older schema.
        ConfigError: the recipe's ingest-time keys (MinHash settings) differ from the store's.
    """
    reporter = reporter or NullReporter()
    started = dt.datetime.now(dt.UTC)
    open_store(store).close()  # a store, of this schema, before anything is locked or created
    with store_lock(store, "curate dedup") if lock else contextlib.nullcontext():
        con = open_store(store)
        try:
            recipe = check_ingest_settings(con, recipe)  # the store's MinHash settings, unless the recipe sets them
            d, params = recipe.dedup, recipe.dedup_params
            n_pass = int(con.execute("SELECT count(*) FROM dedup_passes").fetchone()[0])
            n_new = unmatched(con)
        finally:
            con.close()
        work = Path(store) / WORK_DIR / f"dedup-{n_pass + 1}"
        shutil.rmtree(work, ignore_errors=True)
        edges = None
        if d.near and n_new:  # no connection to the store is open here: the bucket tasks open it read-only
            tasks = bucket_tasks(recipe, params.bands)
            memory, threads = task_bounds(recipe, tasks)
            step = DedupBucketStep(str(store_file(store)), str(work), params.bands, memory, threads)
            bands = make_executor(recipe, [step], tasks=tasks, logs=work / "logs", name="buckets", skip_completed=False)
            run_stages([Stage("dedup buckets", bands, tasks)], work, reporter, total_bytes=None, quiet=True)
            edges = work / "edges"
        reporter.stage("dedup clusters", 1, None)
        with writing(store, "curate dedup", lock=False, memory_limit=recipe.executor.duckdb_memory) as con:
            result = record_pass(
                con,
                edges,
                params_name=params.name,
                threshold=d.threshold,
                num_perm=d.num_perm,
                ngram=d.ngram,
                verify=d.verify,
                exact=d.exact,
                started=started,
                scheme=d.scheme,
                containment=d.containment,
            )
        shutil.rmtree(work, ignore_errors=True)
        reporter.end("dedup clusters", f"{result.new_documents} new documents, {result.new_edges} new pairs")
    return result


def decide(store: Path, recipe: Recipe, *, lock: bool = True) -> Decision:
    """Apply the recipe's keep rules to every record of the store (see :mod:`curate.decide`).

    Raises:
        StoreError: not a store, locked, or an older schema.
        ConfigError: the recipe changes an ingest-time key (the WARCs would have to be re-read).
    """
    started = dt.datetime.now(dt.UTC)
    with writing(store, "curate decide", lock=lock, memory_limit=recipe.executor.duckdb_memory) as con:
        return decide_store(con, recipe, started)


def _raise_if_disk(error: BaseException, out: Path) -> None:
    """Turn a full or read-only disk (Python's or DuckDB's error, raised here or in a task) into an
    :class:`OutputError` naming ``out``."""
    import duckdb

    if isinstance(error, TasksFailed) and (words := error.disk_error()):
        raise OutputError(f"cannot write {out}: {words}; nothing half-written was left") from None
    if isinstance(error, OSError | duckdb.IOException):
        detail = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise OutputError(f"cannot write {out}: {detail}; nothing half-written was left") from None


def _keep_task_logs(error: BaseException, work: Path, store: Path) -> Path | None:
    """When a mix's tasks failed for another reason than the disk, copy their logs out of the mix's work folder
    (about to be removed) to ``STORE/work/mix-logs-PID``; returns where, or None when nothing was kept."""
    if not isinstance(error, TasksFailed) or error.disk_error():
        return None
    kept = Path(store) / WORK_DIR / f"mix-logs-{os.getpid()}"
    shutil.rmtree(kept, ignore_errors=True)
    try:
        for logs in sorted(work.glob("logs-*")):
            shutil.copytree(logs, kept / logs.name)
    except OSError:
        return None
    return kept


def _decided_recipe(store: Path) -> Recipe:
    """The recipe of the store's latest decision pass."""
    con = open_store(store)
    try:
        row = con.execute("SELECT recipe_toml FROM decisions ORDER BY decision_id DESC LIMIT 1").fetchone()
    finally:
        con.close()
    if row is None:
        raise StoreError(f"the store {store} has not been decided yet: run `curate decide --store {store}` first")
    return recipe_from_source(row[0])


def _require_decided(con: object, store: Path) -> None:
    c = counts(con)
    if c.pending:
        raise StoreError(
            f"{c.pending} records of {store} have no status yet (ingested after the last decision): "
            f"run `curate decide --store {store}` first"
        )


def _check_mix_out(out: Path | str, overwrite: bool) -> None:
    """Refuse an ``out`` (a folder, or a prefix at a URL) that holds another mix (unless ``overwrite``) or
    anything that is not a mix (at a URL, an upload that did not finish is accepted: it is replaced).

    Raises:
        ConfigError: saying which, and what to do; or the URL's bucket does not exist.
        OutputError: the URL's filesystem cannot be reached.
    """
    if is_url(out):
        return check_mix_prefix(str(out), MANIFEST, overwrite)
    out = Path(out)
    if not out.exists():
        return
    if not out.is_dir():
        raise ConfigError(f"{out} is a file, not a folder for a mix")
    if not any(out.iterdir()):
        return
    if not is_mix(out):
        raise ConfigError(f"{out} holds files that are not a mix (no {MANIFEST}); choose an empty or new folder")
    if not overwrite:
        raise ConfigError(f"{out} already exists and holds another mix; pass --overwrite to replace it")


def mix(
    store: Path,
    out: Path | str,
    recipe: Recipe | None = None,
    *,
    overwrite: bool = False,
    lock: bool = True,
    mix_recipe: Path | None = None,
    reporter: Reporter | None = None,
) -> MixSummary:
    """Write a tokenized mix of the store's kept documents to ``out`` (the recipe's buckets; by default the
    recipe of the latest decision; ``mix_recipe``: a mix recipe file over it, see
    :func:`curate.recipe.load_mix_recipe`). Tokenization runs as datatrove tasks on the recipe's executor (local
    processes, Ray tasks, or Slurm jobs this call waits for) over ranges of documents, then one merge task per
    shard (:mod:`curate.mix`); the store is only read, and the mix is the same bytes on any executor. The mix is written beside ``out``
    and renamed into place when whole, and recorded in the store (``mixes``, ``mix_documents``). ``out`` may be
    a URL (``s3://bucket/prefix``, any fsspec protocol): the mix is then written in the store's ``work/`` and
    uploaded with its ``manifest.json`` last (:func:`curate.remote.publish`); the store records the URL.

    Raises:
        StoreError: not a store, or records without a decision.
        ConfigError: ``out`` holds another mix and ``overwrite`` is not set (or holds something else), a bucket's
            where clause is refused, the tokenizer is not available offline, or ``out``'s bucket does not exist.
        OutputError: the disk filled up or is read-only (nothing half-written is left), or the upload failed or
            the bucket cannot be reached (no manifest is left there; a rerun replaces the partial upload).
    """
    reporter = reporter or NullReporter()
    recipe = recipe or _decided_recipe(store)
    if mix_recipe is not None:
        recipe = load_mix_recipe(Path(mix_recipe), recipe)
    spec = mix_spec(recipe)
    _check_mix_out(out, overwrite)
    remote = str(RemotePath(str(out))) if is_url(out) else None  # built in a local staging folder, then uploaded
    out = staging(store, "mix") if remote else Path(out)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    work = out.with_name(f".{out.name}.work-{os.getpid()}")
    con = open_store(store)
    try:
        _require_decided(con, store)
        kept_text = con.execute(f"SELECT coalesce(sum(text_chars), 0) FROM documents WHERE status = '{Status.KEPT}'")
        text_bytes = int(kept_text.fetchall()[0][0])
    finally:
        con.close()
    m, file = recipe.mix, str(store_file(store))
    try:
        for d in (tmp, work):
            shutil.rmtree(d, ignore_errors=True)
        selected = select_buckets(store_file(store), recipe)  # its own sandboxed instance
        tmp.mkdir(parents=True)
        ranges = prepare(work, selected, tokenize_tasks(recipe, text_bytes))
        if ranges:
            step = TokenizeStep(
                file,
                work_dir=str(work),
                tokenizer=spec.tokenizer.spec,
                ranges=ranges,
                batch_docs=m.batch_docs,
                memory_limit=task_bounds(recipe, len(ranges))[0],  # local tasks at once share duckdb_memory
            )
            tokenize = make_executor(
                recipe, [step], tasks=len(ranges), logs=work / "logs-tokenize", name="tokenize", skip_completed=False
            )
            run_stages([Stage("mix tokenize", tokenize, len(ranges))], work, reporter, total_bytes=None, quiet=True)
        plan = plan_mix(work, recipe, spec, selected, ranges)
        shards = len(plan.shard_tokens)
        if shards:
            merge_step = MergeStep(
                file,
                work_dir=str(work),
                out_dir=str(tmp),
                formats=[f.value for f in spec.formats],
                tokenizer=spec.tokenizer.spec,
                label=spec.shard_label,
                bos=spec.bos,
                eos=spec.eos,
                batch_docs=m.batch_docs,
                memory_limit=task_bounds(recipe, shards)[0],
            )
            merge = make_executor(
                recipe, [merge_step], tasks=shards, logs=work / "logs-merge", name="merge", skip_completed=False
            )
            run_stages([Stage("mix merge", merge, shards)], work, reporter, total_bytes=None, quiet=True)
        con = open_store(store)
        try:
            summary = finish_mix(con, tmp, recipe, spec, plan)
        finally:
            con.close()
    except BaseException as e:
        kept = _keep_task_logs(e, work, store)
        for d in (tmp, work):
            shutil.rmtree(d, ignore_errors=True)  # never a half-written mix beside the real one
        _raise_if_disk(e, out)
        if isinstance(e, TasksFailed) and kept is not None:  # the message names the logs where they now are
            raise TasksFailed(str(e).replace(str(work), str(kept)), e.causes) from None
        raise
    shutil.rmtree(work, ignore_errors=True)
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        os.replace(out, old)  # the mix it replaces is removed only once the new one is in place
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)
    if remote is not None:
        try:
            publish(out, remote, last=MANIFEST)  # the manifest last: a trainer sees a mix only once it is whole
            record_mix(store, out, recipe, summary, lock=lock, where=remote)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        return summary
    record_mix(store, out, recipe, summary, lock=lock)
    return summary


TEXT_SHARE = 4
"""A tokenize task's texts are at most 1/TEXT_SHARE of its DuckDB memory: its query holds and orders them (at
4 GB of input, 1.16 GB of texts in one task needed about 2 GB)."""


def tokenize_tasks(recipe: Recipe, text_bytes: int) -> int:
    """How many tokenize tasks a mix of ``text_bytes`` of kept text runs: ``mix.tasks`` when set; else one per
    executor worker, or more when each task's share of the texts would pass 1/:data:`TEXT_SHARE` of its DuckDB
    memory (:func:`curate.run.executors.task_bounds`), so a task's share of the texts does not grow with the
    store. The mix's bytes do not depend on the count."""
    if recipe.mix.tasks:
        return recipe.mix.tasks
    workers = max(1, recipe.executor.workers)
    limit = memory_bytes(task_bounds(recipe, workers)[0])
    if limit is None:
        return workers
    return max(workers, -(-text_bytes * TEXT_SHARE // limit))


def record_mix(
    store: Path, out: Path, recipe: Recipe, summary: MixSummary, *, lock: bool = True, where: str | None = None
) -> int:
    """Record a published mix in the store (``mixes``, and ``mix_documents`` from its sidecar in the local folder
    ``out``), so a document can be asked which mixes hold it; returns the mix's id. ``where``: the URL the mix was
    uploaded to, recorded instead of ``out``."""
    sidecar = (out / "sidecar.parquet").as_posix().replace("'", "''")
    with writing(store, "curate mix", lock=lock, memory_limit=recipe.executor.duckdb_memory) as con:
        mix_id = int(con.execute("SELECT coalesce(max(mix_id), 0) + 1 FROM mixes").fetchone()[0])
        decision = con.execute("SELECT max(decision_id) FROM decisions").fetchone()[0]
        con.execute(
            "INSERT INTO mixes VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                mix_id,
                dt.datetime.now(dt.UTC),
                where or str(out.resolve()),
                decision,
                recipe.digest,
                summary.documents,
                summary.tokens,
            ],
        )
        con.execute(
            f"""INSERT INTO mix_documents SELECT {mix_id}, doc_id, count(*), sum(token_end - token_start)
                FROM read_parquet('{sidecar}') GROUP BY doc_id ORDER BY doc_id"""
        )
    return mix_id


def report(store: Path, out: Path | str, *, mix_dir: Path | str | None = None) -> Path | str:
    """Write the HTML provenance report of the store to ``out`` and its CSV/Parquet exports to
    ``out``'s folder / ``provenance/`` (token counts from ``mix_dir`` when given); returns where the report is.

    ``out`` and ``mix_dir`` may be URLs (``s3://…``, any fsspec protocol): a remote mix is read from a local copy
    of its manifest and sidecar (the report links its ``ATTRIBUTION.md`` at the URL), and a remote report is
    written in the store's ``work/`` first, then uploaded: the exports, then the page; files under the
    report's ``provenance/`` prefix that this report does not have (an earlier report's pages) are then removed.

    Raises:
        StoreError: not a store, or not decided yet.
        InputError: ``mix_dir`` is a URL that holds no finished mix.
        ConfigError, OutputError: a URL's bucket does not exist; it cannot be reached, or the upload failed.
    """
    if not (is_url(out) or (mix_dir is not None and is_url(mix_dir))):
        return _write_report(store, Path(out), Path(mix_dir) if mix_dir is not None else None)
    folder = staging(store, "report")
    try:
        attribution = None
        if mix_dir is not None and is_url(mix_dir):
            attribution = f"{RemotePath(str(mix_dir))}/{ATTRIBUTION}"
            mix_dir = fetch_mix(str(mix_dir), folder / "mix")
        elif mix_dir is not None:  # a local mix, a remote report: the link cannot be relative
            attribution = (Path(mix_dir) / ATTRIBUTION).resolve().as_posix()
        local_mix = Path(mix_dir) if mix_dir is not None else None
        if not is_url(out):
            return _write_report(store, Path(out), local_mix, attribution)
        remote = RemotePath(str(out))
        local = _write_report(store, folder / "out" / remote.name, local_mix, attribution)
        exports = str(remote.parent / "provenance")
        kept = upload(local.parent / "provenance", exports)
        upload(local, str(remote))  # the page last: what it links to is there before it is
        remove_others(exports, kept)  # an earlier report's pages of documents this one does not have
        return str(remote)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _write_report(store: Path, out: Path, mix_dir: Path | None, attribution: str | None = None) -> Path:
    """:func:`report` to local paths."""
    recipe = _decided_recipe(store)
    out.parent.mkdir(parents=True, exist_ok=True)
    con = open_store(store)
    try:
        _require_decided(con, store)
        tmp = out.with_name(f".{out.name}.tmp")
        try:
            export_provenance(con, out.parent / "provenance", mix_dir)
            render_report(con, recipe, tmp, mix_dir, attribution=attribution)
        except BaseException as e:
            tmp.unlink(missing_ok=True)
            _raise_if_disk(e, out)
            raise
        os.replace(tmp, out)
    finally:
        con.close()
    return out


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
    submitted: list[str]
    mgt_lines: tuple[str, ...] = ()  # the MGT rule and reference that decided (curate.decide.mgt_rule_lines)
    # where submitted jobs write their logs (curate.run.executors.log_folders)
    logs: list[str] = field(default_factory=list)


OUTPUTS = (STORE_FILE, "mix", "report.html", "provenance", WORK_DIR, COMPLETE_FILE)


def check_out(out: Path, *, force: bool, resume: bool) -> None:
    """Refuse to overwrite a previous run in ``out`` unless ``force`` or ``resume`` is given.

    Raises:
        ConfigError: ``out`` holds a run and neither flag is set.
    """
    existing = [name for name in OUTPUTS if (out / name).exists()]
    if existing and not (force or resume):
        raise ConfigError(
            f"{out} already holds a run ({existing[0]}); pass --force to replace it or --resume to finish it"
        )


def prepare_out(out: Path, *, force: bool, resume: bool, lock: bool = True) -> None:
    """Check ``out`` before a run (:func:`check_out`), then clear a previous run (``force``) or keep what it
    finished (``resume``). ``lock``: take the store's lock for the removal (False when the caller holds it).

    Raises:
        ConfigError: ``out`` holds a run and neither flag is set.
        StoreError: another process holds the lock.
    """
    check_out(out, force=force, resume=resume)
    if force and not resume:
        with store_lock(out, "curate run --force") if lock else contextlib.nullcontext():
            remove_outputs([out / name for name in OUTPUTS])
    elif resume:
        (out / COMPLETE_FILE).unlink(missing_ok=True)  # the outputs are rebuilt; the marker comes back last


def run(
    paths: Sequence[str],
    out: Path,
    recipe: Recipe,
    *,
    force: bool = False,
    resume: bool = False,
    base_url: str = DEFAULT_BASE_URL,
    quiet: bool = True,
    reporter: Reporter | None = None,
    strict: bool = False,
) -> RunResult:
    """ingest → dedup → decide → mix → report into the folder ``out`` (the store, ``mix/``, ``report.html``).

    The same functions as the separate commands, in turn; with ``resume``, inputs the store already holds are
    not read again and finished stage-1 tasks are kept. ``resume`` on a finished run removes nothing: each output
    is rebuilt beside the old one and replaces it when whole.

    Raises:
        ConfigError, InputError, StoreError, ModelError: as the separate commands; Interrupted on Ctrl-C.
        UnreadInputs: ``strict`` and an input could not be read; the run stops after the ingest (the store holds
            what was read) and the message says how to retry those inputs and finish.
    """
    reporter = reporter or NullReporter()
    out = Path(out)
    resolve_inputs(list(paths), base_url)  # a missing input fails before anything is created
    check_out(out, force=force, resume=resume)
    if recipe.executor.kind == "slurm":
        prepare_out(out, force=force, resume=resume)
        return _submit_run(paths, out, recipe, base_url=base_url, resume=resume)
    with store_lock(out, "curate run"):  # held from the first removal to the last output: one writer throughout
        prepare_out(out, force=force, resume=resume, lock=False)
        try:
            ingested: IngestResult = ingest(
                paths,
                out,
                recipe,
                base_url=base_url,
                resume=resume,
                quiet=quiet,
                reporter=reporter,
                command="curate run",
                lock=False,
                strict=strict,
            )
        except UnreadInputs as e:
            raise UnreadInputs(f"{e}\nthen finish the run with --resume (the same command)", e.unread) from None
        try:
            decision, summary = finish_run(out, recipe, reporter)
        except KeyboardInterrupt:
            raise Interrupted(
                f"run interrupted after the ingest; the store in {out} is whole: finish with the same command and --resume"
            ) from None
    inputs = sorted({*ingested.inputs, *ingested.skipped})
    mgt_lines = tuple(mgt_rule_lines(decision.mgt, recipe))
    return RunResult(
        ingested.run_id,
        out / STORE_FILE,
        out / "mix",
        out / "report.html",
        decision.counts,
        summary,
        inputs,
        [],
        mgt_lines,
    )


def run_summary_lines(r: RunResult) -> list[str]:
    """What ``curate run`` prints when it ends (the README's example output is these lines for the sample)."""
    c = r.counts
    lines = [
        f"run {r.run_id}: {len(r.inputs)} input files, {c.read} records read",
        f"  kept {c.kept} · dropped {c.dropped} · quarantined {c.quarantined}",
        *(f"    {status:<11} {reason:<26} {n}" for status, reason, n in c.by_reason),
        *(f"  {line}" for line in r.mgt_lines),
        f"  mix: {r.mix_summary.documents} documents, {r.mix_summary.tokens} tokens in {r.mix_summary.shards} shards",
        f"store:  {r.store}",
        f"mix:    {r.mix}",
        f"report: {r.report}",
    ]
    return lines


def finish_run(out: Path, recipe: Recipe, reporter: Reporter | None = None) -> tuple[Decision, MixSummary]:
    """dedup → decide → mix → report on the store in ``out``, whose lock the caller holds."""
    reporter = reporter or NullReporter()
    dedup(out, recipe, reporter=reporter, lock=False)
    reporter.stage("decide", 1, None)
    decision = decide(out, recipe, lock=False)
    reporter.end("decide", f"kept {decision.counts.kept}")
    reporter.stage("mix", 1, None)
    summary = mix(out, out / "mix", recipe, overwrite=True, lock=False)
    reporter.end("mix", f"{summary.tokens} tokens")
    reporter.stage("report", 1, None)
    report(out, out / "report.html", mix_dir=out / "mix")
    reporter.end("report", "")
    write_complete(out, decision, summary)
    return decision, summary


def write_complete(out: Path, decision: Decision, summary: MixSummary) -> None:
    """Mark a run's outputs as published together: the decision the mix and report were made from, written
    last (atomically), so a reader or ``--resume`` can tell a finished run from one stopped between outputs."""
    marker = {
        "decision_id": decision.decision_id,
        "records": decision.counts.read,
        "kept": decision.counts.kept,
        "mix": {"documents": summary.documents, "tokens": summary.tokens, "shards": summary.shards},
        "outputs": [STORE_FILE, "mix", "report.html", "provenance"],
    }
    tmp = out / f".{COMPLETE_FILE}.tmp"
    tmp.write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, out / COMPLETE_FILE)


def run_is_complete(out: Path) -> bool:
    """Whether ``out`` holds a finished run: its marker names the store's latest decision."""
    try:
        marker = json.loads((out / COMPLETE_FILE).read_text(encoding="utf-8"))
        con = open_store(out)
    except (OSError, ValueError, StoreError):
        return False
    try:
        row = con.execute("SELECT max(decision_id) FROM decisions").fetchone()
    finally:
        con.close()
    return bool(row and row[0] == marker.get("decision_id") and (out / "mix" / "manifest.json").exists())


class FinishRunStep(PipelineStep):
    """datatrove step (one task) that ends a submitted run: :func:`finish_run` under the store's lock."""

    name = "dedup, decide, mix, report"
    type = "WRITER"

    def __init__(self, out: str, recipe: Recipe) -> None:
        super().__init__()
        self.out, self.recipe = out, recipe

    def run(self, data: object = None, rank: int = 0, world_size: int = 1) -> Any:
        """Finish the run."""
        with store_lock(Path(self.out), "curate run (finish)"):
            finish_run(Path(self.out), self.recipe)
        return
        yield


def plan_run(
    paths: Sequence[str], out: Path, recipe: Recipe, *, base_url: str = DEFAULT_BASE_URL, resume: bool = False
) -> list[Stage]:
    """A whole run as one chain of the recipe's executors: stage 1, load, finish (what Slurm is given)."""
    files = resolve_inputs(list(paths), base_url)
    plan = plan_ingest(out, recipe, files, resume=resume, started=dt.datetime.now(dt.UTC))
    depends = plan.stages[-1].executor if plan.stages else None
    finish = make_executor(
        recipe,
        [FinishRunStep(str(out), recipe)],
        tasks=1,
        logs=plan.work / "logs-finish",
        name="finish",
        depends=depends,
        skip_completed=False,
    )
    return [*plan.stages, Stage("finish", finish, 1)]


def _submit_run(paths: Sequence[str], out: Path, recipe: Recipe, *, base_url: str, resume: bool) -> RunResult:
    with store_lock(out, "curate run (submit)"):
        stages = plan_run(paths, out, recipe, base_url=base_url, resume=resume)
        stages[-1].executor.run()  # type: ignore[attr-defined]
    ids = [str(getattr(s.executor, "job_id", "")) for s in stages]
    return RunResult(
        "",
        out / STORE_FILE,
        out / "mix",
        out / "report.html",
        RunCounts(0, 0, 0, 0),
        MixSummary(0, 0, 0, {}),
        list(paths),
        ids,
        logs=[*log_folders(stages), str(out / WORK_DIR)],
    )
