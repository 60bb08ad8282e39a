"""Payload bytes to text by the rules browsers follow (WHATWG Encoding and HTML), flagging every doubt.

``decode_payload(payload, header_charset)`` chooses the charset in this order: a byte-order mark; the HTTP
Content-Type's charset; a ``<meta charset>`` or ``<meta http-equiv=Content-Type>`` of the page (the WHATWG
prescan of the first 1024 bytes, then the rest of ``<head>``); an XML declaration; UTF-8 when the bytes are
UTF-8; and only then a statistical detector, whose guess is always flagged ``charset_fallback``. A detector
that is unsure gives no text at all (the record is quarantined as ``undecodable``): a wrong guess is worse
than a flagged failure. Labels are resolved with the WHATWG label table, so ``iso-8859-1`` and ``ascii``
decode as windows-1252, ``gb2312`` with the GBK (GB18030) decoder, ``shift_jis`` as Windows-31J, ``big5`` as
Big5-HKSCS and ``euc-kr`` as windows-949, as every browser does; Python's codecs of the same names are
narrower and fail on ordinary pages.

Decoded text is valid Unicode, but a page can still name a code point no UTF-8 text can hold: a JSON escape of a
lone surrogate (``"\\ud800"``). ``valid_unicode(text)`` replaces those by U+FFFD; every string written into a
row goes through it.
"""

from __future__ import annotations

import codecs
import re
from typing import NamedTuple

from curate.schema import CharsetSource, Flag

# WHATWG Encoding Standard (https://encoding.spec.whatwg.org/#names-and-labels): encoding name -> its labels.
_LABELS: dict[str, str] = {
    "utf-8": "unicode-1-1-utf-8 unicode11utf8 unicode20utf8 utf-8 utf8 x-unicode20utf8",
    "ibm866": "866 cp866 csibm866 ibm866",
    "iso-8859-2": "csisolatin2 iso-8859-2 iso-ir-101 iso8859-2 iso88592 iso_8859-2 iso_8859-2:1987 l2 latin2",
    "iso-8859-3": "csisolatin3 iso-8859-3 iso-ir-109 iso8859-3 iso88593 iso_8859-3 iso_8859-3:1988 l3 latin3",
    "iso-8859-4": "csisolatin4 iso-8859-4 iso-ir-110 iso8859-4 iso88594 iso_8859-4 iso_8859-4:1988 l4 latin4",
    "iso-8859-5": "csisolatincyrillic cyrillic iso-8859-5 iso-ir-144 iso8859-5 iso88595 iso_8859-5 iso_8859-5:1988",
    "iso-8859-6": "arabic asmo-708 csiso88596e csiso88596i csisolatinarabic ecma-114 iso-8859-6 iso-8859-6-e "
    "iso-8859-6-i iso-ir-127 iso8859-6 iso88596 iso_8859-6 iso_8859-6:1987",
    "iso-8859-7": "csisolatingreek ecma-118 elot_928 greek greek8 iso-8859-7 iso-ir-126 iso8859-7 iso88597 "
    "iso_8859-7 iso_8859-7:1987 sun_eu_greek",
    "iso-8859-8": "csiso88598e csisolatinhebrew hebrew iso-8859-8 iso-8859-8-e iso-ir-138 iso8859-8 iso88598 "
    "iso_8859-8 iso_8859-8:1988 visual",
    "iso-8859-8-i": "csiso88598i iso-8859-8-i logical",
    "iso-8859-10": "csisolatin6 iso-8859-10 iso-ir-157 iso8859-10 iso885910 l6 latin6",
    "iso-8859-13": "iso-8859-13 iso8859-13 iso885913",
    "iso-8859-14": "iso-8859-14 iso8859-14 iso885914",
    "iso-8859-15": "csisolatin9 iso-8859-15 iso8859-15 iso885915 iso_8859-15 l9",
    "iso-8859-16": "iso-8859-16",
    "koi8-r": "cskoi8r koi koi8 koi8-r koi8_r",
    "koi8-u": "koi8-ru koi8-u",
    "macintosh": "csmacintosh mac macintosh x-mac-roman",
    "windows-874": "dos-874 iso-8859-11 iso8859-11 iso885911 tis-620 windows-874",
    "windows-1250": "cp1250 windows-1250 x-cp1250",
    "windows-1251": "cp1251 windows-1251 x-cp1251",
    "windows-1252": "ansi_x3.4-1968 ascii cp1252 cp819 csisolatin1 ibm819 iso-8859-1 iso-ir-100 iso8859-1 iso88591 "
    "iso_8859-1 iso_8859-1:1987 l1 latin1 us-ascii windows-1252 x-cp1252",
    "windows-1253": "cp1253 windows-1253 x-cp1253",
    "windows-1254": "cp1254 csisolatin5 iso-8859-9 iso-ir-148 iso8859-9 iso88599 iso_8859-9 iso_8859-9:1989 l5 "
    "latin5 windows-1254 x-cp1254",
    "windows-1255": "cp1255 windows-1255 x-cp1255",
    "windows-1256": "cp1256 windows-1256 x-cp1256",
    "windows-1257": "cp1257 windows-1257 x-cp1257",
    "windows-1258": "cp1258 windows-1258 x-cp1258",
    "x-mac-cyrillic": "x-mac-cyrillic x-mac-ukrainian",
    "gbk": "chinese csgb2312 csiso58gb231280 gb2312 gb_2312 gb_2312-80 gbk iso-ir-58 x-gbk",
    "gb18030": "gb18030",
    "big5": "big5 big5-hkscs cn-big5 csbig5 x-x-big5",
    "euc-jp": "cseucpkdfmtjapanese euc-jp x-euc-jp",
    "iso-2022-jp": "csiso2022jp iso-2022-jp",
    "shift_jis": "csshiftjis ms932 ms_kanji shift-jis shift_jis sjis windows-31j x-sjis",
    "euc-kr": "cseuckr csksc56011987 euc-kr iso-ir-149 korean ks_c_5601-1987 ks_c_5601-1989 ksc5601 ksc_5601 "
    "windows-949",
    "replacement": "csiso2022kr hz-gb-2312 iso-2022-cn iso-2022-cn-ext iso-2022-kr replacement",
    "utf-16be": "unicodefffe utf-16be",
    "utf-16le": "csunicode iso-10646-ucs-2 ucs-2 unicode unicodefeff utf-16 utf-16le",
    "x-user-defined": "x-user-defined",
}
LABELS: dict[str, str] = {label: name for name, labels in _LABELS.items() for label in labels.split()}
"""WHATWG encoding label (lower case) -> encoding name."""

