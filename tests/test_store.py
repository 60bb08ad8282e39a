"""The store toolkit: ingests that add up, re-decisions without WARCs, incremental dedup, migration, locking."""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curate.errors import ConfigError, InputError, StoreError
from curate.recipe import load_recipe
from curate.resources import SAMPLE_DIR
from curate.run.commands import decide, dedup, mix, report
from curate.run.ingest import ingest
from curate.store import open_store, store_lock

from conftest import NOT_COMPARED, STORE_TABLES, curate_process, store_rows
from conftest import store_query as q

DOLMA = SAMPLE_DIR / "fixtures" / "warc-dolma"
WARCIO = SAMPLE_DIR / "fixtures" / "warc-warcio"
RESILIPARSE = SAMPLE_DIR / "fixtures" / "warc-resiliparse"
V1_STORE = Path(__file__).parent / "data" / "store-v1" / "provenance.duckdb.gz"
V2_STORE = Path(__file__).parent / "data" / "store-v2" / "provenance.duckdb.gz"


def rows(store: Path, table: str) -> list[tuple]:
    return store_rows(store, table, NOT_COMPARED)


def redated(src: Path, dst: Path, year: int) -> Path:
    """A copy of a WARC file with every WARC-Date moved to ``year`` (same payloads, same digests)."""
    from warcio.archiveiterator import ArchiveIterator
    from warcio.warcwriter import WARCWriter

    with src.open("rb") as fh, dst.open("wb") as out:
        writer = WARCWriter(out, gzip=True)
        for record in ArchiveIterator(fh):
            date = record.rec_headers.get_header("WARC-Date")
            if date:
                record.rec_headers.replace_header("WARC-Date", f"{year}{date[4:]}")
            writer.write_record(record)
    return dst


@pytest.fixture(scope="module")
def recipe():
    return load_recipe(None)


