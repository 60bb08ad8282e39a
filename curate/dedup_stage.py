"""The global dedup stage: buckets per LSH band, candidate verification, clustering, representatives.

Scale-out shape (each arrow is independently restartable):

1. signatures, per stage-1 task (``SignatureStep``): 32-bit MinHash values and one 64-bit key per band, written
   into the task's Parquet shard;
2. buckets, one datatrove task per band (``DedupBucketStep``): DuckDB groups that band's keys over all shards
   (spilling to disk, so memory stays bounded) and writes star edges ``(first doc, other doc)`` of every bucket
   with more than one document to ``edges/<band>.parquet``;
3. verify + cluster, one task (``cluster_documents``): near-candidate edges are kept when the signatures'
   estimated Jaccard is at least ``threshold - 2 sd`` (or, with ``verify = "exact"``, when the texts' exact
   Jaccard is at least ``threshold``); exact edges come from equal normalised-text hashes and equal verified
   payload digests; union-find over the surviving edges. Its memory is O(documents that have an edge), not
   O(corpus): about 200 bytes per such document in CPython.

Documents of an earlier store named in ``dedup.against`` join the buckets through their stored band keys and
signatures, so a new crawl is deduplicated against an old corpus without re-reading its WARCs; a new
document that matches an old one is dropped as ``duplicate_of`` the old doc_id (the old corpus was already
released, so its copy always represents).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from curate.dedup import UnionFind, candidate_probability, jaccard


def recall_bands(threshold: float, num_perm: int, min_recall: float = 0.97) -> tuple[int, int]:
    """(bands, rows), bands * rows <= num_perm, with P(candidate | Jaccard = threshold) >= ``min_recall`` and
    the fewest candidates below it (smallest P at threshold - 0.2); falls back to the highest recall."""
    best: tuple[float, float, int, int] | None = None
    fallback: tuple[float, int, int] = (-1.0, 1, 1)
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            p = candidate_probability(threshold, b, r)
            if p > fallback[0]:
                fallback = (p, b, r)
            if p >= min_recall:
                key = (candidate_probability(max(threshold - 0.2, 0.0), b, r), -p, b, r)
                if best is None or key < best:
                    best = key
    return (best[2], best[3]) if best else (fallback[1], fallback[2])


def signature_margin(threshold: float, num_perm: int) -> float:
    """Two standard deviations of the MinHash Jaccard estimate at the threshold."""
    return 2 * math.sqrt(threshold * (1 - threshold) / num_perm)


@dataclass(frozen=True)
class DedupParams:
    """Everything that makes two runs' signatures comparable."""

    num_perm: int
    ngram: int
    bands: int
    rows: int
    seed: int

    @property
    def name(self) -> str:
        """Versioned parameter string, recorded in the run."""
        return f"minhash-lsh-v2:perm={self.num_perm},ngram={self.ngram},bands={self.bands}x{self.rows},seed={self.seed}"


def s_curve(
    params: DedupParams, threshold: float, steps: tuple[float, ...] = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0)
) -> list[tuple[float, float, bool]]:
    """(Jaccard, P(candidate), counts as duplicate) at each step: the LSH S-curve of ``params``."""
    return [(s, candidate_probability(s, params.bands, params.rows), s >= threshold) for s in steps]


def shards_glob(work: Path) -> str:
    """The stage-1 document shards."""
    return (work / "documents" / "*.parquet").as_posix()


def bucket_edges(con: Any, glob: str, band: int, out: Path) -> int:
    """Write the star edges of band ``band`` (1-based) to ``out``; returns how many."""
    con.execute(
        f"""
        COPY (
          WITH k AS (
            SELECT doc_id, bands[{band}] AS key FROM read_parquet('{glob}') WHERE bands IS NOT NULL AND len(bands) >= {band}
          ), g AS (SELECT doc_id, key, min(doc_id) OVER (PARTITION BY key) AS first FROM k)
          SELECT first AS a, doc_id AS b FROM g WHERE doc_id <> first ORDER BY a, b
        ) TO '{out.as_posix()}' (FORMAT parquet)
        """
    )
    return int(con.execute(f"SELECT count(*) FROM read_parquet('{out.as_posix()}')").fetchone()[0])


class DedupBucketStep(PipelineStep):
    """datatrove step: task ``rank`` writes the edges of bands ``rank + 1, rank + 1 + world_size, …``."""

    name = "dedup buckets"
    type = "DEDUP"

    def __init__(self, work_dir: str, bands: int, memory_limit: str = "2GB") -> None:
        super().__init__()
        self.work_dir, self.bands, self.memory_limit = work_dir, bands, memory_limit

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        """Compute this task's bands."""
        from curate.store import duckdb_connect

        work = Path(self.work_dir)
        (work / "edges").mkdir(parents=True, exist_ok=True)
        con = duckdb_connect(
            ":memory:", memory_limit=self.memory_limit, spill_dir=work / "duckdb-tmp" / f"bucket-{rank}"
        )
        try:
            for band in range(rank + 1, self.bands + 1, world_size):
                n = bucket_edges(con, shards_glob(work), band, work / "edges" / f"{band:03d}.parquet")
                self.stat_update("edges", value=n)
        finally:
            con.close()
        return
        yield


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


__all__ = [
    "DedupBucketStep",
    "DedupParams",
    "bucket_edges",
    "cluster_documents",
    "matches_in_old_store",
    "recall_bands",
    "save_signatures",
    "signature_margin",
]
