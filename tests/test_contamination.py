"""Corpus-level contamination estimates and the reference-quantile MGT rule."""

from __future__ import annotations

import numpy as np
import pytest

from curate.score.contamination import estimate, histogram, mixture_mle

from conftest import sample_page_labels


def draw(hist: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    bins = rng.choice(len(hist), size=n, p=hist)
    return (bins + rng.random(n)) / len(hist)


@pytest.mark.parametrize("share", [0.0, 0.1, 0.4, 0.8])
def test_mixture_mle_recovers_the_share(share: float) -> None:
    rng = np.random.default_rng(7)
    human = histogram(rng.beta(2, 5, 5000))
    machine = histogram(rng.beta(8, 1.5, 5000))
    n = 800
    k = int(share * n)
    scores = np.concatenate([draw(human, n - k, rng), draw(machine, k, rng)])
    est = estimate(scores, human, machine, seed=1)
    assert abs(est.share - share) < 0.06
    assert est.low <= share <= est.high or abs(est.share - share) < 0.02
    assert mixture_mle(draw(human, 500, rng), human, machine) < 0.05


@pytest.mark.slow
def test_sample_crawl_estimate_covers_the_truth(sample_run, sample_con) -> None:
    from curate.recipe import load_recipe
    from curate.report import report_context
    from curate.score.registry import load_model

    machine = {page for page, label in sample_page_labels().items() if label == "machine"}
    rows = sample_con.execute(
        "SELECT url FROM documents WHERE crawl_id = 'CURATE-SAMPLE-2024' AND tier IN ('post_cutoff', 'attested') AND mgt_score IS NOT NULL"
    ).fetchall()
    truth = sum(1 for (url,) in rows if url.rsplit("/", 1)[1].removesuffix(".html") in machine) / len(rows)
    ctx = report_context(sample_con, load_recipe(), sample_run.mix)
    (crawl,) = [r for r in ctx["contamination"]["crawl"] if r["group"] == "CURATE-SAMPLE-2024"]
    assert crawl["low"] <= truth <= crawl["high"], (truth, crawl)
    assert "pre-cutoff captures of this run" in ctx["contamination_source"]
    assert load_model("mgt-fasttext-v1").reference is not None


def test_reference_rule_caps_false_positives_on_real_web_pages(sample_con) -> None:
    rule = sample_con.execute("SELECT mgt_rule FROM decisions").fetchone()[0]
    assert rule.startswith("reference: score above the 0.95 quantile")
    # real 2024 researcher and organisation homepages (Dolma's fixtures), written by people
    real = sample_con.execute(
        "SELECT count(*), count(*) FILTER (reason = 'mgt_above_threshold') FROM documents WHERE warc_file_name LIKE 'sample-000%.warc.gz' AND mgt_score IS NOT NULL"
    ).fetchone()
    assert real[0] >= 30 and real[1] / real[0] <= 0.10
    pctl = sample_con.execute("SELECT min(mgt_ref_pctl), max(mgt_ref_pctl) FROM documents").fetchone()
    assert pctl[0] >= 0.0 and pctl[1] <= 1.0