@pytest.fixture(scope="module")
def two_files(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("inputs")
    a = shutil.copy(DOLMA / "sample-0000.warc.gz", folder / "a.warc.gz")
    b = shutil.copy(RESILIPARSE / "warcfile.warc.gz", folder / "b.warc.gz")
    return Path(a), Path(b)


def test_two_ingests_equal_one(recipe, two_files, tmp_path: Path) -> None:
    a, b = two_files
    one, two = tmp_path / "one", tmp_path / "two"
    ingest([str(a), str(b)], one, recipe)
    ingest([str(a)], two, recipe)
    ingest([str(b)], two, recipe)
    for store in (one, two):
        dedup(store, recipe)
        decide(store, recipe)
    for table in STORE_TABLES:
        assert rows(one, table) == rows(two, table), table
    assert len(q(two, "SELECT * FROM runs")) == 2 and len(q(one, "SELECT * FROM runs")) == 1


def test_the_load_in_parts_of_doc_ids_equals_one_sorted_load(
    recipe, two_files, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The load sorts each table one range of doc_ids at a time (so a 4 GB ingest's texts never have to be
    sorted at once); the ranges cover every id in order, so the tables equal a one-part load row for row, in the
    same physical order."""
    import curate.store
    from curate.store import doc_id_ranges

    for n in (1, 2, 3, 7, 16, 5000):
        parts = doc_id_ranges(n)
        assert len(parts) == min(n, 4096)
        ids = ["", "0000", "0000ffff", "5554", "5555", "aaaa", "fffff", "zz", "\U0010ffff"]
        import duckdb

        sql = duckdb.connect()
        for i in ids:  # every string falls in exactly one range
            hits = [sql.execute(f"SELECT {part} FROM (SELECT '{i}' AS doc_id)").fetchone()[0] for part in parts]
            assert hits.count(True) == 1, (n, i)
    a, b = two_files
    ingest([str(a), str(b)], tmp_path / "one", recipe)
    monkeypatch.setattr(curate.store, "LOAD_PART_BYTES", 4096)  # the two files' shards: dozens of parts
    ingest([str(a), str(b)], tmp_path / "parts", recipe)
    for table in ("documents", "texts", "minhash_signatures", "minhash_bands"):
        physical = []
        for store in ("one", "parts"):
            con = open_store(tmp_path / store)
            try:
                physical.append(
                    con.execute(
                        f"SELECT * EXCLUDE (run_id) FROM {table} ORDER BY rowid"
                        if table == "documents"
                        else f"SELECT * FROM {table} ORDER BY rowid"
                    ).fetchall()
                )
            finally:
                con.close()
        assert physical[0] == physical[1] and len(physical[0]) > 10, table
    assert [r[0] for r in physical[0]] == sorted(r[0] for r in physical[0])  # bands: doc_id order


def test_reingest_is_a_noop_and_a_different_file_under_a_known_name_is_refused(
    recipe, two_files, tmp_path: Path
) -> None:
    a, _ = two_files
    store = tmp_path / "s"
    first = ingest([str(a)], store, recipe)
    assert first.added == 24 and first.skipped == []
    copy = tmp_path / "elsewhere"
    copy.mkdir()
    again = ingest([str(shutil.copy(a, copy / a.name))], store, recipe)  # same bytes, same name, other folder
    assert again.added == 0 and again.inputs == [] and again.skipped == [str(copy / a.name)]
    assert q(store, "SELECT count(*) FROM documents") == [(24,)]
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(DOLMA / "sample-0001.warc.gz", other / a.name)
    with pytest.raises(InputError, match=r"different file named a\.warc\.gz"):
        ingest([str(other / a.name)], store, recipe)
    assert q(store, "SELECT count(*) FROM runs") == [(1,)]


def test_decide_with_another_cutoff_needs_no_warc(recipe, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    shutil.copytree(DOLMA, inputs)
    store = tmp_path / "s"
    ingest([str(inputs)], store, recipe)
    dedup(store, recipe)
    strict = tmp_path / "strict.toml"  # the probability rule, which flags most of these real 2024 pages
    strict.write_text('[score]\nrule = "probability"\n')
    first = decide(store, load_recipe(strict))
    shutil.rmtree(inputs)  # the WARCs are gone
    tiers = dict(q(store, "SELECT tier, count(*) FROM documents GROUP BY 1"))
    assert tiers.get("pre_cutoff", 0) == 0 and tiers["post_cutoff"] > 0  # the dolma sample is from 2024
    recipe_file = tmp_path / "late.toml"
    recipe_file.write_text('cutoff = 2030-01-01\n[score]\nrule = "probability"\nthreshold = 1.0\n')
    later = decide(store, load_recipe(recipe_file))
    tiers = dict(q(store, "SELECT tier, count(*) FROM documents GROUP BY 1"))
    assert tiers.get("post_cutoff", 0) == 0 and tiers["pre_cutoff"] > 0
    assert later.counts.kept > first.counts.kept
    assert q(store, "SELECT DISTINCT decision_id FROM documents") == [(later.decision_id,)]
    assert [r[0] for r in q(store, "SELECT cutoff::VARCHAR FROM decisions ORDER BY decision_id")] == [
        "2022-11-30",
        "2030-01-01",
    ]
    # the boundary: a capture at the cutoff instant is post-cutoff, one a second earlier is not
    (when,) = q(store, "SELECT min(warc_date) FROM documents")[0]
    exact = tmp_path / "exact.toml"
    exact.write_text(f"cutoff = {when.date().isoformat()}\n")
    decide(store, load_recipe(exact))
    assert q(
        store,
        "SELECT count(*) FROM documents WHERE warc_date < ? AND tier <> 'pre_cutoff'",
        [when.replace(hour=0, minute=0, second=0, microsecond=0)],
    ) == [(0,)]
    # and a recipe that changes what ingest does is refused, naming the key
    bad = tmp_path / "bad.toml"
    bad.write_text('[extract]\nextractor = "resiliparse"\n')
    with pytest.raises(ConfigError, match=r"extract.extractor.*re-reading"):
        decide(store, load_recipe(bad))


def test_cross_ingest_dedup_keeps_the_earliest_capture(recipe, tmp_path: Path) -> None:
    new = redated(DOLMA / "sample-0001.warc.gz", tmp_path / "crawl-2024.warc.gz", 2024)
    old = redated(DOLMA / "sample-0001.warc.gz", tmp_path / "crawl-2016.warc.gz", 2016)
    store = tmp_path / "s"
    ingest([str(new)], store, recipe)  # the later crawl first
    dedup(store, recipe)
    decide(store, recipe)
    across = """SELECT count(*) FROM documents d JOIN documents r ON r.doc_id = d.reason_detail
                WHERE d.reason = 'duplicate_of' AND r.warc_file_name <> d.warc_file_name"""
    assert q(store, across) == [(0,)]  # (the 2024 file repeats a page of its own: that one is a duplicate already)
    ingest([str(old)], store, recipe)  # then the earlier one, in a second ingest
    p = dedup(store, recipe)
    assert p.new_documents > 0 and p.new_edges > 0
    decide(store, recipe)
    kept = q(
        store, "SELECT DISTINCT warc_file_name FROM documents WHERE status = 'kept' AND dup_cluster_id IS NOT NULL"
    )
    assert kept == [("crawl-2016.warc.gz",)]
    dups = q(
        store,
        """SELECT d.warc_file_name, r.warc_file_name FROM documents d JOIN documents r ON r.doc_id = d.reason_detail
           WHERE d.reason = 'duplicate_of'""",
    )
    assert ("crawl-2024.warc.gz", "crawl-2016.warc.gz") in dups
    assert {rep for _, rep in dups} == {"crawl-2016.warc.gz"}  # the older crawl represents, whatever came first
    anchors = q(
        store, "SELECT DISTINCT a.warc_file_name FROM documents d JOIN documents a ON a.doc_id = d.dup_cluster_id"
    )
    assert anchors == [("crawl-2016.warc.gz",)]


def test_migration_from_the_committed_v1_store(recipe, tmp_path: Path) -> None:
    from curate.migrate import migrate

    store = tmp_path / "v1"
    store.mkdir()
    (store / "provenance.duckdb").write_bytes(gzip.decompress(V1_STORE.read_bytes()))
    with pytest.raises(StoreError, match=r"store-v1.*store-v4.*curate migrate --store"):
        open_store(store)
    assert migrate(store) == ("store-v1", "store-v4")
    assert migrate(store) == ("store-v4", "store-v4")  # a second migrate changes nothing
    assert q(store, "SELECT count(*) FROM documents WHERE flags IS NOT NULL OR flag_detail IS NOT NULL") == [(0,)]
    assert q(store, "SELECT status, count(*) FROM documents GROUP BY 1 ORDER BY 1") == [
        ("dropped", 38),
        ("kept", 13),
        ("quarantined", 1),
    ]
    # the migrated store takes the new commands, without its WARCs
    dedup(store, recipe)
    d = decide(store, recipe)
    assert (d.counts.read, d.counts.kept, d.counts.quarantined) == (52, 13, 1)
    assert q(store, "SELECT count(*) FROM minhash_signatures")[0][0] >= 13
    summary = mix(store, tmp_path / "mix", recipe)
    assert summary.documents == 13
    report(store, tmp_path / "report.html")


def test_migration_from_the_committed_v2_store(recipe, tmp_path: Path) -> None:
    from curate.migrate import migrate

    store = tmp_path / "v2"
    store.mkdir()
    (store / "provenance.duckdb").write_bytes(gzip.decompress(V2_STORE.read_bytes()))
    with pytest.raises(StoreError, match=r"store-v2.*store-v4.*curate migrate --store"):
        open_store(store)
    assert migrate(store) == ("store-v2", "store-v4")
    assert migrate(store) == ("store-v4", "store-v4")
    # the older reader examined nothing for damage: flags are NULL (unknown), never an invented empty list
    assert q(store, "SELECT count(*), count(flags), count(flag_detail) FROM documents") == [(52, 0, 0)]
    assert q(store, "SELECT status, count(*) FROM documents GROUP BY 1 ORDER BY 1") == [
        ("dropped", 38),
        ("kept", 13),
        ("quarantined", 1),
    ]
    assert {
        r[0] for r in q(store, "SELECT DISTINCT charset_source FROM documents WHERE charset_source IS NOT NULL")
    } <= {
        "declared",
        "meta",
        "detected",
        "fallback",
    }  # the older reader's values stay as they were
    assert q(store, "SELECT DISTINCT schema_version FROM runs") == [("store-v2",)]  # who wrote each row
    columns = [c[0] for c in q(store, "DESCRIBE documents")]
    from curate.schema import DOCUMENT_COLUMNS

    assert columns == [c.name for c in DOCUMENT_COLUMNS]
    # the recorded recipes still load, and say what v2 did with truncated records
    from curate.run.commands import _decided_recipe

    assert _decided_recipe(store).read.truncated == "keep"
    d = decide(store, recipe)
    assert (d.counts.read, d.counts.kept, d.counts.quarantined) == (52, 13, 1)
    assert mix(store, tmp_path / "mix", recipe).documents == 13
    report(store, tmp_path / "report.html")


def test_run_equals_the_commands_by_hand(recipe, sample_run, tmp_path: Path) -> None:
    store = tmp_path / "byhand"
    ingest([str(SAMPLE_DIR)], store, recipe)
    dedup(store, recipe)
    decide(store, recipe)
    mix(store, store / "mix", recipe)
    report(store, store / "report.html", mix_dir=store / "mix")
    for table in (*STORE_TABLES, "decisions"):
        assert rows(store, table) == rows(sample_run.store, table), table
    ours = sorted(p.name for p in (store / "mix").iterdir())
    assert ours == sorted(p.name for p in sample_run.mix.iterdir())
    for name in ours:
        assert (store / "mix" / name).read_bytes() == (sample_run.mix / name).read_bytes(), name


def test_not_a_store(recipe, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(StoreError, match="not a curate store"):
        ingest([str(WARCIO / "example.warc.gz")], folder, recipe)
    with pytest.raises(StoreError, match="not a curate store"):
        decide(folder, recipe)
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "provenance.duckdb").write_bytes(b"this is not a database")
    with pytest.raises(StoreError, match="not a curate store"):
        open_store(fake)
    with pytest.raises(StoreError, match="not a curate store"):
        report(tmp_path / "missing", tmp_path / "r.html")


def test_a_locked_store_is_refused_with_the_holder_named(recipe, tmp_path: Path) -> None:
    store = tmp_path / "s"
    ingest([str(WARCIO / "example.warc.gz")], store, recipe)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from curate.store import store_lock\n"
            f"with store_lock(Path({str(store)!r}), 'a test holder'):\n    print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        for attempt in (
            lambda: ingest([str(WARCIO / "post-test.warc.gz")], store, recipe),
            lambda: dedup(store, recipe),
            lambda: decide(store, recipe),
        ):
            with pytest.raises(
                StoreError, match=rf"locked by another curate process \(pid {holder.pid} .*a test holder"
            ):
                attempt()
    finally:
        holder.kill()
        holder.wait()
    decide(store, recipe)  # the lock died with its process
    with store_lock(store, "x"), pytest.raises(StoreError, match="locked"):
        decide(store, recipe)


def _wait_for(path_glob: str, folder: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if list(folder.glob(path_glob)):
            return
        time.sleep(0.05)
    raise AssertionError(f"{path_glob} never appeared under {folder}")


@pytest.mark.slow
def test_an_ingest_killed_midway_leaves_the_store_unchanged_and_resumes(recipe, tmp_path: Path) -> None:
    store = tmp_path / "s"
    ingest([str(WARCIO / "example.warc.gz")], store, recipe)
    before = {t: rows(store, t) for t in STORE_TABLES}
    p = curate_process("ingest", str(SAMPLE_DIR), "--store", str(store), "-q")
    _wait_for("work/ingest-*/progress/*.json", store)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    assert {t: rows(store, t) for t in STORE_TABLES} == before  # never half an ingest
    assert q(store, "SELECT count(*) FROM runs") == [(1,)]
    resumed = curate_process("ingest", str(SAMPLE_DIR), "--store", str(store), "--resume", "-q")
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()
    clean = tmp_path / "clean"
    ingest([str(WARCIO / "example.warc.gz")], clean, recipe)
    ingest([str(SAMPLE_DIR)], clean, recipe)
    for t in STORE_TABLES:
        assert rows(store, t) == rows(clean, t), t


@pytest.mark.slow
def test_ctrl_c_says_what_was_interrupted_and_how_to_resume(tmp_path: Path) -> None:
    store = tmp_path / "s"
    p = curate_process("ingest", str(SAMPLE_DIR), "--store", str(store))
    _wait_for("work/ingest-*/progress/*.json", store)
    os.killpg(p.pid, signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "interrupted" in err and "--resume" in err
    assert not (store / "provenance.duckdb").exists() or q(store, "SELECT count(*) FROM runs") == [(0,)]
