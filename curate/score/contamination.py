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
    return estimate_counts(_bins(np.asarray(scores, dtype=float), len(human)), human, machine, seed)


def estimate_counts(counts: np.ndarray, human: np.ndarray, machine: np.ndarray, seed: int = 0) -> Estimate:
    """:func:`estimate` from a slice's score counts per bin (``len(human)`` bins of [0, 1]), which is all the
    likelihood depends on. The bootstrap resamples the slice's scores with replacement, which for bin counts is
    a multinomial draw with the slice's bin shares: O(bins) per replicate, whatever the slice's size."""
    c = np.asarray(counts, dtype=float)
    n = int(c.sum())
    table = _loglik_table(human, machine)
    share = _mle(c, table)
    boots_counts = np.random.default_rng(seed).multinomial(n, c / n, size=BOOTSTRAP).astype(float)
    boots = GRID[np.argmax(table @ boots_counts.T, axis=0)]
    low, high = np.quantile(boots, [0.025, 0.975])
    return Estimate(n, round(share, 4), round(float(low), 4), round(float(high), 4))


def bin_sql(bins: int, column: str = "mgt_score") -> str:
    """SQL for the histogram bin (0 to ``bins`` - 1) of ``column``, a score in [0, 1] (clipped), as ``_bins``
    assigns it."""
    return f"least(CAST(floor(least(greatest({column}, 0), 1) * {int(bins)}) AS INTEGER), {int(bins) - 1})"


def _counts(rows: Sequence[tuple[Any, ...]], bins: int) -> np.ndarray:
    out = np.zeros(bins, dtype=float)
    for b, n in rows:
        out[int(b)] = n
    return out


def references(
    con: Any, card_hist: dict[str, Any] | None, language: str = "en", shipped: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, str]:
    """(human histogram, machine histogram, where the human one came from) for a store: its pre-cutoff captures
    when it has :data:`MIN_REFERENCE` of them, else ``shipped`` (the classifier's shipped reference scores) when
    given, else the classifier's validation human texts."""
    if card_hist is None:
        raise ValueError("the classifier card has no reference_histograms; retrain it")
    machine = np.asarray(card_hist["machine"], dtype=float) + 1.0
    machine /= machine.sum()
    pre_counts = _counts(
        con.execute(
            f"""SELECT {bin_sql(len(machine))} AS b, count(*) FROM documents
                WHERE tier = 'pre_cutoff' AND mgt_score IS NOT NULL AND language = ? GROUP BY b""",
            [language],
        ).fetchall(),
        len(machine),
    )
    n_pre = int(pre_counts.sum())
    if n_pre >= MIN_REFERENCE:
        smoothed = pre_counts + 1.0
        return smoothed / smoothed.sum(), machine, f"{n_pre} pre-cutoff captures of this run"
    if shipped is not None and len(shipped):
        return (
            histogram(shipped.tolist(), len(machine)),
            machine,
            f"the classifier's shipped reference, {len(shipped)} human web pages captured before the cutoff "
            f"(only {n_pre} pre-cutoff captures here)",
        )
    human = np.asarray(card_hist["human"], dtype=float) + 1.0
    return (
        human / human.sum(),
        machine,
        f"the classifier's validation human texts (only {n_pre} pre-cutoff captures here)",
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
    rows = con.execute(  # bin counts per group, computed in the store: Python never holds a group's scores
        f"""WITH s AS (SELECT {group} AS g, {bin_sql(len(human))} AS b FROM documents
                       WHERE tier IN ('post_cutoff', 'attested') AND mgt_score IS NOT NULL),
                 top AS (SELECT g, count(*) AS n FROM s GROUP BY g ORDER BY n DESC, g LIMIT {int(limit)})
            SELECT top.g, top.n, list(struct_pack(b := c.b, n := c.n) ORDER BY c.b)
            FROM top JOIN (SELECT g, b, count(*) AS n FROM s GROUP BY g, b) c ON c.g IS NOT DISTINCT FROM top.g
            GROUP BY top.g, top.n ORDER BY top.n DESC, top.g"""
    ).fetchall()
    out: list[dict[str, Any]] = []
    for g, n, bins in rows:
        if n < min_docs:
            out.append({"group": g, "n": int(n), "share": None, "low": None, "high": None})
            continue
        e = estimate_counts(_counts([(x["b"], x["n"]) for x in bins], len(human)), human, machine)
        out.append({"group": g, "n": e.n, "share": e.share, "low": e.low, "high": e.high})
    return out, source


def store_reference_sql(language: str = "en") -> str:
    """SQL for the store's human reference, one ``score`` per row: the scores of its pre-cutoff captures in
    ``language``, less those ``curate decide`` dropped as extreme (``mgt_pre_cutoff_extreme``). Kept in the
    store, never loaded into Python: a crawl's reference is as large as its pre-cutoff captures."""
    lang = language.replace("'", "''")
    return f"""SELECT mgt_score AS score FROM documents WHERE tier = '{Tier.PRE_CUTOFF}' AND mgt_score IS NOT NULL
              AND language = '{lang}' AND coalesce(reason, '') <> '{Reason.MGT_PRE_CUTOFF_EXTREME}'"""


def store_reference_size(con: Any, language: str = "en") -> int:
    """How many scores the store's own reference (:func:`store_reference_sql`) holds."""
    return int(con.execute(f"SELECT count(*) FROM ({store_reference_sql(language)})").fetchall()[0][0])


def set_percentiles(con: Any, reference: np.ndarray | None = None, *, language: str = "en") -> int:
    """Set ``documents.mgt_ref_pctl`` of every scored document: the share of the reference's scores strictly
    below its score. ``reference``: sorted scores (a shipped reference); None: the store's own reference, which
    stays in the store (:func:`store_reference_sql`). One DuckDB statement either way: the reference becomes a
    cumulative count per distinct score and each document finds the largest score below its own with an ASOF
    join, so memory is DuckDB's, not one Python float per document. Returns the reference's size (no update
    when it is 0)."""
    if reference is None:
        return _percentiles_from(con, store_reference_sql(language))
    with registered(con, "shipped_reference", {"score": np.asarray(reference, dtype=float).tolist()}):
        return _percentiles_from(con, "SELECT score FROM shipped_reference")


def _percentiles_from(con: Any, reference_sql: str) -> int:
    n = int(con.execute(f"SELECT count(*) FROM ({reference_sql})").fetchall()[0][0])
    if n == 0:
        return 0
    con.execute(
        f"""UPDATE documents SET mgt_ref_pctl = p.pctl FROM (
              WITH cdf AS (
                SELECT score, sum(n) OVER (ORDER BY score ROWS UNBOUNDED PRECEDING) AS below_or_at
                FROM (SELECT score, count(*) AS n FROM ({reference_sql}) GROUP BY score)
              )
              SELECT d.doc_id, coalesce(c.below_or_at, 0)::DOUBLE / {n} AS pctl
              FROM (SELECT doc_id, mgt_score FROM documents WHERE mgt_score IS NOT NULL) d
              ASOF LEFT JOIN cdf c ON d.mgt_score > c.score
            ) p WHERE documents.doc_id = p.doc_id"""
    )
    return n
