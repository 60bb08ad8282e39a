"""Candidate pairs: documents that share a key (an LSH band key, a text hash, a payload digest).

Within each group of documents sharing a key, candidates are the star from the group's smallest doc_id to
the others, never all pairs, so a boilerplate bucket of n documents costs n edges. Dedup is incremental: a
pass only groups the keys that documents no earlier pass has matched (``documents.dedup_pass IS NULL``) carry,
and only needs the edges that touch those documents;
earlier members of a group are already connected to its smallest member, so a group with new documents
contributes (first, new document) edges, plus (first, every member) when the first is itself new.

``DedupBucketStep`` runs this for LSH bands as datatrove tasks over the store opened read-only (many
processes may read a DuckDB file at once, while no process holds it for writing): each task takes a contiguous
range of bands, groups them in one DuckDB query (hash aggregation, spilling beyond its memory limit), and writes
the range's candidates, each pair once however many bands it shares, to ``<work>/edges/<first band>.parquet``.
A band is always grouped whole by one task, so the edges do not depend on the number of tasks
(:func:`bucket_tasks` chooses it from ``dedup.tasks`` and the executor; :func:`curate.run.executors.task_bounds` splits the
memory and cores among the tasks that run at once).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from curate.recipe import Recipe
from curate.store import duckdb_connect


def bucket_tasks(recipe: Recipe, bands: int) -> int:
    """How many bucket tasks a dedup pass over ``bands`` LSH bands runs: ``dedup.tasks`` when set; else one on
    the local executor (one DuckDB query over every band, which DuckDB spreads over the machine's cores: on one
    machine that beats several processes, each with a share of the cores and of the memory) and
    ``executor.workers`` on Slurm and Ray (each task has one CPU there). Never more than ``bands``."""
    n = recipe.dedup.tasks or (1 if recipe.executor.kind == "local" else recipe.executor.workers)
    return max(1, min(n, bands))


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


def band_range(rank: int, world_size: int, bands: int) -> range:
    """The contiguous LSH bands (1-based) that task ``rank`` of ``world_size`` groups; empty when there are
    more tasks than bands."""
    return range(rank * bands // world_size + 1, (rank + 1) * bands // world_size + 1)


def band_candidates(con: Any, bands: range, out: Path) -> int:
    """Write the candidate edges (a, b), distinct, of the LSH ``bands`` that touch unmatched documents to
    ``out``; returns their number.

    Per (band, key) group of two or more documents with a new one, the star from its smallest doc_id (see
    :func:`star_edges_sql`); when some documents are already matched, only the keys a new document carries are
    grouped.
    """
    where = f"b.band BETWEEN {int(bands.start)} AND {int(bands.stop) - 1}"
    rows = f"""SELECT b.band, b.key, b.doc_id, d.dedup_pass IS NULL AS is_new
               FROM minhash_bands b JOIN documents d USING (doc_id) WHERE {where}"""
    if con.execute("SELECT count(*) FROM documents WHERE dedup_pass IS NOT NULL").fetchone()[0]:
        rows = f"""SELECT k.* FROM ({rows}) k JOIN (SELECT DISTINCT b.band, b.key FROM minhash_bands b
                   JOIN documents d USING (doc_id) WHERE {where} AND d.dedup_pass IS NULL) n USING (band, key)"""
    con.execute(
        f"""COPY (
              WITH k AS MATERIALIZED ({rows}),
              g AS (SELECT band, key, min(doc_id) AS first, arg_min(is_new, doc_id) AS first_new FROM k
                    GROUP BY band, key HAVING count(*) > 1 AND bool_or(is_new))
              SELECT DISTINCT g.first AS a, k.doc_id AS b FROM k JOIN g USING (band, key)
              WHERE k.doc_id <> g.first AND (k.is_new OR g.first_new) ORDER BY a, b
            ) TO '{out.as_posix()}' (FORMAT parquet)"""
    )
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
    """datatrove step: task ``rank`` of ``world_size`` writes the candidates of its contiguous range of the
    ``bands`` LSH bands (:func:`band_range`) from the store at ``store_file`` (opened read-only: no process may
    hold it for writing while the tasks run) to ``<work_dir>/edges/``, with DuckDB bounded to ``memory_limit``
    and ``threads`` (0: every core). ``curate dedup`` runs :func:`bucket_tasks` of them on the recipe's
    executor; ``store_file`` and ``work_dir`` must be paths every task's machine sees."""

    name = "dedup buckets"
    type = "DEDUP"

    def __init__(self, store_file: str, work_dir: str, bands: int, memory_limit: str = "2GB", threads: int = 0) -> None:
        super().__init__()
        self.store_file, self.work_dir, self.bands, self.memory_limit = store_file, work_dir, bands, memory_limit
        self.threads = threads

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        """Compute this task's bands."""
        work = Path(self.work_dir)
        (work / "edges").mkdir(parents=True, exist_ok=True)
        bands = band_range(rank, world_size, self.bands)
        if not bands:
            return
        con = duckdb_connect(
            self.store_file,
            memory_limit=self.memory_limit,
            spill_dir=work / "duckdb-tmp" / f"bucket-{rank}",
            read_only=True,
        )
        try:
            if self.threads:
                con.execute(f"SET threads = {int(self.threads)}")
            n = band_candidates(con, bands, work / "edges" / f"{bands.start:04d}.parquet")
            self.stat_update("edges", value=n)
        finally:
            con.close()
        return
        yield
