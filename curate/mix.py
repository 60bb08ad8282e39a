"""Tokenized training mixes with a token → document trail.

A mix is cut from the store's kept documents in four steps, each a function here that ``curate mix``
(:func:`curate.run.commands.mix`) calls in turn:

1. :func:`select_buckets`: every kept document in the first bucket whose SQL condition it meets (the conditions
   are checked, then run on a sandboxed read-only connection); :func:`prepare` writes the selection and splits
   it into ranges, one datatrove task each (:class:`curate.tokens.step.TokenizeStep`).
2. :func:`plan_mix`: with every document's token count known, the copies of each document (weights, token
   targets, the upsampling cap: :mod:`curate.tokens.plan`), the global shuffle across buckets for the seed, and
   the shard boundaries, written as ``plan.parquet``.
3. one datatrove merge task per shard (:class:`curate.tokens.step.MergeStep`) writes the shard in every format
   of ``mix.formats`` with a sidecar beside each shard file (``<shard file>.sidecar.parquet``).
4. :func:`finish_mix`: the mix-level ``sidecar.parquet`` (every entry once, named after the first token format's
   shard files), ``manifest.json`` (tokenizer, formats, shards and their sidecars, requested vs achieved tokens
   per bucket and why they differ, notes, licences by tokens) and ``ATTRIBUTION.md``.

The plan is a function of the store, the recipe and the seed only, so the shards are byte-identical whatever the
number of tasks.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from curate.errors import ConfigError
from curate.escape import md_text, md_url
from curate.licenses.spdx import license_by_spdx
from curate.predicate import check_predicate, sandboxed
from curate.recipe import Recipe
from curate.schema import SIDECAR_COLUMNS, TOKEN_FORMATS, MixFormat, Status, arrow_schema
from curate.tokens.formats import shard_files
from curate.tokens.plan import BucketPlan, plan_buckets, shard_breaks, shuffle_entries
from curate.tokens.step import PLAN, SELECTED, length_file, shard_name
from curate.tokens.tokenizer import Tokenizer, load_tokenizer

MANIFEST = "manifest.json"
SIDECAR = "sidecar.parquet"
ATTRIBUTION = "ATTRIBUTION.md"
SIDECAR_SUFFIX = ".sidecar.parquet"
TOKENIZER_COPY = "tokenizer.json"
"""A mix written with a ``tokenizer.json`` carries a copy of it under this name."""


@dataclass(frozen=True)
class MixSummary:
    """What a mix holds: entries (a document twice is two), tokens, shards (each written in every format), and
    per bucket its entries and tokens."""

    documents: int
    tokens: int
    shards: int
    by_bucket: dict[str, dict[str, int]]


@dataclass(frozen=True)
class MixSpec:
    """What the recipe's ``[mix]`` resolves to before any work: the tokenizer, its BOS/EOS ids, the formats."""

    tokenizer: Tokenizer
    bos: int | None
    eos: int | None
    formats: list[MixFormat]

    @property
    def shard_label(self) -> str:
        """The tokenizer as shard metadata names it: the spec, or the copy of a tokenizer.json in the mix."""
        return f"hf:{TOKENIZER_COPY}" if self.tokenizer.kind == "hf" else self.tokenizer.spec

    @property
    def primary(self) -> MixFormat:
        """The token format whose shard names the mix-level sidecar uses."""
        return next(f for f in self.formats if f in TOKEN_FORMATS)


@dataclass
class MixPlan:
    """The plan of a mix (see :func:`plan_mix`)."""

    buckets: list[BucketPlan]
    notes: list[str]
    shard_tokens: list[int]
    shard_entries: list[int]
    selected_documents: int
    by_bucket: dict[str, dict[str, int]] = field(default_factory=dict)


def mix_spec(recipe: Recipe) -> MixSpec:
    """Load the recipe's tokenizer (offline) and resolve its BOS/EOS tokens and formats, before any work.

    Raises:
        ConfigError: the tokenizer is not available offline or lacks a token the recipe names.
    """
    m = recipe.mix
    tok = load_tokenizer(m.tokenizer)
    bos = tok.token_id(m.bos_token, "mix.bos_token") if m.bos_token else None
    eos = tok.token_id(m.eos_token, "mix.eos_token") if m.eos_token else None
    return MixSpec(tok, bos, eos, [MixFormat(f) for f in m.formats])


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


