"""The ``curate`` command line: each command parses its options, calls one library function and prints.

Library errors (:class:`curate.errors.CurateError`) become a one-line message and exit code 2; nothing else
is caught, so a bug shows its traceback.
"""

from __future__ import annotations

import functools
import shlex
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from curate.attest import attest
from curate.certify import certificate_lines, certify
from curate.decide import mgt_rule_lines
from curate.dedup.params import s_curve, signature_margin
from curate.errors import CurateError, InputError, Interrupted
from curate.lookup import query, show, summary
from curate.migrate import migrate
from curate.recipe import load_recipe, with_device
from curate.resources import SAMPLE_DIR
from curate.run.commands import decide, dedup, mix, report, run, run_summary_lines
from curate.run.ingest import ingest, quarantined_inputs
from curate.run.progress import NullReporter
from curate.sample import build_sample
from curate.score.labelled import read_labelled, split_rows
from curate.score.model import evaluate
from curate.score.reference import build_reference, write_reference
from curate.score.registry import load_model, registry, train
from curate.terminal import RichReporter
from curate.trace import trace, trace_lines

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    help=(
        "Low-background token curation: find pre-cutoff web text in Common Crawl WARCs, prove when it existed, "
        "score model-generated text, dedupe keeping the oldest copy, record licence and opt-out evidence in "
        "DuckDB, and emit tokenized training mixes traceable to their WARC records.\n\n"
        "Example: curate run --out out/   (runs on the bundled sample crawl)"
    ),
    no_args_is_help=True,
    add_completion=False,
)
classifiers_app = typer.Typer(
    help="Train and evaluate the model-generated-text classifiers in classifiers/.", no_args_is_help=True
)
sample_app = typer.Typer(help="The sample crawl bundled in sample/.", no_args_is_help=True)
app.add_typer(classifiers_app, name="classifiers")
app.add_typer(sample_app, name="sample")


_DRAWING: list[Any] = []  # progress displays to stop when the command ends

DEVICE_HELP = "where transformer classifiers run: auto (CUDA when torch sees a GPU, bfloat16) | cpu | cuda"
STORE_HELP = "the store folder (holds provenance.duckdb; created by the first ingest)"
RECIPE_HELP = "recipe TOML; keys it sets override pipelines/default.toml"

StoreOpt = Annotated[Path, typer.Option("--store", "-s", help=STORE_HELP)]
RecipeOpt = Annotated[Path | None, typer.Option("--recipe", "-r", help=RECIPE_HELP)]
StrictOpt = Annotated[
    bool, typer.Option("--strict", help="exit non-zero, naming them, when any input could not be read")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="print nothing but errors (for scripts)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print a machine-readable JSON summary instead of text")]
BaseUrlOpt = Annotated[
    str, typer.Option("--base-url", help="prefix for the entries of a *.paths.gz listing (URL or local folder)")
]
DeviceOpt = Annotated[str | None, typer.Option("--device", help=DEVICE_HELP + " (default: the recipe's score.device)")]


