"""The last step of an ingest task: runs the task's files one at a time and writes their rows as Parquet shards.

Each file goes through the steps of stage 1 on its own (read → licence/opt-out evidence → extract → date → score
→ sign); its rows are spooled to a private temporary folder (under ``spool/`` of a local work folder, else the
system's temporary folder) and appended to the task's shards only when the file is done. When any step raises on
a file (an exception no step turned into a reason-coded row: a bug, or input no step foresaw), that file's
spooled rows are discarded and the file becomes one quarantined row with reason ``file_failed`` naming the
exception, the step and the record it was on; the task goes on with its other files.

Page content can name code points no Parquet string can hold (a JSON escape of a lone surrogate, ``"\\ud800"``);
one such value must not cost its file. Every string of every row is made valid Unicode as the row is written
(:func:`valid_rows`: U+FFFD, and the record is flagged ``decode_errors``).

The shards are written to the ingest's work folder (a local path or an fsspec URL such as ``s3://``) in row
groups (a task never holds more than ``ROW_GROUP`` documents), under a temporary name moved into place when the
task ends, so a shard that exists is complete. The task also writes its progress (records and bytes so far) to
``progress/<rank>.json``, which the command that started the ingest reads, whichever executor runs the task.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from typing import Any

from datatrove.data import Document, DocumentsPipeline
from datatrove.io import DataFolder, get_datafolder
from datatrove.pipeline.base import PipelineStep

from curate.read.charset import valid_unicode
from curate.read.warc import ProvenanceWarcReader
from curate.schema import (
    EVIDENCE_COLUMNS,
    INGEST_COLUMNS,
    LICENSE_TAGGER_NAME,
    OPTOUT_COLUMNS,
    SHARD_DEDUP_FIELDS,
    Flag,
    Meta,
    add_flag,
    arrow_schema,
)

ROW_GROUP = 512  # documents per Parquet row group: what a task holds in memory at most
PROGRESS_EVERY_S = 1.0  # how often a task writes its progress to a local work folder
REMOTE_PROGRESS_EVERY_S = 30.0  # … and to a remote one (one object write each time)
TABLES = ("evidence", "optout", "documents")  # documents last: its shard existing means the task's rows are whole


def write_progress(work: DataFolder, rank: int, records: int, nbytes: int, done: bool) -> None:
    """Record a task's progress in ``<work>/progress/<rank>.json`` (replaced whole)."""
    name = f"progress/{rank:05d}.json"
    with work.open(name + ".tmp", "w", encoding="utf-8") as fh:
        json.dump({"records": records, "bytes": nbytes, "done": done}, fh)
    work.mv(name + ".tmp", name)


def _schemas() -> dict[str, Any]:
    import pyarrow as pa

    return {
        "documents": arrow_schema(INGEST_COLUMNS, [pa.field("text", pa.string()), *SHARD_DEDUP_FIELDS]),
        "evidence": arrow_schema(EVIDENCE_COLUMNS),
        "optout": arrow_schema(OPTOUT_COLUMNS),
    }


