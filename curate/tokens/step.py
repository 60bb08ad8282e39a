"""The datatrove steps of a mix: tokenize ranges of documents (one task per range), then merge (one task per shard).

``TokenizeStep`` task ``rank`` reads the texts of its range of the selected documents (``selected.parquet`` in
the work folder, joined to the store's ``texts`` on a read-only connection) ``batch_docs`` at a time, encodes
them and appends their ids to ``tokens/<rank>.tok`` and their lengths to ``tokens/<rank>.len``. A task holds one
batch of texts and their ids at a time, whatever the size of its range.

``MergeStep`` task ``rank`` writes shard ``rank`` of the plan (``plan.parquet``: every entry with its shard,
position, token range and where its ids lie in the tokenize tasks' files) in every format of the mix, adding
BOS/EOS, and the sidecar beside each shard file. It reads the plan rows and the store's WARC coordinates of its
shard ``batch_docs`` at a time and the ids through memory maps, assembles each batch's tokens in one array and
writes it with one write per format, so it holds one batch plus the shard's sidecar rows (one per entry).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from curate.errors import CurateError
from curate.schema import SIDECAR_COLUMNS, MixFormat, arrow_schema
from curate.store import duckdb_connect
from curate.tokens.formats import ShardWriter, open_writer, shard_files
from curate.tokens.tokenizer import load_tokenizer

SELECTED = "selected.parquet"
PLAN = "plan.parquet"
TOKENS = "tokens"
SIDECAR_COLUMN_NAMES = [c.name for c in SIDECAR_COLUMNS]
META_COLUMNS = SIDECAR_COLUMN_NAMES[5:]
"""Sidecar columns read from ``documents`` (doc_id onwards)."""


def token_file(work: Path, rank: int) -> Path:
    """The ids written by tokenize task ``rank``."""
    return work / TOKENS / f"{rank:05d}.tok"


def length_file(work: Path, rank: int) -> Path:
    """The per-document token counts (int64) written by tokenize task ``rank``."""
    return work / TOKENS / f"{rank:05d}.len"


def _reader(store_file: str, memory_limit: str, spill: Path) -> Any:
    """A read-only connection to the store for one task: one thread, its memory capped (DuckDB spills past it),
    no progress bar."""
    con = duckdb_connect(store_file, read_only=True, memory_limit=memory_limit, spill_dir=spill)
    con.execute("SET enable_progress_bar = false")
    con.execute("SET threads = 1")  # a task is one core
    return con


def shard_name(index: int) -> str:
    """The base name of shard ``index`` (its files add the format's suffixes)."""
    return f"mix_{index:05d}"


class TokenizeStep(PipelineStep):
    """datatrove step: task ``rank`` tokenizes documents ``ranges[rank]`` (a half-open range of
    ``selected.parquet``'s row numbers) of the store at ``store_file``."""

    name = "tokenize"
    type = "TOKENIZER"

    def __init__(
        self,
        store_file: str,
        *,
        work_dir: str,
        tokenizer: str,
        ranges: list[tuple[int, int]],
        batch_docs: int,
        memory_limit: str,
    ) -> None:
        super().__init__()
        self.store_file, self.work_dir, self.tokenizer = store_file, work_dir, tokenizer
        self.ranges, self.batch_docs, self.memory_limit = ranges, batch_docs, memory_limit

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        """Tokenize this task's range."""
        work = Path(self.work_dir)
        lo, hi = self.ranges[rank]
        tok = load_tokenizer(self.tokenizer)
        out, lens = token_file(work, rank), length_file(work, rank)
        out.parent.mkdir(parents=True, exist_ok=True)
        part_out, part_lens = out.with_name(out.name + ".part"), lens.with_name(lens.name + ".part")
        con = _reader(self.store_file, self.memory_limit, work / "spill" / str(rank))
        n = 0
        try:
            sql = f"""SELECT s.i, s.doc_id, t.text FROM read_parquet('{(work / SELECTED).as_posix()}') s
                      LEFT JOIN texts t USING (doc_id) WHERE s.i >= ? AND s.i < ? ORDER BY s.i"""
            reader = con.sql(sql, params=[lo, hi]).to_arrow_reader(self.batch_docs)
            with part_out.open("wb") as fo, part_lens.open("wb") as fl:
                for batch in reader:
                    texts = batch.column("text").to_pylist()
                    missing = [d for d, t in zip(batch.column("doc_id").to_pylist(), texts, strict=True) if t is None]
                    if missing:
                        raise CurateError(f"kept document {missing[0]} has no text in the store")
                    with self.track_time(unit="batch"):
                        ids, counts = tok.encode_concat(texts)
                    fo.write(ids.tobytes())
                    fl.write(counts.astype("<i8", copy=False).tobytes())
                    self.stat_update("documents", value=len(texts))
                    self.stat_update("tokens", value=int(counts.sum()))
                    n += len(texts)
        finally:
            con.close()
        if n != hi - lo:
            raise CurateError(f"tokenize task {rank} read {n} documents of its {hi - lo}")
        os.replace(part_out, out)
        os.replace(part_lens, lens)
        return
        yield


class MergeStep(PipelineStep):
    """datatrove step: task ``rank`` writes shard ``rank`` of the plan in ``formats`` into ``out_dir``; ``label``
    names the tokenizer in datatrove's ``.ds.metadata``."""

    name = "merge"
    type = "TOKENIZER"

    def __init__(
        self,
        store_file: str,
        *,
        work_dir: str,
        out_dir: str,
        formats: list[str],
        tokenizer: str,
        label: str,
        bos: int | None,
        eos: int | None,
        batch_docs: int,
        memory_limit: str,
    ) -> None:
        super().__init__()
        self.store_file, self.work_dir, self.out_dir = store_file, work_dir, out_dir
        self.formats, self.tokenizer, self.label, self.bos, self.eos = formats, tokenizer, label, bos, eos
        self.batch_docs, self.memory_limit = batch_docs, memory_limit

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        """Write this task's shard."""
        import pyarrow.parquet as pq

        work, out = Path(self.work_dir), Path(self.out_dir)
        tok = load_tokenizer(self.tokenizer)
        formats = [MixFormat(f) for f in self.formats]
        name = shard_name(rank)
        writers: list[ShardWriter] = [open_writer(f, out, name, tok.dtype, self.label) for f in formats]
        texts = any(f in (MixFormat.JSONL, MixFormat.PARQUET) for f in formats)
        maps: dict[int, np.ndarray] = {}
        sidecar: list[pa.Table] = []
        con = _reader(self.store_file, self.memory_limit, work / "spill" / f"m{rank}")
        try:
            meta = ", ".join(f"d.{c}" for c in META_COLUMNS if c != "doc_id")
            sql = f"""SELECT p.token_start, p.token_end, p.bucket, p.copy, p.doc_id, {meta},
                             p.src_rank, p.src_offset, p.src_len{", t.text" if texts else ""}
                      FROM read_parquet('{(work / PLAN).as_posix()}') p JOIN documents d USING (doc_id)
                      {"LEFT JOIN texts t USING (doc_id)" if texts else ""}
                      WHERE p.shard = ? ORDER BY p.pos"""
            for batch in con.sql(sql, params=[rank]).to_arrow_reader(self.batch_docs):
                if not batch.num_rows:
                    continue
                rows = pa.Table.from_batches([batch])
                for r in pc.unique(rows.column("src_rank")).to_pylist():
                    if r not in maps:  # a plain view of the file (a memmap slice costs more per entry)
                        maps[r] = np.memmap(token_file(work, r), dtype=tok.dtype, mode="r").view(np.ndarray)
                tokens, ends = self._entries(rows, maps, tok.dtype, name)
                for w in writers:
                    w.add(tokens, ends, rows)
                sidecar.append(rows.select(SIDECAR_COLUMN_NAMES[1:]))
        finally:
            con.close()
        for w in writers:
            w.close()
        schema = arrow_schema(SIDECAR_COLUMNS)
        table = pa.concat_tables(sidecar) if sidecar else schema.empty_table().drop_columns(["shard"])
        for f in formats:
            shard_file = shard_files(name, f)[0]
            shard = pa.array([shard_file] * len(table), type=pa.string())
            whole = table.add_column(0, "shard", shard).cast(schema).combine_chunks()
            pq.write_table(whole, str(out / f"{shard_file}.sidecar.parquet"), compression="zstd")
        self.stat_update("entries", value=len(table))
        return
        yield

    def _entries(
        self, rows: pa.Table, maps: dict[int, np.ndarray], dtype: np.dtype[Any], name: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """The tokens of a batch of plan rows, one entry after the other (BOS, the document's ids copied from its
        tokenize task's file, EOS), and each entry's end in them."""
        src_rank = rows.column("src_rank").to_numpy()
        src_offset = rows.column("src_offset").to_numpy()
        src_len = rows.column("src_len").to_numpy()
        lengths = src_len + (self.bos is not None) + (self.eos is not None)
        expected = rows.column("token_end").to_numpy() - rows.column("token_start").to_numpy()
        wrong = np.flatnonzero(lengths != expected)
        if len(wrong):
            doc_id = rows.column("doc_id")[int(wrong[0])].as_py()
            raise CurateError(f"shard {name}: entry {doc_id} has the wrong token count")
        ends = np.cumsum(lengths)
        tokens = np.empty(int(ends[-1]) if len(ends) else 0, dtype=dtype)
        body = ends - lengths
        if self.bos is not None:
            tokens[body] = self.bos
            body = body + 1
        if self.eos is not None:
            tokens[ends - 1] = self.eos
        for r, a, b, n in zip(src_rank.tolist(), body.tolist(), src_offset.tolist(), src_len.tolist(), strict=True):
            tokens[a : a + n] = maps[r][b : b + n]
        return tokens, ends
