"""The lexical features of ``curate.score.lexical`` on the leave-one-out folds of issue 15, alone and stacked on
fastText, and on the real human web pages (docs/mgt.md, the ``mgt-lexical-v1`` section).

Prints one JSON object: for the features alone (``lexical``), the stack (``stack``, the recipe of ``mgt-lexical-v1``)
and the stack whose fastText halves follow ``mgt-fasttext-v2``'s balanced web recipe (``stack-web``), the fold table of
``curate.score.ood.fold_table`` (every fold a fresh fit without the held-out generator or domain) and, for a fit
on the whole training split, the real-web numbers at the default rule (reference quantile 0.95 of the web-human
``reference`` split; probability 0.5 after the web calibration of ``mgt-fasttext-v2``) and the AUROC of the
``eval`` pages against the validation machine texts. Deterministic (single-threaded fastText fits).

With ``--gate``: instead, write ``classifiers/mgt-lexical-v1/gate.json`` (the floors ``tests/test_mgt_lexical.py``
checks) from the registered card's validation metrics and from the shipped model on the in-repo subset's
validation rows (``tests/data/mgt/subset.jsonl.gz``, for clones without ../shared): floors are measured minus
0.01 (AUROC) or 0.03 (TPR), the ECE ceiling measured plus 0.02, rounded outward to 3 decimals.

With ``--rates``: instead, for mgt-lexical-v1, v1 and v2, the share of the validation machine and human texts at
P >= 0.5 and above the 0.95 quantile of the classifier's shipped reference (the two rules of the default recipe).

With ``--speed N``: instead, documents per CPU second (one core) on N documents of ~3 KB (those of
``benchmarks/mgt_speed.py``): normalising plus the features, and the stack's whole cost (normalise, two fastText
models of the v1 size, here ``mgt-fasttext-v1`` twice, and the features) and, once registered, ``mgt-lexical-v1``'s
``score_many`` (what ingest calls, the language given), median of 3 runs.

Usage: python benchmarks/mgt_lexical.py [--data ../shared/data/mgt/train.jsonl.gz]
[--web tests/data/mgt/web-human.jsonl.gz] [--jobs 2] [--only lexical|stack|stack-web] [--speed N] [--gate] [--rates]
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NAME = "mgt-lexical-v1"
MARGIN = {"auroc": 0.01, "tpr_at_1pct_fpr": 0.03, "tpr_at_5pct_fpr": 0.03, "ece": 0.02}
GATE_KEYS = ("auroc", "tpr_at_1pct_fpr", "tpr_at_5pct_fpr", "ece")


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

    out = {
        "docs": len(docs),
        "bytes_mean": round(sum(len(d.encode()) for d in docs) / len(docs)),
        "features_docs_per_cpu_s": round(cpu_rate(features_only, len(docs))),
        "stack_docs_per_cpu_s": round(cpu_rate(stack_path, len(docs))),
    }
    if (ROOT / "classifiers" / NAME / "card.json").is_file():
        registered = load_model(NAME)
        languages = ["en"] * len(docs)
        out[f"{NAME}_docs_per_cpu_s"] = round(cpu_rate(lambda: registered.score_many(docs, languages), len(docs)))
    return out


def _floors(measured: dict[str, Any]) -> dict[str, Any]:
    import math

    return {
        "measured": {k: measured[k] for k in GATE_KEYS},
        "floors": {k: math.floor((measured[k] - MARGIN[k]) * 1000) / 1000 for k in GATE_KEYS if k != "ece"},
        "ceilings": {"ece": math.ceil((measured["ece"] + MARGIN["ece"]) * 1000) / 1000},
    }


def gate() -> dict[str, Any]:
    """The eval gate of the registered lexical classifier (module docstring), as written to its gate.json."""
    from curate.score.labelled import read_labelled, rows_digest, split_rows
    from curate.score.model import evaluate, load_card
    from curate.score.registry import load_model

    card = load_card(NAME)
    subset_val = split_rows(read_labelled(ROOT / "tests" / "data" / "mgt" / "subset.jsonl.gz"))[1]
    return {
        "comment": f"Eval gate of {NAME} (tests/test_mgt_lexical.py; its primary gate is the out-of-distribution "
        "section of card.json, checked by tests/test_mgt_ood.py). Written by `python benchmarks/mgt_lexical.py "
        "--gate`: floors are measured minus 0.01 (AUROC) or 0.03 (TPR), the ECE ceiling measured plus 0.02, "
        "rounded outward to 3 decimals; 'subset' is the same on the in-repo subset's validation rows, for clones "
        "without ../shared.",
        "data": "../shared/data/mgt/train.jsonl.gz (grouped validation split)",
        "validation_digest": card["data"]["validation_digest"],
        **_floors(card["validation"]),
        "subset": {
            "data": "tests/data/mgt/subset.jsonl.gz (grouped validation split)",
            "n": len(subset_val),
            "slice_digest": rows_digest(subset_val),
            **_floors(evaluate(load_model(NAME), subset_val)),
        },
    }


def rates(data: Path) -> dict[str, Any]:
    """Shares of validation machine / human texts flagged at the default recipe's two rules (module docstring)."""
    import numpy as np

    from curate.score.labelled import prepare, read_labelled, split_rows
    from curate.score.reference import load_reference
    from curate.score.registry import load_model

    labels, docs, _ = prepare(split_rows(read_labelled(data))[1])
    y = np.asarray(labels, dtype=bool)
    out: dict[str, Any] = {}
    for name in (NAME, "mgt-fasttext-v1", "mgt-fasttext-v2"):
        model, ref = load_model(name), load_reference(name)
        p = np.asarray([model.calibrate(s) for s in model.raw_doc_scores(docs)])
        cut = float(np.quantile(ref.scores, 0.95)) if ref is not None else float("nan")
        out[name] = {
            "machine_at_0.5": round(float((p[y] >= 0.5).mean()), 4),
            "human_at_0.5": round(float((p[~y] >= 0.5).mean()), 4),
            "reference_cut": round(cut, 6),
            "machine_above_reference": round(float((p[y] > cut).mean()), 4),
            "human_above_reference": round(float((p[~y] > cut).mean()), 4),
        }
    return out


def main() -> None:
    from curate.score import lexical
    from curate.score.labelled import read_labelled, read_web_human
    from curate.score.ood import fold_table

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mgt" / "train.jsonl.gz")
    p.add_argument("--web", type=Path, default=ROOT / "tests" / "data" / "mgt" / "web-human.jsonl.gz")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--only", choices=("lexical", "stack", "stack-web"))
    p.add_argument("--speed", type=int, default=0)
    p.add_argument("--gate", action="store_true")
    p.add_argument("--rates", action="store_true")
    args = p.parse_args()
    if args.rates:
        print(json.dumps(rates(args.data)))
        return
    if args.gate:
        path = ROOT / "classifiers" / NAME / "gate.json"
        path.write_text(json.dumps(gate(), indent=2) + "\n", encoding="utf-8")
        print(path)
        return
    if args.speed:
        print(json.dumps(speed(args.data, args.speed)))
        return
    rows, web = read_labelled(args.data), read_web_human(args.web)
    out: dict[str, Any] = {}
    fits = {
        "lexical": lexical.fit_lexical,
        "stack": lexical.stack_fit,
        "stack-web": functools.partial(lexical.stack_fit, web=web),
    }
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