def _fail_cleanly(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Interrupted as e:
            typer.echo(f"interrupted: {e}", err=True)
            again = [a for a in sys.argv[1:] if a != "--resume"]
            typer.echo(f"resume with: curate {' '.join(map(shlex.quote, again))} --resume", err=True)
            raise typer.Exit(130) from None
        except KeyboardInterrupt:
            typer.echo("interrupted: the store keeps its last committed state; rerun the command to finish", err=True)
            raise typer.Exit(130) from None
        except CurateError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        except OSError as e:  # a read-only or full output folder: what failed, not a traceback
            where = f"{e.filename}: " if e.filename else ""
            typer.echo(f"error: cannot write {where}{e.strerror or e}; nothing half-written was left", err=True)
            raise typer.Exit(2) from None
        finally:
            while _DRAWING:
                _DRAWING.pop().close()

    return wrapper  # type: ignore[return-value]


def _recipe(path: Path | None, device: str | None = None) -> Any:

    r = load_recipe(path)
    return with_device(r, device) if device is not None else r


def _reporter(quiet: bool, as_json: bool) -> Any:

    if quiet or as_json:
        return NullReporter()

    reporter = RichReporter()
    _DRAWING.append(reporter)
    return reporter


def _emit(as_json: bool, quiet: bool, data: dict[str, Any], lines: list[str]) -> None:
    while _DRAWING:  # the progress display ends before the summary
        _DRAWING.pop().close()
    if as_json:
        import json

        typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    elif not quiet:
        for line in lines:
            typer.echo(line)


@app.command("run")
@_fail_cleanly
def run_cmd(
    paths: Annotated[
        list[str] | None,
        typer.Argument(help="WARC/WET/ARC files, globs, directories or URLs; none: the bundled sample crawl"),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder: the store, mix/, report.html")] = Path("out"),
    recipe: RecipeOpt = None,
    force: Annotated[bool, typer.Option("--force", help="replace a previous run's outputs in --out")] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="finish an interrupted run in --out: keep what it finished")
    ] = False,
    strict: StrictOpt = False,
    base_url: BaseUrlOpt = "https://data.commoncrawl.org/",
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="show datatrove's per-task logs (else in OUT/work/…/run.log)")
    ] = False,
    device: DeviceOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Run everything: ingest → dedup → decide → mix → report, into one folder.

    Example: curate run crawl/*.warc.gz --out out/ --recipe pipelines/default.toml

    A Common Crawl listing works too: curate run warc.paths.gz --base-url s3://commoncrawl/ --out out/
    """

    r = run(
        paths or [str(SAMPLE_DIR)],
        out,
        _recipe(recipe, device),
        force=force,
        resume=resume,
        base_url=base_url,
        quiet=not verbose,
        reporter=_reporter(quiet, as_json),
        strict=strict,
    )
    if r.submitted:
        _emit(
            as_json,
            quiet,
            {"submitted": r.submitted, "out": str(out), "logs": r.logs},
            [
                f"{len(r.inputs)} inputs submitted to Slurm as jobs {', '.join(r.submitted)}",
                f"outputs will be in {out} (provenance.duckdb, mix/, report.html) when the last job ends",
                *_log_lines(r.logs),
            ],
        )
        return
    _emit(as_json, quiet, run_summary_dict(r), run_summary_lines(r))


def _log_lines(logs: list[str]) -> list[str]:
    return (
        ["logs (each task's log, and Slurm's output of each job):", *(f"  {folder}" for folder in logs)] if logs else []
    )


def run_summary_dict(r: Any) -> dict[str, Any]:
    """The run's summary for --json."""
    c = r.counts
    return {
        "run_id": r.run_id,
        "inputs": len(r.inputs),
        "records": c.read,
        "kept": c.kept,
        "dropped": c.dropped,
        "quarantined": c.quarantined,
        "by_reason": [{"status": s, "reason": x, "records": n} for s, x, n in c.by_reason],
        "mix": {"documents": r.mix_summary.documents, "tokens": r.mix_summary.tokens, "shards": r.mix_summary.shards},
        "store": str(r.store),
        "mix_dir": str(r.mix),
        "report": str(r.report),
    }


@app.command("ingest")
@_fail_cleanly
def ingest_cmd(
    store: StoreOpt,
    paths: Annotated[
        list[str] | None, typer.Argument(help="WARC/WET/WAT/ARC files, globs, folders, URLs or *.paths.gz listings")
    ] = None,
    recipe: RecipeOpt = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="finish an interrupted ingest of the same inputs: keep its finished tasks")
    ] = False,
    strict: StrictOpt = False,
    retry_quarantined: Annotated[
        bool,
        typer.Option(
            "--retry-quarantined", help="read again the inputs no earlier ingest into --store could read (with PATHS)"
        ),
    ] = False,
    base_url: BaseUrlOpt = "https://data.commoncrawl.org/",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="show datatrove's per-task logs")] = False,
    device: DeviceOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Read WARC files into the store: licence and opt-out evidence, text, capture date, MGT score, signatures.

    Files the store already holds (same name and SHA-256) are not read again; a different file under a name
    the store knows is refused. Statuses are set by `curate decide`.

    Example: curate ingest crawl-2019/*.warc.gz --store corpus/

    Inputs that could not be read: curate ingest --retry-quarantined --store corpus/
    """
    todo = [*(paths or []), *(quarantined_inputs(store) if retry_quarantined else [])]
    if not todo:
        raise InputError(
            "nothing to ingest: name input files"
            + (" (the store has no quarantined input)" if retry_quarantined else "")
        )
    r = ingest(
        todo,
        store,
        _recipe(recipe, device),
        base_url=base_url,
        resume=resume,
        quiet=not verbose,
        reporter=_reporter(quiet, as_json),
        strict=strict,
    )
    lines = [f"ingest {r.run_id}: {len(r.inputs)} files read, {r.added} records added ({r.quarantined} quarantined)"]
    if r.skipped:
        lines.append(f"  {len(r.skipped)} files already in the store, not read again: {', '.join(r.skipped[:5])}")
    if r.unread:
        lines.append(f"  {len(r.unread)} inputs could not be read (quarantined), e.g. {r.unread[0][:200]}")
        lines.append(f"  retry them alone: curate ingest --retry-quarantined --store {store}")
    if r.submitted:
        lines = [
            f"ingest {r.run_id}: {len(r.inputs)} files submitted as jobs {', '.join(r.submitted)}",
            *_log_lines(r.logs),
        ]
    lines.append(f"next: curate dedup --store {store} && curate decide --store {store}")
    _emit(
        as_json,
        quiet,
        {
            "run_id": r.run_id,
            "read": r.inputs,
            "skipped": r.skipped,
            "unread": r.unread,
            "added": r.added,
            "quarantined": r.quarantined,
            "submitted": r.submitted,
            "logs": r.logs,
        },
        lines,
    )


@app.command("dedup")
@_fail_cleanly
def dedup_cmd(
    store: Annotated[Path | None, typer.Option("--store", "-s", help=STORE_HELP)] = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="print the band split and the S-curve instead of deduplicating")
    ] = False,
    recipe: RecipeOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Deduplicate the store: exact and MinHash-LSH near duplicates, incrementally; or explain the settings.

    Documents ingested since the last pass are matched against everything in the store; each cluster is
    anchored at its earliest capture in the whole store. `curate decide` then keeps one copy per cluster.

    Example: curate dedup --store corpus/

    The settings: curate dedup --explain --recipe pipelines/default.toml
    """

    r = _recipe(recipe)
    if store is not None and not explain:
        p = dedup(store, r, reporter=_reporter(quiet, as_json))
        _emit(
            as_json,
            quiet,
            {
                "pass": p.pass_id,
                "new_documents": p.new_documents,
                "new_pairs": p.new_edges,
                "clustered": p.clustered,
                "clusters": p.clusters,
            },
            [
                f"dedup pass {p.pass_id}: {p.new_documents} new documents, {p.new_edges} new duplicate pairs; "
                f"{p.clustered} documents in {p.clusters} clusters",
                f"next: curate decide --store {store}",
            ],
        )
        return
    p = r.dedup_params
    typer.echo(f"{p.name}")
    typer.echo(
        f"word {p.ngram}-grams, {p.num_perm} permutations, {p.bands} bands x {p.rows} rows (chosen for P >= {r.dedup.min_recall} at Jaccard {r.dedup.threshold})"
    )
    typer.echo(
        f"candidates verified by: {r.dedup.verify} (signature: estimated Jaccard >= {r.dedup.threshold - signature_margin(r.dedup.threshold, p.num_perm):.3f})"
    )
    typer.echo("jaccard  P(candidate)  duplicate?")
    for s, prob, dup in s_curve(p, r.dedup.threshold):
        typer.echo(f"{s:7.2f}  {prob:12.3f}  {'yes' if dup else 'no'}  {'#' * round(prob * 40)}")


@app.command("decide")
@_fail_cleanly
def decide_cmd(store: StoreOpt, recipe: RecipeOpt = None, quiet: QuietOpt = False, as_json: JsonOpt = False) -> None:
    """Apply the recipe's keep rules to every record of the store, without reading a WARC.

    Cutoff and tiers, the MGT rule, opt-outs, licence policy, domain reviews and duplicates; the only command
    that sets a record's status. Each pass is recorded in the store's decisions table.

    Example: curate decide --store corpus/ --recipe pipelines/default.toml
    """

    r = _recipe(recipe)
    d = decide(store, r)
    c = d.counts
    lines = [
        f"decision {d.decision_id}: {c.read} records: kept {c.kept} · dropped {c.dropped} · quarantined {c.quarantined}"
    ]
    lines += [f"    {s:<11} {x:<26} {n}" for s, x, n in c.by_reason]
    lines += mgt_rule_lines(d.mgt, r)
    _emit(
        as_json,
        quiet,
        {
            "decision": d.decision_id,
            "records": c.read,
            "kept": c.kept,
            "dropped": c.dropped,
            "quarantined": c.quarantined,
            "by_reason": [{"status": s, "reason": x, "records": n} for s, x, n in c.by_reason],
            "mgt_rule": d.mgt_rule,
            "mgt": asdict(d.mgt),
        },
        lines,
    )


@app.command("attest")
@_fail_cleanly
def attest_cmd(
    store: StoreOpt,
    index: Annotated[
        list[str] | None,
        typer.Option(
            "--index",
            "-i",
            help="Common Crawl columnar index Parquet: a file, folder, glob or s3:// URL (repeatable)",
        ),
    ] = None,
    store_ref: Annotated[
        list[Path] | None,
        typer.Option("--store-ref", help="an earlier curate store to look digests up in (repeatable)"),
    ] = None,
    recipe: RecipeOpt = None,
    near: Annotated[
        bool, typer.Option("--near/--no-near", help="also record same-URL captures with another digest (weak)")
    ] = True,
    every: Annotated[
        bool,
        typer.Option(
            "--all",
            help="look up every document, not only those the cutoff leaves unproven (for a later, earlier cutoff)",
        ),
    ] = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Look the payload digests of the store's post-cutoff and undated captures up in Common Crawl's columnar
    index and earlier stores, and record every match as evidence.

    Digest equality with a capture fetched before the recipe's cutoff makes a document `attested` at the next
    `curate decide`; matches are kept whatever their fetch time, so a later cutoff is judged without a new lookup.

    Example: curate attest --store corpus/ --index 'cc-index/table/cc-main/warc/crawl=CC-MAIN-2021-*/subset=warc/'
    """
    r = _recipe(recipe)
    a = attest(
        store,
        r.cutoff_datetime,
        indexes=index or [],
        store_refs=store_ref or [],
        near=near,
        every=every,
        memory_limit=r.executor.duckdb_memory,
        reporter=_reporter(quiet, as_json),
    )
    _emit(
        as_json,
        quiet,
        {
            "pass": a.pass_id,
            "looked_up": a.looked_up,
            "hard": a.hard,
            "weak": a.weak,
            "flagged": a.flagged,
            "attested_before_cutoff": a.attested,
            "cutoff": r.cutoff.isoformat(),
            "sources": a.sources,
        },
        [
            f"attest pass {a.pass_id}: {a.looked_up} documents looked up; {a.hard} digest matches, {a.weak} same-URL "
            f"captures, {a.flagged} flagged",
            f"{a.attested} documents have a digest match fetched before {r.cutoff.isoformat()}",
            f"next: curate decide --store {store}",
        ],
    )


@app.command("certify")
@_fail_cleanly
def certify_cmd(
    store: StoreOpt,
    doc_id: Annotated[str, typer.Argument(help="the document's id (documents.doc_id)")],
    as_json: JsonOpt = False,
) -> None:
    """Print a document's low-background certificate: tier, the evidence chain with sources and coordinates, the
    cutoff, and the tool, recipe and index versions.

    Example: curate certify --store corpus/ 3f2a9c0d1e7b4a66 --json
    """
    cert = certify(store, doc_id)
    _emit(as_json, False, cert, certificate_lines(cert))


@app.command("mix")
@_fail_cleanly
def mix_cmd(
    store: StoreOpt,
    out: Annotated[
        str,
        typer.Option(
            "--out",
            "-o",
            help="folder for the mix's shards, sidecar and manifest, or a URL (s3://bucket/prefix): built locally, "
            "then uploaded with manifest.json last",
        ),
    ],
    mix_file: Annotated[
        Path | None,
        typer.Option(
            "--mix",
            "-m",
            help="mix recipe (TOML: name, version, seed, [mix] and its [[mix.buckets]]), e.g. pipelines/mixes/*.toml",
        ),
    ] = None,
    recipe: Annotated[
        Path | None, typer.Option("--recipe", "-r", help="recipe whose [mix] to use (default: the latest decision's)")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace a mix already in --out")] = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a tokenized training mix of the store's kept documents, with a token-to-WARC sidecar.

    Buckets select documents with SQL, each with a weight, a token target or neither (every document once);
    tokenization runs as datatrove tasks, then one merge task per shard writes every format of mix.formats
    (datatrove .ds, Megatron .bin/.idx, JSONL, Parquet) with a sidecar beside each shard file. manifest.json
    says requested and achieved tokens per bucket and why they differ. --out may be a URL (s3://bucket/prefix):
    the mix is built under the store's work/ folder, then uploaded with manifest.json last.

    Example: curate mix --store corpus/ --out mixes/v1 --mix pipelines/mixes/low-background-en.toml
    """

    m = mix(store, out, _recipe(recipe) if recipe else None, overwrite=overwrite, mix_recipe=mix_file)
    _emit(
        as_json,
        quiet,
        {"documents": m.documents, "tokens": m.tokens, "shards": m.shards, "by_bucket": m.by_bucket, "out": str(out)},
        [f"mix: {m.documents} documents, {m.tokens} tokens in {m.shards} shards in {out}"],
    )


