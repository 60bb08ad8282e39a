"""Damaged WARC records as crawlers and servers really produce them, written byte for byte (warcio's writer
re-serialises HTTP headers, so it cannot write a malformed block), each with what the store must say about it.

``write_damaged_warc(path)`` writes one gzipped WARC file holding every kind of :data:`KINDS` (plus the kinds
that can only sit at a given place in a file) and returns, for each, the URL (or byte offset) of its record and
the reason code or flag the store must give it.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TEXT = (
    "The harbour committee met on Tuesday evening to review the plans for the new ferry terminal. "
    "Residents asked how the works would change the walk along the quay, and the engineer answered "
    "each question with drawings of the piers, the ramps and the shelters planned for the winter. "
)
PAGE = f"<html><head><title>Ferry terminal</title></head><body><article><p>{TEXT * 4}</p></article></body></html>"
RUSSIAN = (
    "Городской совет обсудил во вторник план строительства нового моста через реку. Жители спрашивали, "
    "как изменится дорога к рынку, и инженер подробно ответил на каждый вопрос, показывая чертежи опор. "
)


def sha1(data: bytes) -> str:
    """A WARC digest: ``sha1:`` and the base32 SHA-1 of ``data``."""
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode()


def http_block(
    headers: list[str], body: bytes, *, status: str = "HTTP/1.1 200 OK", eol: bytes = b"\r\n"
) -> tuple[bytes, bytes]:
    """(block, payload): an HTTP response as recorded, its header lines exactly as given."""
    head = eol.join([status.encode(), *(h.encode("latin-1") for h in headers)]) + eol + eol
    return head + body, body


def record(
    url: str,
    block: bytes,
    payload: bytes | None,
    *,
    warc: tuple[tuple[str, str], ...] = (),
    content_length: int | None = None,
    record_id: bool = True,
    payload_digest: str | None = None,
    block_digest: str | None = None,
) -> bytes:
    """One gzip member holding one WARC response record whose block is ``block`` (digests computed unless given)."""
    fields = [("WARC-Type", "response")]
    if record_id:
        fields.append(("WARC-Record-ID", f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, url)}>"))
    fields += [
        ("WARC-Date", "2019-06-02T10:11:12Z"),
        ("WARC-Target-URI", url),
        ("Content-Type", "application/http; msgtype=response"),
        ("WARC-Block-Digest", block_digest or sha1(block)),
    ]
    if payload is not None:
        fields.append(("WARC-Payload-Digest", payload_digest or sha1(payload)))
    fields += [*warc, ("Content-Length", str(len(block) if content_length is None else content_length))]
    head = "WARC/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields) + "\r\n"
    return gzip.compress(head.encode() + block + b"\r\n\r\n", mtime=0)


def chunked(body: bytes, size: int = 100, *, last: bool = True) -> bytes:
    """``body`` in HTTP/1.1 chunked framing; without the final zero-length chunk when not ``last``."""
    parts = [b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size)]
    return b"".join(parts) + (b"0\r\n\r\n" if last else b"")


@dataclass(frozen=True)
class Kind:
    """One kind of damage: how the record is written, and the reason or flags the store must show."""

    name: str
    member: bytes
    reason: str | None = None  # the ingest reason (the record is not kept)
    flags: tuple[str, ...] = field(default=())  # flags the kept record must carry
    url: str = ""


def _kind(
    name: str, block: tuple[bytes, bytes], *, reason: str | None = None, flags: tuple[str, ...] = (), **kw: Any
) -> Kind:
    url = f"http://damaged.example/{name}"
    return Kind(name, record(url, block[0], block[1], **kw), reason, flags, url)


def kinds() -> list[Kind]:
    """Every kind of damaged record the reader must name, in file order (the last must stay last)."""
    html = PAGE.encode()
    ct = "Content-Type: text/html; charset=utf-8"
    cut = html[: len(html) // 2]
    gz = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    gzipped = gz.compress(html) + gz.flush()
    cp1251 = f"<html><body><p>{RUSSIAN * 4}</p></body></html>".encode("cp1251")
    return [
        _kind("http-truncated", http_block([ct, f"Content-Length: {len(html)}"], cut), flags=("http_truncated",)),
        _kind(
            "http-truncated-warc-truncated",
            http_block([ct, f"Content-Length: {len(html)}"], cut),
            warc=(("WARC-Truncated", "length"),),
            flags=("http_truncated", "warc_truncated"),
        ),
        _kind(
            "warc-truncated-time",
            http_block([ct], html),
            warc=(("WARC-Truncated", "time"),),
            flags=("warc_truncated",),
        ),
        _kind(
            "header-line-without-colon",
            http_block([ct, "Server Apache/2.2", f"Content-Length: {len(html)}"], html),
            flags=("malformed_headers",),
        ),
        _kind(
            "bare-lf", http_block([ct, f"Content-Length: {len(html)}"], html, eol=b"\n"), flags=("malformed_headers",)
        ),
        _kind(
            "obs-fold",
            http_block([ct, "X-Note: first part", "  folded second part", f"Content-Length: {len(html)}"], html),
            flags=("malformed_headers",),
        ),
        _kind(
            "no-status-line",
            http_block([ct], html, status="Status: 200"),
            flags=("malformed_headers",),
        ),
        _kind(
            "conflicting-content-type",
            http_block([ct, "Content-Type: text/html; charset=iso-8859-1"], html),
            flags=("conflicting_content_type",),
        ),
        _kind(
            "conflicting-content-length",
            http_block([ct, f"Content-Length: {len(html)}", f"Content-Length: {len(html) + 10}"], html),
            flags=("conflicting_content_length",),
        ),
        _kind(
            "chunked-without-last-chunk",
            http_block([ct, "Transfer-Encoding: chunked"], chunked(html, last=False)),
            flags=("http_truncated",),
        ),
        _kind(
            "chunked-but-not-chunked",
            http_block([ct, "Transfer-Encoding: chunked"], html),
            flags=("bad_chunked_encoding",),
        ),
        _kind(
            "gzip-but-not-gzip",
            http_block([ct, "Content-Encoding: gzip"], html),
            flags=("bad_content_encoding",),
        ),
        _kind(
            "gzip-body-cut",
            http_block([ct, "Content-Encoding: gzip"], gzipped[: len(gzipped) * 9 // 10]),
            flags=("http_truncated",),
        ),
        _kind(
            "payload-digest-mismatch",
            http_block([ct], html),
            payload_digest=sha1(b"other bytes"),
            flags=("payload_digest_mismatch",),
        ),
        _kind("block-digest-mismatch", http_block([ct], html), block_digest=sha1(b"other"), reason="digest_mismatch"),
        _kind("missing-record-id", http_block([ct], html), record_id=False, reason="read_error"),
        _kind(
            "server-error", http_block([ct], html, status="HTTP/1.1 500 Internal Server Error"), reason="http_status"
        ),
        _kind(
            "binary-as-html",
            http_block(["Content-Type: text/html"], bytes(range(256)) * 40),
            reason="undecodable",
        ),
        _kind(
            "unknown-charset-label",
            http_block(["Content-Type: text/html; charset=utf-8mb4"], html),
            flags=("charset_unknown_label",),
        ),
        _kind(
            "undeclared-legacy-charset",
            http_block(["Content-Type: text/html"], cp1251),
            flags=("charset_fallback",),
        ),
        _kind(
            "http-and-meta-disagree",
            http_block(
                ["Content-Type: text/html; charset=utf-8"],
                b'<html><head><meta charset="windows-1251"></head>' + cp1251[6:],
            ),
            flags=("charset_conflict",),
        ),
        _kind(
            "invalid-bytes-in-utf8",
            http_block([ct], html.replace(b"ferry", b"f\xe9rry", 1)),
            flags=("decode_errors",),
        ),
        # last in the file: a record whose block is shorter than its WARC Content-Length
        _kind("warc-block-cut", http_block([ct], html), content_length=len(html) + 5000, reason="truncated_record"),
    ]


def corrupt_member() -> bytes:
    """A gzip member whose deflate data was overwritten in the middle (a bad disk block, a broken copy)."""
    html = f"<html><body><p>{TEXT * 8}</p></body></html>".encode()
    member = record("http://damaged.example/corrupt-gzip", *http_block(["Content-Type: text/html"], html))
    middle = len(member) // 2
    return member[:middle] + bytes(b ^ 0x5A for b in member[middle : middle + 64]) + member[middle + 64 :]


def write_damaged_warc(path: Path) -> tuple[list[Kind], int]:
    """Write every kind into ``path`` (a corrupt gzip member after the third); returns the kinds and the byte
    offset of the corrupt member, whose row must say ``read_error``."""
    all_kinds = kinds()
    members = [k.member for k in all_kinds]
    offset = sum(len(m) for m in members[:3])
    path.write_bytes(b"".join(members[:3]) + corrupt_member() + b"".join(members[3:]))
    return all_kinds, offset
