"""LSH buckets, one datatrove task per band: documents that share a band key become candidate pairs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep


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
