"""Candidate verification and clustering over the store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from curate.dedup.buckets import shards_glob
from curate.dedup.minhash import UnionFind, jaccard
from curate.dedup.params import DedupParams, signature_margin


def _verified_near_edges(
    con: Any, work: Path, *, threshold: float, num_perm: int, verify: str, ngram: int
) -> list[tuple[str, str]]:
    edges = (work / "edges" / "*.parquet").as_posix()
    if not list((work / "edges").glob("*.parquet")):
        return []
    floor = threshold - signature_margin(threshold, num_perm) if verify != "none" else -1.0
    rows = con.execute(
        f"""
        WITH e AS (SELECT DISTINCT a, b FROM read_parquet('{edges}')),
             s AS (SELECT doc_id, minhash FROM read_parquet('{shards_glob(work)}') WHERE minhash IS NOT NULL)
        SELECT e.a, e.b, len(list_filter(list_zip(sa.minhash, sb.minhash), lambda x: x[1] = x[2])) / {num_perm} AS est
        FROM e JOIN s sa ON sa.doc_id = e.a JOIN s sb ON sb.doc_id = e.b
        WHERE len(list_filter(list_zip(sa.minhash, sb.minhash), lambda x: x[1] = x[2])) / {num_perm} >= {floor}
        ORDER BY e.a, e.b
        """
    ).fetchall()
    if verify != "exact":
        return [(a, b) for a, b, _ in rows]
    texts = dict(
        con.execute(
            f"""SELECT doc_id, text FROM read_parquet('{shards_glob(work)}')
                WHERE doc_id IN (SELECT a FROM read_parquet('{edges}') UNION SELECT b FROM read_parquet('{edges}'))"""
        ).fetchall()
    )
    return [(a, b) for a, b, est in rows if est >= 1.0 or jaccard(texts[a] or "", texts[b] or "", ngram) >= threshold]


def _exact_edges(con: Any, work: Path) -> list[tuple[str, str]]:
    out = []
    for key, cond in (
        ("text_hash", "text_hash IS NOT NULL"),
        (
            "warc_payload_digest",
            "warc_payload_digest IS NOT NULL AND coalesce(payload_digest_ok, true) AND text_hash IS NOT NULL",
        ),
    ):
        out += con.execute(
            f"""
            WITH g AS (SELECT doc_id, min(doc_id) OVER (PARTITION BY {key}) AS first
                       FROM read_parquet('{shards_glob(work)}') WHERE {cond} AND coalesce(status, '') <> 'quarantined')
            SELECT first, doc_id FROM g WHERE doc_id <> first ORDER BY 1, 2
            """
        ).fetchall()
    return out


def cluster_documents(
    con: Any, work: Path, *, threshold: float, num_perm: int, ngram: int, verify: str, exact: bool, near: bool
) -> dict[str, str]:
    """doc_id → cluster root for every document with a duplicate in this run's shards."""
    uf = UnionFind()
    if exact:
        for a, b in _exact_edges(con, work):
            uf.union(a, b)
    if near:
        for a, b in _verified_near_edges(con, work, threshold=threshold, num_perm=num_perm, verify=verify, ngram=ngram):
            uf.union(a, b)
    groups: dict[str, list[str]] = {}
    for doc in list(uf.parent):
        groups.setdefault(uf.find(doc), []).append(doc)
    return {d: root for root, members in groups.items() if len(members) > 1 for d in members}


