"""Read WARC, WET and ARC files into documents that keep their WARC coordinates.

``iter_records(path)`` yields one :class:`datatrove.data.Document` per response, resource, conversion or
revisit record, plus one quarantine document for each point where the file could not be read. Nothing is
skipped silently: every document carries ``status``/``reason`` when it is already decided, and the
coordinates (file, byte offset, compressed length, WARC-Record-ID, digests, date, URL) a reviewer needs to
fetch the exact bytes again. ``ProvenanceWarcReader`` is the datatrove step that shards files over tasks.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import quote, urlsplit

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from curate.licenses.tagger import wat_license_evidence
from curate.read.charset import decode_payload, looks_binary
from curate.read.http import (
    RecordingParser,
    body_flags,
    content_stream,
    content_type,
    field_values,
    header_flags,
    http_date,
)
from curate.read.inputs import UnreachableInput, open_input
from curate.schema import READER_NAME, Flag, Meta, Reason, add_flag, mark

DOC_RECORD_TYPES = frozenset({"response", "resource", "conversion", "revisit"})
WAT_CONTENT_TYPE = "application/json"
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
OPTOUT_HEADERS = ("x-robots-tag", "tdm-reservation", "tdm-policy", "content-usage")
MAX_PAYLOAD_BYTES = 16 * 1024 * 1024
PROGRESS_EVERY_S = 30.0


def make_doc_id(file_name: str, offset: int) -> str:
    """Stable document id from the input file's base name and the record's byte offset."""
    return hashlib.sha1(f"{file_name}:{offset}".encode()).hexdigest()[:20]


def domain_of(url: str | None) -> str | None:
    """Lower-cased host of ``url`` without a leading ``www.``; None when there is no host."""
    if not url:
        return None
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    if not host:
        return None
    return host[4:] if host.startswith("www.") else host


def _base_meta(path: str, offset: int, crawl_id: str | None) -> dict[str, Any]:
    name = os.path.basename(path)
    return {
        Meta.DOC_ID: make_doc_id(name, offset),
        Meta.WARC_FILE: path,
        Meta.WARC_FILE_NAME: name,
        Meta.RECORD_OFFSET: offset,
        Meta.CRAWL_ID: crawl_id,
    }


def _quarantine(path: str, offset: int, crawl_id: str | None, reason: Reason, detail: str) -> Document:
    meta = _base_meta(path, offset, crawl_id)
    mark(meta, reason, detail[:2000])
    return Document(text="", id=meta[Meta.DOC_ID], metadata=meta)


def _warcinfo_crawl_id(record: Any) -> str | None:
    body = record.content_stream().read(1 << 20).decode("utf-8", "replace")
    for line in body.splitlines():
        key, _, value = str(line).partition(":")
        if key.strip().lower() == "ispartof" and value.strip():
            return value.strip()
    return None


def _url_as_recorded(path: str, offset: int, decoded: str) -> str:
    """The WARC-Target-URI of the record at ``offset`` as its bytes were: warcio decodes a header line as UTF-8
    when it can and as Latin-1 when it cannot, so a URL holding bytes that are not UTF-8 comes out as mojibake.
    Those bytes are percent-encoded instead (RFC 3986); a valid UTF-8 IRI is kept as text."""
    import fsspec

    try:
        with fsspec.open(path, "rb") as fh:
            fh.seek(offset)
            head = fh.read(1 << 16)
        if head[:2] == b"\x1f\x8b":
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 1 << 16)
    except (OSError, zlib.error):
        return decoded
    for line in head.split(b"\r\n\r\n", 1)[0].split(b"\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"warc-target-uri":
            raw = value.strip()
            try:
                return str(raw.decode("utf-8"))
            except UnicodeDecodeError:
                return quote(raw, safe=bytes(range(0x21, 0x7F)))
    return decoded


def _record_meta(path: str, it: Any, record: Any, crawl_id: str | None, base: int) -> dict[str, Any]:
    """Coordinates and WARC header fields of a record the iterator has read to the end; ``flags`` starts empty
    (examined) and says ``warc_truncated`` when the record says so."""
    meta = _base_meta(path, base + it.get_record_offset(), crawl_id)
    meta[Meta.FLAGS], meta[Meta.FLAG_DETAIL] = [], None
    h = record.rec_headers
    url = h.get_header("WARC-Target-URI")
    if url and not url.isascii():
        url = _url_as_recorded(path, meta[Meta.RECORD_OFFSET], url)
    meta.update(
        {
            Meta.RECORD_LENGTH: it.get_record_length(),
            Meta.RECORD_TYPE: record.rec_type,
            Meta.WARC_VERSION: (h.protocol or None),
            Meta.WARC_RECORD_ID: h.get_header("WARC-Record-ID"),
            Meta.WARC_PAYLOAD_DIGEST: h.get_header("WARC-Payload-Digest"),
            Meta.WARC_DATE_RAW: h.get_header("WARC-Date"),
            Meta.URL: url,
            Meta.DOMAIN: domain_of(url),
        }
    )
    truncated = h.get_header("WARC-Truncated")
    if truncated is not None:
        add_flag(meta, Flag.WARC_TRUNCATED, truncated.strip() or "unspecified")
    return meta


def _record_document(path: str, it: Any, record: Any, crawl_id: str | None, base: int = 0) -> Document:
    """Build the document of one payload record; the iterator has already read it to the end."""
    meta = _record_meta(path, it, record, crawl_id, base)
    h = record.rec_headers
    rec_type = record.rec_type
    checker = record.digest_checker
    if meta[Meta.WARC_PAYLOAD_DIGEST] and checker is not None and checker.passed is not None:
        meta[Meta.PAYLOAD_DIGEST_OK] = bool(checker.passed)
        if not checker.passed and not any(p.startswith("block digest failed") for p in checker.problems):
            add_flag(meta, Flag.PAYLOAD_DIGEST_MISMATCH, meta[Meta.WARC_PAYLOAD_DIGEST])
    http = record.http_headers
    content_types = [record.content_type] if record.content_type else []
    if http is not None and rec_type in ("response", "revisit"):
        try:
            meta[Meta.HTTP_STATUS] = int(http.get_statuscode())
        except (TypeError, ValueError):
            meta[Meta.HTTP_STATUS] = None
        content_types = field_values(http, "content-type")
        meta[Meta.HTTP_LAST_MODIFIED] = http_date(field_values(http, "last-modified"))
        for flag, detail in header_flags(http) + record._curate_body_flags:
            add_flag(meta, flag, detail)
        # a header sent on several lines is one comma-separated list (RFC 9110 5.3); names are case-insensitive
        meta[Meta.HEADERS] = {
            k: ", ".join(v for name, v in http.headers if name.strip().lower() == k and v)
            for k in OPTOUT_HEADERS
            if any(name.strip().lower() == k and v for name, v in http.headers)
        }
    mime, declared_charset, conflicts = content_type(content_types)
    for flag, detail in conflicts:
        add_flag(meta, flag, detail)
    meta[Meta.CONTENT_TYPE] = mime
    payload: bytes = record._curate_payload
    meta[Meta.PAYLOAD_BYTES] = len(payload)
    doc = Document(text="", id=meta[Meta.DOC_ID], metadata=meta)

    def decide(reason: Reason, detail: str | None = None) -> Document:
        mark(meta, reason, detail)
        return doc

    if record._curate_truncated:
        return decide(Reason.TRUNCATED_RECORD, f"block has {record._curate_missing} bytes fewer than Content-Length")
    if record._curate_too_large:  # decided before decoding: the payload is never turned into text
        return decide(Reason.TOO_LARGE, f"payload over {len(payload)} bytes (extract.max_payload_bytes)")
    problems = [p for p in (checker.problems if checker is not None else []) if p.startswith("block digest failed")]
    if problems:
        return decide(Reason.DIGEST_MISMATCH, problems[0])
    missing_fields = [f for f in ("WARC-Record-ID", "WARC-Type") if not h.get_header(f)]
    if missing_fields:
        return decide(Reason.READ_ERROR, f"malformed WARC headers: missing {', '.join(missing_fields)}")
    if rec_type == "revisit":
        return decide(Reason.REVISIT_RECORD, h.get_header("WARC-Refers-To-Target-URI") or h.get_header("WARC-Profile"))
    status = meta.get(Meta.HTTP_STATUS)
    if status is not None and not 200 <= status < 300:
        return decide(Reason.HTTP_STATUS, str(status))
    if rec_type == "conversion":
        if mime not in (None, "text/plain"):
            return decide(Reason.UNSUPPORTED_CONTENT_TYPE, mime)
    elif mime not in HTML_TYPES:
        head = payload[:1024].lower()
        if mime is not None or not (b"<html" in head or b"<!doctype html" in head):
            return decide(Reason.UNSUPPORTED_CONTENT_TYPE, mime or "no content type")
    decoded = decode_payload(payload, declared_charset, html=rec_type != "conversion")
    for flag, detail in decoded.flags:
        add_flag(meta, flag, detail)
    text = decoded.text
    if text is None:
        return decide(Reason.UNDECODABLE, decoded.detail)
    meta[Meta.CHARSET], meta[Meta.CHARSET_SOURCE] = decoded.charset, decoded.source
    if rec_type == "conversion":
        doc.text = text
    else:
        meta[Meta.HTML] = text
    return doc


def _status(record: Any) -> int | None:
    try:
        return int(record.http_headers.get_statuscode()) if record.http_headers is not None else None
    except (TypeError, ValueError):
        return None


class _Replay:
    """File-like reader that first returns already-read ``head`` bytes, then the rest of ``fh``."""

    def __init__(self, head: bytes, fh: Any) -> None:
        self._head, self._fh = head, fh

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n < 0:
                data, self._head = self._head + bytes(self._fh.read()), b""
                return data
            data, self._head = self._head[:n], self._head[n:]
            return data
        return bytes(self._fh.read(n))


def sniff_format(head: bytes) -> str | None:
    """``warc`` or ``arc`` from a file's first bytes (gzip-compressed or not); None for anything else."""
    import zlib

    text = head
    if head[:2] == b"\x1f\x8b":
        try:
            text = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 64)
        except zlib.error:
            return None
    if text.startswith(b"WARC/"):
        return "warc"
    if text.startswith(b"filedesc://"):
        return "arc"
    return None


