"""Near-dedup quality and speed on generated re-captures, through a real store and `curate dedup`.

Corpus: ``tests/recaptures.py`` (articles on site templates, each re-captured under the edit classes of
``recaptures.EDITS``, and near misses: other articles on one template, short articles on a wordy template,
same-topic articles, a series sharing an introduction). For each configuration, the store is built as an
ingest writes it (text hash, MinHash signature and band keys per document) and deduplicated by
``curate.run.commands.dedup``; clusters are scored against the planted truth: pairwise recall and precision,
recall per edit class, wrong pairs per near-miss class, and the share of articles whose cluster is represented
by the original (the earliest capture) with every copy in it.

Speed: the sign step's work per document (text hash, signature, band keys) in CPU seconds, and the dedup pass
(buckets, verification, clustering) in CPU seconds of this process and its workers.

Usage: python benchmarks/dedup.py [--articles 600] [--copies 2] [--near-miss 200] [--seed 1]
"""

from __future__ import annotations

import os
import sys

# this folder holds a tokenize.py, which would shadow the standard library's (imported by inspect, pandas...)
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.append(str(Path(__file__).resolve().parent.parent / "tests"))

LEGACY = {"scheme": "words-v1", "threshold": 0.8, "num_perm": 128, "ngram": 5, "verify": "signature"}
"""The defaults before issue 14 (what stores ingested before keep)."""


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run(pages: list, recipe, label: str) -> None:
    import recaptures

    from curate.dedup.minhash import band_keys, text_hash
    from curate.run.commands import dedup

    p = recipe.dedup_params
    mh = p.hasher()
    t = time.process_time()
    for page in pages:
        text_hash(page.text)
        sig = mh.signature(page.text, page.language)
        if sig is not None:
            band_keys(sig, p.bands, p.rows)
    sign = time.process_time() - t
    with tempfile.TemporaryDirectory() as tmp:
        store = recaptures.build_store(Path(tmp) / "s", pages, recipe)
        t, w = _cpu(), time.perf_counter()
        dedup(store, recipe)
        stage, wall = _cpu() - t, time.perf_counter() - w
        s = recaptures.score(pages, recaptures.clusters_of(store))
    classes = " ".join(f"{k} {v:.3f}" for k, v in s.class_recall.items())
    misses = " ".join(f"{k} {v}" for k, v in s.class_false_pairs.items())
    print(
        f"{label}: {p.name}, verify={recipe.dedup.verify}\n"
        f"  pairwise recall {s.recall:.4f} precision {s.precision:.4f} ({s.true_pairs} true pairs, {s.predicted_pairs} "
        f"predicted); earliest capture represents its whole cluster: {s.earliest_survives:.4f}\n"
        f"  recall by edit class: {classes}\n  wrong pairs by near-miss class: {misses}\n"
        f"  sign step {len(pages) / sign:.0f} docs/s/core; dedup pass {len(pages) / stage:.0f} docs/s/core (CPU, with workers), "
        f"{wall:.2f} s wall"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--articles", type=int, default=600)
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--near-miss", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    import recaptures

    from curate.recipe import load_recipe

    pages = recaptures.generate(args.articles, args.copies, args.near_miss, args.seed)
    kb = sum(len(p.text) for p in pages) / len(pages) / 1000
    print(f"corpus: {len(pages)} pages, {kb:.1f} KB/page, seed {args.seed}")
    recipe = load_recipe()
    run(pages, replace(recipe, dedup=replace(recipe.dedup, **LEGACY)), "before (legacy defaults)")
    run(pages, recipe, "now (default recipe)")


if __name__ == "__main__":
    main()
