"""The lexical features of ``curate.score.lexical`` on the leave-one-out folds of issue 15, alone and stacked on
fastText, and on the real human web pages (docs/mgt.md, "Tried").

Prints one JSON object: for the features alone (``lexical``) and the stack (``stack``), the fold table of
``curate.score.ood.fold_table`` (every fold a fresh fit without the held-out generator or domain) and, for a fit
on the whole training split, the real-web numbers at the default rule (reference quantile 0.95 of the web-human
``reference`` split; probability 0.5 after the web calibration of ``mgt-fasttext-v2``) and the AUROC of the
``eval`` pages against the validation machine texts. Deterministic (single-threaded fastText fits).

With ``--speed N``: instead, documents per CPU second (one core) on N documents of ~3 KB (those of
``benchmarks/mgt_speed.py``): normalising plus the features, and the stack's whole cost (normalise, two fastText
models of the v1 size, here ``mgt-fasttext-v1`` twice, and the features), median of 3 runs.

Usage: python benchmarks/mgt_lexical.py [--data ../shared/data/mgt/train.jsonl.gz]
[--web tests/data/mgt/web-human.jsonl.gz] [--jobs 2] [--only lexical|stack] [--speed N]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def web_numbers(fit: Any, rows: list[dict[str, Any]], web: list[dict[str, Any]]) -> dict[str, Any]:
    """Real-web false-positive rates and AUROC of ``fit`` trained on the whole training split."""
    from curate.score.labelled import calibration_rows, prepare, split_rows, web_split
    from curate.score.metrics import platt
    from curate.score.model import fit_web_calibration
    from curate.score.ood import web_fpr, web_vs_machine

    train, val = split_rows(rows)
    score = fit(train)
    labels, docs, kept = prepare(val)
    raw = score(docs)
    ev = score(prepare(web_split(web, "eval"))[1])
    ref = score(prepare(web_split(web, "reference"))[1])
    cal = calibration_rows([val[i] for i in kept])
    a, b = fit_web_calibration(
        [s for s, m in zip(raw, cal, strict=True) if m], [y for y, m in zip(labels, cal, strict=True) if m], ref
    )
    return {
        **web_fpr([platt(s, a, b) for s in ev], [platt(s, a, b) for s in ref], 0.5, 0.95),
        "vs_validation_machine": web_vs_machine(ev, [s for s, y in zip(raw, labels, strict=True) if y]),
    }


def speed(data: Path, n: int) -> dict[str, Any]:
    """Documents per CPU second of the features alone and of the stack's scoring path (module docstring)."""
    from mgt_speed import cpu_rate, make_docs

    from curate.score import lexical
    from curate.score.registry import load_model
    from curate.score.text import normalise

    docs = make_docs(n, data)
    lexical.word_table()
    v1 = load_model("mgt-fasttext-v1")

    def features_only() -> None:
        lexical.feature_matrix([normalise(d) for d in docs])

    def stack_path() -> None:
        words = [normalise(d) for d in docs]
        for _ in range(2):
            v1.raw_doc_scores(words)
        lexical.feature_matrix(words)

    return {
        "docs": len(docs),
        "bytes_mean": round(sum(len(d.encode()) for d in docs) / len(docs)),
        "features_docs_per_cpu_s": round(cpu_rate(features_only, len(docs))),
        "stack_docs_per_cpu_s": round(cpu_rate(stack_path, len(docs))),
    }


def main() -> None:
    from curate.score import lexical
    from curate.score.labelled import read_labelled, read_web_human
    from curate.score.ood import fold_table

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mgt" / "train.jsonl.gz")
    p.add_argument("--web", type=Path, default=ROOT / "tests" / "data" / "mgt" / "web-human.jsonl.gz")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--only", choices=("lexical", "stack"))
    p.add_argument("--speed", type=int, default=0)
    args = p.parse_args()
    if args.speed:
        print(json.dumps(speed(args.data, args.speed)))
        return
    rows, web = read_labelled(args.data), read_web_human(args.web)
    out: dict[str, Any] = {}
    fits = {"lexical": lexical.fit_lexical, "stack": lexical.stack_fit}
    for name, fit in fits.items():
        if args.only not in (None, name):
            continue
        start = time.perf_counter()
        table = fold_table(rows, web, fit, jobs=args.jobs)
        out[name] = {
            "macro": table["macro"],
            "worst": table["worst"],
            "folds": {
                f"{k}:{n}": [c["auroc"], c["tpr_at_1pct_fpr"]]
                for k, cs in table["folds"].items()
                for n, c in cs.items()
            },
            "web": web_numbers(fit, rows, web),
            "seconds": round(time.perf_counter() - start),
        }
        print(json.dumps({name: out[name]}), flush=True)


if __name__ == "__main__":
    main()
