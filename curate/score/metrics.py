"""Detection metrics (AUROC, TPR at a fixed FPR, calibration error), Platt calibration, and the per-group
and leave-one-out tables every classifier card carries.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from curate.score.labelled import (
    Keep,
    _without_domain,
    _without_generator,
    in_domain_test,
    in_generator_test,
    prepare,
    split_rows,
)
from curate.score.text import MIN_WORDS, WINDOW, window_count


def auroc(labels: Sequence[bool], scores: Sequence[float]) -> float:
    """Area under the ROC curve (ties get the average rank)."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=float)
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def tpr_at_fpr(labels: Sequence[bool], scores: Sequence[float], fpr: float) -> float:
    """True-positive rate at the threshold that lets through ``fpr`` of the negatives."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=float)
    threshold = np.quantile(s[~y], 1 - fpr)
    return float((s[y] > threshold).mean())


def calibration_error(labels: Sequence[bool], probs: Sequence[float], bins: int = 10) -> float:
    """Expected calibration error over equal-width probability bins."""
    y = np.asarray(labels, dtype=float)
    p = np.asarray(probs, dtype=float)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    err = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            err += m.mean() * abs(p[m].mean() - y[m].mean())
    return float(err)


def clipped_logit(p: Sequence[float] | np.ndarray) -> np.ndarray:
    """log(p / (1 - p)) with ``p`` clipped to [1e-6, 1 - 1e-6], as float64."""
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.asarray(np.log(q / (1 - q)), dtype=np.float64)


def fit_platt(
    raw: Sequence[float], labels: Sequence[bool], weights: Sequence[float] | None = None
) -> tuple[float, float]:
    """Fit P(machine) = sigmoid(a * logit(raw) + b) by minimising the (``weights``-weighted) mean log-loss
    (L-BFGS, tiny L2); the weights set the class prior the probability assumes."""
    from scipy.optimize import minimize
    from scipy.special import expit, log_expit

    x = clipped_logit(raw)
    y = np.asarray(labels, dtype=float)
    wt = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    wt = wt / wt.mean()

    def loss(w: np.ndarray) -> float:
        z = w[0] * x + w[1]
        return float(-(wt * (y * log_expit(z) + (1 - y) * log_expit(-z))).mean() + 1e-4 * w[0] ** 2)

    def grad(w: np.ndarray) -> np.ndarray:
        z = w[0] * x + w[1]
        d = wt * (expit(z) - y)
        return np.array([(d * x).mean() + 2e-4 * w[0], d.mean()])

    res = minimize(loss, np.array([1.0, 0.0]), jac=grad, method="L-BFGS-B")
    return float(res.x[0]), float(res.x[1])


def doc_means(values: np.ndarray, owner: np.ndarray, n_docs: int) -> np.ndarray:
    """Mean of ``values`` per owning document (every document owns at least one value)."""
    sums = np.bincount(owner, weights=values, minlength=n_docs)
    counts = np.bincount(owner, minlength=n_docs)
    return np.asarray(sums / np.maximum(counts, 1), dtype=np.float64)


def platt(raw: float, a: float, b: float) -> float:
    """sigmoid(a * logit(raw) + b), with ``raw`` clipped away from 0 and 1."""
    x = min(max(raw, 1e-6), 1 - 1e-6)
    z = a * math.log(x / (1 - x)) + b
    return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))


def auroc_block(labels: Sequence[bool], scores: Sequence[float], *, tpr: bool = False) -> dict[str, Any]:
    """One table cell (per group, leave-one-out): n, AUROC (None with one class only), optionally TPR at 1% FPR."""
    a = auroc(labels, scores)
    out: dict[str, Any] = {"n": len(labels), "auroc": None if math.isnan(a) else round(a, 4)}
    if tpr:
        out["tpr_at_1pct_fpr"] = None if math.isnan(a) else round(tpr_at_fpr(labels, scores, 0.01), 4)
    return out


def leave_one_out_table(
    rows: list[dict[str, Any]], score_fold: Callable[[Keep], Sequence[float]]
) -> dict[str, dict[str, Any]]:
    """The leave-one-generator-out and leave-one-domain-out table every kind's card carries.

    Folds: for each generator, fit without its machine texts and test on them against the validation humans
    (AUROC and TPR at 1% FPR); for each domain, fit without it and test on its validation texts (AUROC; NULL
    with one class only). ``score_fold(keep)`` fits on the rows ``keep`` accepts (training rows; an ensemble
    also fits its stacking on accepted validation rows) and returns raw scores of every scorable validation row
    in :func:`prepare` order. The grouped split holds on both sides.
    """
    _, val_rows = split_rows(rows)
    labels, _, kept = prepare(val_rows)
    scored = [val_rows[i] for i in kept]
    out: dict[str, dict[str, Any]] = {"generator": {}, "domain": {}}

    def cell(keep: Keep, test: list[int], *, tpr: bool) -> dict[str, Any]:
        raw = score_fold(keep)
        return auroc_block([labels[i] for i in test], [raw[i] for i in test], tpr=tpr)

    for g in sorted({str(r.get("generator")) for r in rows if r["label"] == "machine"}):
        test = [i for i, r in enumerate(scored) if in_generator_test(r, g)]
        out["generator"][g] = cell(_without_generator(g), test, tpr=True)
    for d in sorted({str(r.get("domain")) for r in rows}):
        test = [i for i, r in enumerate(scored) if in_domain_test(r, d)]
        out["domain"][d] = cell(_without_domain(d), test, tpr=False)
    return out


def metrics(
    labels: Sequence[bool], probs: Sequence[float], rows: Sequence[dict[str, Any]], docs: Sequence[Sequence[str]]
) -> dict[str, Any]:
    """AUROC, TPR at 1% and 5% FPR, calibration error, overall and per generator, domain and length.

    ``rows`` are the scored rows and ``docs`` their normalised words, aligned with ``labels`` and ``probs``.
    """

    def block(mask: list[bool]) -> dict[str, Any]:
        y = [lab for lab, m in zip(labels, mask, strict=True) if m]
        return auroc_block(y, [p for p, m in zip(probs, mask, strict=True) if m])

    out: dict[str, Any] = {
        "n": len(labels),
        "auroc": round(auroc(labels, probs), 4),
        "tpr_at_1pct_fpr": round(tpr_at_fpr(labels, probs, 0.01), 4),
        "tpr_at_5pct_fpr": round(tpr_at_fpr(labels, probs, 0.05), 4),
        "ece": round(calibration_error(labels, probs), 4),
    }
    gens = sorted({str(r.get("generator")) for r in rows if r["label"] == "machine"})
    out["per_generator"] = {g: block([in_generator_test(r, g) for r in rows]) for g in gens}
    domains = sorted({str(r.get("domain")) for r in rows})
    out["per_domain"] = {d: block([in_domain_test(r, d) for r in rows]) for d in domains}
    one = [window_count(len(words)) == 1 for words in docs]
    long_words = WINDOW + WINDOW // 2  # the most words a single window holds
    out["per_length"] = {
        f"1 window ({MIN_WORDS}-{long_words} words)": block(one),
        f"2+ windows (over {long_words} words)": block([not m for m in one]),
    }
    return out
