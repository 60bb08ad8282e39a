"""Verification and clustering over the whole store, incrementally.

A dedup pass takes the candidate edges that touch documents no earlier pass has matched (exact keys from
:func:`curate.dedup.buckets.exact_candidates`, LSH candidates from the per-band tasks), keeps the near ones
whose signatures' estimated Jaccard is at least ``threshold - 2 sd`` (or, with ``verify = "exact"``, whose
texts' exact Jaccard is at least ``threshold``), and adds them to ``dup_edges``. Clusters are the connected
components of all edges in the store (union-find: memory grows with the documents that have a duplicate,
about 200 bytes each, not with the corpus). Each cluster is anchored at its **earliest capture in the whole
store**, whichever ingest brought it (then a page licence, then the longest text); every near member is then
checked against the anchor, so chains A~B~C cannot join distant documents. ``curate decide`` picks, within a
cluster, the earliest member its rules keep as the representative.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.dedup.buckets import exact_candidates
from curate.dedup.minhash import Member, UnionFind, choose_representatives, jaccard
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


def verified_near_edges(
    con: Any, edges_dir: Path, *, threshold: float, num_perm: int, ngram: int, verify: str
) -> list[tuple[str, str]]:
    """The LSH candidates under ``edges_dir`` that pass verification."""
    files = sorted(edges_dir.glob("*.parquet"))
    if not files:
        return []
    floor = threshold - signature_margin(threshold, num_perm) if verify != "none" else -1.0
    pairs = f"SELECT DISTINCT a, b FROM read_parquet('{(edges_dir / '*.parquet').as_posix()}')"
    rows = con.execute(
        f"SELECT a, b, est FROM ({_estimated(pairs, num_perm)}) WHERE est >= {floor} ORDER BY a, b"
    ).fetchall()
    if verify != "exact":
        return [(a, b) for a, b, _ in rows]
    texts = _texts(con, {a for a, _, _ in rows} | {b for _, b, _ in rows})
    return [(a, b) for a, b, est in rows if est >= 1.0 or jaccard(texts[a] or "", texts[b] or "", ngram) >= threshold]


def _members(con: Any, ids: list[str]) -> list[Member]:
    with registered(con, "wanted", {"doc_id": ids}):
        rows = con.execute(
            """SELECT doc_id, warc_date, tagged_license_scope, text_chars, text_hash FROM documents
               JOIN wanted USING (doc_id) ORDER BY doc_id"""
        ).fetchall()
    return [Member(r[0], True, r[1], r[2] == "page", r[3] or 0, r[4]) for r in rows]


def _check_against_anchor(
    con: Any, chosen: dict[str, tuple[str, int, str]], *, threshold: float, num_perm: int, ngram: int, verify: str
) -> dict[str, tuple[str, int, str]]:
    """Drop near members that are not near their anchor; recount sizes; dissolve clusters left with one."""
    if verify == "none":
        return chosen
    pairs = [(d, rep) for d, (rep, _, kind) in chosen.items() if kind == "near"]
    if not pairs:
        return chosen
    with registered(con, "star", {"a": [p[0] for p in pairs], "b": [p[1] for p in pairs]}):
        est = con.execute(f"SELECT a, b, est FROM ({_estimated('SELECT a, b FROM star', num_perm)})").fetchall()
    floor = threshold - signature_margin(threshold, num_perm)
    if verify == "exact":
        texts = _texts(con, {a for a, _, _ in est} | {b for _, b, _ in est})
        failed = {a for a, b, _ in est if jaccard(texts[a] or "", texts[b] or "", ngram) < threshold}
    else:
        failed = {a for a, _, e in est if e < floor}
    if not failed:
        return chosen
    kept = {d: v for d, v in chosen.items() if d not in failed}
    sizes: dict[str, int] = {}
    for rep, _, _ in kept.values():
        sizes[rep] = sizes.get(rep, 0) + 1
    return {d: (rep, sizes[rep], kind) for d, (rep, _, kind) in kept.items() if sizes[rep] > 1}


def recluster(con: Any, *, threshold: float, num_perm: int, ngram: int, verify: str) -> tuple[int, int]:
    """Recompute every cluster from ``dup_edges`` and write ``dup_cluster_id`` (the anchor: earliest capture),
    ``dup_cluster_size`` and ``dup_kind`` on ``documents``; returns (documents clustered, clusters)."""

    uf = UnionFind()
    for a, b in con.execute("SELECT a, b FROM dup_edges ORDER BY a, b").fetchall():
        uf.union(a, b)
    roots = {d: uf.find(d) for d in list(uf.parent)}
    chosen = choose_representatives(_members(con, sorted(roots)), roots)
    chosen = _check_against_anchor(con, chosen, threshold=threshold, num_perm=num_perm, ngram=ngram, verify=verify)
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
) -> DedupPass:
    """One dedup pass inside the caller's transaction: verify the new candidates, add them to ``dup_edges``,
    mark the new documents matched, recluster, and record the pass."""

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
                con, edges_dir, threshold=threshold, num_perm=num_perm, ngram=ngram, verify=verify
            )
        ]
    seen: set[tuple[str, str]] = set()
    unique = [(a, b, k) for a, b, k in edges if (a, b) not in seen and not seen.add((a, b))]  # type: ignore[func-returns-value]
    if unique:
        new_edges = {"a": [e[0] for e in unique], "b": [e[1] for e in unique], "kind": [e[2] for e in unique]}
        with registered(con, "new_edges", new_edges):
            con.execute(f"INSERT INTO dup_edges SELECT a, b, kind, {pass_id} FROM new_edges ORDER BY a, b")
    con.execute(f"UPDATE documents SET dedup_pass = {pass_id} WHERE text_hash IS NOT NULL AND dedup_pass IS NULL")
    clustered, clusters = recluster(con, threshold=threshold, num_perm=num_perm, ngram=ngram, verify=verify)
    con.execute(
        "INSERT INTO dedup_passes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [pass_id, started, dt.datetime.now(dt.UTC), params_name, verify, n_new, len(unique), clustered],
    )
    return DedupPass(pass_id, n_new, len(unique), clustered, clusters)