# The Python codec that decodes as the WHATWG decoder of each encoding does (where the names differ, Python's
# codec of the same name is a narrower, older table).
CODECS: dict[str, str] = {
    "utf-8": "utf-8",
    "ibm866": "cp866",
    "iso-8859-8-i": "iso8859-8",
    "macintosh": "mac-roman",
    "windows-874": "cp874",
    "x-mac-cyrillic": "mac-cyrillic",
    "gbk": "gb18030",
    "gb18030": "gb18030",
    "big5": "big5hkscs",
    "euc-jp": "euc_jp",
    "iso-2022-jp": "iso2022_jp_ext",
    "shift_jis": "cp932",
    "euc-kr": "cp949",
    "utf-16be": "utf-16-be",
    "utf-16le": "utf-16-le",
}
_UNDECODABLE = frozenset({"replacement", "x-user-defined"})

PRESCAN_BYTES = 1024  # the WHATWG prescan
HEAD_SCAN_BYTES = 65536  # a <meta> later in <head> still changes the encoding in browsers
MAX_ERROR_SHARE = 0.005  # a declared charset that leaves more undecodable characters than this is not used
DETECT_CONFIDENCE = 0.8  # a detector's guess below this confidence is not used (the record is quarantined)
DETECT_BYTES = 65536


class Decoded(NamedTuple):
    """A decoded payload: ``text`` (None when it cannot be decoded), the WHATWG name of the ``charset`` used, its
    ``source`` (:class:`~curate.schema.CharsetSource`), and the ``flags`` (flag, detail) raised on the way; when
    ``text`` is None, ``detail`` says why."""

    text: str | None
    charset: str | None
    source: str | None
    flags: tuple[tuple[Flag, str], ...] = ()
    detail: str | None = None


