"""Rebuild this folder from ``../shared/data/mgt/train.jsonl.gz``: the labelled subset, the sample crawl's page
labels and (with ``--measure``) the subset eval gate.

    python tests/data/mgt/build.py [--shared DIR] [--measure]

Deterministic: the same input gives byte-identical files (tests/test_mgt.py checks the subset and the labels
against a rebuild whenever the full data is there). See SOURCE.md for what is picked and why.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import math
import os
import random
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[2]
SUBSET = HERE / "subset.jsonl.gz"
SAMPLE_LABELS = HERE / "sample-crawl-labels.json"
GATE = HERE / "gate.json"

# rows kept per (source, domain, generator) stratum; humans are over-sampled so that a false-positive rate of
# a few percent is measured on more than a handful of human texts
VALIDATION_PER_STRATUM = {"human": 24, "machine": 8}
TRAIN_PER_STRATUM = {"human": 14, "machine": 10}
# the transformer gates run on every k-th validation row of the subset (a CPU pass costs ~0.1 s a text)
TRANSFORMER_EVERY = 2
MODELS = {"mgt-fasttext-v1": 1, "mgt-minilm-v1": TRANSFORMER_EVERY, "mgt-ensemble-v1": TRANSFORMER_EVERY}
# floors sit this far under the measured value (ceilings this far over), rounded outward to 3 decimals
MARGIN = {"auroc": 0.01, "tpr_at_1pct_fpr": 0.03, "tpr_at_5pct_fpr": 0.03, "ece": 0.02}

GATE_COMMENT = (
    "Eval gate of each MGT classifier on the in-repo subset (tests/data/mgt/subset.jsonl.gz, see SOURCE.md), for "
    "clones without ../shared; the gates of classifiers/*/gate.json on the full validation split run whenever "
    "../shared is there. Written by `python tests/data/mgt/build.py --measure` on the CPU: 'measured' is the "
    "model on its slice (the subset's validation rows, every k-th); floors are measured minus 0.01 (AUROC) or "
    "0.03 (TPR at 1%/5% FPR), the ECE ceiling measured plus 0.02, rounded outward to 3 decimals. 'card_auroc' "
    "is the model card's full-split AUROC when measured: a retrained classifier must be measured here again."
)


def _order(row: dict[str, Any]) -> str:
    return hashlib.sha1(row["id"].encode()).hexdigest()


def pick(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The subset of ``rows`` (the full labelled file): per stratum, the first rows by sha1 of their id."""
    from curate.score.labelled import split_rows

    train, val = split_rows(rows)
    chosen: set[str] = set()
    for part, per in ((val, VALIDATION_PER_STRATUM), (train, TRAIN_PER_STRATUM)):
        strata: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for r in part:
            strata.setdefault((r["source"], r["domain"], r["generator"]), []).append(r)
        for stratum in strata.values():
            chosen.update(r["id"] for r in sorted(stratum, key=_order)[: per[stratum[0]["label"]]])
    return [r for r in rows if r["id"] in chosen]  # in the order of the full file


def subset_bytes(rows: list[dict[str, Any]]) -> bytes:
    """The gzipped JSONL of ``rows``, without a file name or time stamp in the gzip header."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, filename="", mtime=0) as gz:
        for r in rows:
            gz.write((json.dumps(r, ensure_ascii=False) + "\n").encode())
    return buf.getvalue()


def sample_labels(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Label of every page the sample crawl planted, by the 10-hex name in its URL (``sample.generate_warc``)."""
    from curate import sample

    picked = sample._pick_rows(rows, random.Random(sample.SEED))
    return {hashlib.sha1(r["id"].encode()).hexdigest()[:10]: r["label"] for r in sorted(picked, key=lambda r: r["id"])}


def labels_text(labels: dict[str, str]) -> str:
    return json.dumps(dict(sorted(labels.items())), indent=0) + "\n"


def gate_slice(rows: list[dict[str, Any]], every: int) -> list[dict[str, Any]]:
    """The validation rows of the subset that a model's gate is measured on."""
    from curate.score.labelled import split_rows

    return split_rows(rows)[1][::every]


def measure(rows: list[dict[str, Any]]) -> dict[str, Any]:
    from curate.score.labelled import rows_digest
    from curate.score.model import evaluate, load_card
    from curate.score.registry import load_model

    models = {}
    for name, every in MODELS.items():
        part = gate_slice(rows, every)
        m = evaluate(load_model(name, "cpu"), part)
        measured = {k: round(float(m[k]), 4) for k in MARGIN}
        models[name] = {
            "every": every,
            "n": len(part),
            "slice_digest": rows_digest(part),
            "card_auroc": load_card(name)["validation"]["auroc"],
            "measured": measured,
            "floors": {k: math.floor((v - MARGIN[k]) * 1000) / 1000 for k, v in measured.items() if k != "ece"},
            "ceilings": {"ece": math.ceil((measured["ece"] + MARGIN["ece"]) * 1000) / 1000},
        }
    return {"comment": GATE_COMMENT, "models": models}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = Path(os.environ.get("CURATE_SHARED") or REPO_ROOT.parent / "shared")
    ap.add_argument("--shared", type=Path, default=default, help=f"the shared folder (default {default})")
    ap.add_argument("--measure", action="store_true", help="also run the classifiers and write gate.json")
    args = ap.parse_args()
    from curate.score.labelled import read_labelled

    full = read_labelled(args.shared / "data" / "mgt" / "train.jsonl.gz")
    rows = pick(full)
    SUBSET.write_bytes(subset_bytes(rows))
    SAMPLE_LABELS.write_text(labels_text(sample_labels(full)))
    print(f"{SUBSET.name}: {len(rows)} rows, {SUBSET.stat().st_size:,} bytes")
    if args.measure:
        GATE.write_text(json.dumps(measure(rows), indent=2) + "\n")
        print(GATE.read_text())


if __name__ == "__main__":
    main()
