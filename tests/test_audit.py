"""curate.audit on the sample run's store: every DataFrame checked against direct SQL on the same store."""

from __future__ import annotations

import io
import math
import shutil
from collections import Counter

import numpy as np
import pytest

from curate import audit
from curate.errors import ConfigError, InputError
from curate.licenses.spdx import license_by_spdx
from curate.recipe import load_recipe
from curate.score.labelled import split_rows
from curate.score.model import evaluate, load_card
from curate.store import open_store

from conftest import MGT_SUBSET, mgt_rows


@pytest.fixture(scope="module")
def store(sample_run):
    """The sample run's store folder (the API takes the folder or its .duckdb)."""
    return sample_run.store.parent


@pytest.fixture(scope="module")
def sidecar(sample_run) -> str:
    return (sample_run.mix / "sidecar.parquet").as_posix()


def rows(con, sql: str, params: list | None = None) -> list[tuple]:
    return [tuple(r) for r in con.execute(sql, params or []).fetchall()]


def null(v) -> object:
    """A DataFrame cell as SQL would give it (NaN, NaT, pd.NA → None)."""
    import pandas as pd

    return None if not isinstance(v, list) and pd.isna(v) else v


def test_paths_and_recipe(sample_run, store, sample_con) -> None:
    assert audit.store_folder(sample_run.store) == store == audit.store_folder(str(store))
    assert audit.default_mix_dir(sample_run.store) == sample_run.mix
    recipe = audit.decided_recipe(sample_run.store)
    (source,) = sample_con.execute("SELECT recipe_toml FROM decisions ORDER BY decision_id DESC LIMIT 1").fetchone()
    assert recipe.source == source
    history = audit.decision_history(store)
    assert list(history.decision_id) == [r[0] for r in rows(sample_con, "SELECT decision_id FROM decisions ORDER BY 1")]
    assert int(history.n_read.iloc[-1]) == sample_run.counts.read
    # the folder, the file, a str: the same answer
    assert audit.tiers_by_month(sample_run.store).equals(audit.tiers_by_month(str(store)))


def test_tiers_by_month(store, sample_con) -> None:
    df = audit.tiers_by_month(store)
    got = {(m, t): (d, k) for m, t, d, k in df.itertuples(index=False)}
    want = {
        (m, t): (d, k)
        for m, t, d, k in rows(
            sample_con,
            """SELECT strftime(timezone('UTC', coalesce(warc_date, warc_date_from)), '%Y-%m'),
                      tier, count(*), count(*) FILTER (status = 'kept')
               FROM documents WHERE (warc_date IS NOT NULL OR warc_date_from IS NOT NULL) AND tier IS NOT NULL
               GROUP BY ALL""",
        )
    }
    assert got == want and len(df) == len(want)
    assert list(df.month) == sorted(df.month)
    (dated_kept,) = sample_con.execute(
        "SELECT count(*) FROM documents WHERE status = 'kept' AND tier IS NOT NULL"
    ).fetchone()
    assert df.kept.sum() == dated_kept


@pytest.mark.parametrize(
    ("by", "column"), [("tier", "coalesce(tier, 'unknown')"), ("crawl", "coalesce(crawl_id, 'no crawl id')")]
)
def test_score_histogram(store, sample_con, by, column) -> None:
    bins = 10
    df = audit.score_histogram(store, by, bins=bins)
    scores: dict[str, list[float]] = {}
    for g, s in rows(sample_con, f"SELECT {column}, mgt_score FROM documents WHERE mgt_score IS NOT NULL"):
        scores.setdefault(g, []).append(s)
    assert set(df.group) == set(scores)
    for g, values in scores.items():
        part = df[df.group == g].sort_values("bin")
        assert list(part.bin) == list(range(bins))
        want = Counter(min(int(v * bins), bins - 1) for v in values)
        assert list(part.documents) == [want.get(b, 0) for b in range(bins)], g
        assert math.isclose(part.share.sum(), 1.0)
        assert part.bin_low.iloc[0] == 0 and part.bin_high.iloc[-1] == 1
    kept = audit.score_histogram(store, by, bins=bins, kept_only=True)
    (n_kept,) = sample_con.execute(
        "SELECT count(*) FROM documents WHERE status = 'kept' AND mgt_score IS NOT NULL"
    ).fetchone()
    assert kept.documents.sum() == n_kept
    with pytest.raises(ValueError, match="by must be"):
        audit.score_histogram(store, "language")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bins"):
        audit.score_histogram(store, by, bins=0)


