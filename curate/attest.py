"""Attestation: finding, for the store's post-cutoff captures, an earlier capture of the same bytes.

``curate attest`` looks up the payload digest of every document the cutoff does not already prove (captured on or
after it, or undated) in Common Crawl's columnar URL index (Parquet, local or ``s3://`` through DuckDB) and in
earlier curate stores. Digest equality is the claim: a capture with the same SHA-1 payload digest (under any URL:
mirrors, tracking parameters) is recorded as hard evidence; a capture of the same URL with another digest is a
``url-capture``, weak evidence that never changes a tier. Every match is recorded whatever its fetch time (the
earliest per document, source and crawl), in ``attestation_evidence``, so ``curate decide`` judges it against
any later cutoff without looking it up again; a capture that contradicts the crawl calendar is flagged and never
attests. Fetch times without a time zone are read as UTC, and the evidence says so.

The index is read column-wise: only ``content_digest`` (and ``url``, for near-matches) is scanned for every row,
joined against the store's digests written in every spelling the index may use, so the join compares stored
values and DuckDB pushes it into the scan; the other columns are read for matching rows only.
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.crawl_calendar import outside_crawl
from curate.digests import digest_or_none, stored_forms
from curate.errors import InputError, StoreError
from curate.run.progress import NullReporter, Reporter, Snapshot
from curate.schema import ATTEST_NAME, ATTESTATION_COLUMNS, EVIDENCE_STRENGTH, EvidenceFlag, EvidenceKind
from curate.store import WORK_DIR, duckdb_connect, open_store, registered, store_file, writing

REQUIRED_COLUMNS = ("url", "fetch_time", "content_digest", "warc_filename", "warc_record_offset", "warc_record_length")
"""Columns of Common Crawl's columnar index that a lookup cannot do without."""
OPTIONAL_COLUMNS = ("crawl", "fetch_status", "content_mime_detected")
"""Columns recorded when present (``crawl`` is a Hive partition of the index's folder layout)."""
FILES_PER_QUERY = 16  # index files scanned by one query (progress is reported between queries)
_REMOTE = ("s3://", "gs://", "http://", "https://", "hf://")


@dataclass(frozen=True)
class IndexFile:
    """One Parquet file of an index, checked: its columns and whether its fetch times carry a time zone."""

    path: str
    columns: frozenset[str]
    tz_assumed: bool
    rows: int
    size: int | None


@dataclass
class AttestResult:
    """What one attestation pass did."""

    pass_id: int
    looked_up: int
    hard: int
    weak: int
    attested: int  # documents with an unflagged digest match fetched before the recipe's cutoff
    flagged: int
    sources: list[dict[str, Any]] = field(default_factory=list)


def resolve_index(spec: str) -> list[str]:
    """The Parquet files of an ``--index`` value: a file, a folder (every ``*.parquet`` below it), a glob, or a
    remote URL or glob (``s3://…``) passed to DuckDB as is.

    Raises:
        InputError: nothing matches a local path or glob (the message names it).
    """
    if spec.startswith(_REMOTE):
        return [spec]
    path = Path(spec)
    if path.is_dir():
        files = sorted(str(p) for p in path.rglob("*.parquet"))
    elif path.is_file():
        files = [spec]
    else:
        files = sorted(p for p in glob.glob(spec, recursive=True) if Path(p).is_file())
    if not files:
        raise InputError(f"index path {spec} matches no Parquet file (give a file, a folder or a glob)")
    return files


def _hive(files: list[str]) -> str:
    """``read_parquet`` of ``files`` with the Hive partitions of their folders (``crawl=…/subset=…``) as columns."""
    listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    return f"read_parquet([{listed}], hive_partitioning = true, union_by_name = true)"


