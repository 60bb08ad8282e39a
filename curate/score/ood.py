"""The out-of-distribution gate of an MGT classifier: how it does on generators, domains and web pages it was not
trained on.

Three measurements, all in a card's ``ood`` section:

- **leave-one-generator-out** folds: refit without one generator's machine texts, test on that generator's
  validation texts against all validation humans (AUROC, TPR at 1% FPR);
- **leave-one-domain-out** folds: refit without one domain, test on its validation texts; a domain with machine
  texts only (``essay``) is tested against the real human web pages of the ``eval`` split instead, so it is
  measured rather than skipped (``negatives`` says which);
- **real web pages**: of the ``eval`` split of real pre-cutoff human web pages (sites never trained or
  calibrated on), the share the shipped model flags at the probability rule (score >= threshold) and at the
  reference rule (score above the ``reference_quantile`` of the ``reference`` split's scores), and the AUROC /
  TPR at 1% FPR of those pages against the validation machine texts.

Folds are grouped (the split of :func:`curate.score.labelled.split_rows` holds on both sides) and each is a
fresh fit through the caller's ``fit`` (so a training recipe is measured as a whole, balancing included).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from curate.score.labelled import (
    in_domain_test,
    in_generator_test,
    prepare,
    rows_digest,
    split_rows,
    web_split,
)
from curate.score.metrics import auroc_block

Scorer = Callable[[Sequence[Sequence[str]]], list[float]]  # raw scores of normalised documents
FoldFit = Callable[[list[dict[str, Any]]], Scorer]  # fit on the labelled training rows a fold keeps

TARGETS = {"auroc_macro": 0.95, "auroc_worst": 0.90, "tpr_at_1pct_fpr_macro": 0.50, "web_fpr": 0.05}


def _summary(cells: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(macro means, worst fold) of AUROC and TPR at 1% FPR over ``cells`` (a fold without a value is skipped)."""
    with_auroc = [(k, c) for k, c in cells.items() if c.get("auroc") is not None]
    with_tpr = [(k, c) for k, c in with_auroc if c.get("tpr_at_1pct_fpr") is not None]
    worst_auroc = min(with_auroc, key=lambda kc: kc[1]["auroc"])
    worst_tpr = min(with_tpr, key=lambda kc: kc[1]["tpr_at_1pct_fpr"])
    macro = {
        "auroc": round(float(np.mean([c["auroc"] for _, c in with_auroc])), 4),
        "tpr_at_1pct_fpr": round(float(np.mean([c["tpr_at_1pct_fpr"] for _, c in with_tpr])), 4),
        "folds": len(with_auroc),
        "folds_with_tpr": len(with_tpr),
    }
    worst = {
        "auroc": worst_auroc[1]["auroc"],
        "auroc_fold": worst_auroc[0],
        "tpr_at_1pct_fpr": worst_tpr[1]["tpr_at_1pct_fpr"],
        "tpr_fold": worst_tpr[0],
    }
    return macro, worst