def test_contamination(sample_run, store) -> None:
    from curate.score.contamination import contamination_table

    df = audit.contamination(store, ("month", "domain"), min_docs=20)  # crawl: the bootstrap of a large slice is slow
    model = audit.decided_recipe(store).score.model
    con = open_store(sample_run.store)  # its own connection: months are counted in UTC
    try:
        con.execute("SET TimeZone = 'UTC'")
        for by in ("month", "domain"):
            want, source = contamination_table(con, load_card(model)["reference_histograms"], by, min_docs=20)
            part = df[df.by == by]
            assert list(part.group) == [r["group"] for r in want]
            assert list(part.n) == [r["n"] for r in want]
            for column in ("share", "low", "high"):
                assert [null(v) for v in part[column]] == [r[column] for r in want], (by, column)
            assert set(part.reference) <= {source}
    finally:
        con.close()
    estimated = df.dropna(subset=["share"])
    assert len(estimated) and (estimated.low <= estimated.high).all()
    only = audit.contamination(store, "month", min_docs=20)
    assert only.equals(df[df.by == "month"].reset_index(drop=True))
    with pytest.raises(ValueError, match="by must be"):
        audit.contamination(store, "language")


def test_license_mix_and_tokens(sample_run, store, sample_con, sidecar) -> None:
    df = audit.license_mix(store)
    got = {
        (null(s), null(sc)): (d, k)
        for s, sc, d, k in df[["license_spdx", "license_scope", "documents", "kept"]].itertuples(index=False)
    }
    want = {
        (s, sc): (d, k)
        for s, sc, d, k in rows(
            sample_con,
            "SELECT license_spdx, license_scope, count(*), count(*) FILTER (status = 'kept') FROM documents GROUP BY ALL",
        )
    }
    assert got == want
    assert df.documents.sum() == sample_run.counts.read and df.documents.is_monotonic_decreasing
    for spdx, required, name in df[["license_spdx", "attribution_required", "license_name"]].itertuples(index=False):
        lic = license_by_spdx(spdx) if isinstance(spdx, str) else None
        assert null(required) == (lic.attribution_required if lic else None) and null(name) == (
            lic.name if lic else None
        )

    tokens = audit.license_tokens(store)
    want_tokens = {
        (s, sc): (d, e, t)
        for s, sc, d, e, t in rows(
            sample_con,
            """SELECT d.license_spdx, d.license_scope, count(DISTINCT s.doc_id), count(*), sum(s.token_end - s.token_start)
               FROM read_parquet(?) s JOIN documents d USING (doc_id) GROUP BY ALL""",
            [sidecar],
        )
    }
    got_tokens = {
        (null(s), null(sc)): (d, e, t)
        for s, sc, d, e, t in tokens[["license_spdx", "license_scope", "documents", "entries", "tokens"]].itertuples(
            index=False
        )
    }
    assert got_tokens == want_tokens
    assert tokens.tokens.sum() == sample_run.mix_summary.tokens and math.isclose(tokens.token_share.sum(), 1.0)


def test_a_missing_mix_is_an_input_error(store, tmp_path) -> None:
    with pytest.raises(InputError, match=r"sidecar\.parquet is missing"):
        audit.license_tokens(store, tmp_path)
    with pytest.raises(InputError):
        audit.attribution_list(store, tmp_path / "nothing")
    with pytest.raises(InputError):
        audit.reason_waterfall(store, tmp_path)  # a mix folder named explicitly must be one