@dataclass
class _ReadState:
    crawl_id: str | None = None
    next_offset: int = 0
    emitted: int = 0


class _Resync(Exception):
    """Go on reading at ``offset``: the record before it overran into the records that follow."""

    def __init__(self, offset: int) -> None:
        super().__init__(offset)
        self.offset = offset


def _iterate(
    path: str, stream: Any, base: int, fmt: str, state: _ReadState, *, max_payload: int, compressed: bool
) -> Iterator[Document]:
    """Documents of ``stream`` (which starts at file offset ``base``); raises where the file stops parsing, and
    :class:`_Resync` where an uncompressed record overran the records after it."""
    from warcio.archiveiterator import ArchiveIterator

    it = ArchiveIterator(stream, check_digests=True, arc2warc=True)
    it.loader.http_parser = RecordingParser(it.loader.HTTP_TYPES, verify=False)
    for record in it:
        if record.rec_type == "warcinfo":
            state.crawl_id = _warcinfo_crawl_id(record) or state.crawl_id
        if record.rec_type == "metadata" and (record.content_type or "").startswith(WAT_CONTENT_TYPE):
            body = record.content_stream().read(max_payload)
            it.read_to_end(record)
            doc = _wat_document(path, it, record, body, crawl_id=state.crawl_id, base=base)
            state.next_offset = base + it.get_record_offset() + it.get_record_length()
            state.emitted += 1
            yield doc
            continue
        if record.rec_type not in DOC_RECORD_TYPES:
            it.read_to_end(record)
            state.next_offset = base + it.get_record_offset() + it.get_record_length()
            continue
        error = None
        too_large = False
        damage: list[tuple[Flag, str]] = []
        try:
            content = content_stream(record)
            payload = content.read(max_payload)
            too_large = bool(content.read(1))
            if record.rec_type != "revisit":  # a revisit's block holds headers only, by design
                damage = body_flags(record, content, _status(record), complete=not too_large)
        except Exception as e:  # noqa: BLE001 - a payload that cannot be decoded is this record's problem only
            payload, error = b"", f"{type(e).__name__}: {e}"
        it.read_to_end(record)
        missing = getattr(record.raw_stream, "limit", 0) or 0
        record._curate_payload = payload
        record._curate_body_flags = damage
        record._curate_truncated = missing > 0
        record._curate_missing = missing
        record._curate_too_large = too_large and error is None
        doc = _record_document(path, it, record, state.crawl_id, base)
        if error is not None:
            mark(doc.metadata, Reason.READ_ERROR, error)
        if fmt == "arc":  # warcio invents a random WARC-Record-ID when converting ARC: never record it
            doc.metadata[Meta.WARC_RECORD_ID] = None
        state.next_offset = base + it.get_record_offset() + it.get_record_length()
        state.emitted += 1
        resync = None
        if missing > 0 and fmt == "warc" and not compressed:
            # an uncompressed record whose Content-Length runs past the end swallowed the records after it:
            # they start at the next record header inside its block
            start = base + it.get_record_offset()
            resync = find_next_record(path, start + 1, compressed=False)
            if resync is not None:
                doc.metadata[Meta.RECORD_LENGTH] = resync - start
                doc.metadata[Meta.INGEST_DETAIL] = (
                    f"{doc.metadata.get(Meta.INGEST_DETAIL) or ''}; the next record header is at offset {resync}"
                )
        yield doc
        if resync is not None:
            raise _Resync(resync)


