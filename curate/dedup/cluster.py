"""Verification and clustering over the whole store, incrementally.

A dedup pass takes the candidate edges that touch documents no earlier pass has matched (exact keys from
:func:`curate.dedup.buckets.exact_candidates`, LSH candidates from the per-band tasks), verifies the near
ones and adds those that pass to ``dup_edges``. With ``verify = "text"`` (the default) a candidate whose
signatures' estimated Jaccard is at least half the LSH ``threshold`` has its two texts compared: it is a
duplicate when at least ``containment`` of the smaller text's n-grams are in the other, **and** at least
``containment`` of the n-grams of one text's longest line (its main paragraph) are in the other text, so a copy
with words swapped, sentences dropped or added, or cut short is found, while two articles sharing only a
site's template are not. ``verify = "signature"`` keeps pairs whose estimated Jaccard is at least
``threshold - 2 sd``, ``"exact"`` those whose texts' exact Jaccard is at least ``threshold``. Clusters are the connected
components of all edges in the store (union-find: memory grows with the documents that have a duplicate,
about 200 bytes each, not with the corpus). Each cluster is anchored at its **earliest capture in the whole
store**, whichever ingest brought it (then a page licence, then the longest text); every near member is then
checked against the anchor, so chains A~B~C cannot join distant documents. ``curate decide`` picks, within a
cluster, the earliest member its rules keep as the representative.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.dedup.buckets import exact_candidates
from curate.dedup.minhash import (
    WORDS_V1,
    Member,
    Shingled,
    UnionFind,
    choose_representatives,
    jaccard,
    shared,
    shingled,
)
from curate.dedup.params import signature_margin
from curate.store import registered


@dataclass(frozen=True)
class DedupPass:
    """What one dedup pass did."""

    pass_id: int
    new_documents: int
    new_edges: int
    clustered: int
    clusters: int


def _estimated(pairs: str, num_perm: int) -> str:
    """SQL adding each pair's estimated Jaccard (share of equal MinHash values) to ``pairs`` (a, b)."""
    return f"""
        SELECT p.a, p.b, len(list_filter(list_zip(sa.minhash, sb.minhash), lambda x: x[1] = x[2])) / {num_perm} AS est
        FROM ({pairs}) p JOIN minhash_signatures sa ON sa.doc_id = p.a JOIN minhash_signatures sb ON sb.doc_id = p.b
    """


def _texts(con: Any, ids: set[str]) -> dict[str, str]:
    with registered(con, "wanted", {"doc_id": sorted(ids)}):
        return dict(con.execute("SELECT doc_id, text FROM texts JOIN wanted USING (doc_id)").fetchall())


PAIR_BATCH = 5_000
"""Pairs whose texts one query reads and compares at a time."""
SHINGLED_CACHE = 20_000
"""Shingled texts kept between batches (a few kilobytes each, more for long texts): the anchor checks of a pass
mostly compare the documents its candidates did."""