@functools.cache
def _string_columns() -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """For each table: its string columns, and its list-of-string columns."""
    import pyarrow as pa

    out = {}
    for table, schema in _schemas().items():
        strings = tuple(f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
        lists = tuple(f.name for f in schema if pa.types.is_list(f.type) and pa.types.is_string(f.type.value_type))
        out[table] = (strings, lists)
    return out


def valid_rows(rows: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """A document's rows (its documents row first) with every string made valid Unicode, in place.

    Page content can name lone surrogates (a JSON ``"\\ud800"`` escape) that no Parquet string can hold; one such
    value would fail the whole file. Each becomes U+FFFD (:func:`curate.read.charset.valid_unicode`) and the
    documents row is flagged ``decode_errors`` with how many were replaced.
    """
    columns = _string_columns()
    replaced = 0
    for table, row in rows:
        strings, lists = columns[table]
        for name in strings:
            value = row.get(name)
            if isinstance(value, str):
                row[name], n = valid_unicode(value)
                replaced += n
        for name in lists:
            values = row.get(name)
            if isinstance(values, list) and values:
                fixed = [valid_unicode(v) if isinstance(v, str) else (v, 0) for v in values]
                if any(n for _, n in fixed):
                    row[name] = [v for v, _ in fixed]
                    replaced += sum(n for _, n in fixed)
    if replaced:
        add_flag(
            rows[0][1], Flag.DECODE_ERRORS, f"lone surrogates replaced by U+FFFD as the rows were written: {replaced}"
        )
    return rows


def rows_of(doc: Document) -> list[tuple[str, dict[str, Any]]]:
    """The shard rows of one document: ``(table, row)`` for its documents row and its evidence rows, every string
    valid Unicode (:func:`valid_rows`)."""
    return valid_rows(list(_rows(doc)))


def _rows(doc: Document) -> Iterator[tuple[str, dict[str, Any]]]:
    meta = doc.metadata
    row = {c.name: meta.get(c.name) for c in INGEST_COLUMNS}
    row[Meta.DOC_ID] = meta[Meta.DOC_ID]
    row["text"] = doc.text or None
    row["minhash"] = meta.get(Meta.MINHASH)
    row["bands"] = meta.get(Meta.BANDS)
    yield "documents", row
    for e in meta.get(Meta.LICENSE_EVIDENCE) or ():
        yield "evidence", {"doc_id": row[Meta.DOC_ID], "tagger": LICENSE_TAGGER_NAME, **e}
    for o in meta.get(Meta.OPTOUT_EVIDENCE) or ():
        yield (
            "optout",
            {"doc_id": row[Meta.DOC_ID], "observed_at": meta.get(Meta.WARC_DATE), "tagger": LICENSE_TAGGER_NAME, **o},
        )


class _StreamingTable:
    """A Parquet file in ``folder`` written a row group at a time, moved to its final name on :meth:`close`."""

    def __init__(self, folder: DataFolder, name: str, schema: Any) -> None:
        import pyarrow.parquet as pq

        self.folder, self.name, self.schema = folder, name, schema
        self.rows: list[dict[str, Any]] = []
        self.fh = folder.open(name + ".tmp", "wb")
        self.writer = pq.ParquetWriter(self.fh, schema, compression="zstd")

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= ROW_GROUP:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa

        if self.rows:
            table = pa.Table.from_pylist(self.rows, schema=self.schema)  # raises on a value Parquet cannot hold
            self.rows = []
            self.writer.write_table(table)

    def close(self) -> None:
        self.flush()
        self.writer.close()
        self.fh.close()
        self.folder.mv(self.name + ".tmp", self.name)


class _FileSpool:
    """One input file's rows, spooled to a private local folder until the file is done (bounded memory)."""

    def __init__(self, schemas: dict[str, Any], under: str | None) -> None:
        if under is not None:
            os.makedirs(under, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix="curate-file-", dir=under)
        folder = get_datafolder(self.dir)
        self.tables = {t: _StreamingTable(folder, f"{t}.parquet", schemas[t]) for t in TABLES}
        self.records = 0
        self.nbytes = 0

    def add(self, doc: Document) -> None:
        for table, row in rows_of(doc):
            self.tables[table].add(row)
        self.records += 1
        self.nbytes += doc.metadata.get(Meta.RECORD_LENGTH) or 0

    def finish(self) -> None:
        """Write the rows still held (raises here when a value cannot be written: the file fails)."""
        for t in self.tables.values():
            t.close()

    def copy_into(self, shards: dict[str, _StreamingTable]) -> None:
        """Append the finished spool's rows to the task's shards, a row group at a time."""
        import pyarrow.parquet as pq

        for name, table in self.tables.items():
            parquet = pq.ParquetFile(f"{self.dir}/{table.name}")
            for i in range(parquet.num_row_groups):
                shards[name].flush()
                shards[name].writer.write_table(parquet.read_row_group(i))

    def discard(self) -> None:
        """Throw a failed file's rows away, whatever state its writers are in."""
        for t in self.tables.values():
            try:
                t.writer.close()
                t.fh.close()
            except Exception:  # noqa: BLE001 - the spool is thrown away whatever state its writer is in
                pass
        self.remove()

    def remove(self) -> None:
        """Delete the spool's folder (after :meth:`finish` closed its writers and :meth:`copy_into` used it)."""
        shutil.rmtree(self.dir, ignore_errors=True)


def _failure(
    error: BaseException, steps: Sequence[PipelineStep], doc: Document | None, records: int, writing: bool
) -> str:
    """What a ``file_failed`` row says: the exception, where it was raised and how far the file had got."""
    where = "writing the file's rows"
    if not writing:  # the innermost frame that belongs to one of the steps names the step that raised
        where, tb = "reading the file", error.__traceback__
        while tb is not None:
            owner = tb.tb_frame.f_locals.get("self")
            if any(owner is s for s in steps):
                where = f"step {getattr(owner, 'name', type(owner).__name__)!r}"
            tb = tb.tb_next
    last = (
        f"; the last record handled was at offset {doc.metadata.get(Meta.RECORD_OFFSET)} "
        f"({doc.metadata.get(Meta.URL) or 'no URL'})"
        if doc is not None
        else ""
    )
    return f"{type(error).__name__}: {error} (raised in {where}, after {records} records of the file{last})"


class ShardWriter(PipelineStep):
    """Write one Parquet row per document (plus evidence rows) to ``<work>/{documents,evidence,optout}/<rank>.parquet``.

    With ``reader`` (the stage-1 pipeline's first step) and ``steps`` (those between it and this one), this step
    runs the task: it ignores the chain datatrove built from them (a generator chain cannot go on after one of its
    steps raised) and runs the same step objects once per input file, so a file on which a step raises is
    quarantined alone (see the module). The steps' statistics land in their own ``stats`` as usual. Without
    ``reader`` it writes the documents it is given.
    """

    name = "shard writer (file by file)"
    type = "WRITER"

    def __init__(
        self, work_dir: str, reader: ProvenanceWarcReader | None = None, steps: Sequence[PipelineStep] = ()
    ) -> None:
        super().__init__()
        self.work_dir = work_dir
        self.reader = reader
        self.steps = list(steps)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        """Run this task's files through the steps (or consume ``data``) and write this task's shards."""
        work = get_datafolder(self.work_dir)
        every = PROGRESS_EVERY_S if work.is_local() else REMOTE_PROGRESS_EVERY_S
        schemas = _schemas()
        name = f"{rank:05d}.parquet"
        shards = {t: _StreamingTable(work, f"{t}/{name}", schemas[t]) for t in TABLES}
        records = nbytes = 0
        last = time.monotonic()
        write_progress(work, rank, 0, 0, False)
        if self.reader is None:
            for given in data or ():
                for table, row in rows_of(given):
                    shards[table].add(row)
                records += 1
                nbytes += given.metadata.get(Meta.RECORD_LENGTH) or 0
                self.stat_update("rows")
                if time.monotonic() - last >= every:
                    write_progress(work, rank, records, nbytes, False)
                    last = time.monotonic()
        else:
            if hasattr(data, "close"):
                data.close()  # the chain datatrove built is never started
            inventory: list[dict[str, Any]] = []
            for path in self.reader.files[rank::world_size]:
                spool = _FileSpool(schemas, f"{self.work_dir}/spool" if work.is_local() else None)
                doc: Document | None = None
                writing = False
                try:
                    chain: DocumentsPipeline = self.reader.read_file(path, inventory, rank)
                    for step in self.steps:
                        chain = step(chain, rank, world_size)
                    for doc in chain:
                        writing = True
                        spool.add(doc)
                        writing = False
                        if time.monotonic() - last >= every:
                            write_progress(work, rank, records + spool.records, nbytes + spool.nbytes, False)
                            last = time.monotonic()
                    writing = True
                    spool.finish()
                except MemoryError:
                    raise  # the task's, not the file's: the task fails and is run again on resume
                except Exception as e:  # noqa: BLE001 - the file is quarantined, the task goes on
                    spool.discard()
                    detail = _failure(e, [self.reader, *self.steps], doc, spool.records, writing)
                    failed = self.reader.failed_file(path, detail, inventory)
                    for table, row in rows_of(failed):
                        shards[table].add(row)
                    self.stat_update("files_failed")
                    records, nbytes = records + 1, nbytes + (failed.metadata.get(Meta.RECORD_LENGTH) or 0)
                    continue
                spool.copy_into(shards)
                spool.remove()
                records, nbytes = records + spool.records, nbytes + spool.nbytes
                self.stat_update("rows", value=spool.records)
            self.reader.write_inventory(rank, inventory)
        for table in TABLES:
            shards[table].close()
        write_progress(work, rank, records, nbytes, True)
        return
        yield  # a generator that yields nothing: this is the pipeline's last step