def check_index_file(con: Any, path: str) -> IndexFile:
    """Check that ``path`` is a Common Crawl columnar index file: readable, with the columns a lookup needs, a
    timestamp ``fetch_time`` and SHA-1 digests in base32 or hex.

    Raises:
        InputError: unreadable (the path and DuckDB's error), missing columns or another schema (naming the
            columns and types found), or digests in another encoding (with an example).
    """
    import duckdb

    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {_hive([path])}").fetchall()
        rows = con.execute(
            f"SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata('{path.replace(chr(39), chr(39) * 2)}')"
        ).fetchall()[0][0]
    except duckdb.Error as e:
        raise InputError(f"cannot read index file {path}: {str(e).splitlines()[0]}") from None
    types = {name: str(kind).upper() for name, kind, *_ in described}
    missing = [c for c in REQUIRED_COLUMNS if c not in types]
    if missing:
        raise InputError(
            f"{path} is not a Common Crawl columnar index file: it lacks the column(s) {', '.join(missing)} "
            f"(needed: {', '.join(REQUIRED_COLUMNS)}; it has: {', '.join(sorted(types)) or 'none'})"
        )
    wrong = [
        f"{c} is {types[c]} (expected {want})"
        for c, want, ok in (
            ("fetch_time", "a TIMESTAMP", types["fetch_time"].startswith("TIMESTAMP")),
            ("content_digest", "VARCHAR", types["content_digest"] == "VARCHAR"),
            ("url", "VARCHAR", types["url"] == "VARCHAR"),
            ("warc_record_offset", "an integer", "INT" in types["warc_record_offset"]),
            ("warc_record_length", "an integer", "INT" in types["warc_record_length"]),
        )
        if not ok
    ]
    if wrong:
        raise InputError(f"{path} has another schema than Common Crawl's columnar index: {'; '.join(wrong)}")
    sample = [
        r[0]
        for r in con.execute(
            f"SELECT content_digest FROM {_hive([path])} WHERE content_digest IS NOT NULL LIMIT 50"
        ).fetchall()
    ]
    if sample and not any(digest_or_none(d) for d in sample):
        raise InputError(
            f"{path}: content_digest holds no SHA-1 digest in base32 or hex (e.g. {sample[0]!r}); "
            "another algorithm or encoding cannot be compared"
        )
    size = os.path.getsize(path) if not path.startswith(_REMOTE) else None
    return IndexFile(path, frozenset(types), types["fetch_time"] != "TIMESTAMP WITH TIME ZONE", int(rows), size)


def _targets(con: Any, cutoff: dt.datetime, every: bool = False) -> tuple[dict[str, Any], dict[str, Any], int]:
    """The documents to look up (captured on or after ``cutoff``, or undated, or all of them with ``every``; a
    verified or unchecked payload digest of a fetched payload): their digests in every stored spelling, and their
    URLs."""
    rows = con.execute(
        """SELECT doc_id, warc_payload_digest, url FROM documents
           WHERE warc_payload_digest IS NOT NULL AND coalesce(payload_digest_ok, true)
             AND record_type IN ('response', 'resource')
             AND (? OR (NOT coalesce(warc_date < ?, false) AND NOT coalesce(warc_date_until <= ?, false)))
           ORDER BY doc_id""",
        [every, cutoff, cutoff],
    ).fetchall()
    keys: dict[str, list[str]] = {"key": [], "doc_id": [], "digest": []}
    urls: dict[str, list[str]] = {"url": [], "doc_id": []}
    n = 0
    for doc_id, raw, url in rows:
        canonical = digest_or_none(raw)
        if canonical is None:
            continue  # another algorithm (sha256:…): nothing in the index can equal it
        n += 1
        for form in stored_forms(canonical):
            keys["key"].append(form)
            keys["doc_id"].append(doc_id)
            keys["digest"].append(canonical)
        if url:
            urls["url"].append(url)
            urls["doc_id"].append(doc_id)
    return keys, urls, n


