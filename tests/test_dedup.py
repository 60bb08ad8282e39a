"""Exact and near-duplicate detection: signatures, band choice, clustering over shards, representatives,
and dedup against an earlier store."""

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


def _shards(work: Path, docs: dict[str, str], recipe) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from curate.schema import DOCUMENT_COLUMNS, SHARD_DEDUP_FIELDS, arrow_schema

    p = recipe.dedup_params
    mh = MinHasher(p.num_perm, p.ngram, p.seed)
    rows = []
    for doc_id, text in docs.items():
        sig = mh.signature(text)
        rows.append(
            {
                "doc_id": doc_id,
                "text": text,
                "text_hash": text_hash(text),
                "minhash": sig.tolist(),
                "bands": band_keys(sig, p.bands, p.rows),
                "status": "kept",
            }
        )
    (work / "documents").mkdir(parents=True)
    schema = arrow_schema(DOCUMENT_COLUMNS, [pa.field("text", pa.string()), *SHARD_DEDUP_FIELDS])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), work / "documents" / "00000.parquet")


@pytest.mark.parametrize("verify", ["signature", "exact"])
def test_cluster_documents_over_shards(tmp_path: Path, verify: str) -> None:
    import duckdb

    from curate.dedup.buckets import DedupBucketStep
    from curate.dedup.cluster import cluster_documents
    from curate.recipe import load_recipe

    recipe = load_recipe()
    other = " ".join(_RNG.choice(VOCAB) for _ in range(400))
    docs = {
        "a": BASE,
        "b": edited(BASE, 4, 1),
        "c": other,
        "d": BASE.upper() + " !",
        "e": edited(BASE, 150, 2),
        "f": edited(other, 3, 3),
    }
    _shards(tmp_path, docs, recipe)
    step = DedupBucketStep(str(tmp_path), recipe.dedup_params.bands)
    for rank in range(3):  # three tasks share the bands
        list(step.run(None, rank, 3) or ())
    assert len(list((tmp_path / "edges").glob("*.parquet"))) == recipe.dedup_params.bands
    roots = cluster_documents(
        duckdb.connect(), tmp_path, threshold=0.8, num_perm=128, ngram=5, verify=verify, exact=True, near=True
    )
    assert roots["a"] == roots["b"] == roots["d"]
    assert roots["c"] == roots["f"] and roots["c"] != roots["a"]
    assert "e" not in roots  # 150 of 400 words changed: far below 0.8


def test_all_identical_corpus_is_one_cluster(tmp_path: Path) -> None:
    import duckdb

    from curate.dedup.buckets import DedupBucketStep
    from curate.dedup.cluster import cluster_documents
    from curate.recipe import load_recipe

    recipe = load_recipe()
    _shards(tmp_path, {f"d{i:03d}": BASE for i in range(200)}, recipe)
    list(DedupBucketStep(str(tmp_path), recipe.dedup_params.bands).run(None, 0, 1) or ())
    roots = cluster_documents(
        duckdb.connect(), tmp_path, threshold=0.8, num_perm=128, ngram=5, verify="signature", exact=True, near=True
    )
    assert len(roots) == 200 and len(set(roots.values())) == 1


@pytest.mark.slow
def test_dedup_against_an_earlier_store(tmp_path: Path) -> None:
    import shutil

    from curate.run.plan import run_pipeline
    from curate.store import open_store

    from conftest import WARC_DIR

    first_in = tmp_path / "first"
    first_in.mkdir()
    shutil.copy(WARC_DIR / "warc-dolma/tests/data/warc/sample-0001.warc.gz", first_in / "crawl-a.warc.gz")
    keep_all = tmp_path / "keep.toml"
    keep_all.write_text("[score]\nthreshold = 1.0\nkeep_unscored_post_cutoff = true\n")
    first = run_pipeline([str(first_in)], tmp_path / "out1", keep_all, quiet=True)
    second_in = tmp_path / "second"
    second_in.mkdir()
    shutil.copy(WARC_DIR / "warc-dolma/tests/data/warc/sample-0001.warc.gz", second_in / "crawl-b.warc.gz")
    against = tmp_path / "against.toml"
    against.write_text(
        f'[score]\nthreshold = 1.0\nkeep_unscored_post_cutoff = true\n[dedup]\nagainst = ["{first.store}"]\n'
    )
    second = run_pipeline([str(second_in)], tmp_path / "out2", against, quiet=True)
    a, b = open_store(first.store), open_store(second.store)
    kept_first = {r[0] for r in a.execute("SELECT text_hash FROM documents WHERE status = 'kept'").fetchall()}
    assert kept_first and b.execute("SELECT count(*) FROM documents WHERE status = 'kept'").fetchone()[0] == 0
    old_ids = {r[0] for r in a.execute("SELECT doc_id FROM documents WHERE status = 'kept'").fetchall()}
    pointers = {r[0] for r in b.execute("SELECT reason_detail FROM documents WHERE reason = 'duplicate_of'").fetchall()}
    assert pointers and pointers <= old_ids
    assert a.execute("SELECT count(*) FROM minhash_signatures").fetchone()[0] == len(old_ids)


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
