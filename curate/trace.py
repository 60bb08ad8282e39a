"""From one training token back to the WARC record it came from: the library behind ``curate trace``.

:func:`trace` takes a mix shard and a token position in it. It finds the shard's sidecar (``<shard
file>.sidecar.parquet`` beside the shard, else the mix folder's ``sidecar.parquet`` filtered by shard name), the
sidecar entry whose token range holds the token, the token itself and its document's tokens decoded (when the
mix's tokenizer is available offline), and re-reads the record's exact bytes from its WARC file when the file is
reachable, checking them against the record id and the payload digest. Given the store the mix was cut from, it
adds what the store says now: the document's row, its tier and capture evidence, licence and opt-out evidence,
duplicate cluster and decision (the tables of ``curate show``), and where the store and the sidecar disagree.

A shard is a datatrove ``.ds`` file (its ``.ds.index``, ``.ds.metadata`` or sidecar name work too) or a
Megatron-LM ``.bin``/``.idx`` pair (either file, or their common prefix), on the local disk or at a URL fsspec
can open (``s3://bucket/mix/mix_00000.ds``: :class:`curate.remote.RemotePath`). Nothing here writes or prints.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.errors import ConfigError, InputError, StoreError
from curate.lookup import Table, document_tables
from curate.mix import MANIFEST, SIDECAR, SIDECAR_SUFFIX, TOKENIZER_COPY
from curate.predicate import sandboxed
from curate.remote import RemotePath, file_size, location, readable
from curate.store import STORE_FILE, open_store, store_file
from curate.tokens.formats import MEGATRON_HEADER

MEGATRON_DTYPES = {1: "u1", 2: "i1", 3: "<i2", 4: "<i4", 5: "<i8", 6: "<f8", 7: "<f4", 8: "<u2"}
"""Megatron-LM's ``DType`` codes (byte 17 of an ``.idx`` file) as NumPy dtypes."""

COMPARED = (
    "warc_file",
    "record_offset",
    "record_length",
    "warc_record_id",
    "url",
    "warc_date",
    "tier",
    "license_spdx",
    "license_scope",
    "mgt_score",
)
"""Sidecar columns that repeat a ``documents`` column: a difference means the store changed since the mix."""


@dataclass(frozen=True)
class RecordBytes:
    """The WARC record re-read at the sidecar's coordinates.

    ``data`` is exactly ``length`` bytes from ``offset`` of the file (one gzip member for a ``.warc.gz``), or
    None with ``unreachable`` saying why (file missing, remote and not readable, short read).
    ``record_id_ok``: the bytes hold one WARC record whose WARC-Record-ID is the sidecar's; ``payload_digest_ok``:
    the payload re-hashed matches its WARC-Payload-Digest (None when the record has none). ``problems`` lists
    every check that failed, in words.
    """

    path: str
    offset: int
    length: int | None
    data: bytes | None = None
    unreachable: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    record_id_ok: bool | None = None
    payload_digest_ok: bool | None = None
    problems: tuple[str, ...] = ()

    @property
    def verified(self) -> bool:
        """The bytes were read and every check passed."""
        return self.data is not None and bool(self.record_id_ok) and not self.problems

    @property
    def sha256(self) -> str | None:
        """SHA-256 of ``data`` (hex), to cite the bytes."""
        return hashlib.sha256(self.data).hexdigest() if self.data is not None else None


