"""The last step of an ingest task: its documents and evidence as Parquet shards in the ingest's work folder.
"""

from __future__ import annotations

import os
from typing import Any

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from curate.schema import (
    DOCUMENT_COLUMNS,
    EVIDENCE_COLUMNS,
    LICENSE_TAGGER_NAME,
    OPTOUT_COLUMNS,
    SHARD_DEDUP_FIELDS,
    Meta,
    arrow_schema,
)


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
        import pyarrow.parquet as pq

        doc_rows: list[dict[str, Any]] = []
        ev_rows: list[dict[str, Any]] = []
        opt_rows: list[dict[str, Any]] = []
        names = [c.name for c in DOCUMENT_COLUMNS]
        for doc in data or ():
            meta = doc.metadata
            row = {n: meta.get(n) for n in names}
            row["doc_id"] = meta[Meta.DOC_ID]
            row["text"] = doc.text or None
            row["minhash"] = meta.get(Meta.MINHASH)
            row["bands"] = meta.get(Meta.BANDS)
            doc_rows.append(row)
            for e in meta.get(Meta.LICENSE_EVIDENCE) or ():
                ev_rows.append({"doc_id": row["doc_id"], "tagger": LICENSE_TAGGER_NAME, **e})
            for o in meta.get(Meta.OPTOUT_EVIDENCE) or ():
                opt_rows.append(
                    {"doc_id": row["doc_id"], "observed_at": meta.get("warc_date"), "tagger": LICENSE_TAGGER_NAME, **o}
                )
            self.stat_update("rows")
        shard_schema = arrow_schema(DOCUMENT_COLUMNS, [pa.field("text", pa.string()), *SHARD_DEDUP_FIELDS])
        for sub, rows, schema in (
            ("documents", doc_rows, shard_schema),
            ("evidence", ev_rows, arrow_schema(EVIDENCE_COLUMNS)),
            ("optout", opt_rows, arrow_schema(OPTOUT_COLUMNS)),
        ):
            folder = os.path.join(self.work_dir, sub)
            os.makedirs(folder, exist_ok=True)
            table = pa.Table.from_pylist(rows, schema=schema)
            pq.write_table(table, os.path.join(folder, f"{rank:05d}.parquet"), compression="zstd")
        return
        yield  # a generator that yields nothing: this is the pipeline's last step
