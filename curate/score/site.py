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

from collections import defaultdict
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


def site_rows(con: Any, decision_id: int, *, min_pages: int, alpha: float, cut: float | None) -> list[dict[str, Any]]:
    """One row of :data:`curate.schema.SITE_COLUMNS` per site with scored post-cutoff pages, in domain order.

    ``cut``: the page rule's reference percentile (pages at or above it are flagged), None under the
    probability rule (then ``post_pctl_*`` are NULL and ``post_flagged`` counts nothing).
    """
    pre: dict[str, list[float]] = defaultdict(list)
    post: dict[str, list[tuple[float, float | None]]] = defaultdict(list)
    for domain, tier, score, pctl in con.execute(
        f"""SELECT domain, tier, mgt_score, mgt_ref_pctl FROM documents
            WHERE mgt_score IS NOT NULL AND domain IS NOT NULL AND tier IS NOT NULL
              AND coalesce(status, '') <> '{Status.QUARANTINED}' ORDER BY domain, doc_id"""
    ).fetchall():
        if tier == Tier.POST_CUTOFF:
            post[domain].append((float(score), None if pctl is None else float(pctl)))
        else:
            pre[domain].append(float(score))
    rows = []
    for domain in sorted(post):
        p = np.asarray([s for s, _ in post[domain]], dtype=float)
        q = np.asarray(pre.get(domain, []), dtype=float)
        auc, pvalue = shift(q, p)
        pctl = np.asarray([x for _, x in post[domain] if x is not None], dtype=float)
        if len(q) < min_pages or len(p) < min_pages or pvalue is None:
            evidence = SiteEvidence.TOO_FEW
        else:
            evidence = SiteEvidence.SHIFTED if pvalue < alpha else SiteEvidence.NO_SHIFT
        rows.append(
            {
                "decision_id": decision_id,
                "domain": domain,
                "n_pre": len(q),
                "n_post": len(p),
                "pre_median": round(float(np.median(q)), 6) if len(q) else None,
                "post_median": round(float(np.median(p)), 6),
                "shift_auc": auc,
                "shift_p": pvalue,
                "post_pctl_median": round(float(np.median(pctl)), 6) if len(pctl) and cut is not None else None,
                "post_pctl_iqr": round(float(np.subtract(*np.quantile(pctl, [0.75, 0.25]))), 6)
                if len(pctl) and cut is not None
                else None,
                "post_flagged": int((pctl >= cut).sum()) if cut is not None else 0,
                "evidence": evidence.value,
            }
        )
    return rows


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