@dataclass(frozen=True)
class Trace:
    """Where one token of a mix shard came from.

    ``entry`` is the sidecar row whose range ``[token_start, token_end)`` holds the token: bucket, copy, doc_id,
    WARC coordinates (warc_file, record_offset, record_length, warc_record_id), url, warc_date, licence, tier and
    MGT score as they were when the mix was cut. ``token``/``token_text``: the token id at ``token_index`` and its
    decoded text; ``text``: the document's whole token range decoded (end-of-text token included); all three
    None when the shard or the tokenizer is not at hand (``notes`` says which). ``document`` and ``evidence``
    come from the store when one is given: the ``documents`` row now and the tables of ``curate show`` (text,
    capture evidence, licence evidence, opt-out evidence, duplicate cluster, mixes, decision). ``record``: the
    record's bytes re-read (None when not asked for). ``notes``: what a reviewer should know, e.g. a column the
    store has changed since the mix was cut.
    """

    shard: Path | RemotePath
    sidecar: Path | RemotePath
    token_index: int
    shard_tokens: int
    entry: dict[str, Any]
    token: int | None = None
    token_text: str | None = None
    text: str | None = None
    tokenizer: str | None = None
    store: Path | None = None
    document: dict[str, Any] | None = None
    evidence: tuple[Table, ...] = ()
    record: RecordBytes | None = None
    notes: tuple[str, ...] = ()

    @property
    def doc_id(self) -> str:
        """The document the token belongs to."""
        return str(self.entry["doc_id"])

    def table(self, title: str) -> Table | None:
        """The evidence table whose title starts with ``title`` (e.g. ``"licence evidence"``), or None."""
        return next((t for t in self.evidence if t.title.startswith(title)), None)

    def as_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready values (the record's bytes as their SHA-256 and length, not inline)."""
        out: dict[str, Any] = {
            "shard": str(self.shard),
            "sidecar": str(self.sidecar),
            "token_index": self.token_index,
            "shard_tokens": self.shard_tokens,
            "token": self.token,
            "token_text": self.token_text,
            "tokenizer": self.tokenizer,
            "entry": self.entry,
            "text": self.text,
            "store": str(self.store) if self.store else None,
            "document": self.document,
            "evidence": {t.title: [dict(zip(t.columns, r, strict=True)) for r in t.rows] for t in self.evidence},
            "notes": list(self.notes),
            "record": None,
        }
        if self.record is not None:
            rec = {k: v for k, v in dataclasses.asdict(self.record).items() if k != "data"}
            rec.update(bytes=len(self.record.data) if self.record.data is not None else None, sha256=self.record.sha256)
            rec["verified"] = self.record.verified
            out["record"] = rec
        return out


@dataclass(frozen=True)
class _Shard:
    path: Path | RemotePath  # the token file: .ds or .bin, on the local disk or at a URL
    names: frozenset[str]  # what the mix-level sidecar may call it
    dtype: str | None  # NumPy dtype of a token, when known
    tokenizer: str | None  # the tokenizer the shard names (datatrove metadata, else the manifest)
    manifest: dict[str, Any]


def _read_json(path: Path | RemotePath) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _resolve(shard: Path | RemotePath) -> _Shard:
    """The shard file behind any of the names a user may give it, with its token type and tokenizer."""
    p = shard
    name = p.name
    if name.endswith(SIDECAR_SUFFIX):
        p = p.with_name(name.removesuffix(SIDECAR_SUFFIX))
    for companion in (".ds.index", ".ds.metadata"):
        if p.name.endswith(companion):
            p = p.with_name(p.name.removesuffix(companion.removeprefix(".ds")))
    if p.suffix == ".idx":
        p = p.with_suffix(".bin")
    elif p.suffix not in (".ds", ".bin") and not p.is_file():
        prefix = p.with_name(p.name + ".bin")  # a Megatron prefix: mix_00000 for mix_00000.bin/.idx
        if prefix.is_file() or prefix.with_name(prefix.name + SIDECAR_SUFFIX).is_file():
            p = prefix
    manifest = _read_json(p.parent / MANIFEST)
    info = manifest.get("tokenizer_info")
    tokenizer = next(
        (
            v
            for v in (info.get("spec") if isinstance(info, dict) else None, manifest.get("tokenizer"))
            if isinstance(v, str)
        ),
        None,
    )
    dtype: str | None = None
    # the mix-level sidecar names a shard by one format's file; the same shard in another format holds the same
    # tokens, so its entries are found under any of the shard's names
    stem = p.name.removesuffix(p.suffix) if p.suffix in (".ds", ".bin") else p.name
    names = {p.name, stem, stem + ".ds", stem + ".bin", stem + ".idx"}
    if p.suffix == ".bin":
        try:
            with p.with_suffix(".idx").open("rb") as fh:
                head = fh.read(len(MEGATRON_HEADER) + 9)
            if head.startswith(MEGATRON_HEADER):
                dtype = MEGATRON_DTYPES.get(head[-1])
        except OSError:
            pass
    else:
        size = manifest.get("token_size")
        try:  # datatrove's .ds.metadata: "<tokenizer>|<token size>\n<tokens>\n…"
            first = (p.parent / (p.name + ".metadata")).read_text(encoding="utf-8").splitlines()[0]
            spec, _, token_size = first.rpartition("|")
            tokenizer, size = spec or tokenizer, int(token_size)
        except (OSError, IndexError, ValueError):
            pass
        dtype = {2: "<u2", 4: "<u4"}.get(size) if isinstance(size, int) else None
    return _Shard(p, frozenset(names), dtype, tokenizer, manifest)


def _sidecar_rows(s: _Shard, token_index: int) -> tuple[Path | RemotePath, list[dict[str, Any]], int]:
    """(the sidecar read, its entries covering ``token_index``, the tokens it covers in the shard)."""
    import pyarrow.compute as pc

    own = s.path.with_name(s.path.name + SIDECAR_SUFFIX)
    mixed = s.path.parent / SIDECAR
    if own.is_file():
        path, where = own, None
    elif mixed.is_file():
        path, where = mixed, ("shard", "in", sorted(s.names))
    else:
        what = "" if s.path.is_file() else f" (and no shard {s.path.name} either)"
        raise InputError(f"no sidecar for {s.path}: neither {own.name} nor {mixed} exists{what}")
    try:
        ends = _parquet(path, columns=["token_end"], filters=[where] if where else None)
    except (OSError, ValueError, KeyError) as e:
        raise InputError(f"cannot read the sidecar {path}: {e}") from None
    if ends.num_rows == 0:
        known = _parquet(path, columns=["shard"]).column("shard").unique().to_pylist()
        raise InputError(
            f"the sidecar {path} has no entries for shard {s.path.name} (it has: {', '.join(sorted(map(str, known))[:8])})"
        )
    covered = int(pc.max(ends.column("token_end")).as_py())
    filters = [("token_start", "<=", token_index), ("token_end", ">", token_index)]
    rows = _parquet(path, filters=[*filters, where] if where else filters).to_pylist()
    return path, rows, covered


def _parquet(path: Path | RemotePath, **kwargs: Any) -> Any:
    """``pyarrow.parquet.read_table`` of a local file, or of a remote one through fsspec (ranged reads: the
    row groups a filter skips are not downloaded)."""
    import pyarrow.parquet as pq

    if isinstance(path, RemotePath):
        with path.open("rb") as fh:
            return pq.read_table(fh, **kwargs)
    return pq.read_table(path, **kwargs)


def _read_tokens(s: _Shard, start: int, end: int) -> list[int] | None:
    """Tokens ``[start, end)`` of the shard file, or None when its token type is unknown or the file unreadable."""
    import numpy as np

    if s.dtype is None:
        return None
    size = np.dtype(s.dtype).itemsize
    try:
        with s.path.open("rb") as fh:
            fh.seek(start * size)
            data = fh.read((end - start) * size)
    except OSError:
        return None
    if len(data) != (end - start) * size:
        return None
    return [int(t) for t in np.frombuffer(data, dtype=s.dtype)]


Decoder = Callable[[Sequence[int]], str]


def _decoder(spec: str | None, folder: Path | RemotePath) -> tuple[tuple[Decoder, Decoder] | None, str | None]:
    """Functions that decode token ids (a run of them; one token, its bytes shown when they are not whole UTF-8)
    with the tokenizer ``spec`` names, or None and why not. The specs of ``mix.tokenizer``: a tiktoken encoding
    shipped in a package (``tiktoken:NAME`` or a bare ``NAME``), or a Hugging Face ``tokenizer.json``
    (``hf:PATH``, or a value ending in ``.json`` or holding a ``/``) found at its path, in the mix folder by its
    name, or as the copy a mix keeps beside its shards (``TOKENIZER_COPY``)."""
    if not spec:
        return None, "the mix does not name its tokenizer, so tokens are not decoded"
    kind, sep, rest = spec.partition(":")
    hf = (sep and kind == "hf") or spec.endswith(".json") or "/" in spec
    if not hf:
        import tiktoken

        try:
            enc = tiktoken.get_encoding(rest if sep and kind == "tiktoken" else spec)
        except (ValueError, OSError) as e:
            return None, f"tokenizer {spec} is not available offline here ({e})"

        def one(ids: Sequence[int]) -> str:
            return b"".join(enc.decode_single_token_bytes(t) for t in ids).decode("utf-8", "backslashreplace")

        return ((lambda ids: enc.decode(list(ids))), one), None
    path = Path(rest if sep and kind == "hf" else spec)
    candidates: tuple[Path | RemotePath, ...] = (path, folder / path, folder / path.name, folder / TOKENIZER_COPY)
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        return (
            None,
            f"tokenizer {spec} is not a tiktoken encoding or a tokenizer.json found here, so tokens are not decoded",
        )
    from tokenizers import Tokenizer

    try:
        tok = Tokenizer.from_str(found.read_text(encoding="utf-8"))
    except Exception as e:  # noqa: BLE001 - the library's parse error
        return None, f"{found} is not a tokenizer.json the tokenizers library reads ({e}), so tokens are not decoded"

    def whole(ids: Sequence[int]) -> str:
        return str(tok.decode(list(ids), skip_special_tokens=False))

    return (whole, whole), None


def read_record(path: str, offset: int, length: int | None, record_id: str | None) -> RecordBytes:
    """Re-read exactly ``length`` bytes at ``offset`` of the WARC file ``path`` (a local path or a URL fsspec
    can open) and check them: one WARC record, its WARC-Record-ID is ``record_id``, its payload matches its
    WARC-Payload-Digest. A file that cannot be read gives ``unreachable`` with the reason, never an error."""
    import fsspec
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    if length is None or length <= 0:
        return RecordBytes(path, offset, length, unreachable="the record has no recorded length")
    try:
        with fsspec.open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read(length)
    except FileNotFoundError:
        return RecordBytes(path, offset, length, unreachable=f"{path} does not exist here")
    except Exception as e:  # noqa: BLE001 - no credentials, no network, a bad URL: all mean "not reachable"
        return RecordBytes(path, offset, length, unreachable=f"cannot read {path}: {type(e).__name__}: {e}")
    if len(data) != length:
        return RecordBytes(
            path, offset, length, unreachable=f"{path} ends {length - len(data)} bytes short of the record"
        )
    problems: list[str] = []
    headers: dict[str, str] = {}
    id_ok: bool | None = False
    digest_ok: bool | None = None
    try:
        records = iter(ArchiveIterator(io.BytesIO(data), check_digests=True))
        rec = next(records, None)
        if rec is None:
            problems.append(f"no WARC record at byte {offset}")
        else:
            headers = {str(k): str(v) for k, v in rec.rec_headers.headers}
            rec.content_stream().read()
            checker = rec.digest_checker
            digest_ok = None if checker is None or checker.passed is None else bool(checker.passed)
            if digest_ok is False:
                problems.append("payload does not match WARC-Payload-Digest: " + "; ".join(checker.problems))
            id_ok = headers.get("WARC-Record-ID") == record_id
            if not id_ok:
                problems.append(f"WARC-Record-ID is {headers.get('WARC-Record-ID')!r}, the sidecar says {record_id!r}")
            if next(records, None) is not None:
                problems.append(f"the {length} bytes hold more than one record")
    except (ArchiveLoadFailed, OSError, ValueError, EOFError, zlib.error) as e:
        problems.append(f"not a WARC record: {type(e).__name__}: {str(e)[:120]}")
    return RecordBytes(path, offset, length, data, None, headers, id_ok, digest_ok, tuple(problems))


def _find_warc(path: str, warc_dirs: Sequence[Path]) -> str:
    """``path`` if it exists (or is a URL), else the file of that name in the first of ``warc_dirs`` that has it."""
    if "://" in path or Path(path).is_file():
        return path
    for d in warc_dirs:
        candidate = Path(d) / Path(path).name
        if candidate.is_file():
            return str(candidate)
    return path


def _store_side(store: Path, doc_id: str, entry: dict[str, Any], mix_folder: Path | RemotePath) -> tuple[Any, ...]:
    """(document row, evidence tables, notes) from the store, read through a sandboxed read-only connection."""
    open_store(store).close()  # a store of this schema, or a StoreError saying what it is
    con = sandboxed(store_file(store))
    try:
        if not con.execute("SELECT count(*) FROM documents WHERE doc_id = ?", [doc_id]).fetchone()[0]:
            raise StoreError(
                f"document {doc_id} of the sidecar is not in the store {store}: was the mix cut from another store?"
            )
        tables = document_tables(con, doc_id, str(store))
        mixes = con.execute(
            "SELECT mix_id, created_at FROM mixes WHERE out = ? ORDER BY mix_id DESC", [str(mix_folder.resolve())]
        ).fetchall()
    finally:
        con.close()
    document = dict(tables[0].rows)
    notes = []
    if mixes:
        notes.append(f"the store records this mix folder as mix {mixes[0][0]} ({mixes[0][1]:%Y-%m-%d %H:%M})")
    else:
        notes.append(f"the store has no record of a mix in {mix_folder} (moved, or cut from another store)")
    if document.get("status") != "kept":
        notes.append(
            f"the document is {document.get('status') or 'undecided'} in the store now"
            + (f" ({document['reason']}: {document.get('reason_detail')})" if document.get("reason") else "")
        )
    for key in COMPARED:
        if key in entry and key in document and not _same(entry[key], document[key]):
            notes.append(f"{key} is {document[key]!r} in the store now, {entry[key]!r} in the sidecar")
    return document, tuple(tables[1:]), notes


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))
    return bool(a == b)