@dataclass(frozen=True)
class TextCheck:
    """How candidates' texts are compared: shingles of ``scheme`` and ``ngram``, and the ``containment`` a
    duplicate reaches (:func:`is_duplicate`). Holds the :class:`Shingled` texts it read (at most
    :data:`SHINGLED_CACHE`), so a text is read and shingled once however many pairs it is in."""

    scheme: str
    ngram: int
    containment: float
    cache: dict[str, Shingled] = field(default_factory=dict, compare=False, repr=False)

    def is_duplicate(self, a: Shingled, b: Shingled) -> bool:
        """Whether shingled texts ``a`` and ``b`` are duplicates: at least ``containment`` of the smaller one's
        n-grams are in the other, and of one's longest line's n-grams too (as :func:`similarity` measures)."""
        if not a.all.size or not b.all.size:
            return a.all.size == b.all.size
        if shared(a.all, b.all) / min(a.all.size, b.all.size) < self.containment:
            return False
        return any(
            x.main.size and shared(x.main, other.all) / x.main.size >= self.containment for x, other in ((a, b), (b, a))
        )

    def _load(self, con: Any, ids: set[str]) -> None:
        """Read and shingle the texts of ``ids`` not cached yet, evicting the oldest others beyond the limit."""
        missing = ids - self.cache.keys()
        excess = len(self.cache) + len(missing) - SHINGLED_CACHE
        if excess > 0:
            for k in [k for k in self.cache if k not in ids][:excess]:
                del self.cache[k]
        if not missing:
            return
        with registered(con, "wanted", {"doc_id": sorted(missing)}):
            rows = con.execute(
                "SELECT doc_id, t.text, d.language FROM texts t JOIN wanted USING (doc_id) LEFT JOIN documents d USING (doc_id)"
            ).fetchall()
        for doc_id, text, language in rows:
            self.cache[doc_id] = shingled(text or "", self.ngram, self.scheme, language)
        empty = shingled("", self.ngram, self.scheme)
        for doc_id in missing - self.cache.keys():  # no text row: compared as an empty text
            self.cache[doc_id] = empty

    def failing(self, con: Any, pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """The ``pairs`` of doc ids whose texts are not duplicates (read :data:`PAIR_BATCH` pairs at a time)."""
        out: set[tuple[str, str]] = set()
        for start in range(0, len(pairs), PAIR_BATCH):
            batch = pairs[start : start + PAIR_BATCH]
            self._load(con, {x for p in batch for x in p})
            out |= {(a, b) for a, b in batch if not self.is_duplicate(self.cache[a], self.cache[b])}
        return out


def _floor(verify: str, threshold: float, num_perm: int) -> float:
    """The estimated Jaccard a candidate needs before (or, for ``signature``, instead of) its texts are compared."""
    if verify == "none":
        return -1.0
    return threshold / 2 if verify == "text" else threshold - signature_margin(threshold, num_perm)


def verified_near_edges(
    con: Any,
    edges_dir: Path,
    *,
    threshold: float,
    num_perm: int,
    ngram: int,
    verify: str,
    check: TextCheck | None = None,
) -> list[tuple[str, str]]:
    """The LSH candidates under ``edges_dir`` that pass verification (``check``: for ``verify = "text"``)."""
    files = sorted(edges_dir.glob("*.parquet"))
    if not files:
        return []
    floor = _floor(verify, threshold, num_perm)
    pairs = f"SELECT DISTINCT a, b FROM read_parquet('{(edges_dir / '*.parquet').as_posix()}')"
    rows = con.execute(
        f"SELECT a, b, est FROM ({_estimated(pairs, num_perm)}) WHERE est >= {floor} ORDER BY a, b"
    ).fetchall()
    if verify == "text" and check is not None:
        failed = check.failing(con, [(a, b) for a, b, est in rows if est < 1.0])
        return [(a, b) for a, b, _ in rows if (a, b) not in failed]
    if verify != "exact":
        return [(a, b) for a, b, _ in rows]
    texts = _texts(con, {a for a, _, _ in rows} | {b for _, b, _ in rows})
    scheme = check.scheme if check else WORDS_V1
    return [
        (a, b)
        for a, b, est in rows
        if est >= 1.0 or jaccard(texts[a] or "", texts[b] or "", ngram, scheme) >= threshold
    ]


def _members(con: Any, ids: list[str]) -> list[Member]:
    with registered(con, "wanted", {"doc_id": ids}):
        rows = con.execute(
            """SELECT doc_id, warc_date, tagged_license_scope, text_chars, text_hash FROM documents
               JOIN wanted USING (doc_id) ORDER BY doc_id"""
        ).fetchall()
    return [Member(r[0], True, r[1], r[2] == "page", r[3] or 0, r[4]) for r in rows]


def _check_against_anchor(
    con: Any,
    chosen: dict[str, tuple[str, int, str]],
    *,
    threshold: float,
    num_perm: int,
    ngram: int,
    verify: str,
    check: TextCheck | None = None,
) -> dict[str, tuple[str, int, str]]:
    """Drop near members that are not near their anchor; recount sizes; dissolve clusters left with one."""
    if verify == "none":
        return chosen
    pairs = [(d, rep) for d, (rep, _, kind) in chosen.items() if kind == "near"]
    if not pairs:
        return chosen
    with registered(con, "star", {"a": [p[0] for p in pairs], "b": [p[1] for p in pairs]}):
        est = con.execute(f"SELECT a, b, est FROM ({_estimated('SELECT a, b FROM star', num_perm)})").fetchall()
    floor = _floor(verify, threshold, num_perm)
    if verify == "text" and check is not None:
        low = [(a, b) for a, b, e in est if e < floor]
        failed = {a for a, _ in low} | {
            a for a, _ in check.failing(con, [(a, b) for a, b, e in est if floor <= e < 1.0])
        }
    elif verify == "exact":
        texts = _texts(con, {a for a, _, _ in est} | {b for _, b, _ in est})
        scheme = check.scheme if check else WORDS_V1
        failed = {a for a, b, _ in est if jaccard(texts[a] or "", texts[b] or "", ngram, scheme) < threshold}
    else:
        failed = {a for a, _, e in est if e < floor}
    if not failed:
        return chosen
    kept = {d: v for d, v in chosen.items() if d not in failed}
    sizes: dict[str, int] = {}
    for rep, _, _ in kept.values():
        sizes[rep] = sizes.get(rep, 0) + 1
    return {d: (rep, sizes[rep], kind) for d, (rep, _, kind) in kept.items() if sizes[rep] > 1}


def recluster(
    con: Any, *, threshold: float, num_perm: int, ngram: int, verify: str, check: TextCheck | None = None
) -> tuple[int, int]:
    """Recompute every cluster from ``dup_edges`` and write ``dup_cluster_id`` (the anchor: earliest capture),
    ``dup_cluster_size`` and ``dup_kind`` on ``documents``; returns (documents clustered, clusters)."""

    uf = UnionFind()
    for a, b in con.execute("SELECT a, b FROM dup_edges ORDER BY a, b").fetchall():
        uf.union(a, b)
    roots = {d: uf.find(d) for d in list(uf.parent)}
    chosen = choose_representatives(_members(con, sorted(roots)), roots)
    chosen = _check_against_anchor(
        con, chosen, threshold=threshold, num_perm=num_perm, ngram=ngram, verify=verify, check=check
    )
    con.execute(
        "UPDATE documents SET dup_cluster_id = NULL, dup_cluster_size = NULL, dup_kind = NULL WHERE dup_cluster_id IS NOT NULL"
    )
    if chosen:
        table = {
            "doc_id": list(chosen),
            "rep": [v[0] for v in chosen.values()],
            "size": [v[1] for v in chosen.values()],
            "kind": [None if v[2] == "self" else v[2] for v in chosen.values()],
        }
        with registered(con, "clusters", table):
            con.execute(
                """UPDATE documents SET dup_cluster_id = c.rep, dup_cluster_size = c.size, dup_kind = c.kind
                   FROM clusters c WHERE documents.doc_id = c.doc_id"""
            )
    return len(chosen), len({v[0] for v in chosen.values()})


def unmatched(con: Any) -> int:
    """Documents with text that no dedup pass has matched yet."""
    return int(
        con.execute("SELECT count(*) FROM documents WHERE text_hash IS NOT NULL AND dedup_pass IS NULL").fetchone()[0]
    )


def record_pass(
    con: Any,
    edges_dir: Path | None,
    *,
    params_name: str,
    threshold: float,
    num_perm: int,
    ngram: int,
    verify: str,
    exact: bool,
    started: dt.datetime,
    scheme: str = WORDS_V1,
    containment: float = 0.5,
) -> DedupPass:
    """One dedup pass inside the caller's transaction: verify the new candidates, add them to ``dup_edges``,
    mark the new documents matched, recluster, and record the pass. ``scheme`` and ``containment``: how
    ``verify = "text"`` compares texts (:class:`TextCheck`)."""
    check = TextCheck(scheme, ngram, containment)

    pass_id = int(con.execute("SELECT coalesce(max(pass_id), 0) + 1 FROM dedup_passes").fetchone()[0])
    n_new = unmatched(con)
    if n_new == 0:  # nothing new since the last pass: the clusters stand as they are
        clustered, clusters = con.execute(
            "SELECT count(dup_cluster_id), count(DISTINCT dup_cluster_id) FROM documents"
        ).fetchone()
        return DedupPass(pass_id - 1, 0, 0, int(clustered), int(clusters))
    edges: list[tuple[str, str, str]] = []
    if exact:
        edges += [(a, b, "exact") for a, b in exact_candidates(con)]
    if edges_dir is not None:
        edges += [
            (a, b, "near")
            for a, b in verified_near_edges(
                con, edges_dir, threshold=threshold, num_perm=num_perm, ngram=ngram, verify=verify, check=check
            )
        ]
    seen: set[tuple[str, str]] = set()
    unique = [(a, b, k) for a, b, k in edges if (a, b) not in seen and not seen.add((a, b))]  # type: ignore[func-returns-value]
    if unique:
        new_edges = {"a": [e[0] for e in unique], "b": [e[1] for e in unique], "kind": [e[2] for e in unique]}
        with registered(con, "new_edges", new_edges):
            con.execute(f"INSERT INTO dup_edges SELECT a, b, kind, {pass_id} FROM new_edges ORDER BY a, b")
    con.execute(f"UPDATE documents SET dedup_pass = {pass_id} WHERE text_hash IS NOT NULL AND dedup_pass IS NULL")
    clustered, clusters = recluster(
        con, threshold=threshold, num_perm=num_perm, ngram=ngram, verify=verify, check=check
    )
    con.execute(
        "INSERT INTO dedup_passes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [pass_id, started, dt.datetime.now(dt.UTC), params_name, verify, n_new, len(unique), clustered],
    )
    return DedupPass(pass_id, n_new, len(unique), clustered, clusters)