_MATCH_SQL = """
WITH cand AS (
  SELECT content_digest, url, fetch_time::TIMESTAMPTZ AS fetch_time, {crawl} AS crawl, warc_filename,
         warc_record_offset::BIGINT AS warc_record_offset, warc_record_length::BIGINT AS warc_record_length,
         {status} AS fetch_status, {mime} AS mime
  FROM {relation}
  WHERE content_digest IN (SELECT key FROM keys){near}
), hard AS (
  SELECT k.doc_id, '{hard_kind}' AS kind, k.digest, c.* EXCLUDE (content_digest)
  FROM cand c JOIN keys k ON c.content_digest = k.key
  QUALIFY row_number() OVER (PARTITION BY k.doc_id, c.crawl
                             ORDER BY c.fetch_time, c.url, c.warc_filename, c.warc_record_offset) = 1
), weak AS (
  SELECT u.doc_id, '{weak_kind}' AS kind, c.content_digest AS digest, c.* EXCLUDE (content_digest)
  FROM cand c JOIN urls u ON c.url = u.url
  WHERE c.content_digest NOT IN (SELECT key FROM keys WHERE keys.doc_id = u.doc_id) AND c.fetch_time IS NOT NULL
  QUALIFY row_number() OVER (PARTITION BY u.doc_id ORDER BY c.fetch_time, c.url, c.warc_filename) = 1
)
SELECT * FROM hard UNION ALL SELECT * FROM weak
"""


def _match(con: Any, relation: str, have: frozenset[str], hard_kind: EvidenceKind, near: bool) -> list[tuple[Any, ...]]:
    """Matches of the registered ``keys`` (and ``urls``) in ``relation`` (index-schema columns)."""
    sql = _MATCH_SQL.format(
        relation=relation,
        crawl="crawl::VARCHAR" if "crawl" in have else "NULL::VARCHAR",
        status="fetch_status::BIGINT" if "fetch_status" in have else "NULL::BIGINT",
        mime="content_mime_detected::VARCHAR" if "content_mime_detected" in have else "NULL::VARCHAR",
        near=" OR url IN (SELECT url FROM urls)" if near else "",
        hard_kind=hard_kind.value,
        weak_kind=EvidenceKind.URL_CAPTURE.value,
    )
    return [tuple(r) for r in con.execute(sql).fetchall()]


def _chunks(files: list[IndexFile]) -> list[list[IndexFile]]:
    """Files that one query can read together: same folder, same optional columns, same kind of fetch time."""
    groups: dict[tuple[str, frozenset[str], bool], list[IndexFile]] = {}
    for f in files:
        key = (os.path.dirname(f.path), f.columns & frozenset(OPTIONAL_COLUMNS), f.tz_assumed)
        groups.setdefault(key, []).append(f)
    return [g[i : i + FILES_PER_QUERY] for g in groups.values() for i in range(0, len(g), FILES_PER_QUERY)]


def _evidence_rows(
    matches: list[tuple[Any, ...]], source: str, pass_id: int, tz_assumed: bool, now: dt.datetime
) -> list[dict[str, Any]]:
    out = []
    for doc_id, kind, digest, url, fetch_time, crawl, wfile, offset, length, status, mime in matches:
        canonical = digest_or_none(digest) or digest
        flag = EvidenceFlag.OUTSIDE_CRAWL_RANGE.value if outside_crawl(crawl, fetch_time, now) else None
        out.append(
            {
                "pass_id": pass_id,
                "doc_id": doc_id,
                "kind": kind,
                "strength": EVIDENCE_STRENGTH[EvidenceKind(kind)].value,
                "source": source,
                "digest": canonical,
                "url": url,
                "fetch_time": fetch_time,
                "tz_assumed": tz_assumed,
                "crawl": crawl,
                "warc_filename": wfile,
                "warc_record_offset": offset,
                "warc_record_length": length,
                "fetch_status": status,
                "mime": mime,
                "flag": flag,
            }
        )
    return out


