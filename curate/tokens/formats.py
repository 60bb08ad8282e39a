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
    """Base of the writers: ``add(tokens, row)`` per entry in shard order, then ``close()``."""

    def add(self, tokens: np.ndarray, row: dict[str, Any]) -> None:  # pragma: no cover - abstract
        """Append one entry: its tokens (BOS/EOS included; the mix's token dtype) and its row (``TEXT_FIELDS``)."""
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

    def add(self, tokens: np.ndarray, row: dict[str, Any]) -> None:
        """Append one document's tokens."""
        self.file.write_bytes(tokens.astype(self.dtype, copy=False).tobytes())

    def close(self) -> None:
        """Write the index and metadata."""
        self.file.close()


class MegatronWriter(ShardWriter):
    """``.bin`` + ``.idx`` in Megatron-LM's indexed-dataset layout (one sequence per document)."""

    def __init__(self, folder: Path, name: str, dtype: np.dtype[Any]) -> None:
        self.dtype = np.dtype("<u2") if dtype.itemsize == 2 else np.dtype("<i4")
        self.bin_path, self.idx_path = folder / f"{name}.bin", folder / f"{name}.idx"
        self.bin = self.bin_path.open("wb")
        self.lengths: list[int] = []

    def add(self, tokens: np.ndarray, row: dict[str, Any]) -> None:
        """Append one document as one sequence."""
        same = tokens.dtype.itemsize == self.dtype.itemsize  # uint32 ids below 2**31 read the same as int32
        self.bin.write((tokens.view(self.dtype) if same else tokens.astype(self.dtype)).tobytes())
        self.lengths.append(len(tokens))

    def close(self) -> None:
        """Close ``.bin`` and write ``.idx``."""
        self.bin.close()
        lengths = np.asarray(self.lengths, dtype="<i4")
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

    def add(self, tokens: np.ndarray, row: dict[str, Any]) -> None:
        """Append one row."""
        self.fh.write(json.dumps({k: row[k] for k in TEXT_FIELDS}, ensure_ascii=False) + "\n")

    def close(self) -> None:
        """Close the file."""
        self.fh.close()


class ParquetWriter(ShardWriter):
    """The JSONL rows as a Parquet file (zstd), written in row groups as they come."""

    def __init__(self, folder: Path, name: str, rows_per_group: int = 1000) -> None:
        import pyarrow as pa
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
        self.rows: list[dict[str, Any]] = []
        self.rows_per_group = rows_per_group

    def _flush(self) -> None:
        import pyarrow as pa

        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def add(self, tokens: np.ndarray, row: dict[str, Any]) -> None:
        """Append one row."""
        self.rows.append({k: row[k] for k in TEXT_FIELDS})
        if len(self.rows) >= self.rows_per_group:
            self._flush()

    def close(self) -> None:
        """Write the last row group and the footer."""
        self._flush()
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