def trace(
    shard: Path | str,
    token_index: int,
    store: Path | None = None,
    *,
    read_warc: bool = True,
    warc_dirs: Sequence[Path] = (),
) -> Trace:
    """Trace token ``token_index`` of the mix shard ``shard`` back to its document and WARC record.

    ``shard``: a datatrove ``.ds`` shard (or its ``.ds.index``/``.ds.metadata``/sidecar), or a Megatron-LM
    ``.bin``, ``.idx`` or their prefix, on the local disk or at a URL (``s3://…``, any fsspec protocol: the sidecar,
    manifest and tokens are read through fsspec, in ranges). ``token_index`` counts from 0 within the shard; a negative index counts
    from the end (-1: the last token). ``store``: the store the mix was cut from (folder or
    ``provenance.duckdb``), for the document's evidence now; without it the trace says what the sidecar says.
    ``read_warc``: re-read the record's bytes (a local file, or a URL fsspec can open); ``warc_dirs``: folders
    to look in, by file name, when the recorded path does not exist (WARCs moved since ingest).

    Raises:
        InputError: no sidecar for the shard, or the sidecar has no entry for the token (a damaged sidecar); a
            remote shard's folder cannot be read.
        ConfigError: the token index is out of the shard's range.
        StoreError: ``store`` is not a store of this schema, or does not hold the token's document.
    """
    loc = location(shard)
    if isinstance(loc, RemotePath):
        readable(loc.parent)
    s = _resolve(loc)
    sidecar, rows, covered = _sidecar_rows(s, token_index)
    shard_tokens = covered
    if s.dtype is not None and s.path.is_file():
        import numpy as np

        shard_tokens = file_size(s.path) // np.dtype(s.dtype).itemsize
    notes: list[str] = []
    if shard_tokens != covered:
        notes.append(f"the sidecar covers {covered} tokens, the shard file has {shard_tokens}")
    index = token_index + shard_tokens if token_index < 0 else token_index
    if not 0 <= index < shard_tokens:
        raise ConfigError(
            f"token index {token_index} is out of range: {s.path.name} has {shard_tokens} tokens (0 to {shard_tokens - 1})"
        )
    if index != token_index:
        sidecar, rows, _ = _sidecar_rows(s, index)
    if not rows:
        raise InputError(f"no entry of the sidecar {sidecar} covers token {index} of {s.path.name}")
    if len(rows) > 1:
        raise InputError(f"{len(rows)} entries of the sidecar {sidecar} cover token {index} of {s.path.name}")
    entry = rows[0]
    tokens = _read_tokens(s, int(entry["token_start"]), int(entry["token_end"]))
    token = token_text = text = None
    if tokens is None:
        notes.append(f"the tokens were not read: {s.path} is missing or its token type is unknown")
    else:
        token = tokens[index - int(entry["token_start"])]
        decoders, why = _decoder(s.tokenizer, s.path.parent)
        if decoders is None:
            notes.append(str(why))
        else:
            text, token_text = decoders[0](tokens), decoders[1]([token])
    document: dict[str, Any] | None = None
    evidence: tuple[Table, ...] = ()
    if store is not None:
        document, evidence, store_notes = _store_side(Path(store), str(entry["doc_id"]), entry, s.path.parent)
        notes += store_notes
    elif isinstance(s.path, Path) and (s.path.parent.parent / STORE_FILE).is_file():
        notes.append(
            f"the store beside this mix, {s.path.parent.parent}, has the document's evidence (pass it as the store)"
        )
    record = None
    if read_warc:
        where = _find_warc(str(entry["warc_file"]), warc_dirs)
        record = read_record(
            where, int(entry["record_offset"]), entry.get("record_length"), entry.get("warc_record_id")
        )
    return Trace(
        shard=s.path,
        sidecar=sidecar,
        token_index=index,
        shard_tokens=shard_tokens,
        entry=entry,
        token=token,
        token_text=token_text,
        text=text,
        tokenizer=s.tokenizer,
        store=Path(store) if store is not None else None,
        document=document,
        evidence=evidence,
        record=record,
        notes=tuple(notes),
    )