def summarise(folds: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``{"folds", "macro", "worst"}`` of a fold table (``{"generator": {...}, "domain": {...}}``)."""
    flat = {f"{kind}:{k}": c for kind, cells in folds.items() for k, c in cells.items()}
    macro, worst = _summary(flat)
    return {"folds": folds, "macro": macro, "worst": worst}


def fold_table(
    rows: list[dict[str, Any]],
    web: list[dict[str, Any]],
    fit: FoldFit,
    *,
    jobs: int = 1,
    kinds: Sequence[str] = ("generator", "domain"),
) -> dict[str, Any]:
    """Leave-one-generator-out and leave-one-domain-out folds of labelled ``rows`` (see the module docstring),
    with macro and worst-fold AUROC and TPR at 1% FPR; ``web`` gives the negatives of one-class domains.

    ``jobs``: folds fitted at a time (threads; a fit that runs in its own process, as fastText's does, then
    runs in parallel); the result does not depend on it. ``kinds``: which fold families to run.
    """
    from concurrent.futures import ThreadPoolExecutor

    train, val = split_rows(rows)
    labels, docs, kept = prepare(val)
    scored = [val[i] for i in kept]
    _, web_docs, _ = prepare(web_split(web, "eval"))

    def generator_fold(g: str) -> dict[str, Any]:
        score = fit([r for r in train if not (r["label"] == "machine" and str(r.get("generator")) == g)])
        raw = score(docs)
        test = [i for i, r in enumerate(scored) if in_generator_test(r, g)]
        return auroc_block([labels[i] for i in test], [raw[i] for i in test], tpr=True)

    def domain_fold(d: str) -> dict[str, Any]:
        score = fit([r for r in train if not in_domain_test(r, d)])
        test = [i for i, r in enumerate(scored) if in_domain_test(r, d)]
        y = [labels[i] for i in test]
        raw = score([docs[i] for i in test])
        if all(y) and web_docs:  # no human text of this domain: real human web pages are the negatives
            cell = auroc_block([False] * len(web_docs) + y, score(web_docs) + raw, tpr=True)
            cell["negatives"] = "web-human eval split"
            return cell
        return auroc_block(y, raw, tpr=True)

    tasks: list[tuple[str, str, Callable[[str], dict[str, Any]]]] = []
    if "generator" in kinds:
        gens = sorted({str(r.get("generator")) for r in rows if r["label"] == "machine"})
        tasks += [("generator", g, generator_fold) for g in gens]
    if "domain" in kinds:
        tasks += [("domain", d, domain_fold) for d in sorted({str(r.get("domain")) for r in rows})]
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        cells = list(pool.map(lambda t: t[2](t[1]), tasks))
    folds: dict[str, dict[str, Any]] = {k: {} for k in kinds}
    for (kind, name, _), cell in zip(tasks, cells, strict=True):
        folds[kind][name] = cell
    return summarise(folds)


def web_fpr(
    eval_scores: Sequence[float], reference_scores: Sequence[float], threshold: float, reference_quantile: float
) -> dict[str, Any]:
    """False-positive rates on real human web pages (``eval_scores``, calibrated) at the probability rule
    (score >= ``threshold``) and the reference rule (score above the ``reference_quantile`` of
    ``reference_scores``, the pre-cutoff web text a store or a shipped reference holds)."""
    ev = np.asarray(eval_scores, dtype=np.float64)
    ref_cut = float(np.quantile(np.asarray(reference_scores, dtype=np.float64), reference_quantile))
    return {
        "n": len(ev),
        "threshold": threshold,
        "fpr_at_threshold": round(float((ev >= threshold).mean()), 4),
        "share_above_0.9": round(float((ev >= 0.9).mean()), 4),
        "reference_quantile": reference_quantile,
        "reference_n": len(reference_scores),
        "reference_threshold": round(ref_cut, 6),
        "fpr_at_reference": round(float((ev > ref_cut).mean()), 4),
        "median": round(float(np.median(ev)), 4),
    }


def web_vs_machine(web_raw: Sequence[float], machine_raw: Sequence[float]) -> dict[str, Any]:
    """AUROC and TPR at 1% FPR of real human web pages (negatives) against machine texts (positives)."""
    return auroc_block([False] * len(web_raw) + [True] * len(machine_raw), [*web_raw, *machine_raw], tpr=True)


def data_digests(rows: list[dict[str, Any]], web: list[dict[str, Any]]) -> dict[str, str]:
    """SHA-256 digests pinning the data the gate was measured on (validation split, web splits)."""
    return {
        "validation": rows_digest(split_rows(rows)[1]),
        "web_eval": rows_digest(web_split(web, "eval")),
        "web_reference": rows_digest(web_split(web, "reference")),
        "web_train": rows_digest(web_split(web, "train")),
    }


def verdicts(gate: dict[str, Any]) -> dict[str, bool]:
    """Which of :data:`TARGETS` the ``ood`` section ``gate`` meets."""
    web = gate.get("web", {})
    fpr = web.get("fpr_at_threshold", math.inf)
    return {
        "auroc_macro": gate["macro"]["auroc"] >= TARGETS["auroc_macro"],
        "auroc_worst": gate["worst"]["auroc"] >= TARGETS["auroc_worst"],
        "tpr_at_1pct_fpr_macro": gate["macro"]["tpr_at_1pct_fpr"] >= TARGETS["tpr_at_1pct_fpr_macro"],
        "web_fpr": max(fpr, web.get("fpr_at_reference", math.inf)) <= TARGETS["web_fpr"],
    }