def lookup_index(
    specs: Sequence[str],
    keys: dict[str, Any],
    urls: dict[str, Any],
    *,
    pass_id: int,
    near: bool,
    memory_limit: str,
    spill_dir: Path,
    reporter: Reporter,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Look ``keys`` (and ``urls``) up in the index files of ``specs``; returns the evidence rows and a
    description of each source (files, rows, sizes, modification times: the index version).

    Raises:
        InputError: an index path matches nothing, a file is unreadable or not in the index's schema.
    """
    con = duckdb_connect(":memory:", memory_limit=memory_limit, spill_dir=spill_dir)
    try:
        con.execute("SET TimeZone = 'UTC'").fetchall()
        if any(s.startswith(_REMOTE) for s in specs):
            con.execute("LOAD httpfs")
        evidence: list[dict[str, Any]] = []
        sources: list[dict[str, Any]] = []
        now = dt.datetime.now(dt.UTC)
        checked = [(spec, [check_index_file(con, f) for f in resolve_index(spec)]) for spec in specs]  # all, first
        with registered(con, "keys", keys), registered(con, "urls", urls):
            for spec, files in checked:
                total = sum(f.size or 0 for f in files)
                reporter.stage(f"attest {spec}", len(files), total or None)
                started, done, nbytes, rows = time.monotonic(), 0, 0, 0
                for chunk in _chunks(files):
                    have = chunk[0].columns
                    found = _match(con, _hive([f.path for f in chunk]), have, EvidenceKind.INDEX_CAPTURE, near)
                    evidence += _evidence_rows(found, spec, pass_id, chunk[0].tz_assumed, now)
                    done += len(chunk)
                    nbytes += sum(f.size or 0 for f in chunk)
                    rows += sum(f.rows for f in chunk)
                    reporter.update(
                        Snapshot(f"attest {spec}", rows, nbytes, done, len(files), time.monotonic() - started)
                    )
                crawls = sorted({str(e["crawl"]) for e in evidence if e["source"] == spec and e["crawl"]})
                sources.append(
                    {
                        "kind": "index",
                        "path": spec,
                        "files": len(files),
                        "rows": sum(f.rows for f in files),
                        "bytes": total,
                        "fetch_time_tz_assumed_utc": any(f.tz_assumed for f in files),
                        "latest_mtime": max(
                            (os.path.getmtime(f.path) for f in files if not f.path.startswith(_REMOTE)), default=None
                        ),
                        "crawls_matched": crawls,
                    }
                )
                reporter.end(f"attest {spec}", f"{len(files)} files, {sources[-1]['rows']} index rows scanned")
        return evidence, sources
    finally:
        con.close()


def lookup_store(
    ref: Path, own: Path, keys: dict[str, Any], urls: dict[str, Any], *, pass_id: int, near: bool
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Look ``keys`` (and ``urls``) up among the dated, verified captures of another curate store.

    Raises:
        StoreError: ``ref`` is not a curate store of this schema, or is the store being attested.
    """
    if store_file(ref).resolve() == store_file(own).resolve():
        raise StoreError(f"--store-ref {ref} is the store being attested: its own captures are used by curate decide")
    con = open_store(ref)
    try:
        con.execute("SET TimeZone = 'UTC'").fetchall()  # and no result left open before registering
        relation = """(SELECT warc_payload_digest AS content_digest, url, warc_date AS fetch_time, crawl_id AS crawl,
                              warc_file AS warc_filename, record_offset AS warc_record_offset,
                              record_length AS warc_record_length, http_status AS fetch_status,
                              content_type AS content_mime_detected
                       FROM documents WHERE warc_date IS NOT NULL AND coalesce(payload_digest_ok, true)
                         AND record_type IN ('response', 'resource'))"""
        with registered(con, "keys", keys), registered(con, "urls", urls):
            found = _match(con, relation, frozenset(OPTIONAL_COLUMNS), EvidenceKind.EARLIER_STORE_CAPTURE, near)
        n_docs = con.execute("SELECT count(*) FROM documents").fetchone()[0]
        version = con.execute("SELECT max(finished_at) FROM runs").fetchone()[0]
    finally:
        con.close()
    now = dt.datetime.now(dt.UTC)
    source = {"kind": "store", "path": str(ref), "documents": int(n_docs), "last_ingest": version}
    return _evidence_rows(found, str(ref), pass_id, False, now), source


def attest(
    store: Path,
    cutoff: dt.datetime,
    *,
    indexes: Sequence[str] = (),
    store_refs: Sequence[Path] = (),
    near: bool = True,
    every: bool = False,
    memory_limit: str = "2GB",
    reporter: Reporter | None = None,
) -> AttestResult:
    """Look the store's documents not proven by ``cutoff`` up in ``indexes`` (Common Crawl columnar index files,
    folders or globs) and ``store_refs`` (earlier curate stores), record every match in ``attestation_evidence``
    (replacing what earlier passes found in the same sources for the same documents) and the pass in
    ``attest_passes``, in one transaction. Tiers change at the next ``curate decide``. With ``every``, every
    document with a payload digest is looked up, whatever ``cutoff`` proves, so that a later, earlier cutoff is
    judged from the store without another lookup.

    Raises:
        InputError: no source given, an index path matches nothing, or an index file is unreadable or not in
            the index's schema (nothing is written).
        StoreError: not a store, locked, an older schema, or a ``store_ref`` that is not a curate store.
    """
    if not indexes and not store_refs:
        raise InputError("give at least one --index (Common Crawl columnar index Parquet) or --store-ref (a store)")
    reporter = reporter or NullReporter()
    started = dt.datetime.now(dt.UTC)
    with writing(store, "curate attest", memory_limit=memory_limit) as con:
        pass_id = int(con.execute("SELECT coalesce(max(pass_id), 0) + 1 FROM attest_passes").fetchone()[0])
        keys, urls, n = _targets(con, cutoff, every)
        evidence, sources = lookup_index(
            indexes,
            keys,
            urls,
            pass_id=pass_id,
            near=near,
            memory_limit=memory_limit,
            spill_dir=Path(store) / WORK_DIR / "duckdb-tmp",
            reporter=reporter,
        )
        for ref in store_refs:
            found, described = lookup_store(Path(ref), Path(store), keys, urls, pass_id=pass_id, near=near)
            evidence += found
            sources.append(described)
        looked_up = sorted(set(keys["doc_id"]))
        with registered(con, "looked_up", {"doc_id": looked_up}):
            for s in sources:
                con.execute(
                    "DELETE FROM attestation_evidence WHERE source = ? AND doc_id IN (SELECT doc_id FROM looked_up)",
                    [s["path"]],
                )
        if evidence:
            import pyarrow as pa

            from_schema = pa.schema([pa.field(c.name, c.arrow) for c in ATTESTATION_COLUMNS])
            table = pa.Table.from_pylist(evidence, schema=from_schema)
            names = ", ".join(c.name for c in ATTESTATION_COLUMNS)
            with registered(con, "found", table):
                con.execute(f"INSERT INTO attestation_evidence ({names}) SELECT {names} FROM found ORDER BY ALL")
        hard = sum(1 for e in evidence if e["strength"] == "hard")
        flagged = sum(1 for e in evidence if e["flag"])
        attested = len(
            {e["doc_id"] for e in evidence if e["strength"] == "hard" and not e["flag"] and e["fetch_time"] < cutoff}
        )
        con.execute(
            "INSERT INTO attest_passes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                pass_id,
                started,
                dt.datetime.now(dt.UTC),
                ATTEST_NAME,
                cutoff.date(),
                json.dumps(sources, sort_keys=True, default=str),
                n,
                hard,
                len(evidence) - hard,
            ],
        )
    return AttestResult(pass_id, n, hard, len(evidence) - hard, attested, flagged, sources)
