"""Exact and near-duplicate clustering, and the earliest-capture representative."""

from __future__ import annotations

import datetime as dt
import random

from curate.dedup import Member, choose_representatives, cluster, normalise_text, signature, text_hash

_RNG = random.Random(1)
BASE = " ".join(
    _RNG.choice(["alpha", "beta", "gamma", "delta", "river", "stone", "light", "north", "paper", "glass"])
    + str(_RNG.randrange(50))
    for _ in range(400)
)


def edited(text: str, n: int, seed: int) -> str:
    words = text.split()
    rng = random.Random(seed)
    for _ in range(n):
        words[rng.randrange(len(words))] = "changed"
    return " ".join(words)


def test_normalised_hash_ignores_case_punctuation_space() -> None:
    assert text_hash("Hello,  World!") == text_hash("hello world")
    assert normalise_text("Ａｂｃ") == "abc"


def test_no_signature_for_empty_text() -> None:
    assert signature("", 128, 5) is None
    assert signature("!!! ...", 128, 5) is None
    assert signature("one", 128, 5) is not None


def test_near_duplicates_cluster_and_distinct_texts_do_not() -> None:
    other = " ".join(reversed(BASE.split()))
    docs = {"a": BASE, "b": edited(BASE, 4, 1), "c": other, "d": BASE.upper()}
    triples = [(k, text_hash(v), signature(v, 128, 5)) for k, v in docs.items()]
    roots = cluster(triples, exact=True, near=True, threshold=0.8, num_perm=128)
    assert roots["a"] == roots["b"] == roots["d"]
    assert "c" not in roots


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


def test_clustering_is_order_independent() -> None:
    texts = [edited(BASE, k, k) for k in range(6)] + [edited(" ".join(reversed(BASE.split())), k, k) for k in range(3)]
    triples = [(f"d{i}", text_hash(x), signature(x, 128, 5)) for i, x in enumerate(texts)]
    a = cluster(triples, exact=True, near=True, threshold=0.8, num_perm=128)
    b = cluster(list(reversed(triples)), exact=True, near=True, threshold=0.8, num_perm=128)
    assert a == b
