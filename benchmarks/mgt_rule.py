"""Recompute the MGT rule table of docs/mgt.md on the sample crawl: which pages each rule drops.

    python benchmarks/mgt_rule.py [--work DIR] [--web-human tests/data/mgt/web-human.jsonl.gz] [--model NAME]

Runs the pipeline on the bundled sample crawl (and on its two real 2024 homepage files alone, a store too small
for its own reference), then re-decides copies of those stores under each rule and counts, from the planted
labels (tests/data/mgt/sample-crawl-labels.json): the planted post-cutoff machine and human pages that reached
the MGT rule and were dropped by it, and the real 2024 researcher and organisation homepages (Dolma's
fixtures, written by people) dropped by it. With --web-human, it also scores the real pre-cutoff pages of that
file's ``eval`` split (never used for a reference) and prints the share each rule would flag, and the share of
all its pages at each extreme pre-cutoff score level. Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from curate.recipe import Recipe, load_recipe
from curate.resources import REPO_ROOT, SAMPLE_DIR
from curate.run.commands import decide, run
from curate.score.reference import load_reference
from curate.score.registry import load_model
from curate.store import STORE_FILE, open_store

LABELS = REPO_ROOT / "tests" / "data" / "mgt" / "sample-crawl-labels.json"
DOLMA = SAMPLE_DIR / "fixtures" / "warc-dolma"
MGT_REASONS = ("mgt_above_threshold", "mgt_site_shift")
REACHED = "reason IS NULL OR reason IN ('mgt_above_threshold', 'mgt_site_shift', 'duplicate_of', 'license_policy')"


def with_score(recipe: Recipe, **changes: Any) -> Recipe:
    """``recipe`` with ``[score]`` keys changed."""
    return dataclasses.replace(recipe, score=dataclasses.replace(recipe.score, **changes))


def redecide(store: Path, recipe: Recipe, work: Path) -> Path:
    """A copy of ``store`` re-decided with ``recipe``."""
    copy = Path(tempfile.mkdtemp(dir=work))
    shutil.copyfile(store / STORE_FILE, copy / STORE_FILE)
    decide(copy, recipe)
    return copy


def counts(store: Path, labels: dict[str, str]) -> dict[str, Any]:
    """Planted post-cutoff machine/human pages dropped by the MGT rule, and real 2024 homepages dropped."""
    con = open_store(store)
    try:
        rows = con.execute(
            f"""SELECT url, reason, warc_file_name FROM documents
                WHERE tier = 'post_cutoff' AND mgt_score IS NOT NULL AND ({REACHED})"""
        ).fetchall()
        rule = con.execute("SELECT mgt_rule FROM decisions ORDER BY decision_id DESC LIMIT 1").fetchone()[0]
    finally:
        con.close()
    out: dict[str, Any] = {"rule": rule}
    for label in ("machine", "human"):
        hit = [
            r[1] in MGT_REASONS
            for r in rows
            if r[2] == "sample-crawl.warc.gz" and labels.get(r[0].rsplit("/", 1)[1].split(".")[0]) == label
        ]
        out[label] = (sum(hit), len(hit))
    real = [r[1] in MGT_REASONS for r in rows if r[2].startswith("sample-000")]
    out["real"] = (sum(real), len(real))
    return out


def pct(x: tuple[int, int]) -> str:
    return f"{100 * x[0] / x[1]:.0f}% ({x[0]}/{x[1]})" if x[1] else "n/a"


def pre_cutoff_levels(store: Path, labels: dict[str, str], levels: list[float]) -> list[list[str]]:
    """Planted pre-cutoff machine (old generators) and human pages at or above each extreme level."""
    con = open_store(store)
    try:
        rows = con.execute(
            """SELECT url, mgt_score FROM documents WHERE warc_file_name = 'sample-crawl.warc.gz'
               AND tier = 'pre_cutoff' AND mgt_score IS NOT NULL"""
        ).fetchall()
    finally:
        con.close()
    lab = [(labels.get(u.rsplit("/", 1)[1].split(".")[0]), s) for u, s in rows]
    out = []
    for level in levels:
        m = [s >= level for lb, s in lab if lb == "machine"]
        h = [s >= level for lb, s in lab if lb == "human"]
        out.append([f"{level}", pct((sum(m), len(m))), pct((sum(h), len(h)))])
    return out


def web_human(path: Path, model: str, quantile: float, threshold: float, levels: list[float]) -> list[str]:
    """Lines about the real pre-cutoff pages of ``path``: eval-split flag rates, extreme-level shares."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    m = load_model(model)
    scored = m.score_many([r["text"] for r in rows], [r.get("language") for r in rows])
    every = np.asarray([s for s, _, _ in scored if s is not None])
    ev = np.asarray(
        [s for r, (s, _, _) in zip(rows, scored, strict=True) if s is not None and r.get("split") == "eval"]
    )
    ref = load_reference(model)
    lines = [f"real pre-cutoff web pages ({path.name}, {model}): {len(every)} scored, {len(ev)} in the eval split"]
    lines.append(f"- eval pages flagged by probability >= {threshold}: {pct((int((ev >= threshold).sum()), len(ev)))}")
    if ref is not None:
        pctl = np.searchsorted(ref.scores, ev, side="left") / ref.n
        flagged = int((pctl >= quantile).sum())
        lines.append(
            f"- eval pages flagged by the shipped reference ({ref.n} pages), {quantile} quantile: {pct((flagged, len(ev)))}"
        )
    for level in levels:
        lines.append(f"- all pages scoring >= {level}: {pct((int((every >= level).sum()), len(every)))}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=None, help="folder for the runs (default: a temporary folder)")
    ap.add_argument("--web-human", type=Path, default=None, help="labelled real pre-cutoff pages (split field)")
    ap.add_argument("--model", default=None, help="classifier to score with (default: the default recipe's)")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="mgt-rule-"))
    work.mkdir(parents=True, exist_ok=True)
    labels = json.loads(LABELS.read_text())
    base = load_recipe()
    if args.model:
        base = with_score(base, model=args.model)
    big = work / "sample"
    small = work / "two-files"
    if not (big / "COMPLETE.json").exists():
        run([str(SAMPLE_DIR)], big, base, force=True, quiet=True)
    if not (small / "COMPLETE.json").exists():
        run([str(DOLMA)], small, base, force=True, quiet=True)
    q = base.score.reference_quantile
    variants = [
        ("probability >= 0.5", big, with_score(base, rule="probability")),
        (f"reference: the store's own, {q} quantile (default)", big, base),
        (f"reference: shipped, {q} quantile", big, with_score(base, reference="shipped")),
        ("store reference + site rule", big, with_score(base, site_rule=True)),
        (
            f"store reference + pre_cutoff_drop at {base.score.pre_cutoff_extreme}",
            big,
            with_score(base, pre_cutoff_drop=True),
        ),
    ]
    print("| rule | machine pages dropped | human pages dropped | real 2024 homepages dropped |")
    print("| --- | ---: | ---: | ---: |")
    for name, store, recipe in variants:
        c = counts(redecide(store, recipe, work), labels)
        print(f"| {name} | {pct(c['machine'])} | {pct(c['human'])} | {pct(c['real'])} |")
    print()
    print("Two real files alone (Dolma's 2024 homepages, no pre-cutoff captures):")
    print()
    print("| rule | real 2024 homepages dropped | decisions.mgt_rule |")
    print("| --- | ---: | --- |")
    for name, recipe in (("probability >= 0.5", with_score(base, rule="probability")), ("auto (default)", base)):
        c = counts(redecide(small, recipe, work), labels)
        print(f"| {name} | {pct(c['real'])} | {c['rule'][:140]} |")
    levels = [0.99, 0.995, 0.998, 0.999]
    print()
    print("| pre-cutoff score >= | planted machine pages (old generators) | planted human pages |")
    print("| ---: | ---: | ---: |")
    for row in pre_cutoff_levels(big, labels, levels):
        print("| " + " | ".join(row) + " |")
    if args.web_human:
        print()
        for line in web_human(args.web_human, base.score.model, q, base.score.threshold, levels):
            print(line)


if __name__ == "__main__":
    main()