def resolve_label(label: str | None) -> str | None:
    """The WHATWG encoding name of a charset label (case and surrounding whitespace ignored); None when unknown."""
    if not label:
        return None
    return LABELS.get(label.strip().strip("\"'").strip().lower())


def looks_binary(payload: bytes) -> bool:
    """True when over 1% of the first 64 KiB are control bytes no text format uses (NUL, C0 other than tab, CR, LF,
    FF and the ESC of ISO-2022 encodings)."""
    head = payload[:65536]
    if not head:
        return False
    controls = len(head) - len(head.translate(None, _CONTROL_BYTES))
    return controls > 0.01 * len(head)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def valid_unicode(value: str) -> tuple[str, int]:
    """``value`` with every lone surrogate replaced by U+FFFD, and how many were replaced (``value`` itself, 0,
    when it has none: the common case costs one UTF-8 encode).

    A surrogate code point (U+D800 to U+DFFF) is not a character, and no UTF-8 text (a Parquet or DuckDB string,
    a JSON file) can hold one. Decoding bytes never yields one, but page content can still name one: a JSON escape
    such as ``"\\ud800"`` (in JSON-LD, or in a WAT record) decodes to it. This is the one place such text is made
    valid: the licence tagger applies it to the JSON-LD it parses, the shard writer to every string of every row
    it writes (:mod:`curate.run.shards`), and both flag the record ``decode_errors``.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return _LONE_SURROGATE.subn("\ufffd", value)
    return value, 0


_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 12, 13, 27))

_COMMENT = re.compile(rb"<!--.*?(?:-->|\Z)", re.S)
_RAW_TEXT = re.compile(rb"<(script|style|template|textarea|title)\b.*?(?:</\1\s*>|\Z)", re.S | re.I)
_META = re.compile(rb"""<meta[\s/]((?:[^>"']|"[^"]*"|'[^']*')*)>""", re.I)
_ATTR = re.compile(rb"""([^\s=/>"']+)\s*(?:=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?""")
_CONTENT_CHARSET = re.compile(rb"""charset\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s;"']+))""", re.I)
_BODY = re.compile(rb"<body[\s>]", re.I)
_XML_DECL = re.compile(rb"""<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")


def _meta_label(html: bytes) -> str | None:
    """The charset label of the first ``<meta>`` that declares one in ``html`` (comments already removed)."""
    for m in _META.finditer(html):
        attrs: dict[bytes, bytes] = {}
        for a in _ATTR.finditer(m.group(1)):
            name = a.group(1).lower()
            if name not in attrs:
                attrs[name] = a.group(2) or a.group(3) or a.group(4) or b""
        if attrs.get(b"charset"):
            return attrs[b"charset"].decode("ascii", "replace").strip()
        if attrs.get(b"http-equiv", b"").strip().lower() == b"content-type" and b"content" in attrs:
            c = _CONTENT_CHARSET.search(attrs[b"content"])
            if c:
                return (c.group(1) or c.group(2) or c.group(3) or b"").decode("ascii", "replace").strip() or None
    return None


def sniff_meta_charset(payload: bytes) -> str | None:
    """The charset label a page declares in a ``<meta>``: the WHATWG prescan of the first 1024 bytes (comments
    skipped), else the first ``<meta>`` before ``<body>`` in the first 64 KiB (comments and script, style,
    template, textarea and title contents skipped). None when there is none."""
    head = _COMMENT.sub(b"", payload[:PRESCAN_BYTES])
    found = _meta_label(head)
    if found or len(payload) <= PRESCAN_BYTES:
        return found
    rest = _RAW_TEXT.sub(b"", _COMMENT.sub(b"", payload[:HEAD_SCAN_BYTES]))
    body = _BODY.search(rest)
    return _meta_label(rest[: body.start()] if body else rest)


def _bom(payload: bytes) -> tuple[str, int] | None:
    if payload.startswith(codecs.BOM_UTF8):
        return "utf-8", 3
    if payload.startswith(codecs.BOM_UTF16_BE):
        return "utf-16be", 2
    if payload.startswith(codecs.BOM_UTF16_LE):
        return "utf-16le", 2
    return None


def _strict(payload: bytes, name: str) -> tuple[str | None, bool]:
    """``payload`` decoded strictly in WHATWG encoding ``name``: (text, cut) where ``cut`` says that only an
    incomplete character at the very end (a payload cut short) was left out; (None, False) when it does not decode."""
    codec = CODECS.get(name, name)
    try:
        return payload.decode(codec), False
    except UnicodeDecodeError as e:
        if e.end >= len(payload) and len(payload) - e.start < 4 and e.start > 0:
            try:
                return payload[: e.start].decode(codec), True
            except UnicodeDecodeError:
                return None, False
        return None, False
    except LookupError:  # pragma: no cover - every name of the table has a codec
        return None, False


def _lenient(payload: bytes, name: str) -> tuple[str, int]:
    """``payload`` decoded in ``name`` with U+FFFD for what does not decode, and how many were replaced."""
    text = payload.decode(CODECS.get(name, name), errors="replace")
    legit = payload.count(b"\xef\xbf\xbd") if name == "utf-8" else 0
    return text, max(0, text.count("\ufffd") - legit)


_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _utf8_with_errors(payload: bytes) -> tuple[str, int] | None:
    """UTF-8 with a few invalid bytes (a stray byte, a character cut in two): used only when its valid multi-byte
    characters outnumber the errors a hundred to one, which text in a single-byte charset never does."""
    text, errors = _lenient(payload, "utf-8")
    multibyte = len(_NON_ASCII.findall(text)) - text.count("\ufffd")
    if errors and multibyte >= 100 * errors:
        return text, errors
    return None


def _single_byte(name: str) -> bool:
    return name.startswith(("windows-", "iso-8859-", "koi8", "ibm", "mac", "x-mac"))


def _has_multibyte_utf8(payload: bytes) -> bool:
    """Valid UTF-8 that holds multi-byte characters: such sequences do not happen by chance in single-byte text."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not text.isascii()


def _candidates(
    payload: bytes, declared: str | None, html: bool, flags: list[tuple[Flag, str]]
) -> list[tuple[str, str, str]]:
    """The usable declarations, most authoritative first: (WHATWG encoding name, source, label as found)."""
    found: list[tuple[str, str, str]] = []
    labels = [(declared, CharsetSource.HEADER)]
    if html:
        labels.append((sniff_meta_charset(payload), CharsetSource.META))
        xml = _XML_DECL.match(payload[:200].lstrip(b"\xef\xbb\xbf \t\r\n"))
        labels.append((xml.group(1).decode("ascii") if xml else None, CharsetSource.XML))
    for label, source in labels:
        if not label:
            continue
        name = resolve_label(label)
        if source is CharsetSource.META and name in ("utf-16be", "utf-16le"):
            name = "utf-8"  # a page whose <meta> could be read as ASCII is not UTF-16 (WHATWG)
        if name is None or name in _UNDECODABLE:
            flags.append((Flag.CHARSET_UNKNOWN_LABEL, f"{source.value} charset {label!r} ignored"))
        else:
            found.append((name, source.value, label))
    return found


def _conflict(candidates: list[tuple[str, str, str]], used: str, flags: list[tuple[Flag, str]]) -> None:
    if len({c[0] for c in candidates} | {used}) > 1:
        said = "; ".join(f"{source} {label!r}" for _, source, label in candidates)
        flags.append((Flag.CHARSET_CONFLICT, f"{said}; used {used}"))


def decode_payload(payload: bytes, declared: str | None, *, html: bool = True) -> Decoded:
    """Decode ``payload``; ``declared`` is the charset label of the Content-Type (HTTP, or the record's), ``html``
    whether to look for ``<meta>`` and XML declarations in the bytes. See the module docstring for the order.

    A declared charset that cannot decode the bytes gives way to the next declaration that can; a single-byte
    charset (a server default of iso-8859-1, say) gives way to UTF-8 when the bytes are UTF-8 with multi-byte
    characters, which text in a single-byte charset never is. Both are flagged ``charset_conflict``. ``text`` is
    None (with ``detail``) for binary payloads and for payloads that neither a declaration nor a confident
    detector guess decodes.
    """
    flags: list[tuple[Flag, str]] = []
    candidates = _candidates(payload, declared, html, flags)
    bom = _bom(payload)
    if bom is not None:
        name, skip = bom
        _conflict(candidates, name, flags)
        text, errors = _lenient(payload[skip:], name)
        if errors:
            flags.append((Flag.DECODE_ERRORS, f"{errors} bytes not valid in {name} replaced by U+FFFD"))
        return Decoded(text, name, CharsetSource.BOM.value, tuple(flags))
    if looks_binary(payload) and not any(c[0].startswith("utf-16") for c in candidates):
        return Decoded(None, None, None, tuple(flags), "binary payload")
    if candidates and _single_byte(candidates[0][0]) and _has_multibyte_utf8(payload):
        utf8 = [c for c in candidates if c[0] == "utf-8"]
        source = utf8[0][1] if utf8 else CharsetSource.UTF8.value
        flags.append(
            (Flag.CHARSET_CONFLICT, f"{candidates[0][1]} {candidates[0][2]!r} but the bytes are UTF-8; used utf-8")
        )
        return Decoded(payload.decode("utf-8"), "utf-8", source, tuple(flags))
    for name, source, _ in candidates:
        strict, cut = _strict(payload, name)
        if strict is not None:
            _conflict(candidates, name, flags)
            if cut:
                flags.append((Flag.DECODE_ERRORS, "an incomplete character at the end (payload cut short)"))
            return Decoded(strict, name, source, tuple(flags))
    if candidates:  # no declaration decodes the bytes strictly: the first, if it leaves very few errors
        name, source, _ = candidates[0]
        text, errors = _lenient(payload, name)
        if errors <= MAX_ERROR_SHARE * max(len(text), 1):
            _conflict(candidates, name, flags)
            flags.append((Flag.DECODE_ERRORS, f"{errors} bytes not valid in {name} replaced by U+FFFD"))
            return Decoded(text, name, source, tuple(flags))
    declared_failed = f"declared {', '.join(repr(c[2]) for c in candidates)} does not decode; " if candidates else ""
    as_utf8, cut = _strict(payload, "utf-8")
    nearly = (as_utf8, 0) if as_utf8 is not None else _utf8_with_errors(payload)
    if nearly is not None:
        if candidates:
            flags.append((Flag.CHARSET_FALLBACK, f"{declared_failed}the bytes are UTF-8"))
        if cut:
            flags.append((Flag.DECODE_ERRORS, "an incomplete character at the end (payload cut short)"))
        elif nearly[1]:
            flags.append((Flag.DECODE_ERRORS, f"{nearly[1]} bytes not valid in utf-8 replaced by U+FFFD"))
        return Decoded(nearly[0], "utf-8", CharsetSource.UTF8.value, tuple(flags))
    return _detect(payload, declared_failed, flags)


def _detect(payload: bytes, tried: str, flags: list[tuple[Flag, str]]) -> Decoded:
    """A detector's guess, used only when it is confident and decodes the bytes with very few errors."""
    import cchardet  # faust-cchardet, via datatrove[io]

    guess = cchardet.detect(payload[:DETECT_BYTES])
    label = guess.get("encoding")
    confidence = float(guess.get("confidence") or 0.0)
    name = resolve_label(label)
    if name is None or name in _UNDECODABLE or confidence < DETECT_CONFIDENCE:
        why = f"{tried}not UTF-8; the detector guessed {label or 'nothing'} at confidence {confidence:.2f}"
        return Decoded(None, None, None, tuple(flags), why)
    text, errors = _lenient(payload, name)
    if errors > MAX_ERROR_SHARE * max(len(text), 1):
        why = f"{tried}not UTF-8; the detector's guess {name} leaves {errors} undecodable bytes"
        return Decoded(None, None, None, tuple(flags), why)
    flags.append((Flag.CHARSET_FALLBACK, f"{tried}detector guessed {name} at confidence {confidence:.2f}"))
    if errors:
        flags.append((Flag.DECODE_ERRORS, f"{errors} bytes not valid in {name} replaced by U+FFFD"))
    return Decoded(text, name, CharsetSource.DETECTED.value, tuple(flags))


__all__ = [
    "CODECS",
    "LABELS",
    "Decoded",
    "decode_payload",
    "looks_binary",
    "resolve_label",
    "sniff_meta_charset",
    "valid_unicode",
]
