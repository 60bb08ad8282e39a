"""How much model-generated text is in a corpus slice, estimated at the corpus level.

Page-level detectors transfer badly to web text (see the model card), so a slice's share is not the mean of
its scores. Following the distributional approach of Liang et al. 2024 (arXiv 2403.07183), the scores of a
slice are modelled as a mixture ``(1 - a) * H + a * M`` of a human score distribution ``H`` and a machine one
``M``, and ``a`` is found by maximum likelihood, with a seeded bootstrap interval.

``H`` is taken from the run's own **pre-cutoff** captures when there are enough of them: pages that existed
before the cutoff are human-written with near certainty, and they come from the same crawl and extractor, so
the web-text shift cancels out. Otherwise ``H`` is the classifier's shipped reference (its scores on real
human web pages, :mod:`curate.score.reference`), or, when it ships none, its validation human histogram (the
result states which). ``M`` is the classifier's validation machine histogram.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from curate.schema import Reason, Tier
from curate.store import registered

BINS = 20
MIN_REFERENCE = 50
BOOTSTRAP = 200


def histogram(scores: Sequence[float], bins: int = BINS) -> np.ndarray:
    """Normalised histogram of scores in [0, 1] with add-one smoothing (no empty bin has zero density)."""
    counts = np.histogram(np.clip(np.asarray(scores, dtype=float), 0, 1), bins=np.linspace(0, 1, bins + 1))[0] + 1.0
    normalised: np.ndarray = counts / counts.sum()
    return normalised


GRID = np.linspace(0, 1, 1001)  # the machine shares the likelihood is evaluated at


def _bins(scores: np.ndarray, n_bins: int) -> np.ndarray:
    idx = np.minimum((np.clip(scores, 0, 1) * n_bins).astype(int), n_bins - 1)
    return np.bincount(idx, minlength=n_bins).astype(float)


def _loglik_table(human: np.ndarray, machine: np.ndarray) -> np.ndarray:
    """log((1 - a) h_b + a m_b) for every grid share ``a`` (rows) and score bin ``b`` (columns)."""
    return np.asarray(np.log(np.outer(1 - GRID, human) + np.outer(GRID, machine)))


def _mle(counts: np.ndarray, table: np.ndarray) -> float:
    return float(GRID[int(np.argmax(table @ counts))])


def mixture_mle(scores: np.ndarray, human: np.ndarray, machine: np.ndarray) -> float:
    """The machine share ``a`` in [0, 1] maximising the likelihood of ``scores`` under (1 - a) H + a M. The
    likelihood depends on the scores only through their bin counts, so it costs O(bins) per share tried."""
    return _mle(_bins(np.asarray(scores, dtype=float), len(human)), _loglik_table(human, machine))


@dataclass(frozen=True)
class Estimate:
    """Estimated machine share of a slice with a 95% bootstrap interval."""

    n: int
    share: float
    low: float
    high: float


def estimate(scores: Sequence[float], human: np.ndarray, machine: np.ndarray, seed: int = 0) -> Estimate:
    """Mixture estimate with a seeded bootstrap 95% interval."""
    s = np.asarray(scores, dtype=float)
    table = _loglik_table(human, machine)
    share = _mle(_bins(s, len(human)), table)
    rng = np.random.default_rng(seed)
    boots = [_mle(_bins(rng.choice(s, size=len(s), replace=True), len(human)), table) for _ in range(BOOTSTRAP)]
    low, high = np.quantile(boots, [0.025, 0.975])
    return Estimate(len(s), round(share, 4), round(float(low), 4), round(float(high), 4))


def references(
    con: Any, card_hist: dict[str, Any] | None, language: str = "en", shipped: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, str]:
    """(human histogram, machine histogram, where the human one came from) for a store: its pre-cutoff captures
    when it has :data:`MIN_REFERENCE` of them, else ``shipped`` (the classifier's shipped reference scores) when
    given, else the classifier's validation human texts."""
    pre = [
        r[0]
        for r in con.execute(
            "SELECT mgt_score FROM documents WHERE tier = 'pre_cutoff' AND mgt_score IS NOT NULL AND language = ? ORDER BY doc_id",
            [language],
        ).fetchall()
    ]
    if card_hist is None:
        raise ValueError("the classifier card has no reference_histograms; retrain it")
    machine = np.asarray(card_hist["machine"], dtype=float) + 1.0
    machine /= machine.sum()
    if len(pre) >= MIN_REFERENCE:
        return histogram(pre, len(machine)), machine, f"{len(pre)} pre-cutoff captures of this run"
    if shipped is not None and len(shipped):
        return (
            histogram(shipped.tolist(), len(machine)),
            machine,
            f"the classifier's shipped reference, {len(shipped)} human web pages captured before the cutoff "
            f"(only {len(pre)} pre-cutoff captures here)",
        )
    human = np.asarray(card_hist["human"], dtype=float) + 1.0
    return (
        human / human.sum(),
        machine,
        f"the classifier's validation human texts (only {len(pre)} pre-cutoff captures here)",
    )


def contamination_table(
    con: Any,
    card_hist: dict[str, Any] | None,
    by: str,
    *,
    limit: int = 30,
    min_docs: int = 20,
    shipped: np.ndarray | None = None,
) -> tuple[list[dict[str, Any]], str]:
    """Estimated machine share of post-cutoff scored documents per ``by`` (crawl, month or domain), the ``limit``
    largest groups; a group with fewer than ``min_docs`` scored documents is listed with its count and no
    estimate (``share``, ``low``, ``high`` None) rather than left out."""
    group = {"crawl": "coalesce(crawl_id, 'no crawl id')", "month": "strftime(warc_date, '%Y-%m')", "domain": "domain"}[
        by
    ]
    human, machine, source = references(con, card_hist, shipped=shipped)
    rows = con.execute(
        f"""SELECT {group} AS g, list(mgt_score ORDER BY doc_id) FROM documents
            WHERE tier IN ('post_cutoff', 'attested') AND mgt_score IS NOT NULL GROUP BY g
            ORDER BY count(*) DESC, g LIMIT {limit}"""
    ).fetchall()
    out: list[dict[str, Any]] = []
    for g, scores in rows:
        if len(scores) < min_docs:
            out.append({"group": g, "n": len(scores), "share": None, "low": None, "high": None})
            continue
        e = estimate(scores, human, machine)
        out.append({"group": g, "n": e.n, "share": e.share, "low": e.low, "high": e.high})
    return out, source


def store_reference(con: Any, language: str = "en") -> np.ndarray:
    """The store's human reference: the sorted scores of its pre-cutoff captures in ``language``, less those
    ``curate decide`` dropped as extreme (``mgt_pre_cutoff_extreme``)."""
    rows = con.execute(
        f"""SELECT mgt_score FROM documents WHERE tier = '{Tier.PRE_CUTOFF}' AND mgt_score IS NOT NULL
              AND language = ? AND coalesce(reason, '') <> '{Reason.MGT_PRE_CUTOFF_EXTREME}'""",
        [language],
    ).fetchall()
    return np.sort(np.asarray([r[0] for r in rows], dtype=float))


def set_percentiles(con: Any, reference: np.ndarray) -> None:
    """Set ``documents.mgt_ref_pctl`` of every scored document: the share of ``reference`` (sorted scores)
    strictly below its score (a sorted-array search, O(n log m))."""
    rows = con.execute("SELECT doc_id, mgt_score FROM documents WHERE mgt_score IS NOT NULL").fetchall()
    if not rows or len(reference) == 0:
        return
    ids, scores = zip(*rows, strict=True)
    pctl = np.searchsorted(reference, np.asarray(scores, dtype=float), side="left") / len(reference)
    with registered(con, "pctl", {"doc_id": list(ids), "p": pctl.tolist()}):
        con.execute("UPDATE documents SET mgt_ref_pctl = pctl.p FROM pctl WHERE documents.doc_id = pctl.doc_id")