def test_top_domains(store, sample_con, sidecar) -> None:
    df = audit.top_domains(store, 5)
    want = rows(
        sample_con,
        """WITH t AS (SELECT doc_id, sum(token_end - token_start) AS tokens FROM read_parquet(?) GROUP BY 1)
           SELECT d.domain, count(*), count(*) FILTER (d.status = 'kept'), coalesce(sum(t.tokens), 0)
           FROM documents d LEFT JOIN t USING (doc_id) GROUP BY 1 ORDER BY 2 DESC, 1 NULLS LAST LIMIT 5""",
        [sidecar],
    )
    assert [
        (null(d), n, k, t) for d, n, k, t in df[["domain", "documents", "kept", "mix_tokens"]].itertuples(index=False)
    ] == want
    assert (df.kept + df.dropped + df.quarantined == df.documents).all()
    by_kept = audit.top_domains(store, 3, order_by="kept")
    (top_kept,) = sample_con.execute(
        "SELECT max(c) FROM (SELECT count(*) c FROM documents WHERE status = 'kept' GROUP BY domain)"
    ).fetchone()
    assert by_kept.kept.is_monotonic_decreasing and by_kept.kept.iloc[0] == top_kept
    with pytest.raises(ValueError, match="order_by"):
        audit.top_domains(store, order_by="tokens")  # type: ignore[arg-type]


def test_reason_waterfall(sample_run, store, sample_con, sidecar) -> None:
    df = audit.reason_waterfall(store)
    c = sample_run.counts
    assert df.step.iloc[0] == "read" and df.records.iloc[0] == c.read
    removed = df[df.kind == "removed"]
    assert {(s, r): n for s, r, n in removed[["status", "reason", "records"]].itertuples(index=False)} == {
        (s, r): n for s, r, n in c.by_reason
    }
    order = [r.value for r in audit.WATERFALL_ORDER]
    assert list(removed.reason) == sorted(removed.reason, key=order.index)  # the order decide applies its rules
    assert (df.remaining.iloc[1 : len(removed) + 1].to_numpy() == c.read - removed.records.cumsum().to_numpy()).all()
    kept = df[df.kind == "kept"].iloc[0]
    assert kept.records == kept.remaining == c.kept
    (mixed,) = sample_con.execute(
        "SELECT count(DISTINCT doc_id) FROM read_parquet(?) JOIN documents USING (doc_id) WHERE status = 'kept'",
        [sidecar],
    ).fetchone()
    assert list(df.kind.iloc[-2:]) == ["not_mixed", "mixed"]
    assert df.records.iloc[-1] == mixed and df.records.iloc[-2] == c.kept - mixed


def test_duplicate_clusters(store, sample_con) -> None:
    df = audit.duplicate_clusters(store)
    want = {
        cid: (n, k, dup)
        for cid, n, k, dup in rows(
            sample_con,
            """SELECT dup_cluster_id, count(*), count(*) FILTER (status = 'kept'), count(*) FILTER (reason = 'duplicate_of')
               FROM documents WHERE dup_cluster_id IS NOT NULL GROUP BY 1""",
        )
    }
    got = {
        cid: (n, k, dup)
        for cid, n, k, dup in df[["cluster_id", "members", "kept", "dropped_as_duplicate"]].itertuples(index=False)
    }
    assert got == want and df.members.is_monotonic_decreasing
    assert (df.kept + df.dropped_as_duplicate + df.dropped_other == df.members).all()
    # what each cluster kept: the representative every duplicate_of member names
    reps = {cid: set(r) for cid, r in zip(df.cluster_id, df.representatives, strict=True)}
    kept_ids = {cid: set(k) for cid, k in zip(df.cluster_id, df.kept_doc_ids, strict=True)}
    for cid, rep in rows(
        sample_con, "SELECT dup_cluster_id, reason_detail FROM documents WHERE reason = 'duplicate_of'"
    ):
        assert rep in reps[cid] and rep in kept_ids[cid]
    for cid, ids in kept_ids.items():
        assert ids == {
            r[0]
            for r in rows(
                sample_con, "SELECT doc_id FROM documents WHERE dup_cluster_id = ? AND status = 'kept'", [cid]
            )
        }
    sizes = audit.duplicate_cluster_sizes(store)
    assert dict(zip(sizes.members, sizes.clusters, strict=True)) == dict(Counter(n for n, _, _ in want.values()))
    assert sizes.documents.sum() == df.members.sum() and sizes.kept.sum() == df.kept.sum()


