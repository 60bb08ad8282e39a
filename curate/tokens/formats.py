"""Shard writers, one per :class:`curate.schema.MixFormat`, each taking a shard's entries in order.

- ``datatrove``: datatrove's own ``TokenizedFile`` writes ``<name>.ds`` (tokens, 2 or 4 bytes little-endian by
  vocabulary size), ``<name>.ds.index`` (uint64 end of each document) and ``<name>.ds.metadata``
  (``<tokenizer>|<token size>``, token count, humanized count).
- ``megatron``: Megatron-LM's indexed dataset, written here to its layout (``megatron.core.datasets.
  indexed_dataset``): ``<name>.bin`` holds the tokens (uint16 below 65,537 ids, else int32) and ``<name>.idx`` the
  header ``MMIDIDX\\x00\\x00``, version 1 (uint64), the dtype code (uint8: 8 = uint16, 4 = int32), the sequence count
  and document count (uint64), then the sequence lengths (int32), the sequence byte offsets (int64) and the
  document indices (int64: 0, then the end of each document in sequences; one sequence per document here).
- ``jsonl`` / ``parquet``: one row per entry with its text and token range, for people to read.

Every writer writes to the names it is given; publishing a whole mix at once is the caller's business.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from curate.schema import MixFormat

MEGATRON_HEADER = b"MMIDIDX\x00\x00"
MEGATRON_DTYPE_CODES = {np.dtype("<u2"): 8, np.dtype("<i4"): 4}
"""Megatron-LM's ``DType`` codes of the two token types it reads."""

TEXT_FIELDS = ("doc_id", "bucket", "copy", "token_start", "token_end", "url", "text")
"""Fields of a ``jsonl`` / ``parquet`` row, in order."""


def shard_files(name: str, fmt: MixFormat) -> list[str]:
    """Every file a shard named ``name`` (e.g. ``mix_00000``) has in format ``fmt``; the first is the shard file
    its sidecar is named after."""
    return {
        MixFormat.DATATROVE: [f"{name}.ds", f"{name}.ds.index", f"{name}.ds.metadata"],
        MixFormat.MEGATRON: [f"{name}.bin", f"{name}.idx"],
        MixFormat.JSONL: [f"{name}.jsonl"],
        MixFormat.PARQUET: [f"{name}.parquet"],
    }[fmt]


class ShardWriter:
    """Base of the writers: ``add(tokens, ends, rows)`` per batch of entries in shard order, then ``close()``."""

    def add(self, tokens: np.ndarray, ends: np.ndarray, rows: pa.Table | None) -> None:  # pragma: no cover - abstract
        """Append a batch of entries: ``tokens`` holds their tokens one after the other (BOS/EOS included; the
        mix's token dtype), ``ends`` the end of each entry in ``tokens`` (int64, increasing), ``rows`` one row per
        entry with the ``TEXT_FIELDS`` columns (needed by the ``jsonl``/``parquet`` writers only)."""
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - abstract
        """Finish the shard's files."""
        raise NotImplementedError


class DatatroveWriter(ShardWriter):
    """``.ds`` + ``.ds.index`` + ``.ds.metadata`` through datatrove's ``TokenizedFile``."""

    def __init__(self, folder: Path, name: str, dtype: np.dtype[Any], tokenizer: str) -> None:
        from datatrove.pipeline.tokens.tokenizer import TokenizedFile

        self.dtype = dtype
        self.file = TokenizedFile(
            str(folder),
            f"{name}.ds",
            save_index=True,
            save_final_metadata=True,
            token_size=dtype.itemsize,
            tokenizer_name_or_path=tokenizer,
        )

    def add(self, tokens: np.ndarray, ends: np.ndarray, rows: pa.Table | None) -> None:
        """Append the batch's tokens in one write, and each entry's end to the index."""
        if len(ends):
            self.file.write_bytes(tokens.astype(self.dtype, copy=False).tobytes(), doc_ends=ends.tolist())

    def close(self) -> None:
        """Write the index and metadata."""
        self.file.close()