def find_next_record(path: str, start: int, compressed: bool, limit: int = 1 << 30) -> int | None:
    """Offset of the first record boundary at or after ``start`` that parses as a WARC record, or None.

    Candidates are gzip member headers (compressed files) or ``WARC/1.`` at a line start (uncompressed); each
    is confirmed by parsing one record from it. Scans at most ``limit`` bytes.
    """
    import fsspec
    from warcio.archiveiterator import ArchiveIterator

    magic = b"\x1f\x8b\x08" if compressed else b"\nWARC/"
    skip = 0 if compressed else 1
    with fsspec.open(path, "rb") as fh:
        pos, carry = start, b""
        while pos - start < limit:
            fh.seek(pos)
            chunk = fh.read(1 << 20)
            if not chunk:
                return None
            window = carry + chunk
            window_start = pos - len(carry)
            i = window.find(magic)
            while i != -1:
                candidate = int(window_start + i + skip)
                if candidate >= start:
                    fh.seek(candidate)
                    try:
                        rec = next(iter(ArchiveIterator(fh)))
                        if rec.rec_headers.protocol.startswith("WARC/"):
                            return candidate
                    except Exception:  # noqa: BLE001 - not a record boundary: keep scanning
                        pass
                    fh.seek(pos + len(chunk))
                i = window.find(magic, i + 1)
            carry = window[-len(magic) :]
            pos += len(chunk)
    return None