def test_bucket_samples(sample_run, store, sample_con, sidecar) -> None:
    recipe = audit.decided_recipe(store)
    df = audit.bucket_samples(store, n=4, seed=3)
    assert df.equals(audit.bucket_samples(sample_run.store, n=4, seed=3))  # seeded
    buckets = [b.name for b in recipe.mix.buckets]
    assert list(df.bucket) == sorted(df.bucket, key=buckets.index)
    for i, b in enumerate(recipe.mix.buckets):
        # the bucket's members: kept, meeting its condition and no earlier bucket's (the default recipe's SQL)
        earlier = " ".join(f"AND NOT coalesce(({e.where}), false)" for e in recipe.mix.buckets[:i])
        members = {
            r[0]
            for r in rows(sample_con, f"SELECT doc_id FROM documents WHERE status = 'kept' AND ({b.where}) {earlier}")
        }
        picked = set(df.loc[df.bucket == b.name, "doc_id"])
        assert picked <= members and len(picked) == min(4, len(members)), b.name
    side = {
        d: (b, e, t)
        for d, b, e, t in rows(
            sample_con,
            "SELECT doc_id, any_value(bucket), count(*), sum(token_end - token_start) FROM read_parquet(?) GROUP BY 1",
            [sidecar],
        )
    }
    for row in df.itertuples(index=False):
        if row.doc_id in side:
            assert side[row.doc_id] == (row.bucket, row.mix_entries, row.mix_tokens)
        else:
            assert row.mix_entries == row.mix_tokens == 0
        (n_ev,) = sample_con.execute("SELECT count(*) FROM license_evidence WHERE doc_id = ?", [row.doc_id]).fetchone()
        (n_opt,) = sample_con.execute("SELECT count(*) FROM optout_evidence WHERE doc_id = ?", [row.doc_id]).fetchone()
        assert len(row.license_evidence) == n_ev and len(row.optout_evidence) == n_opt
        (text,) = sample_con.execute("SELECT text FROM texts WHERE doc_id = ?", [row.doc_id]).fetchone()
        assert row.text == text[:300]
    assert (df.bucket == buckets[0]).sum() and (df.mix_entries > 0).any()


def test_token_provenance_and_warc_headers(store, sample_con, sidecar) -> None:
    shard, start, end, doc_id, url, record_id = sample_con.execute(
        "SELECT shard, token_start, token_end, doc_id, url, warc_record_id FROM read_parquet(?) ORDER BY shard, token_start LIMIT 1 OFFSET 2",
        [sidecar],
    ).fetchone()
    where = audit.token_provenance(store, shard, end - 1)
    assert (where["doc_id"], where["token_start"], where["token_end"]) == (doc_id, start, end)
    (status,) = sample_con.execute("SELECT status FROM documents WHERE doc_id = ?", [doc_id]).fetchone()
    assert where["status"] == status
    headers = audit.warc_headers(where["warc_file"], where["record_offset"], where["record_length"])
    assert headers["WARC-Target-URI"] == url and headers["WARC-Record-ID"] == record_id
    with pytest.raises(InputError, match="no entry"):
        audit.token_provenance(store, shard, 10**12)


