"""HTTP header blocks as they were recorded: what RFC 9110/9112 and WHATWG Fetch say about them, as flags.

warcio parses an HTTP header block leniently: it accepts bare-LF line ends, drops a line without a colon, folds
continuation lines and keeps every line of a repeated field. :class:`RecordingParser` keeps the raw lines it read,
so :func:`header_flags` can say what was wrong with them; :func:`content_type` picks the MIME type and charset
from every Content-Type line the way browsers do (Fetch's "extract a MIME type": the last valid one wins), and
:func:`body_flags` compares the body the record holds with what the headers declare.
"""

from __future__ import annotations

import datetime as dt
import re
from email.utils import parsedate_to_datetime
from typing import Any

from warcio.bufferedreaders import BufferedReader, ChunkedDataReader
from warcio.statusandheaders import StatusAndHeaders, StatusAndHeadersParser

from curate.schema import Flag

_STATUS_LINE = re.compile(rb"HTTP/\d(?:\.\d)? +\d{3}(?:[ \t].*)?\r?\n?", re.S)
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_MIME = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+/[!#$%&'*+.^_`|~0-9a-z-]+")
_COMMA = re.compile(r",(?=(?:[^\"]*\"[^\"]*\")*[^\"]*$)")  # a comma outside double quotes
NO_BODY_STATUSES = frozenset({204, 304})


class _LineRecorder:
    """A stream whose ``readline`` keeps a copy of every line it returns."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.lines: list[bytes] = []

    def readline(self, *args: Any) -> bytes:
        line: bytes = self.stream.readline(*args)
        self.lines.append(line)
        return line


class RecordingParser(StatusAndHeadersParser):  # type: ignore[misc]
    """warcio's HTTP header parser that also keeps the raw lines (``headers.raw_lines``: status line, fields and
    the empty line that ends the block) for :func:`header_flags`."""

    def parse(self, stream: Any, full_statusline: Any = None) -> StatusAndHeaders:
        """Parse like warcio; the returned headers carry ``raw_lines``."""
        recorder = _LineRecorder(stream)
        headers = super().parse(recorder, full_statusline)
        headers.raw_lines = ([full_statusline] if full_statusline else []) + recorder.lines
        return headers


def field_values(headers: StatusAndHeaders, name: str) -> list[str]:
    """The values of every line of field ``name`` (case-insensitive), in order."""
    name = name.lower()
    return [v for k, v in headers.headers if k.strip().lower() == name and v is not None]


def http_date(values: list[str]) -> dt.datetime | None:
    """The last of ``values`` that parses as an HTTP-date (RFC 9110 5.6.7: IMF-fixdate, and the obsolete RFC 850
    and asctime forms), in UTC; None when none does. A date without a zone is GMT, as the RFC says."""
    for value in reversed(values):
        try:
            parsed = parsedate_to_datetime(value.strip())
        except (TypeError, ValueError, IndexError):
            continue
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
    return None


def header_flags(headers: StatusAndHeaders) -> list[tuple[Flag, str]]:
    """What is wrong with the raw header block ``headers`` was parsed from (nothing for headers that were not
    parsed by :class:`RecordingParser`)."""
    lines: list[bytes] = getattr(headers, "raw_lines", None) or []
    if not lines:
        return []
    problems: list[str] = []
    if not _STATUS_LINE.fullmatch(lines[0]):
        problems.append(f"no valid status line: {_show(lines[0])}")
    bare = sum(1 for line in lines if line.endswith(b"\n") and not line.endswith(b"\r\n"))
    if bare:
        problems.append(f"{bare} of {len(lines)} lines end in a bare LF")
    if lines[-1].strip(b"\r\n"):
        problems.append("the header block does not end with an empty line")
    for line in lines[1:]:
        content = line.rstrip(b"\r\n")
        if not content:
            break
        if content[:1] in (b" ", b"\t"):
            problems.append(f"a folded (obs-fold) line: {_show(content)}")
            continue
        name, colon, _ = content.partition(b":")
        if not colon:
            problems.append(f"a line without a colon: {_show(content)}")
        elif not _TOKEN.fullmatch(name):
            problems.append(f"a field name that is not a token: {_show(content)}")
    return [(Flag.MALFORMED_HEADERS, "; ".join(problems))] if problems else []


def _show(line: bytes, limit: int = 120) -> str:
    return repr(line[:limit].decode("latin-1"))


def _parse_mime(value: str) -> tuple[str, str | None] | None:
    """(essence, charset) of one media type, or None when it is not one."""
    essence, _, params = value.partition(";")
    essence = essence.strip().lower()
    if not _MIME.fullmatch(essence):
        return None
    charset = None
    for param in params.split(";"):
        key, eq, val = param.partition("=")
        if eq and key.strip().lower() == "charset" and charset is None:
            charset = val.strip().strip('"').strip() or None
    return essence, charset


def content_type(values: list[str]) -> tuple[str | None, str | None, list[tuple[Flag, str]]]:
    """(MIME essence, charset label, flags) from every Content-Type line, by Fetch's "extract a MIME type": each
    line may list several types; the last valid one wins, keeping an earlier charset of the same essence.
    Lines that differ are flagged ``conflicting_content_type``."""
    essence: str | None = None
    charset: str | None = None
    for value in values:
        for part in _COMMA.split(value):
            parsed = _parse_mime(part)
            if parsed is None or parsed[0] == "*/*":
                continue
            if parsed[0] != essence:
                essence, charset = parsed
            elif parsed[1] is not None:
                charset = parsed[1]
    distinct = list(dict.fromkeys(" ".join(v.lower().split()).replace("; ", ";") for v in values))
    flags: list[tuple[Flag, str]] = []
    if len(distinct) > 1:
        used = f"{essence}; charset={charset}" if charset else str(essence)
        flags.append((Flag.CONFLICTING_CONTENT_TYPE, f"{' | '.join(distinct)}; used {used}"))
    return essence, charset, flags


def content_stream(record: Any) -> Any:
    """The record's payload stream, de-chunked and decompressed like warcio's ``content_stream()``, by readers
    that remember whether the chunked framing ended properly (for :func:`body_flags`)."""
    http = record.http_headers
    if not http:
        return record.raw_stream
    encoding = (http.get_header("content-encoding") or "").strip().lower() or None
    if encoding not in BufferedReader.get_supported_decompressors():
        encoding = None
    if (http.get_header("transfer-encoding") or "").strip().lower() == "chunked":
        return _Dechunker(record.raw_stream, decomp_type=encoding)
    if encoding:
        return BufferedReader(record.raw_stream, decomp_type=encoding)
    return record.raw_stream


class _Dechunker(ChunkedDataReader):  # type: ignore[misc]
    """warcio's de-chunking reader that notes whether the last (zero-length) chunk was read, and takes a body that
    ends between two chunks as cut short (warcio would take it for a body that is not chunked at all)."""

    last_chunk = False

    def _try_decode(self, length_header: bytes) -> None:
        if not length_header and self.num_read:  # the stream ended after a whole chunk: no last chunk
            self.all_chunks_read = True
            self._process_read(b"")
            return
        super()._try_decode(length_header)
        if self.all_chunks_read and not length_header[:-2].split(b";")[0].strip().strip(b"0"):
            self.last_chunk = True


def body_flags(record: Any, stream: Any, status: int | None, complete: bool) -> list[tuple[Flag, str]]:
    """Flags for the body ``stream`` (from :func:`content_stream`, read to its end when ``complete``) against
    the record's headers: a body shorter than its Content-Length, a chunked body without its last chunk, a
    compressed body that ends early or is not compressed, and conflicting lengths."""
    http = record.http_headers
    if http is None:
        return []
    flags: list[tuple[Flag, str]] = []
    chunked = any("chunked" in v.lower() for v in field_values(http, "transfer-encoding"))
    lengths = [p.strip() for v in field_values(http, "content-length") for p in v.split(",")]
    declared = set(lengths)
    if declared and chunked:
        flags.append((Flag.CONFLICTING_CONTENT_LENGTH, f"Content-Length {', '.join(lengths)} beside chunked"))
    elif len(declared) > 1 or (declared and not all(p.isdigit() for p in declared)):
        flags.append((Flag.CONFLICTING_CONTENT_LENGTH, f"Content-Length {', '.join(lengths)}"))
    elif declared and status not in NO_BODY_STATUSES:
        expected, present = int(lengths[0]), record.payload_length
        if 0 <= present < expected:
            flags.append(
                (Flag.HTTP_TRUNCATED, f"the body has {present} of the {expected} bytes its Content-Length declares")
            )
    if isinstance(stream, _Dechunker):
        if stream.not_chunked:
            flags.append((Flag.BAD_CHUNKED_ENCODING, "Transfer-Encoding: chunked, but the body is not chunked"))
        elif complete and not stream.last_chunk:
            flags.append((Flag.HTTP_TRUNCATED, "the chunked body ends before its last (zero-length) chunk"))
    if isinstance(stream, BufferedReader) and stream.decomp_type:
        decompressor = stream.decompressor
        if decompressor is None:
            flags.append(
                (Flag.BAD_CONTENT_ENCODING, f"Content-Encoding {stream.decomp_type}, but the body is not; read as is")
            )
        elif complete and hasattr(decompressor, "eof") and not decompressor.eof and stream.num_read:
            flags.append((Flag.HTTP_TRUNCATED, f"the {stream.decomp_type} body ends before its end"))
    return flags


__all__ = ["RecordingParser", "body_flags", "content_stream", "content_type", "field_values", "header_flags"]