def _wat_document(path: str, it: Any, record: Any, body: bytes, *, crawl_id: str | None, base: int) -> Document:
    """A WAT metadata record: a dropped row whose licence evidence comes from the links WAT kept."""
    import json

    meta = _record_meta(path, it, record, crawl_id, base)
    meta.update({Meta.CONTENT_TYPE: WAT_CONTENT_TYPE, Meta.PAYLOAD_BYTES: len(body)})
    mark(meta, Reason.WAT_METADATA, record.rec_headers.get_header("WARC-Refers-To"))
    try:
        meta[Meta.LICENSE_EVIDENCE] = [e.__dict__ for e in wat_license_evidence(json.loads(body))]
    except (ValueError, TypeError, AttributeError) as e:
        mark(meta, Reason.READ_ERROR, f"WAT JSON: {e}")
    if meta.get(Meta.LICENSE_EVIDENCE):
        meta[Meta.LICENSE_SIGNALS] = len(meta[Meta.LICENSE_EVIDENCE])
    return Document(text="", id=meta[Meta.DOC_ID], metadata=meta)


def iter_records(path: str, open_file: Any = None, max_payload: int = MAX_PAYLOAD_BYTES) -> Iterator[Document]:
    """Yield one document per payload record of ``path`` and one quarantine document per unreadable stretch.

    ``path`` is a local path or an fsspec URL; ``open_file``, when given, is an already opened binary
    file-like object to read instead (its caller closes it). Where the file stops
    parsing (corrupt gzip, a lying Content-Length, garbage), the stretch up to the next record that parses
    becomes one quarantined row (offset and length of the skipped bytes) and reading resumes there.
    """
    import fsspec

    state = _ReadState()
    try:
        fh = fsspec.open(path, "rb").open() if open_file is None else open_file
    except Exception as e:  # noqa: BLE001 - missing file, no credentials, bad URL: the file's row says which
        yield _quarantine(path, 0, None, Reason.UNREADABLE_FILE, f"{type(e).__name__}: {e}")
        return
    with fh if open_file is None else contextlib.nullcontext(fh):
        head = fh.read(4096)
        fmt = sniff_format(head)
        compressed = head[:2] == b"\x1f\x8b"
        stream: Any = _Replay(head, fh)
        base = 0
        resumed: Any = None
        if fmt is None:
            what = "empty file" if not head else f"not a WARC or ARC file (starts with {head[:24]!r})"
            # a damaged first record (a gzip member that does not inflate, bytes before the first header) must not
            # hide the records after it: resume at the next record that parses, if the file has one
            nxt = find_next_record(path, 1, compressed) if compressed or (head and b"\nWARC/1." in head) else None
            if nxt is None:
                yield _quarantine(path, 0, None, Reason.UNREADABLE_FILE, what)
                return
            q = _quarantine(path, 0, None, Reason.READ_ERROR, f"{what}; resumed at offset {nxt}")
            q.metadata[Meta.RECORD_LENGTH] = nxt
            yield q
            resumed = fsspec.open(path, "rb").open()
            resumed.seek(nxt)
            fmt, stream, base, state.next_offset = "warc", _Replay(b"", resumed), nxt, nxt
        try:
            while True:
                try:
                    yield from _iterate(path, stream, base, fmt, state, max_payload=max_payload, compressed=compressed)
                    return
                except _Resync as r:
                    if resumed is not None:
                        resumed.close()
                    resumed = fsspec.open(path, "rb").open()
                    resumed.seek(r.offset)
                    stream, base, state.next_offset = _Replay(b"", resumed), r.offset, r.offset
                    continue
                except Exception as e:  # noqa: BLE001 - a broken stretch becomes a quarantined row, never a crash
                    bad_at = state.next_offset
                    error = f"{type(e).__name__}: {e}"
                    nxt = find_next_record(path, bad_at + 1, compressed) if fmt == "warc" else None
                    reason = (
                        Reason.UNREADABLE_FILE
                        if bad_at == 0 and state.emitted == 0 and nxt is None
                        else Reason.READ_ERROR
                    )
                    q = _quarantine(
                        path,
                        bad_at,
                        state.crawl_id,
                        reason,
                        error + (f"; resumed at offset {nxt}" if nxt else "; nothing readable after it"),
                    )
                    q.metadata[Meta.RECORD_LENGTH] = (nxt - bad_at) if nxt else None
                    yield q
                    if nxt is None:
                        return
                    if resumed is not None:
                        resumed.close()
                    resumed = fsspec.open(path, "rb").open()
                    resumed.seek(nxt)
                    stream, base, state.next_offset = (
                        _Replay(b"", resumed),
                        nxt,
                        nxt,
                    )  # no tell(): offsets relative to base
        finally:
            if resumed is not None:
                resumed.close()