def test_legal_evidence(store, sample_con) -> None:
    df = audit.license_evidence_by_domain(store).set_index("domain")
    want = {
        d: (n, k, p, o)
        for d, n, k, p, o in rows(
            sample_con,
            """SELECT domain, count(*), count(*) FILTER (status = 'kept'), count(*) FILTER (license_scope = 'page'),
                      count(*) FILTER (reason = 'opted_out') FROM documents WHERE domain IS NOT NULL GROUP BY 1""",
        )
    }
    assert {d: (r.documents, r.kept, r.page_licensed, r.dropped_opted_out) for d, r in df.iterrows()} == want
    ev = dict(
        rows(sample_con, "SELECT d.domain, count(*) FROM license_evidence e JOIN documents d USING (doc_id) GROUP BY 1")
    )
    oo = dict(
        rows(sample_con, "SELECT d.domain, count(*) FROM optout_evidence o JOIN documents d USING (doc_id) GROUP BY 1")
    )
    assert {d: n for d, n in df.license_evidence_rows.items() if n} == {d: n for d, n in ev.items() if d is not None}
    assert {d: n for d, n in df.optout_evidence_rows.items() if n} == {d: n for d, n in oo.items() if d is not None}
    for domain, licenses in df.licenses.items():
        assert licenses == sorted(
            r[0]
            for r in rows(
                sample_con,
                "SELECT DISTINCT license_spdx FROM documents WHERE domain = ? AND license_spdx IS NOT NULL",
                [domain],
            )
        )

    top = max(ev, key=lambda d: (ev[d], d))
    one = audit.license_evidence(store, domain=top)
    assert len(one) == ev[top] and set(one.domain) == {top}
    (n_all,) = sample_con.execute("SELECT count(*) FROM license_evidence").fetchone()
    (n_kept,) = sample_con.execute(
        "SELECT count(*) FROM license_evidence JOIN documents USING (doc_id) WHERE status = 'kept'"
    ).fetchone()
    assert len(audit.license_evidence(store)) == n_all and len(audit.license_evidence(store, kept_only=True)) == n_kept
    optouts = audit.optout_evidence(store)
    assert len(optouts) == sum(oo.values())
    assert set(optouts.kind) == {r[0] for r in rows(sample_con, "SELECT DISTINCT kind FROM optout_evidence")}


def test_attribution_list(sample_run, store, sample_con, sidecar) -> None:
    df = audit.attribution_list(store)
    candidates = rows(
        sample_con,
        """SELECT DISTINCT d.doc_id, d.license_spdx FROM read_parquet(?) s JOIN documents d USING (doc_id)
           WHERE d.license_scope IN ('page', 'partial') AND d.license_spdx IS NOT NULL ORDER BY 1""",
        [sidecar],
    )
    want = [d for d, spdx in candidates if (lic := license_by_spdx(spdx)) and lic.attribution_required]
    assert list(df.doc_id) == want and len(want) > 0
    entries = [line for line in (sample_run.mix / "ATTRIBUTION.md").read_text().splitlines() if line.startswith("- **")]
    assert len(entries) == len(df)
    assert all(r in "\n".join(entries).replace("\\", "") for r in df.warc_date.dt.strftime("%Y-%m-%d"))


def test_policy_exclusions_and_preview(sample_run, store, sample_con, tmp_path) -> None:
    from curate.run.commands import decide

    excluded_now = sum(n for _, r, n in sample_run.counts.by_reason if r == "license_policy")
    assert len(audit.policy_exclusions(store)) == excluded_now
    assert audit.policy_preview(store, "record").empty  # the default policy excludes nothing
    preview = audit.policy_preview(store, "no-nc-nd")
    # NC/ND page verdicts, and pages where an NC/ND signal claims the text under conflict (scope unknown)
    assert len(preview) > 0 and "page" in set(preview.license_scope)
    assert set(preview.license_scope) <= {"page", "partial", "unknown"}
    assert all(license_by_spdx(s).noncommercial or license_by_spdx(s).no_derivatives for s in preview.license_spdx)
    with pytest.raises(ConfigError, match="known"):
        audit.policy_preview(store, "no-such-policy")

    copy = tmp_path / "store"
    copy.mkdir()
    shutil.copy(sample_run.store, copy / sample_run.store.name)
    recipe_file = tmp_path / "no-nc-nd.toml"
    recipe_file.write_text('[license]\npolicy = "no-nc-nd"\n')
    decide(copy, load_recipe(recipe_file))
    excluded = audit.policy_exclusions(copy)
    con = open_store(copy)
    try:
        want = [r[0] for r in rows(con, "SELECT doc_id FROM documents WHERE reason = 'license_policy' ORDER BY 1")]
    finally:
        con.close()
    assert list(excluded.doc_id) == want and set(excluded.policy) == {"no-nc-nd"}
    assert audit.decided_recipe(copy).license.policy == "no-nc-nd"
    # the preview names what deciding excludes; deciding also excludes members now dropped as duplicates
    assert set(preview.doc_id) <= set(excluded.doc_id)
    for doc_id in set(excluded.doc_id) - set(preview.doc_id):
        (reason,) = sample_con.execute("SELECT reason FROM documents WHERE doc_id = ?", [doc_id]).fetchone()
        assert reason == "duplicate_of"
    waterfall = audit.reason_waterfall(copy)  # no mix beside the copy: no mix steps
    assert waterfall.loc[waterfall.reason == "license_policy", "records"].sum() == len(excluded)
    assert waterfall.kind.iloc[-1] == "kept"


