"""curate inspect / query / show: read-only questions of a store at the terminal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curate.cli import app
from curate.errors import ConfigError, StoreError
from curate.lookup import query, show, summary

runner = CliRunner()


@pytest.fixture(scope="module")
def store(sample_run) -> Path:
    return sample_run.store.parent


def test_summary_counts_match_the_store(store, sample_con) -> None:
    tables = {t.title: t for t in summary(store)}
    by_status = tables["records by status and reason"]
    assert sum(r[2] for r in by_status.rows) == sample_con.execute("SELECT count(*) FROM documents").fetchone()[0]
    kept = [r for r in by_status.rows if r[0] == "kept"]
    assert kept[0][2] == sample_con.execute("SELECT count(*) FROM documents WHERE status = 'kept'").fetchone()[0]
    assert len(tables["ingests"].rows) == sample_con.execute("SELECT count(*) FROM runs").fetchone()[0]
    assert tables["decisions"].rows[-1][0] == sample_con.execute("SELECT max(decision_id) FROM decisions").fetchone()[0]


def test_query_reads_and_only_reads(store, tmp_path: Path) -> None:
    t = query(store, "SELECT status, count(*) AS n FROM documents GROUP BY 1 ORDER BY 1")
    assert t.columns == ["status", "n"] and {r[0] for r in t.rows} >= {"kept", "dropped"}
    assert len(query(store, "SELECT doc_id FROM documents", limit=3).rows) == 3
    target = tmp_path / "x.csv"
    for sql, why in (
        (f"COPY (SELECT 1) TO '{target}'", "only SELECT"),
        ("DELETE FROM documents", "only SELECT"),
        (f"ATTACH '{tmp_path / 'o.duckdb'}' AS o", "only SELECT"),
        ("SELECT 1; SELECT 2", "one statement"),
        ("SELECT * FROM read_csv('/etc/passwd')", "disabled by configuration"),
        ("SELEC nonsense", "not valid SQL"),
    ):
        with pytest.raises(ConfigError, match=why):
            query(store, sql)
    assert not target.exists()
    with pytest.raises(ConfigError, match="time limit"):
        query(store, "SELECT count(*) FROM range(100000000000) a, range(10) b", timeout_s=0.5)


def test_show_one_document_with_its_evidence(store, sample_con) -> None:
    doc_id, rep = (
        sample_con.execute(
            "SELECT doc_id, reason_detail FROM documents WHERE reason = 'duplicate_of' AND license_spdx IS NOT NULL LIMIT 1"
        ).fetchone()
        or sample_con.execute(
            "SELECT doc_id, reason_detail FROM documents WHERE reason = 'duplicate_of' LIMIT 1"
        ).fetchone()
    )
    tables = {t.title.split(" (")[0]: t for t in show(store, doc_id)}
    fields = dict(tables["document"].rows)
    assert fields["doc_id"] == doc_id and fields["reason"] == "duplicate_of"
    cluster = tables["duplicate cluster"].rows
    assert rep in [r[0] for r in cluster] and doc_id in [r[0] for r in cluster]
    n_ev = sample_con.execute("SELECT count(*) FROM license_evidence WHERE doc_id = ?", [doc_id]).fetchone()[0]
    assert len(tables["licence evidence"].rows) == n_ev
    assert tables["decision"].rows[0][0] == fields["decision_id"]
    kept = sample_con.execute(
        "SELECT doc_id FROM documents WHERE status = 'kept' AND tier = 'pre_cutoff' ORDER BY doc_id LIMIT 1"
    ).fetchone()[0]
    mixes = {t.title: t for t in show(store, kept)}["mixes that hold it"].rows
    entries = sample_con.execute(
        f"SELECT count(*) FROM read_parquet('{store / 'mix' / 'sidecar.parquet'}') WHERE doc_id = ?", [kept]
    ).fetchone()[0]
    assert [r[3] for r in mixes] == ([entries] if entries else [])
    with pytest.raises(StoreError, match="no document"):
        show(store, "nope")


def test_the_commands(store) -> None:
    r = runner.invoke(app, ["inspect", str(store), "--format", "json"])
    assert r.exit_code == 0 and "records by status and reason" in json.loads(r.stdout)
    r = runner.invoke(app, ["query", str(store), "SELECT count(*) AS n FROM documents", "--csv"])
    assert r.exit_code == 0 and r.stdout.splitlines()[0] == "n"
    r = runner.invoke(app, ["query", str(store), "DROP TABLE documents"])
    assert r.exit_code == 2 and "only SELECT" in r.output
    r2 = runner.invoke(app, ["query", str(store), "SELECT min(doc_id) FROM documents", "-f", "csv"])
    doc_id = r2.stdout.splitlines()[1]
    r = runner.invoke(app, ["show", str(store), doc_id])
    assert r.exit_code == 0 and doc_id in r.stdout
    assert runner.invoke(app, ["inspect", str(store), "--format", "xml"]).exit_code == 2
    assert runner.invoke(app, ["inspect", str(store.parent / "missing")]).exit_code == 2
