"""The last step of an ingest task: its documents and evidence as Parquet shards in the ingest's work folder.

Rows are streamed to Parquet in row groups (a task never holds more than ``ROW_GROUP`` documents), under a
temporary name renamed into place when the task ends, so a shard that exists is complete. Every second or so
the task also writes its progress (records and bytes so far) to ``progress/<rank>.json``, which the command
that started the ingest reads to show progress, whichever executor runs the task.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from curate.schema import (
    EVIDENCE_COLUMNS,
    INGEST_COLUMNS,
    LICENSE_TAGGER_NAME,
    OPTOUT_COLUMNS,
    SHARD_DEDUP_FIELDS,
    Meta,
    arrow_schema,
)

ROW_GROUP = 512  # documents per Parquet row group: what a task holds in memory at most
PROGRESS_EVERY_S = 1.0


def write_progress(work_dir: str, rank: int, records: int, nbytes: int, done: bool) -> None:
    """Record a task's progress in ``<work>/progress/<rank>.json`` (replaced atomically)."""
    folder = os.path.join(work_dir, "progress")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{rank:05d}.json")
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        json.dump({"records": records, "bytes": nbytes, "done": done}, fh)
    os.replace(path + ".tmp", path)


class _StreamingTable:
    """A Parquet file written a row group at a time, published under its final name on close."""

    def __init__(self, path: str, schema: Any) -> None:
        import pyarrow.parquet as pq

        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.path, self.schema = path, schema
        self.rows: list[dict[str, Any]] = []
        self.writer = pq.ParquetWriter(path + ".tmp", schema, compression="zstd")

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= ROW_GROUP:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa

        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def close(self) -> None:
        self.flush()
        self.writer.close()
        os.replace(self.path + ".tmp", self.path)


class ShardWriter(PipelineStep):
    """Write one Parquet row per document (plus evidence rows) to ``<work>/{documents,evidence,optout}/<rank>.parquet``."""

    name = "shard writer"
    type = "WRITER"

    def __init__(self, work_dir: str) -> None:
        super().__init__()
        self.work_dir = work_dir

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        """Consume the documents and write this task's shards."""
        import pyarrow as pa

        shard_schema = arrow_schema(INGEST_COLUMNS, [pa.field("text", pa.string()), *SHARD_DEDUP_FIELDS])
        name = f"{rank:05d}.parquet"
        docs = _StreamingTable(os.path.join(self.work_dir, "documents", name), shard_schema)
        evidence = _StreamingTable(os.path.join(self.work_dir, "evidence", name), arrow_schema(EVIDENCE_COLUMNS))
        optout = _StreamingTable(os.path.join(self.work_dir, "optout", name), arrow_schema(OPTOUT_COLUMNS))
        names = [c.name for c in INGEST_COLUMNS]
        records = nbytes = 0
        last = time.monotonic()
        write_progress(self.work_dir, rank, 0, 0, False)
        for doc in data or ():
            meta = doc.metadata
            row = {n: meta.get(n) for n in names}
            row[Meta.DOC_ID] = meta[Meta.DOC_ID]
            row["text"] = doc.text or None
            row["minhash"] = meta.get(Meta.MINHASH)
            row["bands"] = meta.get(Meta.BANDS)
            docs.add(row)
            for e in meta.get(Meta.LICENSE_EVIDENCE) or ():
                evidence.add({"doc_id": row[Meta.DOC_ID], "tagger": LICENSE_TAGGER_NAME, **e})
            for o in meta.get(Meta.OPTOUT_EVIDENCE) or ():
                optout.add(
                    {
                        "doc_id": row[Meta.DOC_ID],
                        "observed_at": meta.get(Meta.WARC_DATE),
                        "tagger": LICENSE_TAGGER_NAME,
                        **o,
                    }
                )
            self.stat_update("rows")
            records += 1
            nbytes += meta.get(Meta.RECORD_LENGTH) or 0
            if time.monotonic() - last >= PROGRESS_EVERY_S:
                write_progress(self.work_dir, rank, records, nbytes, False)
                last = time.monotonic()
        for table in (evidence, optout, docs):  # documents last: its shard existing means the task's rows are whole
            table.close()
        write_progress(self.work_dir, rank, records, nbytes, True)
        return
        yield  # a generator that yields nothing: this is the pipeline's last step