@pytest.fixture(scope="module")
def scored():
    return audit.score_labelled(MGT_SUBSET, "mgt-fasttext-v1", validation_only=True)


def test_score_labelled_and_metrics(scored) -> None:
    from curate.score.registry import load_model

    validation = split_rows(mgt_rows())[1]
    assert len(scored) == len(validation) and list(scored.label) == [r["label"] for r in validation]
    assert (scored.reason.notna() == scored.score.isna()).all() and scored.score.dropna().between(0, 1).all()
    metrics = audit.labelled_metrics(scored)
    want = evaluate(load_model("mgt-fasttext-v1"), validation)  # the cards' path: raw scores, calibrated
    assert metrics["n"] == want["n"] and metrics["unscored"] == want["skipped_too_short"]
    for key in ("auroc", "tpr_at_1pct_fpr", "tpr_at_5pct_fpr", "ece"):
        assert abs(metrics[key] - want[key]) <= 1e-3, key
    assert metrics["per_generator"].keys() == want["per_generator"].keys()

    curve = audit.calibration_curve(scored)
    assert curve.n.sum() == metrics["n"] and len(curve) == 10
    assert abs(audit.expected_calibration_error(curve) - metrics["ece"]) < 1e-3
    s = scored.dropna(subset=["score"])
    for row in curve.itertuples():
        inside = s[(np.minimum((s.score * 10).astype(int), 9)) == row.bin]
        assert row.n == len(inside)
        if row.n:
            assert math.isclose(row.machine_share, inside.machine.mean())


def test_errors_by(scored) -> None:
    s = scored.dropna(subset=["score"])
    metrics = audit.labelled_metrics(scored)
    for by, cards in (("generator", "per_generator"), ("domain", "per_domain"), ("length", "per_length")):
        df = audit.errors_by(scored, by, threshold=0.5)
        assert df.n.sum() == len(s)
        for row in df.itertuples():
            part = s[s[by] == row.group]
            assert row.false_positives == int(((part.score >= 0.5) & ~part.machine).sum())
            assert row.false_negatives == int(((part.score < 0.5) & part.machine).sum())
            if row.group in metrics[cards]:
                want = metrics[cards][row.group]["auroc"]
                assert (want is None and math.isnan(row.auroc)) or row.auroc == want, (by, row.group)
    with pytest.raises(ValueError, match="by must be"):
        audit.errors_by(scored, "source")  # type: ignore[arg-type]


def test_score_labelled_takes_rows_and_detects_languages() -> None:
    rows_in = [
        {"text": "Der schnelle braune Fuchs springt über den faulen Hund. " * 30, "label": "human"},
        {"text": mgt_rows()[0]["text"], "label": mgt_rows()[0]["label"], "language": "en"},
    ]
    df = audit.score_labelled(rows_in, language=None)
    assert [null(r) for r in df.reason] == ["language_out_of_scope", None] and not math.isnan(df.score.iloc[1])


def test_figures_are_agg_and_nothing_prints(sample_run, store, scored, capsys) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figures = [
        audit.plot_tiers_by_month(audit.tiers_by_month(store)),
        audit.plot_score_histogram(audit.score_histogram(store, "tier")),
        audit.plot_contamination(audit.contamination(store, "domain", min_docs=20)),
        audit.plot_waterfall(audit.reason_waterfall(store)),
        audit.plot_calibration(audit.calibration_curve(scored)),
        audit.plot_scores_by_label(scored),
    ]
    for fig in figures:
        assert isinstance(fig.canvas, FigureCanvasAgg) and fig.axes
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        assert buf.getvalue().startswith(b"\x89PNG")
    waterfall_axes = figures[3].axes[0]
    assert [t.get_text() for t in waterfall_axes.get_yticklabels()] == list(audit.reason_waterfall(store).step)
    out = capsys.readouterr()
    assert out.out == ""