def _fmt(value: Any) -> str:
    return "unknown" if value is None else str(value)


def trace_lines(t: Trace, *, text_chars: int = 300) -> list[str]:
    """What ``curate trace`` prints for a trace (the evidence tables, when any, are printed after these lines)."""
    e, d = t.entry, t.document or {}
    token = (
        "" if t.token is None else f": token id {t.token}" + (f" {t.token_text!r}" if t.token_text is not None else "")
    )
    lines = [
        f"token {t.token_index} of {t.shard} ({t.shard_tokens} tokens){token}",
        f"  sidecar   {t.sidecar}",
        f"  entry     tokens {e['token_start']}–{e['token_end']} ({e['token_end'] - e['token_start']} tokens), "
        f"bucket {e.get('bucket')}, copy {e.get('copy')}",
        f"document {e['doc_id']}",
        f"  url       {_fmt(e.get('url'))}",
        f"  captured  {_fmt(e.get('warc_date'))} (WARC-Date); tier {_fmt(e.get('tier'))}"
        + (f"; date_reason {d['date_reason']}" if d.get("date_reason") else ""),
        f"  licence   {_fmt(e.get('license_spdx'))} (scope {_fmt(e.get('license_scope'))})",
        f"  MGT score {_fmt(e.get('mgt_score'))}",
    ]
    if d:
        lines.append(
            f"  in store  status {_fmt(d.get('status'))}"
            + (f" ({d['reason']})" if d.get("reason") else "")
            + f", crawl {_fmt(d.get('crawl_id'))}, payload digest {_fmt(d.get('warc_payload_digest'))}"
            + (f", duplicate cluster {d['dup_cluster_id']}" if d.get("dup_cluster_id") else "")
        )
    lines.append(
        f"WARC record {e.get('warc_record_id')} in {e.get('warc_file')} at byte {e.get('record_offset')}, "
        f"{e.get('record_length')} bytes"
    )
    r = t.record
    if r is None:
        lines.append("  not re-read")
    elif r.data is None:
        lines.append(f"  unreachable: {r.unreachable}")
    else:
        checks = [
            "WARC-Record-ID matches" if r.record_id_ok else "WARC-Record-ID DIFFERS",
            {True: "payload digest verified", False: "payload digest FAILED", None: "no payload digest recorded"}[
                r.payload_digest_ok
            ],
        ]
        lines.append(f"  re-read   {len(r.data)} bytes from {r.path}, sha256 {r.sha256}")
        lines.append(f"  checks    {', '.join(checks)}" + ("" if r.verified else ": " + "; ".join(r.problems)))
    if t.text is not None:
        shown = t.text if len(t.text) <= text_chars else t.text[:text_chars] + "…"
        lines.append(f"text of the token range (first {text_chars} characters): {shown!r}")
    lines += [f"note: {n}" for n in t.notes]
    return lines