@app.command("report")
@_fail_cleanly
def report_cmd(
    store: StoreOpt,
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            "-o",
            help="HTML file, or a URL (s3://…/report.html, uploaded after its exports) (default: STORE/report.html)",
        ),
    ] = None,
    mix_dir: Annotated[
        str | None, typer.Option("--mix", help="a mix folder or URL of this store, for token counts by licence")
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Write the provenance report (HTML) and the complete CSV/Parquet exports next to it, from the store alone.

    Example: curate report --store corpus/ --mix mixes/v1 --out corpus/report.html
    """

    path = report(store, out or store / "report.html", mix_dir=mix_dir)  # a URL stays a string
    if not quiet:
        typer.echo(f"report: {path}")


@app.command("migrate")
@_fail_cleanly
def migrate_cmd(store: StoreOpt, quiet: QuietOpt = False) -> None:
    """Upgrade a store written by an older curate to this version's schema, in place (all or nothing).

    Example: curate migrate --store corpus/
    """

    before, after = migrate(store)
    if not quiet:
        typer.echo(f"{store}: {before} → {after}" if before != after else f"{store} is already {after}")


def _print_tables(tables: list[Any], fmt: str) -> None:
    """Print results as rich tables, CSV or JSON."""
    import csv
    import json

    if fmt == "json":
        out = {t.title: [dict(zip(t.columns, r, strict=True)) for r in t.rows] for t in tables}
        typer.echo(json.dumps(out if len(tables) > 1 else out[tables[0].title], indent=2, default=str))
        return
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        for t in tables:
            writer.writerow(t.columns)
            writer.writerows(t.rows)
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for t in tables:
        table = Table(title=t.title, title_justify="left", show_lines=False)
        for c in t.columns:
            table.add_column(str(c), overflow="fold")
        for r in t.rows:
            table.add_row(*("" if v is None else str(v) for v in r))
        console.print(table)


FormatOpt = Annotated[str, typer.Option("--format", "-f", help="table | csv | json")]
CsvOpt = Annotated[bool, typer.Option("--csv", help="the same as --format csv")]


def _check_format(fmt: str, as_csv: bool = False, as_json: bool = False) -> str:
    if as_csv and as_json:
        raise CurateError("--csv and --json exclude each other")
    fmt = "csv" if as_csv else "json" if as_json else fmt
    if fmt not in ("table", "csv", "json"):
        raise CurateError(f"--format must be table, csv or json, got {fmt!r}")
    return fmt


@app.command("inspect")
@_fail_cleanly
def inspect_cmd(
    store: Annotated[Path, typer.Argument(help=STORE_HELP)],
    fmt: FormatOpt = "table",
    as_csv: CsvOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Summarise a store: records by status and reason, tiers, ingests, dedup passes, decisions, languages,
    licences and domains.

    Example: curate inspect corpus/
    """
    _print_tables(summary(store), _check_format(fmt, as_csv, as_json))


@app.command("query")
@_fail_cleanly
def query_cmd(
    store: Annotated[Path, typer.Argument(help=STORE_HELP)],
    sql: Annotated[str, typer.Argument(help="one SELECT statement over the store's tables (docs/store.md)")],
    fmt: FormatOpt = "table",
    timeout: Annotated[float, typer.Option("--timeout", help="stop the query after this many seconds")] = 60.0,
    limit: Annotated[int | None, typer.Option("--limit", help="print at most this many rows")] = None,
    as_csv: CsvOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Run a read-only SQL query on a store: SELECT only; nothing can write, attach or read files.

    Example: curate query corpus/ "SELECT tier, count(*) FROM documents WHERE status = 'kept' GROUP BY 1" --format csv
    """
    _print_tables([query(store, sql, timeout_s=timeout, limit=limit)], _check_format(fmt, as_csv, as_json))


@app.command("show")
@_fail_cleanly
def show_cmd(
    store: Annotated[Path, typer.Argument(help=STORE_HELP)],
    doc_id: Annotated[str, typer.Argument(help="the document's id (documents.doc_id)")],
    fmt: FormatOpt = "table",
    as_csv: CsvOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Show one document: coordinates, tier and its evidence, MGT score, licence and opt-out evidence, its
    duplicate cluster and representative, and the decision that set its status.

    Example: curate show corpus/ 3f2a9c0d1e7b4a66
    """
    _print_tables(show(store, doc_id), _check_format(fmt, as_csv, as_json))


@app.command("trace")
@_fail_cleanly
def trace_cmd(
    shard: Annotated[
        str,
        typer.Argument(
            help="a mix shard: a datatrove .ds file, or a Megatron .bin or .idx file or their prefix; a path or a URL "
            "(s3://bucket/mix/mix_00000.ds)"
        ),
    ],
    token_index: Annotated[
        int,
        typer.Argument(
            help="the token's position in the shard, from 0; negative counts from the end (after --: -- -1)"
        ),
    ],
    store: Annotated[
        Path | None, typer.Option("--store", "-s", help="the store the mix was cut from: adds its evidence now")
    ] = None,
    warc_dir: Annotated[
        list[Path] | None,
        typer.Option("--warc-dir", help="a folder to find the WARC in by file name when its recorded path is gone"),
    ] = None,
    no_warc: Annotated[bool, typer.Option("--no-warc", help="do not re-read the record from its WARC file")] = False,
    save_record: Annotated[
        Path | None, typer.Option("--save-record", help="write the record's exact bytes, as in the WARC, to this file")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Trace one token of a mix back to its document and WARC record: WARC coordinates, tier, date, licence and
    the store's evidence, and the record's bytes re-read and checked when the WARC is reachable.

    Example: curate trace out/mix/mix_00000.ds 1234 --store out/
    """
    t = trace(shard, token_index, store, read_warc=not no_warc, warc_dirs=warc_dir or [])
    if as_json:
        import json

        typer.echo(json.dumps(t.as_dict(), indent=2, sort_keys=True, default=str))
    else:
        for line in trace_lines(t):
            typer.echo(line)
        shown = [x for x in t.evidence if t.text is None or not x.title.startswith("text")]  # decoded above
        if shown:
            _print_tables(shown, "table")
    if save_record is not None:
        if t.record is None or t.record.data is None:
            raise CurateError(f"the record's bytes were not read, so {save_record} was not written")
        save_record.write_bytes(t.record.data)


@classifiers_app.command("list")
@_fail_cleanly
def list_cmd() -> None:
    """List the registered classifiers with their kind and validation metrics.

    Example: curate classifiers list
    """

    typer.echo(f"{'name':<20} {'kind':<9} {'AUROC':>6} {'TPR@1%':>7} {'ECE':>6}  languages  members")
    for c in registry():
        langs = ",".join(c["languages"] or [])
        typer.echo(
            f"{c['name']:<20} {c['kind']!s:<9} {c['auroc']!s:>6} {c['tpr_at_1pct_fpr']!s:>7} {c['ece']!s:>6}  "
            f"{langs:<9}  {' + '.join(c['members'])}"
        )


@classifiers_app.command("train")
@_fail_cleanly
def train_cmd(
    name: Annotated[str, typer.Argument(help="versioned classifier name, e.g. mgt-fasttext-v1")],
    data: Annotated[Path, typer.Option("--data", help="labelled JSONL(.gz): text, label (human|machine), group")],
    out: Annotated[Path | None, typer.Option("--out", help="folder to write to (default classifiers/NAME)")] = None,
    leave_one_out: Annotated[
        bool,
        typer.Option("--leave-one-out", help="also measure leave-one-generator/domain-out AUROC (15 extra fits)"),
    ] = False,
    kind: Annotated[
        str | None,
        typer.Option(
            "--kind", help="fasttext | minilm | ensemble | cascade | lexical (default: the one the name says)"
        ),
    ] = None,
    device: Annotated[str, typer.Option("--device", help=DEVICE_HELP)] = "auto",
    human_web: Annotated[
        Path | None,
        typer.Option(
            "--human-web",
            help="real pre-cutoff human web pages (JSONL with site and split, e.g. tests/data/mgt/web-human.jsonl.gz): "
            "the balanced web recipe (fasttext kind), web calibration and out-of-distribution gate (fasttext, lexical)",
        ),
    ] = None,
) -> None:
    """Train a classifier reproducibly (grouped split, fixed seeds) and write its card.

    Example: curate classifiers train mgt-fasttext-v1 --data ../shared/data/mgt/train.jsonl.gz

    The web-calibrated v2: curate classifiers train mgt-fasttext-v2 --data ../shared/data/mgt/train.jsonl.gz
    --human-web tests/data/mgt/web-human.jsonl.gz --leave-one-out

    The transformer: curate classifiers train mgt-minilm-v1 --data FILE --device cuda; the ensemble, after both
    members: curate classifiers train mgt-ensemble-v1 --data FILE; the cascade (refits its band over the members its
    card names): curate classifiers train mgt-cascade-v1 --data FILE; fastText stacked with word-frequency features:
    curate classifiers train mgt-lexical-v1 --data FILE --human-web tests/data/mgt/web-human.jsonl.gz --leave-one-out
    """

    score = load_recipe(None).score
    card = train(
        name,
        data,
        out,
        kind=kind,
        leave_one_out_tables=leave_one_out,
        device=device,
        human_web=human_web,
        rule=(score.threshold, score.reference_quantile),
    )
    v = card["validation"]
    typer.echo(f"{name}: validation AUROC {v['auroc']}, TPR@1%FPR {v['tpr_at_1pct_fpr']}, ECE {v['ece']} (n={v['n']})")


@classifiers_app.command("reference")
@_fail_cleanly
def reference_cmd(
    name: Annotated[str, typer.Argument(help="classifier name under classifiers/")],
    data: Annotated[
        Path,
        typer.Option(
            "--data", help="labelled JSONL(.gz) of real pre-cutoff web pages (text, label, split, provenance)"
        ),
    ],
    split: Annotated[
        str, typer.Option("--split", help="the rows whose split field has this value (all: every human row)")
    ] = "reference",
    extraction: Annotated[
        str | None, typer.Option("--extraction", help="how the texts were extracted, when the rows do not say")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="file to write (default classifiers/NAME/reference.json)")
    ] = None,
    device: Annotated[str, typer.Option("--device", help=DEVICE_HELP)] = "auto",
) -> None:
    """Write a classifier's shipped reference: its scores on real human web pages captured before the cutoff.

    Example: curate classifiers reference mgt-fasttext-v1 --data tests/data/mgt/web-human.jsonl.gz

    A store with fewer than score.min_reference pre-cutoff captures judges its post-cutoff pages against this
    reference (score.reference = auto). Deterministic: the same data and classifier give the same file.
    """
    ref = build_reference(name, data, split=split, extraction=extraction, device=device)
    path = write_reference(ref, out)
    q = ref["quantiles"]
    typer.echo(f"{name}: {ref['n']} pages from {ref['sites']} sites, 0.95 quantile {q['0.95']} -> {path}")


@classifiers_app.command("eval")
@_fail_cleanly
def eval_cmd(
    name: Annotated[str, typer.Argument(help="classifier name under classifiers/")],
    data: Annotated[Path, typer.Option("--data", help="labelled JSONL(.gz) to evaluate on")],
    split: Annotated[
        str, typer.Option(help="all | validation (the grouped validation split of --data)")
    ] = "validation",
    device: Annotated[str, typer.Option("--device", help=DEVICE_HELP)] = "auto",
) -> None:
    """Evaluate a classifier: AUROC, TPR at 1%/5% FPR, calibration error, per generator and per domain.

    Example: curate classifiers eval mgt-fasttext-v1 --data ../shared/data/mgt/train.jsonl.gz
    """
    import json

    rows = read_labelled(data)
    if split == "validation":
        rows = split_rows(rows)[1]
    elif split != "all":
        raise CurateError(f"--split must be all or validation, got {split!r}")
    typer.echo(json.dumps(evaluate(load_model(name, device), rows), indent=2))


@sample_app.command("build")
@_fail_cleanly
def sample_build_cmd(
    data: Annotated[Path, typer.Option("--data", help="the labelled MGT texts the generated WARC is made from")] = Path(
        "../shared/data/mgt/train.jsonl.gz"
    ),
    warcs: Annotated[Path, typer.Option("--warcs", help="folder of real WARC fixtures to copy in")] = Path(
        "../shared/data/warc"
    ),
    out: Annotated[Path | None, typer.Option("--out", help="sample folder (default: sample/ in the repo)")] = None,
) -> None:
    """Rebuild the bundled sample crawl deterministically (generated WARC + real fixtures + NOTICE).

    Example: curate sample build --data ../shared/data/mgt/train.jsonl.gz
    """

    written = build_sample(data, warcs, out)
    for p in written:
        typer.echo(str(p))


if __name__ == "__main__":  # pragma: no cover
    app()
