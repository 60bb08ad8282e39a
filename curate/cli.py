"""The ``curate`` command line: each command parses its options, calls one library function and prints.

Library errors (:class:`curate.errors.CurateError`) become a one-line message and exit code 2; nothing else
is caught, so a bug shows its traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from curate.errors import CurateError

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


DEVICE_HELP = "where transformer classifiers run: auto (CUDA when torch sees a GPU, bfloat16) | cpu | cuda"


def _fail_cleanly(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CurateError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


@app.command("run")
@_fail_cleanly
def run_cmd(
    paths: Annotated[
        list[str] | None,
        typer.Argument(help="WARC/WET/ARC files, globs, directories or URLs; none: the bundled sample crawl"),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="output folder for provenance.duckdb, mix/ and report.html")
    ] = Path("out"),
    recipe: Annotated[
        Path | None, typer.Option("--recipe", "-r", help="recipe TOML; keys it sets override pipelines/default.toml")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="replace a previous run's outputs in --out")] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="finish an interrupted run in --out: keep its completed tasks")
    ] = False,
    base_url: Annotated[
        str, typer.Option("--base-url", help="prefix for the entries of a *.paths.gz listing (URL or local folder)")
    ] = "https://data.commoncrawl.org/",
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="show datatrove's per-task logs and stats (else in OUT/work/logs/)")
    ] = False,
    device: Annotated[
        str | None, typer.Option("--device", help=DEVICE_HELP + " (default: the recipe's score.device)")
    ] = None,
) -> None:
    """Run the pipeline: read → licence → extract → date → score → dedup → store → mix → report.

    Example: curate run crawl/*.warc.gz --out out/ --recipe pipelines/default.toml

    A Common Crawl listing works too: curate run warc.paths.gz --base-url s3://commoncrawl/ --out out/
    """
    from curate.run.plan import SubmittedRun, run_pipeline

    r = run_pipeline(
        paths, out, recipe, force=force, resume=resume, quiet=not verbose, base_url=base_url, device=device
    )
    if isinstance(r, SubmittedRun):
        typer.echo(f"run {r.run_id}: {len(r.inputs)} input files submitted to Slurm as jobs {', '.join(r.job_ids)}")
        typer.echo(f"outputs will be in {r.out} (provenance.duckdb, mix/, report.html) when the last job ends")
        return
    c = r.counts
    typer.echo(f"run {r.run_id}: {len(r.inputs)} input files, {c.read} records read")
    typer.echo(f"  kept {c.kept} · dropped {c.dropped} · quarantined {c.quarantined}")
    for status, reason, n in c.by_reason:
        typer.echo(f"    {status:<11} {reason:<26} {n}")
    typer.echo(
        f"  mix: {r.mix_summary.documents} documents, {r.mix_summary.tokens} tokens in {r.mix_summary.shards} shards"
    )
    typer.echo(f"store:  {r.store}")
    typer.echo(f"mix:    {r.mix}")
    typer.echo(f"report: {r.report}")


@app.command("dedup")
@_fail_cleanly
def dedup_cmd(
    explain: Annotated[
        bool, typer.Option("--explain", help="print the band split and the S-curve (the default)")
    ] = True,
    recipe: Annotated[
        Path | None, typer.Option("--recipe", "-r", help="recipe TOML whose [dedup] settings to explain")
    ] = None,
) -> None:
    """Explain the near-dedup settings: MinHash size, LSH bands x rows, and P(candidate) by Jaccard similarity.

    Example: curate dedup --explain --recipe pipelines/default.toml
    """
    from curate.dedup.params import s_curve, signature_margin
    from curate.recipe import load_recipe

    r = load_recipe(recipe)
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


@classifiers_app.command("list")
@_fail_cleanly
def list_cmd() -> None:
    """List the registered classifiers with their kind and validation metrics.

    Example: curate classifiers list
    """
    from curate.score.registry import registry

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
        str | None, typer.Option("--kind", help="fasttext | minilm | ensemble (default: the one the name says)")
    ] = None,
    device: Annotated[str, typer.Option("--device", help=DEVICE_HELP)] = "auto",
) -> None:
    """Train a classifier reproducibly (grouped split, fixed seeds) and write its card.

    Example: curate classifiers train mgt-fasttext-v1 --data ../shared/data/mgt/train.jsonl.gz

    The transformer: curate classifiers train mgt-minilm-v1 --data FILE --device cuda; the ensemble, after both
    members: curate classifiers train mgt-ensemble-v1 --data FILE
    """
    from curate.score.registry import train

    card = train(name, data, out, kind=kind, leave_one_out_tables=leave_one_out, device=device)
    v = card["validation"]
    typer.echo(f"{name}: validation AUROC {v['auroc']}, TPR@1%FPR {v['tpr_at_1pct_fpr']}, ECE {v['ece']} (n={v['n']})")


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

    from curate.score.labelled import read_labelled, split_rows
    from curate.score.model import evaluate
    from curate.score.registry import load_model

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
    from curate.sample import build_sample

    written = build_sample(data, warcs, out)
    for p in written:
        typer.echo(str(p))


if __name__ == "__main__":  # pragma: no cover
    app()
