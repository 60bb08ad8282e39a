"""Candidate pairs: documents that share a key (an LSH band key, a text hash, a payload digest).

Within each group of documents sharing a key, candidates are the star from the group's smallest doc_id to
the others, never all pairs, so a boilerplate bucket of n documents costs n edges. Dedup is incremental: a
pass only groups the keys that documents no earlier pass has matched (``documents.dedup_pass IS NULL``) carry,
and only needs the edges that touch those documents;
earlier members of a group are already connected to its smallest member, so a group with new documents
contributes (first, new document) edges, plus (first, every member) when the first is itself new.

``DedupBucketStep`` runs this per LSH band as datatrove tasks over the store opened read-only (many
processes may read a DuckDB file at once), writing candidates to ``<work>/edges/<band>.parquet``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from curate.store import duckdb_connect


def star_edges_sql(keyed: str) -> str:
    """SQL for the candidate edges (a, b) of ``keyed``, a query of (doc_id, key, is_new) rows."""
    return f"""
        WITH g AS (
          SELECT doc_id, is_new, min(doc_id) OVER w AS first, arg_min(is_new, doc_id) OVER w AS first_new,
                 bool_or(is_new) OVER w AS has_new
          FROM ({keyed}) WINDOW w AS (PARTITION BY key)
        )
        SELECT first AS a, doc_id AS b FROM g WHERE has_new AND doc_id <> first AND (is_new OR first_new)
    """


def band_candidates(con: Any, band: int, out: Path) -> int:
    """Write the candidate edges of LSH band ``band`` (1-based) that touch unmatched documents to ``out``."""
    new_keys = f"""SELECT b.key FROM minhash_bands b JOIN documents d USING (doc_id)
                   WHERE b.band = {int(band)} AND d.dedup_pass IS NULL"""
    keyed = f"""SELECT b.doc_id, b.key, d.dedup_pass IS NULL AS is_new FROM minhash_bands b
                JOIN documents d USING (doc_id) WHERE b.band = {int(band)} AND b.key IN ({new_keys})"""
    con.execute(f"COPY ({star_edges_sql(keyed)} ORDER BY a, b) TO '{out.as_posix()}' (FORMAT parquet)")
    return int(con.execute(f"SELECT count(*) FROM read_parquet('{out.as_posix()}')").fetchone()[0])


def exact_candidates(con: Any) -> list[tuple[str, str]]:
    """Edges between documents with the same normalised text, or the same verified payload digest, that touch
    unmatched documents."""
    out: list[tuple[str, str]] = []
    for key, cond in (
        ("text_hash", "text_hash IS NOT NULL"),
        (
            "warc_payload_digest",
            "warc_payload_digest IS NOT NULL AND coalesce(payload_digest_ok, true) AND text_hash IS NOT NULL",
        ),
    ):
        new_keys = f"SELECT {key} FROM documents WHERE {cond} AND dedup_pass IS NULL"
        keyed = f"""SELECT doc_id, {key} AS key, dedup_pass IS NULL AS is_new FROM documents
                    WHERE {cond} AND {key} IN ({new_keys})"""
        out += con.execute(f"{star_edges_sql(keyed)} ORDER BY a, b").fetchall()
    return out


class DedupBucketStep(PipelineStep):
    """datatrove step: task ``rank`` writes the candidates of bands ``rank + 1, rank + 1 + world_size, …``
    from the store at ``store_file`` (opened read-only) to ``<work_dir>/edges/``."""

    name = "dedup buckets"
    type = "DEDUP"

    def __init__(self, store_file: str, work_dir: str, bands: int, memory_limit: str = "2GB") -> None:
        super().__init__()
        self.store_file, self.work_dir, self.bands, self.memory_limit = store_file, work_dir, bands, memory_limit

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        """Compute this task's bands."""
        work = Path(self.work_dir)
        (work / "edges").mkdir(parents=True, exist_ok=True)
        con = duckdb_connect(
            self.store_file,
            memory_limit=self.memory_limit,
            spill_dir=work / "duckdb-tmp" / f"bucket-{rank}",
            read_only=True,
        )
        try:
            for band in range(rank + 1, self.bands + 1, world_size):
                n = band_candidates(con, band, work / "edges" / f"{band:03d}.parquet")
                self.stat_update("edges", value=n)
        finally:
            con.close()
        return
        yield
