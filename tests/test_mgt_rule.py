"""The MGT decision side: which reference judges post-cutoff pages (the store's own or the classifier's shipped
one, never silently a probability), pre-cutoff extreme scores, site-level evidence, and what the terminal, the
report and ``curate show`` say about them. Real stores from the sample crawl and its fixtures."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from curate.errors import ConfigError, ModelError
from curate.recipe import Recipe, load_recipe
from curate.resources import CLASSIFIERS_DIR, SAMPLE_DIR
from curate.run.commands import decide
from curate.schema import REFERENCE_FILE, SiteEvidence
from curate.score.reference import build_reference, load_reference, write_reference
from curate.score.site import shift, shift_from_ranks
from curate.store import STORE_FILE, open_store

from conftest import MGT_SUBSET_DIR, mgt_rows, run_sample, store_query

WEB_HUMAN = MGT_SUBSET_DIR / "web-human.jsonl.gz"
DEFAULT = load_recipe().score.model  # the default classifier: it must ship a reference
# every registered classifier ships a reference of real human web pages (decide falls back on it)
SHIPPED = tuple(sorted(p.name for p in CLASSIFIERS_DIR.iterdir() if (p / "card.json").is_file()))
V3_STORE = Path(__file__).parent / "data" / "store-v3" / "provenance.duckdb.gz"


def with_score(recipe: Recipe, **changes: object) -> Recipe:
    return dataclasses.replace(recipe, score=dataclasses.replace(recipe.score, **changes))


def copy_store(store: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    shutil.copyfile(Path(store) / STORE_FILE if Path(store).is_dir() else store, dest / STORE_FILE)
    return dest


def reconciles(store: Path) -> None:
    (row,) = store_query(
        store,
        "SELECT count(*), count(*) FILTER (status IN ('kept', 'dropped', 'quarantined')) FROM documents",
    )
    assert row[0] == row[1] and row[0] > 0


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory):
    """Two real 2024 files alone (Dolma's researcher and organisation homepages): no pre-cutoff capture."""
    return run_sample(tmp_path_factory.mktemp("small"), [str(SAMPLE_DIR / "fixtures" / "warc-dolma")])


def test_small_store_is_judged_against_the_shipped_reference_and_says_so(small_run) -> None:
    ref = load_reference(DEFAULT)
    assert ref is not None, f"the default classifier {DEFAULT} ships no {REFERENCE_FILE}"
    (rule,) = store_query(small_run.store, "SELECT mgt_rule FROM decisions")[0]
    assert rule.startswith(f"reference: score above the 0.95 quantile of the shipped reference of {DEFAULT}")
    assert f"{ref.n} human web pages" in rule and ref.file_sha256[:12] in rule and ref.data_sha256[:12] in rule
    assert "the store has 0 pre-cutoff captures, fewer than score.min_reference = 50" in rule
    # the real homepages, written by people, are not thrown away as the probability rule did (20 of 22)
    scored, dropped, with_pctl = store_query(
        small_run.store,
        "SELECT count(*), count(*) FILTER (reason = 'mgt_above_threshold'), count(mgt_ref_pctl) FROM documents "
        "WHERE mgt_score IS NOT NULL",
    )[0]
    assert scored >= 30 and with_pctl == scored and dropped / scored <= 0.10
    reconciles(small_run.store)
    # the terminal says which rule and which reference
    lines = "\n".join(small_run.mgt_lines)
    assert "MGT rule: reference: score above the 0.95 quantile of the shipped reference" in lines
    assert f"reference: shipped, {ref.n} scores (the store's own pre-cutoff: 0)" in lines
    # and so does the report
    html = small_run.report.read_text(encoding="utf-8")
    assert 'id="mgt-rule"' in html and f"shipped reference of {DEFAULT}" in html


def test_decide_command_prints_the_rule_and_reference(small_run, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from curate.cli import app

    store = copy_store(small_run.store, tmp_path / "s")
    result = CliRunner().invoke(app, ["decide", "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert f"MGT rule: reference: score above the 0.95 quantile of the shipped reference of {DEFAULT}" in result.output
    assert "reference: shipped" in result.output and "pre-cutoff records scoring >= 0.998" in result.output
    data = json.loads(CliRunner().invoke(app, ["decide", "--store", str(store), "--json"]).output)
    assert data["mgt"]["source"] == "shipped" and data["mgt"]["n_store"] == 0


def test_explicit_store_reference_refuses_a_small_store(small_run, tmp_path: Path) -> None:
    store = copy_store(small_run.store, tmp_path / "s")
    with pytest.raises(ConfigError, match=r"score.reference = store, but the store has 0 pre-cutoff"):
        decide(store, with_score(load_recipe(), reference="store"))
    # the probability rule is still there when asked for, and named as asked for
    d = decide(store, with_score(load_recipe(), rule="probability"))
    assert d.mgt_rule == "probability: calibrated score >= 0.5 (score.rule = probability)"
    assert d.mgt is not None and d.mgt.source is None
    assert store_query(store, "SELECT count(mgt_ref_pctl) FROM documents")[0][0] == 0


def test_big_store_uses_its_own_reference(sample_run, tmp_path: Path) -> None:
    (rule,) = store_query(sample_run.store, "SELECT mgt_rule FROM decisions ORDER BY decision_id DESC LIMIT 1")[0]
    n = store_query(
        sample_run.store,
        "SELECT count(*) FROM documents WHERE tier = 'pre_cutoff' AND mgt_score IS NOT NULL AND language = 'en'",
    )[0][0]
    assert n >= 50 and rule == f"reference: score above the 0.95 quantile of the store's {n} pre-cutoff captures"
    # asked for, the shipped reference judges the same store, and the decision names it
    store = copy_store(sample_run.store, tmp_path / "s")
    d = decide(store, with_score(load_recipe(), reference="shipped"))
    assert d.mgt is not None and d.mgt.source == "shipped" and d.mgt.n_store == n
    assert f"the shipped reference of {DEFAULT}" in d.mgt_rule and "score.reference = shipped" in d.mgt_rule
    reconciles(store)


def test_pre_cutoff_pages_are_scored(sample_run) -> None:
    rows = store_query(
        sample_run.store,
        """SELECT count(*), count(mgt_score), count(*) FILTER (mgt_score IS NULL AND mgt_reason IS NULL)
           FROM documents WHERE tier = 'pre_cutoff' AND text_chars > 0""",
    )[0]
    assert rows[1] >= 100 and rows[2] == 0  # every pre-cutoff text has a score or the reason it has none


def test_pre_cutoff_extreme_scores_are_counted_and_dropped_when_asked(sample_run, tmp_path: Path) -> None:
    from curate.report import report_context

    recipe = load_recipe()
    level = recipe.score.pre_cutoff_extreme
    extreme = store_query(
        sample_run.store,
        f"SELECT count(*) FROM documents WHERE tier IN ('pre_cutoff', 'attested') AND mgt_score >= {level}",
    )[0][0]
    assert extreme >= 1
    # off by default: counted, not dropped, and the report shows the count per crawl
    assert (
        store_query(sample_run.store, "SELECT count(*) FROM documents WHERE reason = 'mgt_pre_cutoff_extreme'")[0][0]
        == 0
    )
    con = open_store(sample_run.store)
    try:
        (section,) = [s for s in report_context(con, recipe)["sections"] if s["id"] == "pre-cutoff-extreme"]
    finally:
        con.close()
    assert sum(r[1] for r in section["rows"]) == extreme and all(r[3] == 0 for r in section["rows"])
    # on: every kept pre-cutoff record at or above the level is dropped with its own reason, nothing else
    store = copy_store(sample_run.store, tmp_path / "s")
    kept_extreme = store_query(
        store,
        f"SELECT count(*) FROM documents WHERE status = 'kept' AND tier IN ('pre_cutoff', 'attested') AND mgt_score >= {level}",
    )[0][0]
    d = decide(store, with_score(recipe, pre_cutoff_drop=True))
    dropped = store_query(
        store, "SELECT min(mgt_score), count(*), min(tier) FROM documents WHERE reason = 'mgt_pre_cutoff_extreme'"
    )[0]
    assert dropped[1] >= 1 and dropped[0] >= level and dropped[2] in ("attested", "pre_cutoff")
    assert d.mgt is not None and d.mgt.pre_cutoff_dropped == dropped[1] <= extreme
    assert kept_extreme >= 1
    assert "pre-cutoff records scoring >= 0.998 dropped" in d.mgt_rule
    # the dropped ones leave the store's reference
    assert f"the store's {d.mgt.n_store} pre-cutoff captures" in d.mgt_rule
    reconciles(store)


def test_site_shift_statistic() -> None:
    rng = np.random.default_rng(3)
    same = rng.random(40)
    auc, p = shift(same[:20], same[20:])
    assert auc is not None and p is not None and 0.3 < auc < 0.7 and p > 0.05
    auc, p = shift(np.linspace(0.1, 0.4, 10), np.linspace(0.6, 0.9, 10))
    assert auc == 1.0 and p is not None and p < 0.001
    assert shift(np.array([]), np.array([0.5, 0.6])) == (None, None)
    assert shift(np.array([0.2]), np.array([0.5, 0.6]))[1] is None  # one page on a side: no p-value


def _ranks(pre: np.ndarray, post: np.ndarray) -> tuple[float, float]:
    """(U of post, sum of t^3 - t over tied groups) computed from the data, as the store's query does."""
    from scipy.stats import rankdata

    both = np.concatenate([pre, post])
    ranks = rankdata(both)
    _, t = np.unique(both, return_counts=True)
    return float(ranks[len(pre) :].sum() - len(post) * (len(post) + 1) / 2), float((t**3 - t).sum())


@pytest.mark.parametrize("seed", range(6))
def test_site_shift_from_ranks_equals_scipy_on_the_scores(seed: int) -> None:
    """The store computes ranks per site in SQL; the p-value from them equals scipy's on the raw scores, on
    both of scipy's paths (exact: a side of 8 or fewer and no ties; normal approximation: ties or large sides)."""
    rng = np.random.default_rng(seed)
    for n_pre, n_post in [(3, 5), (8, 2), (12, 6), (30, 40), (2, 2), (1, 7), (60, 3)]:
        for ties in (False, True):
            pre = rng.random(n_pre) * 0.8
            post = rng.random(n_post) * 0.8 + 0.1 * seed / 5
            if ties:
                pre, post = np.round(pre, 1), np.round(post, 1)
            u, tie_term = _ranks(pre, post)
            got = shift_from_ranks(n_pre, n_post, u, tie_term)
            want = shift(pre, post)
            assert got[0] == want[0], (n_pre, n_post, ties)
            assert (got[1] is None) == (want[1] is None)
            if want[1] is not None:
                assert got[1] == pytest.approx(want[1], abs=2e-8), (n_pre, n_post, ties, got, want)


def test_store_side_percentiles_and_site_rows_equal_a_direct_computation(sample_run) -> None:
    """``mgt_ref_pctl`` (an ASOF join in the store) is the share of the reference strictly below each score, and
    every site_scores row equals scipy/numpy on that site's scores fetched whole."""
    from curate.score.site import site_rows

    con = open_store(sample_run.store)
    try:
        ref = np.sort(
            np.asarray(
                [
                    r[0]
                    for r in con.execute(
                        "SELECT mgt_score FROM documents WHERE tier = 'pre_cutoff' AND mgt_score IS NOT NULL "
                        "AND language = 'en' AND coalesce(reason, '') <> 'mgt_pre_cutoff_extreme'"
                    ).fetchall()
                ]
            )
        )
        rule = con.execute("SELECT mgt_rule FROM decisions ORDER BY decision_id DESC LIMIT 1").fetchone()[0]
        scored = con.execute(
            "SELECT mgt_score, mgt_ref_pctl FROM documents WHERE mgt_score IS NOT NULL ORDER BY doc_id"
        ).fetchall()
        rows = site_rows(con, 0, min_pages=5, alpha=0.01, cut=0.95)
        raw = con.execute(
            "SELECT domain, tier = 'post_cutoff', mgt_score, mgt_ref_pctl FROM documents WHERE mgt_score IS NOT NULL "
            "AND domain IS NOT NULL AND tier IS NOT NULL AND coalesce(status, '') <> 'quarantined'"
        ).fetchall()
    finally:
        con.close()
    if "the store's" in rule:  # the store's own reference decided: check the percentiles against it
        assert len(ref) > 0
        for score, pctl in scored:
            assert pctl == np.searchsorted(ref, score, side="left") / len(ref)
    assert all(p is not None for _, p in scored)
    assert rows
    for row in rows:
        d = row["domain"]
        pre = np.asarray([x for dom, post, x, _ in raw if dom == d and not post])
        post = np.asarray([x for dom, is_post, x, _ in raw if dom == d and is_post])
        pctl = np.asarray([p for dom, is_post, _, p in raw if dom == d and is_post])
        assert (row["n_pre"], row["n_post"]) == (len(pre), len(post))
        assert row["shift_auc"] == shift(pre, post)[0]
        want_p = shift(pre, post)[1]
        assert (row["shift_p"] is None) == (want_p is None)
        if want_p is not None:
            assert row["shift_p"] == pytest.approx(want_p, abs=2e-8)
        assert row["post_median"] == pytest.approx(round(float(np.median(post)), 6), abs=1e-6)
        if len(pre):
            assert row["pre_median"] == pytest.approx(round(float(np.median(pre)), 6), abs=1e-6)
        assert row["post_pctl_median"] == pytest.approx(round(float(np.median(pctl)), 6), abs=1e-6)
        iqr = float(np.subtract(*np.quantile(pctl, [0.75, 0.25])))
        assert row["post_pctl_iqr"] == pytest.approx(round(iqr, 6), abs=1e-6)
        assert row["post_flagged"] == int((pctl >= 0.95).sum())


def test_site_evidence_is_computed_and_shown(sample_run) -> None:
    from curate.lookup import document_tables
    from curate.report import report_context

    rows = store_query(
        sample_run.store,
        "SELECT domain, n_pre, n_post, shift_auc, shift_p, evidence, decision_id FROM site_scores ORDER BY domain",
    )
    by = {r[0]: r for r in rows}
    last = store_query(sample_run.store, "SELECT max(decision_id) FROM decisions")[0][0]
    assert all(r[6] == last for r in rows)
    # the eight planted sites have pages on both sides; the mirror site is all post-cutoff
    planted = [d for d in by if d.endswith(".example") and d not in ("mirror-site.example", "broken-dates.example")]
    assert len(planted) == 8
    for d in planted:
        _, n_pre, n_post, auc, p, evidence, _ = by[d]
        assert n_pre >= 5 and n_post >= 5 and 0 <= auc <= 1 and 0 <= p <= 1
        assert evidence in (SiteEvidence.SHIFTED, SiteEvidence.NO_SHIFT)
    assert by["mirror-site.example"][1] == 0 and by["mirror-site.example"][5] == SiteEvidence.TOO_FEW
    # n on each side matches the documents
    n_post = store_query(
        sample_run.store,
        "SELECT count(*) FROM documents WHERE domain = ? AND tier = 'post_cutoff' AND mgt_score IS NOT NULL",
        [planted[0]],
    )[0][0]
    assert by[planted[0]][2] == n_post
    # curate show and the report carry it
    con = open_store(sample_run.store)
    try:
        doc = con.execute("SELECT doc_id FROM documents WHERE domain = ? LIMIT 1", [planted[0]]).fetchone()[0]
        (table,) = [t for t in document_tables(con, doc) if t.title.startswith("site-level MGT evidence")]
        assert table.rows and table.rows[0][0] == planted[0]
        (section,) = [s for s in report_context(con, load_recipe())["sections"] if s["id"] == "site-scores"]
    finally:
        con.close()
    assert {r[0] for r in section["rows"]} >= set(planted)
    assert "Evidence only" in section["note"]


def test_site_rule_drops_only_pages_of_shifted_sites(sample_run, tmp_path: Path) -> None:
    store = copy_store(sample_run.store, tmp_path / "s")
    recipe = with_score(load_recipe(), site_rule=True)
    d = decide(store, recipe)
    assert d.mgt is not None and d.mgt.sites_shifted >= 1
    rows = store_query(
        store,
        """SELECT d.mgt_ref_pctl, s.evidence, d.tier FROM documents d JOIN site_scores s USING (domain)
           WHERE d.reason = 'mgt_site_shift'""",
    )
    assert len(rows) == d.mgt.site_dropped >= 1
    assert all(p >= recipe.score.site_quantile and e == SiteEvidence.SHIFTED and t == "post_cutoff" for p, e, t in rows)
    assert "site rule" in d.mgt_rule
    reconciles(store)


def _tiny_data(path: Path) -> Path:
    """Real human texts of the MGT subset as a labelled file with a split field and provenance."""
    rows = [r for r in mgt_rows() if r["label"] == "human"][:40]
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for i, r in enumerate(rows):
            split = "reference" if i % 2 == 0 else "eval"
            fh.write(json.dumps({**r, "split": split, "site": f"site{i % 7}", "url": f"https://x/{i}"}) + "\n")
    return path


def test_reference_build_is_deterministic_and_guards_its_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import curate.score.reference as reference

    data = _tiny_data(tmp_path / "web.jsonl.gz")
    one = build_reference("mgt-fasttext-v1", data, extraction="test")
    assert one["n"] == 20 and one["data"]["split"] == "reference" and one["extraction"] == "test"
    assert one["scores"] == sorted(p["score"] for p in one["pages"])
    assert all(p["url"].startswith("https://x/") and p["site"] for p in one["pages"])
    a = write_reference(one, tmp_path / "a.json")
    b = write_reference(build_reference("mgt-fasttext-v1", data, extraction="test"), tmp_path / "b.json")
    assert a.read_bytes() == b.read_bytes()
    # loaded from a classifier folder; a changed card makes it stale, and loading says how to rebuild it
    folder = tmp_path / "mgt-fasttext-v1"
    folder.mkdir()
    shutil.copyfile(CLASSIFIERS_DIR / "mgt-fasttext-v1" / "card.json", folder / "card.json")
    shutil.copyfile(a, folder / REFERENCE_FILE)
    monkeypatch.setattr(reference, "model_dir", lambda name: tmp_path / name)
    ref = load_reference("mgt-fasttext-v1")
    assert ref is not None and ref.n == 20 and ref.data_sha256 == hashlib.sha256(data.read_bytes()).hexdigest()
    (folder / "card.json").write_text((folder / "card.json").read_text() + " ")
    with pytest.raises(ModelError, match=r"another version of mgt-fasttext-v1.*curate classifiers reference"):
        load_reference("mgt-fasttext-v1")
    (folder / REFERENCE_FILE).write_text("{not json")
    with pytest.raises(ModelError, match="unreadable"):
        load_reference("mgt-fasttext-v1")
    with pytest.raises(ModelError, match="no human rows with split = 'train'"):
        build_reference("mgt-fasttext-v1", data, split="train")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_references_load_and_state_their_provenance(name: str) -> None:
    ref = load_reference(name)  # raises when stale: the classifier's card changed since it was computed
    assert ref is not None and ref.n >= 40
    data = json.loads((CLASSIFIERS_DIR / name / REFERENCE_FILE).read_text())
    assert data["data"]["file"] == "web-human.jsonl.gz" and data["data"]["split"] == "reference"
    assert all(p.get("source") and p.get("commit") and p.get("added") and p.get("site") for p in data["pages"])
    assert all(p["added"] < "2022-11-30" for p in data["pages"])
    assert "trafilatura" in data["extraction"]


@pytest.mark.skipif(not WEB_HUMAN.is_file(), reason=f"no {WEB_HUMAN} yet: the shipped references cannot be rechecked")
def test_shipped_references_are_computed_from_the_data_in_the_repo(tmp_path: Path) -> None:
    digest = hashlib.sha256(WEB_HUMAN.read_bytes()).hexdigest()
    for name in SHIPPED:
        assert json.loads((CLASSIFIERS_DIR / name / REFERENCE_FILE).read_text())["data"]["sha256"] == digest, name
    shipped = json.loads((CLASSIFIERS_DIR / "mgt-fasttext-v1" / REFERENCE_FILE).read_text())
    again = build_reference("mgt-fasttext-v1", WEB_HUMAN, extraction=shipped["extraction"])
    assert again == shipped


def test_v3_store_migrates_and_gets_site_evidence(tmp_path: Path) -> None:
    from curate.migrate import migrate

    store = tmp_path / "v3"
    store.mkdir()
    (store / STORE_FILE).write_bytes(gzip.decompress(V3_STORE.read_bytes()))
    assert migrate(store) == ("store-v3", "store-v4")
    assert migrate(store) == ("store-v4", "store-v4")
    assert store_query(store, "SELECT count(*) FROM site_scores") == [(0,)]
    d = decide(store, load_recipe())
    assert d.counts.read == 52 and d.mgt is not None
    assert store_query(store, "SELECT count(*) FROM site_scores")[0][0] >= 0
    reconciles(store)
    # the recorded recipes load again, with the v4 keys
    from curate.recipe import recipe_from_source

    for (src,) in store_query(store, "SELECT recipe_toml FROM decisions ORDER BY decision_id"):
        assert recipe_from_source(src).score.reference == "auto"
