"""Site-level MGT evidence: a site's post-cutoff pages judged against the same site's pre-cutoff pages.

Page-level detectors transfer badly to web pages, and web measurement studies aggregate per site (DeGenTWeb,
2025). A site that started publishing model-generated text after the cutoff shows it as a shift of its score
distribution against its own earlier pages, which share its topic, template and extractor quirks, so the
shift is measured within the site: the Mann-Whitney statistic of its post-cutoff scores against its pre-cutoff
(and attested) scores, as P(post > pre) with a one-sided p-value, with the number of pages on each side.
The post-cutoff pages are also compared with each other: the median and interquartile range of their
reference percentiles (a narrow band high in the reference is many pages alike).

The rows land in ``site_scores`` (one per site with scored post-cutoff pages, recomputed by every
``curate decide``), as evidence beside the page scores; the decision rule reads them only when the recipe's
``score.site_rule`` says so.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from curate.schema import SITE_COLUMNS, SiteEvidence, Status, Tier, arrow_schema
from curate.store import registered


def shift(pre: np.ndarray, post: np.ndarray) -> tuple[float | None, float | None]:
    """(P(a post score > a pre score), ties half; one-sided Mann-Whitney p-value that post is higher).

    The AUC is None without pre scores; the p-value (normal approximation with tie correction, exact for the
    small sides by scipy) is None when a side has fewer than 2 scores.
    """
    if len(pre) == 0 or len(post) == 0:
        return None, None
    from scipy.stats import mannwhitneyu

    res = mannwhitneyu(post, pre, alternative="greater")
    auc = float(res.statistic) / (len(pre) * len(post))
    if len(pre) < 2 or len(post) < 2:
        return round(auc, 6), None
    return round(auc, 6), round(float(res.pvalue), 8)


def shift_from_ranks(n_pre: int, n_post: int, u: float, tie_term: float) -> tuple[float | None, float | None]:
    """:func:`shift` from the rank statistics alone, as the store computes them per site: ``u`` the
    Mann-Whitney U of the post side (its rank sum less n_post (n_post + 1) / 2, ties given average ranks),
    ``tie_term`` the sum over groups of tied scores of t^3 - t. Gives what scipy's ``mannwhitneyu(post, pre,
    alternative="greater")`` gives on the scores themselves: its normal approximation (tie-corrected,
    continuity-corrected) when both sides have more than 8 scores or there are ties, else its exact
    distribution, which depends only on U and the two sizes, so it is asked of two tie-free samples built to
    have that U."""
    if n_pre == 0 or n_post == 0:
        return None, None
    auc = round(u / (n_pre * n_post), 6)
    if n_pre < 2 or n_post < 2:
        return auc, None
    if (n_pre > 8 and n_post > 8) or tie_term > 0:
        from scipy.stats import norm

        n = n_pre + n_post
        sd = math.sqrt(n_pre * n_post / 12 * ((n + 1) - tie_term / (n * (n - 1))))
        z = (u - n_pre * n_post / 2 - 0.5) / sd if sd > 0 else math.inf
        return auc, round(float(norm.sf(z)), 8)
    k = round(u)  # no ties: U is the number of (post, pre) pairs with post above
    pre = np.arange(n_pre, dtype=float)
    above = [k // n_post + (1 if i < k % n_post else 0) for i in range(n_post)]  # pre scores below each post
    post = np.asarray([a - 0.5 + (i + 1) / (2 * (n_post + 1)) for i, a in enumerate(above)], dtype=float)
    return auc, shift(pre, post)[1]


def site_rows(con: Any, decision_id: int, *, min_pages: int, alpha: float, cut: float | None) -> list[dict[str, Any]]:
    """One row of :data:`curate.schema.SITE_COLUMNS` per site with scored post-cutoff pages, in domain order.

    ``cut``: the page rule's reference percentile (pages at or above it are flagged), None under the
    probability rule (then ``post_pctl_*`` are NULL and ``post_flagged`` counts nothing). The ranks, medians,
    quantiles and counts are one DuckDB query over the store (memory is DuckDB's, not the scores'); Python
    sees one row per site.
    """
    flagged = f"count(*) FILTER (post AND p >= {float(cut)!r})" if cut is not None else "0"
    rows = con.execute(
        f"""WITH s AS (
              SELECT domain, tier = '{Tier.POST_CUTOFF}' AS post, mgt_score AS x, mgt_ref_pctl AS p FROM documents
              WHERE mgt_score IS NOT NULL AND domain IS NOT NULL AND tier IS NOT NULL
                AND coalesce(status, '') <> '{Status.QUARANTINED}'
            ),
            r AS (
              SELECT *, rank() OVER (PARTITION BY domain ORDER BY x) AS low_rank,
                     count(*) OVER (PARTITION BY domain, x) AS tied
              FROM s WHERE domain IN (SELECT domain FROM s WHERE post)
            )
            SELECT domain, count(*) FILTER (NOT post) AS n_pre, count(*) FILTER (post) AS n_post,
                   sum(low_rank + (tied - 1) / 2) FILTER (post) AS rank_sum,
                   sum(tied * tied - 1)::DOUBLE AS tie_term,
                   median(x) FILTER (NOT post) AS pre_median, median(x) FILTER (post) AS post_median,
                   median(p) FILTER (post) AS pctl_median,
                   quantile_cont(p, 0.75) FILTER (post) - quantile_cont(p, 0.25) FILTER (post) AS pctl_iqr,
                   {flagged} AS flagged
            FROM r GROUP BY domain ORDER BY domain"""
    ).fetchall()
    out = []
    for domain, n_pre, n_post, rank_sum, tie_term, pre_med, post_med, pctl_med, pctl_iqr, n_flagged in rows:
        u = float(rank_sum) - n_post * (n_post + 1) / 2
        auc, pvalue = shift_from_ranks(int(n_pre), int(n_post), u, float(tie_term))
        if n_pre < min_pages or n_post < min_pages or pvalue is None:
            evidence = SiteEvidence.TOO_FEW
        else:
            evidence = SiteEvidence.SHIFTED if pvalue < alpha else SiteEvidence.NO_SHIFT
        with_pctl = cut is not None and pctl_med is not None
        out.append(
            {
                "decision_id": decision_id,
                "domain": domain,
                "n_pre": int(n_pre),
                "n_post": int(n_post),
                "pre_median": round(float(pre_med), 6) if pre_med is not None else None,
                "post_median": round(float(post_med), 6),
                "shift_auc": auc,
                "shift_p": pvalue,
                "post_pctl_median": round(float(pctl_med), 6) if with_pctl else None,
                "post_pctl_iqr": round(float(pctl_iqr), 6) if with_pctl else None,
                "post_flagged": int(n_flagged),
                "evidence": evidence.value,
            }
        )
    return out


def write_site_scores(con: Any, rows: list[dict[str, Any]]) -> None:
    """Replace ``site_scores`` with ``rows`` (inside the caller's transaction)."""
    con.execute("DELETE FROM site_scores")
    if not rows:
        return
    import pyarrow as pa

    table = pa.Table.from_pylist(rows, schema=arrow_schema(SITE_COLUMNS))
    names = ", ".join(c.name for c in SITE_COLUMNS)
    with registered(con, "site_rows", table):
        con.execute(f"INSERT INTO site_scores ({names}) SELECT {names} FROM site_rows ORDER BY domain")