def split_chains(
    con: Any,
    work: Path,
    chosen: dict[str, tuple[str, int, str]],
    *,
    threshold: float,
    num_perm: int,
    verify: str,
    ngram: int,
) -> dict[str, tuple[str, int, str]]:
    """Check every member against its representative (union-find chains A~B~C can join A with a distant C);
    members that fail leave their cluster. Returns the surviving assignments with cluster sizes recounted."""
    if verify == "none":
        return chosen
    import pyarrow as pa

    pairs = [(d, rep) for d, (rep, _, kind) in chosen.items() if kind == "near"]
    if not pairs:
        return chosen
    con.register("star", pa.table({"a": [p[0] for p in pairs], "b": [p[1] for p in pairs]}))
    try:
        sigs = con.execute(
            f"""WITH s AS (SELECT doc_id, minhash, text FROM read_parquet('{shards_glob(work)}'))
                SELECT star.a, len(list_filter(list_zip(sa.minhash, sb.minhash), lambda x: x[1] = x[2])) / {num_perm},
                       {"sa.text, sb.text" if verify == "exact" else "NULL, NULL"}
                FROM star JOIN s sa ON sa.doc_id = star.a JOIN s sb ON sb.doc_id = star.b"""
        ).fetchall()
    finally:
        con.unregister("star")
    floor = threshold - signature_margin(threshold, num_perm)
    failed = {
        a
        for a, est, ta, tb in sigs
        if (jaccard(ta or "", tb or "", ngram) < threshold if verify == "exact" else est < floor)
    }
    if not failed:
        return chosen
    kept = {d: v for d, v in chosen.items() if d not in failed}
    sizes: dict[str, int] = {}
    for rep, _, _ in kept.values():
        sizes[rep] = sizes.get(rep, 0) + 1
    return {d: (rep, sizes[rep], kind) for d, (rep, _, kind) in kept.items() if sizes[rep] > 1}


def matches_in_old_store(
    con: Any, work: Path, old_store: str, params: DedupParams, *, threshold: float, verify: str
) -> dict[str, tuple[str, str]]:
    """new doc_id → (old doc_id, 'exact' | 'near') for new documents that duplicate a kept document of ``old_store``.

    Raises:
        ConfigError: the old store was built with other dedup parameters.
    """
    import json

    from curate.errors import ConfigError

    con.execute(f"ATTACH '{old_store}' AS old (READ_ONLY)")
    try:
        names = {
            json.loads(v[0]).get("dedup_params") for v in con.execute("SELECT versions_json FROM old.runs").fetchall()
        }
        if names != {params.name}:
            raise ConfigError(
                f"dedup.against {old_store}: built with {sorted(map(str, names))}, this run uses {params.name}; rerun one with the other's [dedup] settings"
            )
        floor = threshold - signature_margin(threshold, params.num_perm) if verify != "none" else -1.0
        new = f"(SELECT doc_id, text_hash, minhash, bands FROM read_parquet('{shards_glob(work)}') WHERE text_hash IS NOT NULL)"
        exact = con.execute(
            f"""SELECT n.doc_id, min(d.doc_id) FROM {new} n JOIN old.documents d USING (text_hash)
                WHERE d.status = 'kept' GROUP BY n.doc_id ORDER BY n.doc_id"""
        ).fetchall()
        near = con.execute(
            f"""
            WITH n AS {new},
                 nb AS (SELECT doc_id, unnest(bands) AS key, generate_subscripts(bands, 1) AS band FROM n WHERE bands IS NOT NULL),
                 cand AS (SELECT DISTINCT nb.doc_id AS new_id, ob.doc_id AS old_id FROM nb JOIN old.minhash_bands ob USING (band, key))
            SELECT c.new_id, min(c.old_id) FROM cand c JOIN n ON n.doc_id = c.new_id JOIN old.minhash_signatures s ON s.doc_id = c.old_id
            WHERE len(list_filter(list_zip(n.minhash, s.minhash), lambda x: x[1] = x[2])) / {params.num_perm} >= {floor}
            GROUP BY c.new_id ORDER BY c.new_id
            """
        ).fetchall()
    finally:
        con.execute("DETACH old")
    out = {new_id: (old_id, "near") for new_id, old_id in near}
    out.update({new_id: (old_id, "exact") for new_id, old_id in exact})
    return out


def save_signatures(con: Any, work: Path) -> None:
    """Keep the kept documents' signatures and band keys in the store, for dedup against this corpus later."""
    con.execute(
        f"""INSERT INTO minhash_signatures SELECT s.doc_id, s.minhash FROM read_parquet('{shards_glob(work)}') s
            JOIN documents d USING (doc_id) WHERE d.status = 'kept' AND s.minhash IS NOT NULL ORDER BY s.doc_id"""
    )
    con.execute(
        """INSERT INTO minhash_bands SELECT doc_id, generate_subscripts(bands, 1) AS band, unnest(bands) AS key FROM (
             SELECT s.doc_id, s.bands FROM read_parquet(?) s JOIN documents d USING (doc_id)
             WHERE d.status = 'kept' AND s.bands IS NOT NULL) ORDER BY doc_id, band""",
        [shards_glob(work)],
    )