class MegatronWriter(ShardWriter):
    """``.bin`` + ``.idx`` in Megatron-LM's indexed-dataset layout (one sequence per document)."""

    def __init__(self, folder: Path, name: str, dtype: np.dtype[Any]) -> None:
        self.dtype = np.dtype("<u2") if dtype.itemsize == 2 else np.dtype("<i4")
        self.bin_path, self.idx_path = folder / f"{name}.bin", folder / f"{name}.idx"
        self.bin = self.bin_path.open("wb")
        self.lengths: list[np.ndarray] = []

    def add(self, tokens: np.ndarray, ends: np.ndarray, rows: pa.Table | None) -> None:
        """Append the batch's tokens in one write, each entry one sequence."""
        same = tokens.dtype.itemsize == self.dtype.itemsize  # uint32 ids below 2**31 read the same as int32
        self.bin.write((tokens.view(self.dtype) if same else tokens.astype(self.dtype)).tobytes())
        self.lengths.append(np.diff(ends, prepend=0).astype("<i4"))

    def close(self) -> None:
        """Close ``.bin`` and write ``.idx``."""
        self.bin.close()
        lengths = np.concatenate(self.lengths) if self.lengths else np.zeros(0, dtype="<i4")
        pointers = np.zeros(len(lengths), dtype="<i8")
        if len(lengths):
            pointers[1:] = np.cumsum(lengths[:-1], dtype="<i8") * self.dtype.itemsize
        documents = np.arange(len(lengths) + 1, dtype="<i8")
        with self.idx_path.open("wb") as fh:
            fh.write(MEGATRON_HEADER)
            fh.write(struct.pack("<Q", 1))
            fh.write(struct.pack("<B", MEGATRON_DTYPE_CODES[self.dtype]))
            fh.write(struct.pack("<Q", len(lengths)))
            fh.write(struct.pack("<Q", len(documents)))
            fh.write(lengths.tobytes())
            fh.write(pointers.tobytes())
            fh.write(documents.tobytes())


class JsonlWriter(ShardWriter):
    """One JSON object per line (``TEXT_FIELDS``)."""

    def __init__(self, folder: Path, name: str) -> None:
        self.fh = (folder / f"{name}.jsonl").open("w", encoding="utf-8", newline="\n")

    def add(self, tokens: np.ndarray, ends: np.ndarray, rows: pa.Table | None) -> None:
        """Append one line per row."""
        assert rows is not None
        columns = [rows.column(k).to_pylist() for k in TEXT_FIELDS]
        self.fh.writelines(
            json.dumps(dict(zip(TEXT_FIELDS, values, strict=True)), ensure_ascii=False) + "\n"
            for values in zip(*columns, strict=True)
        )

    def close(self) -> None:
        """Close the file."""
        self.fh.close()


class ParquetWriter(ShardWriter):
    """The JSONL rows as a Parquet file (zstd), written in row groups of ``rows_per_group`` rows as they come."""

    def __init__(self, folder: Path, name: str, rows_per_group: int = 1000) -> None:
        import pyarrow.parquet as pq

        self.schema = pa.schema(
            [
                ("doc_id", pa.string()),
                ("bucket", pa.string()),
                ("copy", pa.int64()),
                ("token_start", pa.int64()),
                ("token_end", pa.int64()),
                ("url", pa.string()),
                ("text", pa.string()),
            ]
        )
        self.writer = pq.ParquetWriter(str(folder / f"{name}.parquet"), self.schema, compression="zstd")
        self.pending: list[pa.Table] = []
        self.rows_per_group = rows_per_group

    def _flush(self, whole_groups_only: bool) -> None:
        table = pa.concat_tables(self.pending) if self.pending else self.schema.empty_table()
        n = self.rows_per_group
        cut = len(table) // n * n if whole_groups_only else len(table)
        for start in range(0, cut, n):
            self.writer.write_table(table.slice(start, min(n, cut - start)).combine_chunks())
        self.pending = [table.slice(cut)] if cut < len(table) else []

    def add(self, tokens: np.ndarray, ends: np.ndarray, rows: pa.Table | None) -> None:
        """Append the rows."""
        assert rows is not None
        self.pending.append(rows.select(list(TEXT_FIELDS)).cast(self.schema))
        if sum(len(t) for t in self.pending) >= self.rows_per_group:
            self._flush(whole_groups_only=True)

    def close(self) -> None:
        """Write the last row group and the footer."""
        self._flush(whole_groups_only=False)
        self.writer.close()


def open_writer(fmt: MixFormat, folder: Path, name: str, dtype: np.dtype[Any], tokenizer: str) -> ShardWriter:
    """The writer of shard ``name`` in format ``fmt`` under ``folder``."""
    if fmt == MixFormat.DATATROVE:
        return DatatroveWriter(folder, name, dtype, tokenizer)
    if fmt == MixFormat.MEGATRON:
        return MegatronWriter(folder, name, dtype)
    if fmt == MixFormat.JSONL:
        return JsonlWriter(folder, name)
    return ParquetWriter(folder, name)