class HashingFile:
    """Read-only file wrapper that computes the SHA-256 and size of everything read through it."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        """Read and hash up to ``n`` bytes."""
        data = self._fh.read(n)
        self.sha256.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        """Hash the rest of the file (after a reader stopped early)."""
        while self.read(1 << 20):
            pass

    def close(self) -> None:
        """Close the wrapped file."""
        self._fh.close()

    def __enter__(self) -> HashingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_with_digest(
    path: str,
    inventory: list[dict[str, Any]],
    max_payload: int = MAX_PAYLOAD_BYTES,
    attempts: int = 1,
    backoff_s: float = 0.0,
) -> Iterator[Document]:
    """``iter_records(path)`` that appends ``{path, sha256, bytes, records}`` to ``inventory`` when done; a remote
    input that does not answer is tried ``attempts`` times, ``backoff_s`` apart, doubling (:func:`open_input`)."""
    entry: dict[str, Any] = {"path": path, "sha256": None, "bytes": None, "records": 0}
    try:
        raw = open_input(path, attempts, backoff_s)
    except UnreachableInput as e:
        inventory.append(entry)
        yield _quarantine(path, 0, None, Reason.UNREACHABLE_INPUT, str(e))
        return
    except Exception as e:  # noqa: BLE001 - missing file, no credentials, bad URL: the file's row says which
        inventory.append(entry)
        yield _quarantine(path, 0, None, Reason.UNREADABLE_FILE, f"{type(e).__name__}: {e}")
        return
    hashing = HashingFile(raw)
    for doc in iter_records(path, open_file=hashing, max_payload=max_payload):
        entry["records"] += 1
        yield doc
    try:
        hashing.drain()
        entry["sha256"], entry["bytes"] = hashing.sha256.hexdigest(), hashing.size
    except OSError:
        pass
    hashing.close()
    inventory.append(entry)


class ProvenanceWarcReader(PipelineStep):
    """datatrove reader step: each task reads the files ``files[rank::world_size]`` with full provenance."""

    name = "WARC reader (provenance)"
    type = "READER"

    def __init__(
        self,
        files: list[str],
        run_id: str,
        inventory_dir: str,
        max_payload: int = MAX_PAYLOAD_BYTES,
        *,
        attempts: int = 1,
        backoff_s: float = 0.0,
    ) -> None:
        super().__init__()
        self.files = list(files)
        self.run_id = run_id
        self.inventory_dir = inventory_dir
        self.max_payload = max_payload
        self.attempts, self.backoff_s = attempts, backoff_s  # opening a remote input (read.attempts, read.backoff_s)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        """Yield the documents of this task's files; upstream documents (if any) pass through first.

        Writes ``<inventory_dir>/<rank>.json``: each file's SHA-256, size and record count.
        """
        if data:
            yield from data
        inventory: list[dict[str, Any]] = []
        for path in self.files[rank::world_size]:
            yield from self.read_file(path, inventory, rank)
        self.write_inventory(rank, inventory)

    def read_file(self, path: str, inventory: list[dict[str, Any]], rank: int = 0) -> DocumentsPipeline:
        """Yield the documents of one input file (see :func:`read_with_digest`), counting them in this step's stats;
        appends the file's entry to ``inventory`` when it has been read to its end."""
        import time

        from loguru import logger

        self.stat_update("files")
        started = last_log = time.monotonic()
        payload = 0
        for records, doc in enumerate(
            read_with_digest(path, inventory, self.max_payload, self.attempts, self.backoff_s), start=1
        ):
            doc.metadata[Meta.RUN_ID] = self.run_id
            self.stat_update("records")
            payload += doc.metadata.get(Meta.PAYLOAD_BYTES) or 0
            now = time.monotonic()
            if now - last_log >= PROGRESS_EVERY_S:
                last_log = now
                logger.info(
                    f"rank {rank}: {records} records, {payload / 1e6:.1f} MB payload, "
                    f"{records / (now - started):.1f} records/s, file {os.path.basename(path)}"
                )
            if doc.metadata.get(Meta.INGEST_REASON):
                self.stat_update(f"ruled_out_{doc.metadata[Meta.INGEST_REASON]}")
            yield doc

    def failed_file(self, path: str, detail: str, inventory: list[dict[str, Any]]) -> Document:
        """The one quarantined row (reason ``file_failed``) that stands for an input file on which a stage-1 step
        raised; its ``inventory`` entry is replaced by one without a digest, so that
        ``curate ingest --retry-quarantined`` reads the file again."""
        inventory[:] = [e for e in inventory if e["path"] != path]
        inventory.append({"path": path, "sha256": None, "bytes": None, "records": 0})
        doc = _quarantine(path, 0, None, Reason.FILE_FAILED, detail)
        doc.metadata[Meta.RUN_ID] = self.run_id
        self.stat_update(f"ruled_out_{Reason.FILE_FAILED.value}")
        return doc

    def write_inventory(self, rank: int, inventory: list[dict[str, Any]]) -> None:
        """Write ``<inventory_dir>/<rank>.json`` (a local folder or an fsspec URL)."""
        import json

        from datatrove.io import get_datafolder

        with get_datafolder(self.inventory_dir).open(f"{rank:05d}.json", "w", encoding="utf-8") as fh:
            json.dump(inventory, fh, indent=1)


__all__ = [
    "READER_NAME",
    "ProvenanceWarcReader",
    "decode_payload",
    "domain_of",
    "iter_records",
    "looks_binary",
    "make_doc_id",
]
