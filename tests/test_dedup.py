"""Exact and near-duplicate detection: signatures, band choice, clustering over a store (incrementally),
representatives."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import numpy as np
import pytest

from curate.dedup.minhash import (
    Member,
    MinHasher,
    band_keys,
    candidate_probability,
    choose_representatives,
    jaccard,
    normalise_text,
    text_hash,
)
from curate.dedup.params import recall_bands, signature_margin

_RNG = random.Random(1)
VOCAB = [f"w{i}" for i in range(3000)]
BASE = " ".join(_RNG.choice(VOCAB) for _ in range(400))


def edited(text: str, n: int, seed: int) -> str:
    words = text.split()
    rng = random.Random(seed)
    for _ in range(n):
        words[rng.randrange(len(words))] = "changed"
    return " ".join(words)


def test_normalised_hash_ignores_case_punctuation_space() -> None:
    assert text_hash("Hello,  World!") == text_hash("hello world")
    assert normalise_text("Ａｂｃ") == "abc"


def test_signatures_are_deterministic_and_estimate_jaccard() -> None:
    mh = MinHasher(128, 5, seed=1)
    assert mh.signature("") is None and mh.signature("!!! ...") is None and mh.signature("one") is not None
    assert np.array_equal(mh.signature(BASE), MinHasher(128, 5, seed=1).signature(BASE))
    assert not np.array_equal(mh.signature(BASE), MinHasher(128, 5, seed=2).signature(BASE))
    errors = []
    for k in (5, 15, 30, 60):
        other = edited(BASE, k, k)
        est = float((mh.signature(BASE) == mh.signature(other)).mean())
        errors.append(est - jaccard(BASE, other, 5))
    assert abs(float(np.mean(errors))) < 0.05 and max(map(abs, errors)) < 0.15


def test_cjk_text_is_shingled_by_character() -> None:
    mh = MinHasher(64, 5)
    a = "低背景钢是在一九四五年以前冶炼的钢材没有放射性污染" * 3
    assert mh.signature(a) is not None and jaccard(a, a + "。", 5) > 0.9


def test_band_split_reaches_the_recall_floor() -> None:
    for threshold in (0.7, 0.8, 0.9):
        b, r = recall_bands(threshold, 128, 0.97)
        assert b * r <= 128
        assert candidate_probability(threshold, b, r) >= 0.97
        assert candidate_probability(threshold - 0.3, b, r) < 0.2
    assert signature_margin(0.8, 128) == pytest.approx(0.0707, abs=1e-3)
    sig = MinHasher(128, 5).signature(BASE)
    assert len(band_keys(sig, 15, 7)) == 15


def test_earliest_kept_capture_represents() -> None:
    t = lambda y: dt.datetime(y, 1, 1, tzinfo=dt.UTC)  # noqa: E731
    members = [
        Member("late", True, t(2024), True, 900, "h1"),
        Member("early", True, t(2020), False, 100, "h2"),
        Member("undated", True, None, True, 5000, "h1"),
        Member("dropped-earliest", False, t(2010), True, 100, "h2"),
    ]
    roots = {m.doc_id: "x" for m in members}
    chosen = choose_representatives(members, roots)
    assert {k: v[0] for k, v in chosen.items()} == dict.fromkeys(roots, "early")
    assert chosen["early"][2] == "self" and chosen["dropped-earliest"][2] == "exact" and chosen["late"][2] == "near"
    assert chosen["late"][1] == 4


def test_license_then_length_break_date_ties() -> None:
    t = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    members = [
        Member("a", True, t, False, 5000, "h"),
        Member("b", True, t, True, 100, "h"),
        Member("c", True, t, True, 900, "h"),
    ]
    chosen = choose_representatives(members, dict.fromkeys("abc", "r"))
    assert chosen["a"][0] == "c"


def _store(folder: Path, docs: dict[str, str], recipe, year: int = 2020) -> Path:
    """A real store holding ``docs`` (doc_id → text) with their hashes, signatures and band keys, as an
    ingest would write them (no WARC needed to test clustering)."""
    import pyarrow as pa

    from curate.store import registered, writing

    p = recipe.dedup_params
    mh = p.hasher()
    bands: dict[str, list] = {"doc_id": [], "band": [], "key": []}
    with writing(folder, "test", create=True) as con:
        for i, (doc_id, text) in enumerate(docs.items()):
            sig = mh.signature(text)
            con.execute(
                "INSERT INTO documents (doc_id, warc_file_name, text_hash, text_chars, warc_date) VALUES (?, ?, ?, ?, ?)",
                [
                    doc_id,
                    f"f{year}.warc.gz",
                    text_hash(text),
                    len(text),
                    dt.datetime(year, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=i),
                ],
            )
            con.execute("INSERT INTO texts VALUES (?, ?)", [doc_id, text])
            con.execute("INSERT INTO minhash_signatures VALUES (?, ?)", [doc_id, sig.tolist()])
            for band, key in enumerate(band_keys(sig, p.bands, p.rows), start=1):
                bands["doc_id"].append(doc_id)
                bands["band"].append(band)
                bands["key"].append(key)
        table = pa.table({**bands, "key": pa.array(bands["key"], pa.uint64())})
        with registered(con, "new_bands", table):
            con.execute("INSERT INTO minhash_bands SELECT doc_id, band, key FROM new_bands")
    return folder


def _clusters(store: Path) -> dict[str, str]:
    from curate.store import open_store

    con = open_store(store)
    try:
        return dict(
            con.execute("SELECT doc_id, dup_cluster_id FROM documents WHERE dup_cluster_id IS NOT NULL").fetchall()
        )
    finally:
        con.close()


@pytest.mark.parametrize("verify", ["text", "signature", "exact"])
def test_clusters_over_the_store(tmp_path: Path, verify: str) -> None:
    from dataclasses import replace

    from curate.recipe import load_recipe
    from curate.run.commands import dedup

    recipe = load_recipe()
    recipe = replace(recipe, dedup=replace(recipe.dedup, verify=verify))
    other = " ".join(_RNG.choice(VOCAB) for _ in range(400))
    docs = {
        "a": BASE,
        "b": edited(BASE, 4, 1),
        "c": other,
        "d": BASE.upper() + " !",
        "e": edited(BASE, 150, 2),
        "f": edited(other, 3, 3),
    }
    store = _store(tmp_path / "s", docs, recipe)
    result = dedup(store, recipe)
    assert result.new_documents == 6 and result.clusters == 2
    roots = _clusters(store)
    assert roots["a"] == roots["b"] == roots["d"] == "a"  # the earliest capture anchors its cluster
    assert roots["c"] == roots["f"] == "c"
    assert "e" not in roots  # 150 of 400 words changed: far below any of the rules


def test_all_identical_corpus_is_one_cluster(tmp_path: Path) -> None:
    from curate.recipe import load_recipe
    from curate.run.commands import dedup

    recipe = load_recipe()
    store = _store(tmp_path / "s", {f"d{i:03d}": BASE for i in range(200)}, recipe)
    dedup(store, recipe)
    roots = _clusters(store)
    assert len(roots) == 200 and set(roots.values()) == {"d000"}


def test_incremental_passes_equal_one_pass(tmp_path: Path) -> None:
    """A second pass matches only the new documents, against everything, and ends where one pass over all
    of them ends; the anchor moves to an older capture that arrives later."""
    from curate.recipe import load_recipe
    from curate.run.commands import dedup
    from curate.store import open_store, writing

    recipe = load_recipe()
    other = " ".join(_RNG.choice(VOCAB) for _ in range(400))
    first = {"n1": BASE, "n2": edited(BASE, 3, 5), "n3": other}
    later = {
        "o1": edited(BASE, 2, 6),
        "o2": edited(other, 2, 7),
        "o3": " ".join(_RNG.choice(VOCAB) for _ in range(300)),
    }
    both = _store(tmp_path / "both", {**first, **later}, recipe)
    # the later batch is the older crawl: move its captures back in time in both stores
    inc = _store(tmp_path / "inc", first, recipe, year=2024)
    dedup(inc, recipe)
    with writing(inc, "test") as con:
        for i, (doc_id, text) in enumerate(later.items()):
            con.execute(
                "INSERT INTO documents (doc_id, warc_file_name, text_hash, text_chars, warc_date) VALUES (?, 'old.warc.gz', ?, ?, ?)",
                [doc_id, text_hash(text), len(text), dt.datetime(2010, 1, 1, 0, 0, i, tzinfo=dt.UTC)],
            )
    src = open_store(both)
    sigs = src.execute("SELECT * FROM minhash_signatures WHERE doc_id LIKE 'o%'").fetchall()
    bands = src.execute("SELECT * FROM minhash_bands WHERE doc_id LIKE 'o%'").fetchall()
    src.close()
    with writing(inc, "test") as con:
        con.executemany("INSERT INTO minhash_signatures VALUES (?, ?)", sigs)
        con.executemany("INSERT INTO minhash_bands VALUES (?, ?, ?)", bands)
        con.executemany("INSERT INTO texts VALUES (?, ?)", list(later.items()))
    second = dedup(inc, recipe)
    assert second.new_documents == 3 and second.pass_id == 2
    with writing(both, "test") as con:
        con.execute("UPDATE documents SET warc_date = warc_date - INTERVAL 20 YEAR WHERE doc_id LIKE 'o%'")
    dedup(both, recipe)
    assert _clusters(inc) == _clusters(both)
    assert _clusters(inc)["n1"] == "o1" and _clusters(inc)["n3"] == "o2"  # the older captures anchor


def test_megabyte_documents_sign_in_bounded_memory() -> None:
    import tracemalloc

    big = " ".join(_RNG.choice(VOCAB) for _ in range(600_000))  # ~3.5 MB
    mh = MinHasher(128, 5)
    tracemalloc.start()
    sig = mh.signature(big)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert sig is not None and peak < 200 * 2**20
    assert np.array_equal(sig, mh.signature(big))
    # same answer as the unchunked definition on a small text
    small = mh.shingle_hashes(BASE)
    with np.errstate(over="ignore"):
        direct = ((small[:, None] * mh.a[None, :] + mh.b[None, :]) >> np.uint64(32)).min(axis=0)
    assert np.array_equal(mh.signature(BASE), direct)


def test_a_store_keeps_the_settings_it_was_ingested_with() -> None:
    from curate.recipe import ingest_settings, load_recipe, with_store_settings

    recipe = load_recipe()
    old = {k: v for k, v in ingest_settings(recipe).items() if k != "dedup.scheme"}  # before schemes existed
    old.update({"dedup.threshold": 0.8, "dedup.num_perm": 128, "dedup.ngram": 5})
    adopted = with_store_settings(recipe, old)
    d = adopted.dedup
    assert (d.scheme, d.threshold, d.num_perm, d.ngram) == ("words-v1", 0.8, 128, 5)
    assert adopted.dedup_params.name == "minhash-lsh-v2:perm=128,ngram=5,bands=15x7,seed=1234"
    assert '"ngram": 5' in adopted.source and d.verify == recipe.dedup.verify  # dedup-time keys stay the recipe's
    assert with_store_settings(recipe, ingest_settings(recipe)) is recipe


def _near_dup_docs(n_groups: int = 12, copies: int = 4) -> dict[str, str]:
    """Groups of near-duplicate texts (a base and lightly edited copies) plus unrelated texts: candidates fall
    in many LSH bands."""
    rng = random.Random(7)
    docs: dict[str, str] = {}
    for g in range(n_groups):
        base = " ".join(rng.choice(VOCAB) for _ in range(300))
        docs[f"g{g:02d}-0"] = base
        for c in range(1, copies):
            docs[f"g{g:02d}-{c}"] = edited(base, 10 * c, 100 * g + c)
    for i in range(10):
        docs[f"solo{i}"] = " ".join(rng.choice(VOCAB) for _ in range(300))
    return docs


def test_bucket_edges_do_not_depend_on_the_task_count(tmp_path: Path) -> None:
    """The bucket tasks of every split of the bands (1 task, several, one per band, more tasks than bands) write,
    together, the same candidate pairs; each task writes one file for its bands."""
    from dataclasses import replace

    import duckdb

    from curate.dedup.buckets import DedupBucketStep
    from curate.recipe import load_recipe
    from curate.store import store_file

    recipe = load_recipe()
    recipe = replace(recipe, dedup=replace(recipe.dedup, num_perm=64))  # 27 bands: fewer tasks to run here
    bands = recipe.dedup_params.bands
    store = _store(tmp_path / "s", _near_dup_docs(), recipe)
    found: dict[int, set[tuple[str, str]]] = {}
    for world in (1, 3, bands, bands + 7):
        work = tmp_path / f"w{world}"
        step = DedupBucketStep(str(store_file(store)), str(work), bands, "256MB", threads=1)
        for rank in range(world):
            list(step.run(None, rank, world))
        files = sorted((work / "edges").glob("*.parquet"))
        assert len(files) == min(world, bands)
        found[world] = set(
            duckdb.sql(f"SELECT DISTINCT a, b FROM read_parquet('{(work / 'edges').as_posix()}/*.parquet')").fetchall()
        )
    assert len(found[1]) >= 12 * 3  # every group's copies are candidates of its base
    assert all(pairs == found[1] for pairs in found.values())


def test_a_pass_split_into_bucket_tasks_equals_one_task(tmp_path: Path) -> None:
    """``dedup.tasks`` bucket tasks (here in 2 local worker processes, each opening the store read-only while
    ``dedup`` holds the store's lock) give the edges, clusters and documents of the single-task pass."""
    from dataclasses import replace

    from curate.recipe import load_recipe
    from curate.run.commands import dedup

    from conftest import STORE_TABLES, store_rows

    recipe = load_recipe()
    docs = _near_dup_docs()
    one = _store(tmp_path / "one", docs, recipe)
    many = _store(tmp_path / "many", docs, recipe)
    dedup(one, recipe)
    split = replace(recipe, dedup=replace(recipe.dedup, tasks=3), executor=replace(recipe.executor, workers=2))
    result = dedup(many, split)
    assert result.clusters == 12 and result.new_documents == len(docs)
    for table in STORE_TABLES:
        assert store_rows(one, table, frozenset({"dedup_pass"})) == store_rows(many, table, frozenset({"dedup_pass"}))
    assert _clusters(one) == _clusters(many)
    assert not (many / "work" / "dedup-1").exists()  # the tasks' edges are removed once the pass is recorded