def task_ranges(n: int, tasks: int) -> list[tuple[int, int]]:
    """``tasks`` (at most ``n``, at least 1) contiguous, near-equal ranges of ``range(n)``."""
    t = max(1, min(tasks, n))
    return [(i * n // t, (i + 1) * n // t) for i in range(t)]


def prepare(work: Path, selected: list[tuple[str, str]], tasks: int) -> list[tuple[int, int]]:
    """Write the selection to ``work/selected.parquet`` (row ``i``: the ``i``-th document by doc_id, its bucket)
    and return the ranges of ``tasks`` tokenize tasks."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    work.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "i": pa.array(range(len(selected)), type=pa.int64()),
            "doc_id": pa.array([d for _, d in selected], type=pa.string()),
            "bucket": pa.array([b for b, _ in selected], type=pa.string()),
        }
    )
    pq.write_table(table, str(work / SELECTED))
    return task_ranges(len(selected), tasks) if selected else []


def plan_mix(
    work: Path, recipe: Recipe, spec: MixSpec, selected: list[tuple[str, str]], ranges: list[tuple[int, int]]
) -> MixPlan:
    """Read the tokenize tasks' token counts, plan the copies, the global order and the shards, and write
    ``work/plan.parquet`` (one row per entry: shard, pos, doc_id, bucket, copy, token_start, token_end, and
    src_rank/src_offset/src_len, where its ids lie in the tokenize tasks' files)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    m = recipe.mix
    doc_ids = [d for _, d in selected]
    names = [b.name for b in m.buckets]
    bucket_of = np.asarray([names.index(b) for b, _ in selected], dtype=np.int64)
    body = np.zeros(len(selected), dtype=np.int64)
    src_rank = np.zeros(len(selected), dtype=np.int64)
    src_offset = np.zeros(len(selected), dtype=np.int64)
    for rank, (lo, hi) in enumerate(ranges):
        counts = np.fromfile(length_file(work, rank), dtype="<i8")
        if len(counts) != hi - lo:
            raise ConfigError(f"tokenize task {rank} wrote {len(counts)} token counts for {hi - lo} documents")
        body[lo:hi] = counts
        src_rank[lo:hi] = rank
        src_offset[lo:hi] = np.cumsum(counts) - counts
    extra = (spec.bos is not None) + (spec.eos is not None)
    lengths = body + extra
    copies, plans, notes = plan_buckets(
        m.buckets, bucket_of, lengths, doc_ids, total_tokens=m.tokens, max_copies=m.max_copies, seed=recipe.seed
    )
    doc, copy = shuffle_entries(copies, doc_ids, recipe.seed)
    entry_len = lengths[doc]
    shard = shard_breaks(entry_len, m.max_tokens_per_shard)
    n_shards = int(shard[-1]) + 1 if len(shard) else 0
    first = np.flatnonzero(np.diff(shard, prepend=-1))  # each shard's first entry (shards are contiguous)
    cum = np.cumsum(entry_len)
    ends = cum - (cum - entry_len)[first][shard]
    pos = np.arange(len(doc), dtype=np.int64) - first[shard]
    table = pa.table(
        {
            "shard": pa.array(shard, type=pa.int64()),
            "pos": pa.array(pos, type=pa.int64()),
            "doc_id": pa.array([doc_ids[i] for i in doc], type=pa.string()),
            "bucket": pa.array([names[bucket_of[i]] for i in doc], type=pa.string()),
            "copy": pa.array(copy, type=pa.int64()),
            "token_start": pa.array(ends - entry_len, type=pa.int64()),
            "token_end": pa.array(ends, type=pa.int64()),
            "src_rank": pa.array(src_rank[doc], type=pa.int64()),
            "src_offset": pa.array(src_offset[doc], type=pa.int64()),
            "src_len": pa.array(body[doc], type=pa.int64()),
        }
    )
    pq.write_table(table, str(work / PLAN))
    shard_tokens = [int(x) for x in np.bincount(shard, weights=entry_len, minlength=n_shards).astype(np.int64)]
    shard_entries = [int(x) for x in np.bincount(shard, minlength=n_shards)]
    by_bucket = {p.name: {"documents": p.entries, "tokens": p.tokens} for p in plans}
    return MixPlan(plans, notes, shard_tokens, shard_entries, len(selected), by_bucket)


def _write_mix_sidecar(out: Path, spec: MixSpec, n_shards: int) -> None:
    """``sidecar.parquet``: the primary format's shard sidecars, one after the other (one row per entry)."""
    import pyarrow.parquet as pq

    writer = None
    try:
        for s in range(n_shards):
            table = pq.read_table(str(out / (shard_files(shard_name(s), spec.primary)[0] + SIDECAR_SUFFIX)))
            if writer is None:
                writer = pq.ParquetWriter(str(out / SIDECAR), table.schema, compression="zstd")
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        pq.write_table(arrow_schema(SIDECAR_COLUMNS).empty_table(), str(out / SIDECAR), compression="zstd")


def _license_tokens(con: Any, out: Path) -> list[dict[str, Any]]:
    """Tokens of the mix by licence in force (from the mix-level sidecar), read through ``con``."""
    rows = con.execute(
        """SELECT coalesce(license_spdx, 'unknown') AS spdx, coalesce(license_scope, 'unknown') AS scope,
                      sum(token_end - token_start)::BIGINT AS tokens, count(*) AS entries,
                      count(DISTINCT doc_id) AS documents
               FROM read_parquet(?) GROUP BY ALL ORDER BY tokens DESC, spdx, scope""",
        [(out / SIDECAR).as_posix()],
    ).fetchall()
    total = sum(r[2] for r in rows) or 1
    return [
        {
            "license_spdx": spdx,
            "license_scope": scope,
            "tokens": int(tokens),
            "share": round(tokens / total, 6),
            "entries": int(entries),
            "documents": int(documents),
        }
        for spdx, scope, tokens, entries, documents in rows
    ]


def finish_mix(con: Any, out: Path, recipe: Recipe, spec: MixSpec, plan: MixPlan) -> MixSummary:
    """Write the mix-level sidecar, ``manifest.json`` and ``ATTRIBUTION.md`` into ``out`` (where the merge tasks
    wrote the shards), from the store connection ``con``; returns the summary."""
    m = recipe.mix
    n_shards = len(plan.shard_tokens)
    _write_mix_sidecar(out, spec, n_shards)
    tok = spec.tokenizer
    if tok.path is not None:
        shutil.copyfile(tok.path, out / TOKENIZER_COPY)
    shards = []
    for s in range(n_shards):
        name = shard_name(s)
        shards.append(
            {
                "name": name,
                "tokens": plan.shard_tokens[s],
                "entries": plan.shard_entries[s],
                "files": {
                    f.value: {
                        "shard": shard_files(name, f)[0],
                        "files": shard_files(name, f),
                        "sidecar": shard_files(name, f)[0] + SIDECAR_SUFFIX,
                    }
                    for f in spec.formats
                },
            }
        )
    tokens = sum(plan.shard_tokens)
    entries = sum(plan.shard_entries)
    manifest = {
        "recipe": {"name": recipe.name, "version": recipe.version, "seed": recipe.seed, "sha256": recipe.digest},
        "tokenizer": spec.shard_label,
        "tokenizer_info": {
            "kind": tok.kind,
            "spec": tok.spec,
            "vocab_size": tok.vocab_size,
            "sha256": tok.digest,
            "copy": TOKENIZER_COPY if tok.path is not None else None,
        },
        "token_size": tok.dtype.itemsize,
        "token_dtype": {"datatrove": str(tok.dtype), "megatron": "uint16" if tok.dtype.itemsize == 2 else "int32"},
        "bos_token": {"token": m.bos_token, "id": spec.bos} if spec.bos is not None else None,
        "eos_token": {"token": m.eos_token, "id": spec.eos} if spec.eos is not None else None,
        "format": [f.value for f in spec.formats],
        "sidecar": SIDECAR,
        "sidecar_shard_format": spec.primary.value,
        "max_tokens_per_shard": m.max_tokens_per_shard,
        "max_copies": m.max_copies,
        "tokens_requested": m.tokens,
        "shards": shards,
        "buckets": [p.as_dict() for p in plan.buckets],
        "notes": plan.notes + [f"{p.name}: {n}" for p in plan.buckets for n in p.notes],
        "licenses_by_tokens": _license_tokens(con, out),
        "selected_documents": plan.selected_documents,
        "documents": entries,
        "tokens": tokens,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    _write_attribution(out / ATTRIBUTION, con, _mixed_ids(out))
    return MixSummary(documents=entries, tokens=tokens, shards=n_shards, by_bucket=plan.by_bucket)


def _mixed_ids(out: Path) -> set[str]:
    import pyarrow.parquet as pq

    return {str(d) for d in pq.read_table(str(out / SIDECAR), columns=["doc_id"]).column("doc_id").to_pylist()}


def is_mix(folder: Path) -> bool:
    """True when ``folder`` holds a mix (its ``manifest.json``)."""
    return (folder / MANIFEST).is_file()


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
