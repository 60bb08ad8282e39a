"""The vocabulary of curate, defined once.

Everything that names a value stored or counted by the pipeline lives here: record statuses, reason codes,
low-background tiers, the metadata keys documents carry between datatrove steps, the column lists of the
store (from which both the Parquet shard schema and the DuckDB DDL are generated), and the versioned names
of every component that changes outputs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum

import pyarrow as pa

SCHEMA_VERSION = "store-v4"
STORE_VERSIONS = (
    "store-v1",
    "store-v2",
    "store-v3",
    "store-v4",
)  # every version this code can open (older ones are migrated)

# Versioned names of the components whose output lands in the store. Bump the suffix when a change alters
# what a component writes for the same input.
READER_NAME = "warc-reader-v2"
LICENSE_TAGGER_NAME = "license-tagger-v2"
DEDUP_NAME = "dedup-minhash-lsh-v3"
LANGID_NAME = "fasttext-lid176"
ATTEST_NAME = "attest-digest-v1"  # how `curate attest` matches payload digests against capture indexes and stores
CERTIFICATE_NAME = "certificate-v1"  # the layout of a document's low-background certificate


class Status(StrEnum):
    """What happened to an input record. Every record ends in exactly one of these."""

    KEPT = "kept"
    DROPPED = "dropped"
    QUARANTINED = "quarantined"


class Reason(StrEnum):
    """Why a record was dropped or quarantined (``documents.reason``); NULL for kept records."""

    # quarantined: the bytes could not be read as a complete record
    UNREADABLE_FILE = "unreadable_file"
    UNREACHABLE_INPUT = "unreachable_input"
    FILE_FAILED = "file_failed"
    READ_ERROR = "read_error"
    TRUNCATED_RECORD = "truncated_record"
    DIGEST_MISMATCH = "digest_mismatch"
    UNDECODABLE = "undecodable"
    EXTRACT_ERROR = "extract_error"
    # dropped: readable, but not a document we keep
    REVISIT_RECORD = "revisit_record"
    WAT_METADATA = "wat_metadata"
    TOO_LARGE = "too_large"
    EXTRACT_TIMEOUT = "extract_timeout"
    UNSUPPORTED_CONTENT_TYPE = "unsupported_content_type"
    HTTP_STATUS = "http_status"
    TRUNCATED_PAYLOAD = "truncated_payload"
    NO_TEXT = "no_text"
    TOO_SHORT = "too_short"
    LANGUAGE_EXCLUDED = "language_excluded"
    DATE_UNKNOWN = "date_unknown"
    MGT_ABOVE_THRESHOLD = "mgt_above_threshold"
    MGT_PRE_CUTOFF_EXTREME = "mgt_pre_cutoff_extreme"
    MGT_SITE_SHIFT = "mgt_site_shift"
    POST_CUTOFF_UNSCORED = "post_cutoff_unscored"
    DUPLICATE_OF = "duplicate_of"
    OPTED_OUT = "opted_out"
    LICENSE_POLICY = "license_policy"


REASON_STATUS: dict[Reason, Status] = {
    Reason.UNREADABLE_FILE: Status.QUARANTINED,
    Reason.UNREACHABLE_INPUT: Status.QUARANTINED,
    Reason.FILE_FAILED: Status.QUARANTINED,
    Reason.READ_ERROR: Status.QUARANTINED,
    Reason.TRUNCATED_RECORD: Status.QUARANTINED,
    Reason.DIGEST_MISMATCH: Status.QUARANTINED,
    Reason.UNDECODABLE: Status.QUARANTINED,
    Reason.EXTRACT_ERROR: Status.QUARANTINED,
}
"""Reasons that quarantine a record; every other reason drops it."""

REASON_HELP: dict[Reason, str] = {
    Reason.UNREADABLE_FILE: "the input file could not be opened or is not a WARC/ARC file; detail has the error",
    Reason.UNREACHABLE_INPUT: "a remote input could not be reached (connection refused or reset, timeout, HTTP 5xx "
    "or 429) after retries with backoff; detail has the last error; `curate ingest --retry-quarantined` reads it again",
    Reason.FILE_FAILED: "a stage-1 step raised while this input file was processed (an error no step turned into a "
    "record's reason): the file's other rows are discarded and this one row stands for it; detail has the exception "
    "and the record it was on; the task went on with its other files; `curate ingest --retry-quarantined` reads it again",
    Reason.READ_ERROR: "the WARC reader failed at this offset (corrupt gzip, malformed headers); detail has the error",
    Reason.TRUNCATED_RECORD: "the record block is shorter than its Content-Length (cut file or gzip member)",
    Reason.DIGEST_MISMATCH: "the record block does not match its WARC-Block-Digest (corrupt, or a Content-Length that lies)",
    Reason.UNDECODABLE: "the payload is binary or could not be decoded in its declared or detected charset",
    Reason.EXTRACT_ERROR: "the HTML extractor raised; detail has the error",
    Reason.REVISIT_RECORD: "a WARC revisit record: it carries no payload of its own; detail has the original's doc_id when it is in the input",
    Reason.WAT_METADATA: "a WAT metadata record: no text, but its links' licence evidence is kept for the URL it describes",
    Reason.TOO_LARGE: "the payload exceeds the recipe's extract.max_payload_bytes (it is never held in memory whole)",
    Reason.EXTRACT_TIMEOUT: "the extractor ran past the recipe's extract.timeout_s on this page",
    Reason.UNSUPPORTED_CONTENT_TYPE: "the payload is not HTML (or plain text for WET conversion records)",
    Reason.HTTP_STATUS: "the HTTP status is not 2xx",
    Reason.TRUNCATED_PAYLOAD: "the payload was cut short (flags `http_truncated` or `warc_truncated`) and the recipe's "
    "read.truncated is `drop`; detail has the flags' details",
    Reason.NO_TEXT: "the extractor found no main text",
    Reason.TOO_SHORT: "the main text is shorter than the recipe's min_chars",
    Reason.LANGUAGE_EXCLUDED: "the detected language is not in the recipe's languages",
    Reason.DATE_UNKNOWN: "the capture date is missing, malformed or implausible (see date_reason), so no tier can be proven",
    Reason.MGT_ABOVE_THRESHOLD: "captured after the cutoff and its MGT score is above the recipe's rule: the "
    "reference quantile of human pre-cutoff web text (the store's own, or the classifier's shipped reference), or "
    "the probability threshold; detail states the rule and the reference",
    Reason.MGT_PRE_CUTOFF_EXTREME: "captured before the cutoff (or attested), but P(model-generated) is at or above "
    "the recipe's score.pre_cutoff_extreme and score.pre_cutoff_drop is true (content farms existed before 2022)",
    Reason.MGT_SITE_SHIFT: "captured after the cutoff on a site whose post-cutoff scores shifted up against its own "
    "pre-cutoff pages (site_scores), and its score is above the recipe's score.site_quantile of the reference "
    "(only with score.site_rule = true)",
    Reason.POST_CUTOFF_UNSCORED: "captured after the cutoff and no MGT score could be computed (see mgt_reason)",
    Reason.DUPLICATE_OF: "an exact or near duplicate of another record; detail has the representative's doc_id",
    Reason.OPTED_OUT: "the page, server or site snapshot signalled an AI/TDM opt-out and the recipe honours it",
    Reason.LICENSE_POLICY: "the recipe's licence policy excludes this page's licence verdict; detail names the policy",
}


def status_for(reason: Reason) -> Status:
    """The status implied by a reason code."""
    return REASON_STATUS.get(reason, Status.DROPPED)


INGEST_REASONS: tuple[Reason, ...] = (
    Reason.UNREADABLE_FILE,
    Reason.UNREACHABLE_INPUT,
    Reason.FILE_FAILED,
    Reason.READ_ERROR,
    Reason.TRUNCATED_RECORD,
    Reason.DIGEST_MISMATCH,
    Reason.UNDECODABLE,
    Reason.EXTRACT_ERROR,
    Reason.REVISIT_RECORD,
    Reason.WAT_METADATA,
    Reason.TOO_LARGE,
    Reason.EXTRACT_TIMEOUT,
    Reason.UNSUPPORTED_CONTENT_TYPE,
    Reason.HTTP_STATUS,
)
"""Reasons found while reading and extracting (``documents.ingest_reason``): facts of the record that no recipe
change can undo without reading the WARC again. ``curate decide`` turns them into status and reason first, then
applies the recipe's rules to the rest."""


def mark(meta: dict[str, object], reason: Reason, detail: str | None = None) -> None:
    """Record in a document's metadata that ingest found ``reason`` (one of :data:`INGEST_REASONS`); the status
    follows from it when ``curate decide`` runs."""
    meta.update({Meta.INGEST_REASON: reason.value, Meta.INGEST_DETAIL: detail})


class Flag(StrEnum):
    """Damage the reader found in a record it could still read (``documents.flags``, a list; each flag's detail in
    ``flag_detail``). A flagged record is kept unless a rule of the recipe says otherwise (``read.truncated``)."""

    WARC_TRUNCATED = "warc_truncated"
    HTTP_TRUNCATED = "http_truncated"
    MALFORMED_HEADERS = "malformed_headers"
    CONFLICTING_CONTENT_TYPE = "conflicting_content_type"
    CONFLICTING_CONTENT_LENGTH = "conflicting_content_length"
    BAD_CONTENT_ENCODING = "bad_content_encoding"
    BAD_CHUNKED_ENCODING = "bad_chunked_encoding"
    PAYLOAD_DIGEST_MISMATCH = "payload_digest_mismatch"
    CHARSET_UNKNOWN_LABEL = "charset_unknown_label"
    CHARSET_CONFLICT = "charset_conflict"
    CHARSET_FALLBACK = "charset_fallback"
    DECODE_ERRORS = "decode_errors"


FLAG_HELP: dict[Flag, str] = {
    Flag.WARC_TRUNCATED: "the WARC record has a WARC-Truncated header: the crawler stopped storing the payload "
    "(detail: its value, `length`, `time`, `disconnect` or `unspecified`)",
    Flag.HTTP_TRUNCATED: "the HTTP body is shorter than its Content-Length, a chunked body ends before its last "
    "chunk, or a compressed body ends before its end (detail: the bytes present and declared)",
    Flag.MALFORMED_HEADERS: "the HTTP header block breaks RFC 9112: a line without a colon, bare-LF line ends, "
    "folded (obs-fold) lines, whitespace before a colon, or no valid status line (detail: the first offending line)",
    Flag.CONFLICTING_CONTENT_TYPE: "Content-Type is sent on several lines with different values; the last valid "
    "one is used, as browsers do (WHATWG Fetch), and the detail lists them all",
    Flag.CONFLICTING_CONTENT_LENGTH: "Content-Length is sent with different values (or beside Transfer-Encoding); "
    "the body length cannot be checked",
    Flag.BAD_CONTENT_ENCODING: "the Content-Encoding (gzip, deflate, br) does not match the body, which is read as is",
    Flag.BAD_CHUNKED_ENCODING: "Transfer-Encoding is chunked but the body is not; it is read as is",
    Flag.PAYLOAD_DIGEST_MISMATCH: "the payload does not match its WARC-Payload-Digest (the block digest matched "
    "or was absent); see payload_digest_ok",
    Flag.CHARSET_UNKNOWN_LABEL: "a declared charset is not a WHATWG encoding label and was ignored (detail: the label)",
    Flag.CHARSET_CONFLICT: "the BOM, HTTP header and page declare different charsets; the detail names them and "
    "the one used (BOM, then HTTP, then the page, unless the winner cannot decode the bytes and another can)",
    Flag.CHARSET_FALLBACK: "no declared charset decodes the payload: the charset is a detector's guess (detail: "
    "the guess and its confidence)",
    Flag.DECODE_ERRORS: "some bytes are not valid in the charset used, or the page escapes a code point that is "
    "not a character (a lone surrogate such as JSON's `\\ud800`), and became U+FFFD (detail: how many)",
}


class CharsetSource(StrEnum):
    """Where the charset that decoded a payload came from (``documents.charset_source``). Rows read before
    store-v3 keep that reader's values: ``declared`` (HTTP), ``meta``, ``detected``, ``fallback``."""

    BOM = "bom"
    HEADER = "header"
    META = "meta"
    XML = "xml"
    UTF8 = "utf8"
    DETECTED = "detected"


CHARSET_SOURCE_HELP: dict[CharsetSource, str] = {
    CharsetSource.BOM: "a byte-order mark at the start of the payload (UTF-8, UTF-16LE/BE), which overrides any "
    "declaration (WHATWG)",
    CharsetSource.HEADER: "the charset parameter of the HTTP Content-Type (or of the WARC record's, for records "
    "without HTTP headers)",
    CharsetSource.META: "a `<meta charset>` or `<meta http-equiv=Content-Type>` of the page (WHATWG prescan of "
    "the first 1024 bytes, then the rest of `<head>`), when the HTTP header names none",
    CharsetSource.XML: "the encoding of an XML declaration (`<?xml ... encoding=...?>`) at the start of the payload",
    CharsetSource.UTF8: "nothing declared one and the bytes are UTF-8 (ASCII included)",
    CharsetSource.DETECTED: "nothing declared one and the bytes are not UTF-8: a detector's guess, always flagged "
    "`charset_fallback`",
}


def add_flag(meta: dict[str, object], flag: Flag, detail: str | None = None) -> None:
    """Record in a document's metadata that the reader found ``flag`` (once per flag; the first detail stands)."""
    flags = meta.get(Meta.FLAGS)
    if not isinstance(flags, list):
        flags = meta[Meta.FLAGS] = []
    if flag.value in flags:
        return
    flags.append(flag.value)
    details = json.loads(str(meta[Meta.FLAG_DETAIL])) if meta.get(Meta.FLAG_DETAIL) else {}
    details[flag.value] = (detail or "")[:500]
    meta[Meta.FLAG_DETAIL] = json.dumps(details, ensure_ascii=False)


class Tier(StrEnum):
    """Low-background tier of a record, from hard capture-time evidence."""

    PRE_CUTOFF = "pre_cutoff"
    ATTESTED = "attested"
    POST_CUTOFF = "post_cutoff"


class DateReason(StrEnum):
    """Why ``warc_date``/``tier`` are NULL."""

    MISSING = "warc_date_missing"
    MALFORMED = "warc_date_malformed"
    IMPLAUSIBLE = "warc_date_implausible"


class DateRule(StrEnum):
    """How a capture date was read from WARC-Date (``documents.date_rule``): exactly, or as an interval when only
    some of its parts are certain (``warc_date_from``/``warc_date_until``; ``warc_date`` stays NULL)."""

    EXACT = "iso8601"
    MONTH = "year-month-certain"
    YEAR = "year-certain"


DATE_RULE_HELP: dict[DateRule, str] = {
    DateRule.EXACT: "a W3C ISO 8601 date as the WARC spec requires: `warc_date` is the capture time",
    DateRule.MONTH: "malformed, but it starts with a valid year and month (`2008-10-294T05:21:46-0700`, as in "
    "ClueWeb09): the capture lies in that month, [first day, first day of the next month), shifted by the date's "
    "own UTC offset when it has a readable one, widened by 14 hours each way when it has an unreadable one",
    DateRule.YEAR: "malformed, but it starts with a valid year and nothing else readable (`2008`, `2008-xx`): the "
    "capture lies in that year",
}


class Strength(StrEnum):
    """How much an evidence item of a certificate proves about when a text existed."""

    HARD = "hard"  # the bytes were captured then: sets a tier
    SOFT = "soft"  # the page's or server's claim (publication date, Last-Modified): shown, never sets a tier
    WEAK = "weak"  # a related capture (same URL, other bytes): shown, never sets a tier
    RANGE = "range"  # a crawl's fetch-date range: context only, never a tier


STRENGTH_HELP: dict[Strength, str] = {
    Strength.HARD: "the bytes were captured then (a WARC-Date, or a capture with the same payload digest): sets a tier",
    Strength.SOFT: "a claim of the page or its server (a publication date, HTTP Last-Modified): shown in the "
    "certificate, never sets a tier",
    Strength.WEAK: "a related capture (the same URL with other bytes): shown, never sets a tier",
    Strength.RANGE: "a crawl's fetch-date range (a crawl id is not a date): context only, never a tier",
}


class EvidenceKind(StrEnum):
    """Kinds of time evidence (``attestation_evidence.kind``, and the items of a certificate)."""

    WARC_DATE = "warc-date"
    WARC_DATE_INTERVAL = "warc-date-interval"
    STORE_CAPTURE = "store-capture"
    INDEX_CAPTURE = "index-capture"
    EARLIER_STORE_CAPTURE = "earlier-store-capture"
    URL_CAPTURE = "url-capture"
    PAGE_DATE = "page-date"
    HTTP_LAST_MODIFIED = "http-last-modified"
    CRAWL_CALENDAR = "crawl-calendar"


EVIDENCE_STRENGTH: dict[EvidenceKind, Strength] = {
    EvidenceKind.WARC_DATE: Strength.HARD,
    EvidenceKind.WARC_DATE_INTERVAL: Strength.HARD,
    EvidenceKind.STORE_CAPTURE: Strength.HARD,
    EvidenceKind.INDEX_CAPTURE: Strength.HARD,
    EvidenceKind.EARLIER_STORE_CAPTURE: Strength.HARD,
    EvidenceKind.URL_CAPTURE: Strength.WEAK,
    EvidenceKind.PAGE_DATE: Strength.SOFT,
    EvidenceKind.HTTP_LAST_MODIFIED: Strength.SOFT,
    EvidenceKind.CRAWL_CALENDAR: Strength.RANGE,
}

EVIDENCE_KIND_HELP: dict[EvidenceKind, str] = {
    EvidenceKind.WARC_DATE: "this capture's WARC-Date",
    EvidenceKind.WARC_DATE_INTERVAL: "this capture's malformed WARC-Date read as an interval (see date_rule)",
    EvidenceKind.STORE_CAPTURE: "a capture in this store with the same verified payload digest",
    EvidenceKind.INDEX_CAPTURE: "a capture in a Common Crawl columnar index with the same payload digest (any URL)",
    EvidenceKind.EARLIER_STORE_CAPTURE: "a capture in another curate store with the same verified payload digest",
    EvidenceKind.URL_CAPTURE: "a capture of the same URL with another payload digest (a near-match: the page "
    "existed, its bytes differed)",
    EvidenceKind.PAGE_DATE: "the publication date the page states",
    EvidenceKind.HTTP_LAST_MODIFIED: "the server's HTTP Last-Modified header of this capture (a server's claim, "
    "often the time the page was generated)",
    EvidenceKind.CRAWL_CALENDAR: "the fetch-date range of the capture's crawl (a crawl id is not a date)",
}

ATTESTING_KINDS: tuple[EvidenceKind, ...] = (EvidenceKind.INDEX_CAPTURE, EvidenceKind.EARLIER_STORE_CAPTURE)
"""The kinds of ``attestation_evidence`` rows that make a capture ``attested`` when fetched before the cutoff."""


class EvidenceFlag(StrEnum):
    """Contradictions found in time evidence (``attestation_evidence.flag``; certificate items). A flagged
    capture never attests."""

    OUTSIDE_CRAWL_RANGE = "outside_crawl_range"
    PUBLISHED_AFTER_CAPTURE = "published_after_capture"
    MODIFIED_AFTER_CAPTURE = "modified_after_capture"


EVIDENCE_FLAG_HELP: dict[EvidenceFlag, str] = {
    EvidenceFlag.OUTSIDE_CRAWL_RANGE: "the fetch time lies outside the fetch-date range of the crawl it is part "
    "of (the crawl calendar), or after the lookup itself: a capture from the future of its crawl, or a mislabelled "
    "one",
    EvidenceFlag.PUBLISHED_AFTER_CAPTURE: "the page states a publication date later than its capture",
    EvidenceFlag.MODIFIED_AFTER_CAPTURE: "the server's Last-Modified is later than the capture (a clock or a claim "
    "that cannot be true)",
}


DATE_REASON_HELP: dict[DateReason, str] = {
    DateReason.MISSING: "the record has no WARC-Date (or an empty one)",
    DateReason.MALFORMED: "the WARC-Date is not a W3C ISO 8601 date as the WARC spec requires, or not a real date; "
    "it is kept verbatim in `warc_date_raw` and never guessed",
    DateReason.IMPLAUSIBLE: "the WARC-Date parses but cannot be a capture date: before 1996-01-01 (web archiving "
    "began then) or later than the moment the record was read; kept verbatim in `warc_date_raw`",
}


class ScoreReason(StrEnum):
    """Why ``mgt_score`` is NULL."""

    NOT_SCORED = "not_scored"
    TOO_SHORT = "too_short_to_score"
    NOT_TEXT = "not_text"
    LANGUAGE_OUT_OF_SCOPE = "language_out_of_scope"


class MgtReference(StrEnum):
    """Which human score distribution the reference MGT rule judges post-cutoff records against
    (``score.reference``)."""

    AUTO = "auto"
    STORE = "store"
    SHIPPED = "shipped"


MGT_REFERENCE_HELP: dict[MgtReference, str] = {
    MgtReference.AUTO: "the store's own pre-cutoff captures when it has at least score.min_reference of them, "
    "else the classifier's shipped reference (`classifiers/NAME/reference.json`)",
    MgtReference.STORE: "the store's own pre-cutoff English captures (same crawl, same extractor); `curate decide` "
    "refuses a store with fewer than score.min_reference of them",
    MgtReference.SHIPPED: "the classifier's shipped reference: its scores on real human web pages proven to exist "
    "before the cutoff, with their provenance (`curate classifiers reference`)",
}

REFERENCE_FILE = "reference.json"  # a classifier's shipped reference distribution, in classifiers/NAME/
REFERENCE_FORMAT = "mgt-reference-v1"  # the layout of that file


class SiteEvidence(StrEnum):
    """What the site-level comparison found for a site (``site_scores.evidence``): its post-cutoff pages' scores
    against the same site's pre-cutoff pages."""

    SHIFTED = "shifted"
    NO_SHIFT = "no_shift"
    TOO_FEW = "too_few"


SITE_EVIDENCE_HELP: dict[SiteEvidence, str] = {
    SiteEvidence.SHIFTED: "the site's post-cutoff scores are higher than its own pre-cutoff scores (one-sided "
    "Mann-Whitney p below score.site_alpha, both sides with at least score.site_min_pages pages)",
    SiteEvidence.NO_SHIFT: "both sides have enough pages and the post-cutoff scores are not significantly higher",
    SiteEvidence.TOO_FEW: "fewer than score.site_min_pages scored pages on one side: no site-level judgement",
}


class LicenseScope(StrEnum):
    """What a page-level licence verdict covers."""

    PAGE = "page"
    MEDIA = "media"
    PARTIAL = "partial"
    UNKNOWN = "unknown"


class MixFormat(StrEnum):
    """Shard formats a mix can be written in (``mix.formats``); every format holds the same shards in the same
    token order, and each shard file has its sidecar beside it."""

    DATATROVE = "datatrove"
    MEGATRON = "megatron"
    JSONL = "jsonl"
    PARQUET = "parquet"


MIX_FORMAT_HELP: dict[MixFormat, str] = {
    MixFormat.DATATROVE: "datatrove's tokenized files: `mix_NNNNN.ds` (tokens), `.ds.index` (uint64 document ends), "
    "`.ds.metadata`; read by datatrove's `DatatroveFolderDataset` and nanotron",
    MixFormat.MEGATRON: "Megatron-LM's indexed dataset: `mix_NNNNN.bin` (tokens) and `mix_NNNNN.idx`; read by "
    "megatron-core's `IndexedDataset(prefix)`",
    MixFormat.JSONL: "`mix_NNNNN.jsonl`: one JSON line per entry (its text, document and token range), for inspection",
    MixFormat.PARQUET: "`mix_NNNNN.parquet`: the JSONL rows as Parquet, for inspection",
}

TOKEN_FORMATS = (MixFormat.DATATROVE, MixFormat.MEGATRON)
"""The formats that hold tokens; a mix writes at least one of them."""


class Meta:
    """Keys of ``Document.metadata`` between pipeline steps. The shard writer maps them to columns: a key named
    like a ``documents`` column (:data:`INGEST_COLUMNS`) is that column; a key starting with ``_`` is working
    state that never lands in a column of its own name."""

    DOC_ID = "doc_id"
    INGEST_REASON = "ingest_reason"  # a reason of INGEST_REASONS, set by the step that found it
    INGEST_DETAIL = "ingest_detail"
    # the reader: where the record is, and its WARC and HTTP header fields
    RUN_ID = "run_id"
    WARC_FILE = "warc_file"
    WARC_FILE_NAME = "warc_file_name"
    RECORD_OFFSET = "record_offset"
    RECORD_LENGTH = "record_length"
    RECORD_TYPE = "record_type"  # None only on rows for unreadable stretches of a file
    WARC_VERSION = "warc_version"
    WARC_RECORD_ID = "warc_record_id"
    WARC_PAYLOAD_DIGEST = "warc_payload_digest"
    PAYLOAD_DIGEST_OK = "payload_digest_ok"
    WARC_DATE_RAW = "warc_date_raw"
    CRAWL_ID = "crawl_id"
    URL = "url"
    DOMAIN = "domain"
    HTTP_STATUS = "http_status"
    CONTENT_TYPE = "content_type"
    CHARSET = "charset"
    CHARSET_SOURCE = "charset_source"
    PAYLOAD_BYTES = "payload_bytes"
    FLAGS = "flags"  # list of Flag values; [] when examined and nothing was found
    FLAG_DETAIL = "flag_detail"
    HEADERS = "_headers"  # the HTTP headers opt-out checks read, removed by the licence step
    # extraction
    EXTRACTOR = "extractor"
    TEXT_CHARS = "text_chars"
    LANGUAGE = "language"
    LANGUAGE_SCORE = "language_score"
    PAGE_DATE = "page_date"
    HTTP_LAST_MODIFIED = "http_last_modified"
    # capture date
    WARC_DATE = "warc_date"
    DATE_REASON = "date_reason"
    WARC_DATE_FROM = "warc_date_from"
    WARC_DATE_UNTIL = "warc_date_until"
    DATE_RULE = "date_rule"
    # MGT score
    MGT_SCORE = "mgt_score"
    MGT_MODEL = "mgt_model"
    MGT_REASON = "mgt_reason"
    MGT_WINDOWS = "mgt_windows"
    # licence and opt-out evidence
    TAGGED_LICENSE_SPDX = "tagged_license_spdx"
    TAGGED_LICENSE_SCOPE = "tagged_license_scope"
    TAGGED_LICENSE_CONFIDENCE = "tagged_license_confidence"
    TAGGED_LICENSE_CONFLICT = "tagged_license_conflict"
    LICENSE_SIGNALS = "license_signals"
    LICENSE_TAGGER = "license_tagger"
    LICENSE_URL = "license_url"
    TITLE = "title"  # attribution fields, as the page states them
    AUTHOR = "author"
    SITE_NAME = "site_name"
    OPTOUT = "optout"
    OPTOUT_SITE = "optout_site"
    # dedup signature
    TEXT_HASH = "text_hash"
    # working state
    HTML = "_html"  # raw decoded payload, removed before writing
    MINHASH = "_minhash"  # 32-bit MinHash values, written to the shard's minhash column
    BANDS = "_bands"  # LSH band keys, written to the shard's bands column
    LICENSE_EVIDENCE = "_license_evidence"  # list of evidence dicts
    OPTOUT_EVIDENCE = "_optout_evidence"


@dataclass(frozen=True)
class Column:
    """A column of a store table: name, Arrow type, DuckDB type, and what it means."""

    name: str
    arrow: pa.DataType
    sql: str
    doc: str


def _c(name: str, kind: str, doc: str) -> Column:
    types: dict[str, tuple[pa.DataType, str]] = {
        "str": (pa.string(), "VARCHAR"),
        "int": (pa.int64(), "BIGINT"),
        "float": (pa.float64(), "DOUBLE"),
        "bool": (pa.bool_(), "BOOLEAN"),
        "ts": (pa.timestamp("us", tz="UTC"), "TIMESTAMPTZ"),
        "strlist": (pa.list_(pa.string()), "VARCHAR[]"),
    }
    arrow, sql = types[kind]
    return Column(name, arrow, sql, doc)


INGEST_COLUMNS: tuple[Column, ...] = (
    _c("doc_id", "str", "stable id: hash of the input file's base name and the record's byte offset"),
    _c("run_id", "str", "the ingest that brought this row (runs.run_id)"),
    _c("warc_file", "str", "input file as given (local path or URL)"),
    _c("warc_file_name", "str", "base name of the input file"),
    _c("record_offset", "int", "byte offset of the record (its gzip member) in the file"),
    _c("record_length", "int", "bytes of the record in the file, compressed; NULL if the read failed"),
    _c("record_type", "str", "WARC-Type: response, resource, conversion, revisit; NULL if unreadable"),
    _c("warc_version", "str", "the record's WARC version line"),
    _c("warc_record_id", "str", "WARC-Record-ID"),
    _c("warc_payload_digest", "str", "WARC-Payload-Digest as recorded"),
    _c("payload_digest_ok", "bool", "whether the payload matched WARC-Payload-Digest; NULL when none was recorded"),
    _c("warc_date_raw", "str", "WARC-Date exactly as recorded"),
    _c("warc_date", "ts", "WARC-Date parsed (UTC); NULL when missing or malformed"),
    _c("crawl_id", "str", "isPartOf from the file's warcinfo record (e.g. CC-MAIN-2020-34); NULL if none"),
    _c("url", "str", "WARC-Target-URI"),
    _c("domain", "str", "lower-cased host of the URL, without a leading www."),
    _c("http_status", "int", "HTTP status code; NULL for non-HTTP records"),
    _c("content_type", "str", "payload MIME type (HTTP Content-Type, else the record's)"),
    _c("charset", "str", "charset used to decode the payload"),
    _c("charset_source", "str", "where the charset came from (CharsetSource: bom, header, meta, xml, utf8, detected)"),
    _c("payload_bytes", "int", "payload length in bytes after de-chunking/decompression"),
    _c("extractor", "str", "versioned name of the text extractor"),
    _c("text_chars", "int", "length of the extracted text in characters"),
    _c("text_hash", "str", "hash of the normalised text (exact-dedup key)"),
    _c("language", "str", "detected language (ISO 639 code)"),
    _c("language_score", "float", "language-id confidence"),
    _c("page_date", "str", "publication date found in the page (soft evidence only)"),
    _c(
        "http_last_modified",
        "ts",
        "HTTP Last-Modified of the capture (UTC; soft evidence only); NULL when absent or not an HTTP-date",
    ),
    _c("date_reason", "str", "why warc_date (and so tier) is NULL"),
    _c(
        "date_rule",
        "str",
        "how WARC-Date was read (DateRule: iso8601, year-month-certain, year-certain); NULL when it could not be",
    ),
    _c("warc_date_from", "ts", "start of the capture-time interval when only part of WARC-Date is certain"),
    _c("warc_date_until", "ts", "end (exclusive) of that interval; NULL with warc_date_from when there is none"),
    _c("mgt_score", "float", "calibrated P(model-generated); NULL with mgt_reason when not scored"),
    _c("mgt_model", "str", "versioned name of the MGT model"),
    _c("mgt_reason", "str", "why mgt_score is NULL"),
    _c("mgt_windows", "int", "number of text windows scored"),
    _c("tagged_license_spdx", "str", "the licence tagger's page licence as SPDX id; NULL when none found"),
    _c("tagged_license_scope", "str", "the tagger's scope: page | media | partial | unknown"),
    _c("tagged_license_confidence", "float", "the tagger's confidence in its verdict"),
    _c("tagged_license_conflict", "bool", "the tagger found signals that disagree on the licence"),
    _c("license_signals", "int", "number of licence evidence rows"),
    _c("license_tagger", "str", "versioned name of the licence tagger"),
    _c("license_url", "str", "the licence URL the verdict rests on, as found"),
    _c("title", "str", "title the page states (ccREL dct:title, og:title, JSON-LD headline, <title>)"),
    _c("author", "str", "author the page states (cc:attributionName, meta author, JSON-LD author, byline)"),
    _c("site_name", "str", "site name the page states (og:site_name)"),
    _c("optout", "bool", "an AI/TDM opt-out of the text in the record (HTTP headers, HTML metas); NULL if not checked"),
    _c("optout_site", "bool", "the site opts out in the robots.txt/tdmrep.json snapshot (retroactive); NULL if none"),
    _c(
        "ingest_reason",
        "str",
        "what reading or extraction found that rules the record out (INGEST_REASONS); NULL if nothing",
    ),
    _c("ingest_detail", "str", "the error or value behind ingest_reason"),
    _c(
        "flags",
        "strlist",
        "damage the reader found in a record it could read (Flag values); [] when none, NULL when never examined "
        "(unreadable stretches, rows migrated from stores before store-v3)",
    ),
    _c("flag_detail", "str", "JSON object: each flag's detail (the WARC-Truncated value, bytes present/declared, …)"),
)
"""Columns of ``documents`` that ingest writes (stage-1 shards). They are facts of the record and never change."""

DECIDED_COLUMNS: tuple[Column, ...] = (
    _c(
        "tier",
        "str",
        "pre_cutoff | attested | post_cutoff from WARC-Date and the cutoff; NULL when the date is unknown",
    ),
    _c(
        "mgt_ref_pctl",
        "float",
        "share of the human reference's scores below mgt_score: the store's pre-cutoff captures, or the "
        "classifier's shipped reference (decisions.mgt_rule says which); NULL under the probability rule",
    ),
    _c(
        "license_spdx",
        "str",
        "page licence in force as SPDX id (LicenseRef-… for ports): the tagger's, or a domain review's",
    ),
    _c("license_scope", "str", "page | media | partial | unknown, in force"),
    _c("license_confidence", "float", "confidence in the page licence verdict in force"),
    _c("license_conflict", "bool", "signals disagree on the licence"),
    _c("dup_cluster_id", "str", "doc_id of the cluster's earliest capture; NULL when not in a cluster"),
    _c("dup_cluster_size", "int", "members in the duplicate cluster"),
    _c("dup_kind", "str", "exact | near: how this member matches the earliest capture; NULL for that capture"),
    _c("dedup_pass", "int", "the dedup pass (dedup_passes.pass_id) that matched this document; NULL until one has"),
    _c("status", "str", "kept | dropped | quarantined, set by curate decide"),
    _c("reason", "str", "reason code (see Reason); NULL when kept"),
    _c("reason_detail", "str", "error message, or the representative doc_id for duplicate_of"),
    _c("decision_id", "int", "the decision pass (decisions.decision_id) that set status"),
)
"""Columns of ``documents`` that ``curate dedup`` and ``curate decide`` set from the store alone."""

DOCUMENT_COLUMNS: tuple[Column, ...] = INGEST_COLUMNS + DECIDED_COLUMNS

EVIDENCE_COLUMNS: tuple[Column, ...] = (
    _c("doc_id", "str", "the document the signal was found in"),
    _c("kind", "str", "signal kind: rel-license-link, rel-license-a, meta, json-ld, cc-link, copyright, …"),
    _c("raw_value", "str", "the value as found (URL or text)"),
    _c("spdx_id", "str", "SPDX id the value maps to; NULL if it maps to none"),
    _c("location", "str", "head | footer | main | figure | body"),
    _c("scope", "str", "page | media | partial | unknown"),
    _c("snippet", "str", "a short snippet around the signal"),
    _c("tagger", "str", "versioned name of the tagger"),
)

OPTOUT_COLUMNS: tuple[Column, ...] = (
    _c("doc_id", "str", "the document the signal was found in"),
    _c("kind", "str", "x-robots-tag | robots-meta | tdm-reservation | content-usage | robots-txt | content-signal | …"),
    _c("raw_value", "str", "the header or attribute value as found"),
    _c("agent", "str", "the crawler the signal names; NULL when it applies to all"),
    _c("applies_to", "str", "text (the page's text is reserved) | images (an image-only reservation, e.g. noimageai)"),
    _c("observed_at", "ts", "when the signal was seen: the capture time, or the snapshot date for site signals"),
    _c("source", "str", "record (in the captured record) | site-snapshot (retroactive)"),
    _c("tagger", "str", "versioned name of the tagger"),
)

TEXT_COLUMNS: tuple[Column, ...] = (
    _c("doc_id", "str", "the document"),
    _c("text", "str", "extracted main text"),
)

ATTESTATION_COLUMNS: tuple[Column, ...] = (
    _c("pass_id", "int", "the attestation pass that found the capture (attest_passes.pass_id)"),
    _c("doc_id", "str", "the document whose payload digest (or URL, for url-capture) matched"),
    _c("kind", "str", "index-capture | earlier-store-capture (digest equality) | url-capture (same URL, other digest)"),
    _c("strength", "str", "hard (digest equality) | weak (url-capture: never changes a tier)"),
    _c("source", "str", "the index path or glob, or the other store's folder, as given"),
    _c("digest", "str", "the matched capture's payload digest, canonical (sha1: and base32)"),
    _c("url", "str", "the matched capture's URL (may differ from the document's: mirrors, tracking parameters)"),
    _c("fetch_time", "ts", "when the matched capture was fetched (UTC)"),
    _c("tz_assumed", "bool", "true when the source's fetch time had no time zone and was read as UTC"),
    _c("crawl", "str", "the matched capture's crawl (e.g. CC-MAIN-2021-04); NULL when the source has none"),
    _c("warc_filename", "str", "WARC file of the matched capture"),
    _c("warc_record_offset", "int", "byte offset of the matched capture in its WARC file"),
    _c("warc_record_length", "int", "byte length of the matched capture"),
    _c("fetch_status", "int", "HTTP status of the matched capture; NULL when the source has none"),
    _c("mime", "str", "detected MIME type of the matched capture; NULL when the source has none"),
    _c("flag", "str", "a contradiction (EvidenceFlag) that keeps this capture from attesting; NULL when none"),
)
"""Columns of ``attestation_evidence``: captures found by ``curate attest`` in capture indexes and earlier stores,
whatever their fetch time, so ``curate decide`` can judge them against any cutoff without looking them up again."""

SITE_COLUMNS: tuple[Column, ...] = (
    _c("decision_id", "int", "the decision pass that computed the row (decisions.decision_id)"),
    _c("domain", "str", "the site: documents.domain (lower-cased host without www.)"),
    _c("n_pre", "int", "the site's scored pre-cutoff (and attested) captures"),
    _c("n_post", "int", "the site's scored post-cutoff captures"),
    _c("pre_median", "float", "median mgt_score of the pre-cutoff side; NULL when it is empty"),
    _c("post_median", "float", "median mgt_score of the post-cutoff side"),
    _c(
        "shift_auc",
        "float",
        "P(a post-cutoff page scores above a pre-cutoff page of the same site), ties counting half (0.5: no "
        "shift; the Mann-Whitney U over n_pre * n_post); NULL without pre-cutoff pages",
    ),
    _c("shift_p", "float", "one-sided Mann-Whitney p-value of that shift; NULL when a side has fewer than 2 pages"),
    _c(
        "post_pctl_median",
        "float",
        "median reference percentile (documents.mgt_ref_pctl) of the post-cutoff pages; NULL under the probability rule",
    ),
    _c(
        "post_pctl_iqr",
        "float",
        "interquartile range of those percentiles: the post-cutoff pages against each other (a narrow, high band "
        "is many pages alike)",
    ),
    _c("post_flagged", "int", "post-cutoff pages the page-level rule finds above its cut"),
    _c("evidence", "str", "SiteEvidence: shifted | no_shift | too_few"),
)
"""Columns of ``site_scores``: per site, its post-cutoff pages' MGT scores against its own pre-cutoff pages, kept
as evidence beside the page scores and recomputed by every ``curate decide``."""

SIDECAR_COLUMNS: tuple[Column, ...] = (
    _c("shard", "str", "the shard file the entry is in (e.g. mix_00000.ds)"),
    _c("token_start", "int", "first token of the entry in the shard (BOS included when the mix adds one)"),
    _c("token_end", "int", "one past the entry's last token (EOS included when the mix adds one)"),
    _c("bucket", "str", "the mix bucket the document was selected by"),
    _c("copy", "int", "0 for a document's first entry in the mix, 1 for its second (upsampled) copy, …"),
    _c("doc_id", "str", "the document (documents.doc_id)"),
    _c("warc_file", "str", "WARC file of the record, as read"),
    _c("record_offset", "int", "byte offset of the record in the WARC file"),
    _c("record_length", "int", "byte length of the record"),
    _c("warc_record_id", "str", "WARC-Record-ID"),
    _c("url", "str", "WARC-Target-URI"),
    _c("warc_date", "ts", "WARC-Date (UTC)"),
    _c("license_spdx", "str", "page licence in force when the mix was written"),
    _c("license_scope", "str", "what the licence covers"),
    _c("tier", "str", "low-background tier when the mix was written"),
    _c("mgt_score", "float", "P(model-generated) when the mix was written"),
)
"""Columns of a mix's sidecars (``<shard file>.sidecar.parquet`` beside every shard file, and the mix's
``sidecar.parquet``): one row per entry, token range → document → WARC record."""


def arrow_schema(columns: tuple[Column, ...], extra: list[pa.Field] | None = None) -> pa.Schema:
    """Arrow schema for a column list, with optional extra fields (e.g. shard-only columns)."""
    fields = [pa.field(c.name, c.arrow) for c in columns]
    return pa.schema(fields + (extra or []))


def ddl(table: str, columns: tuple[Column, ...], primary_key: str | None = None) -> str:
    """CREATE TABLE statement for a column list."""
    cols = [f"{c.name} {c.sql}" + (" PRIMARY KEY" if c.name == primary_key else "") for c in columns]
    return f"CREATE TABLE {table} (\n  " + ",\n  ".join(cols) + "\n)"


STORE_TABLES_DDL: tuple[str, ...] = (
    """CREATE TABLE store_meta (key VARCHAR PRIMARY KEY, value VARCHAR)""",
    # one row per ingest: what it read (every input with its SHA-256), with which recipe and versions; its counts
    # are what ingest found (n_kept: records no ingest reason ruled out; curate decide sets the statuses)
    """CREATE TABLE runs (
  run_id VARCHAR PRIMARY KEY,
  schema_version VARCHAR,
  started_at TIMESTAMPTZ,
  finished_at TIMESTAMPTZ,
  recipe_name VARCHAR,
  recipe_version VARCHAR,
  recipe_toml VARCHAR,
  versions_json VARCHAR,
  inputs_json VARCHAR,
  n_read BIGINT,
  n_kept BIGINT,
  n_dropped BIGINT,
  n_quarantined BIGINT
)""",
    # one row per decision pass: the recipe it applied and how the store's records ended
    """CREATE TABLE decisions (
  decision_id INTEGER PRIMARY KEY,
  schema_version VARCHAR,
  started_at TIMESTAMPTZ,
  finished_at TIMESTAMPTZ,
  recipe_name VARCHAR,
  recipe_version VARCHAR,
  recipe_digest VARCHAR,
  recipe_toml VARCHAR,
  cutoff DATE,
  mgt_rule VARCHAR,
  n_read BIGINT,
  n_kept BIGINT,
  n_dropped BIGINT,
  n_quarantined BIGINT,
  counts_json VARCHAR
)""",
    # one row per dedup pass: the documents it matched for the first time and the edges it found
    """CREATE TABLE dedup_passes (
  pass_id INTEGER PRIMARY KEY,
  started_at TIMESTAMPTZ,
  finished_at TIMESTAMPTZ,
  params VARCHAR,
  verify VARCHAR,
  n_new BIGINT,
  n_edges BIGINT,
  n_clustered BIGINT
)""",
    # one row per mix written from the store, and the documents each holds
    """CREATE TABLE mixes (
  mix_id INTEGER PRIMARY KEY, -- the mix's number in this store
  created_at TIMESTAMPTZ, -- when it was published
  out VARCHAR, -- the folder it was written to
  decision_id INTEGER, -- the decision whose kept documents it holds
  recipe_digest VARCHAR, -- SHA-256 of the recipe it was cut with
  documents BIGINT, -- entries (a document repeated by its bucket's weight counts each time)
  tokens BIGINT -- tokens, end-of-text tokens included
)""",
    """CREATE TABLE mix_documents (
  mix_id INTEGER, -- the mix (mixes.mix_id)
  doc_id VARCHAR, -- a document in it
  entries INTEGER, -- how many times it is in the mix
  tokens BIGINT -- its tokens over all its entries
)""",
    # verified duplicate pairs (a, b, exact | near); clusters are their connected components
    "CREATE TABLE dup_edges (a VARCHAR, b VARCHAR, kind VARCHAR, pass_id INTEGER)",
    "CREATE TABLE minhash_signatures (doc_id VARCHAR PRIMARY KEY, minhash UINTEGER[])",
    "CREATE TABLE minhash_bands (doc_id VARCHAR, band INTEGER, key UBIGINT)",
    # one row per attestation pass: the sources it looked in (paths, files, crawls) and what it found
    """CREATE TABLE attest_passes (
  pass_id INTEGER PRIMARY KEY, -- the pass's number in this store
  started_at TIMESTAMPTZ, -- when it started
  finished_at TIMESTAMPTZ, -- when it committed
  tool VARCHAR, -- ATTEST_NAME of the matching code
  cutoff DATE, -- documents captured before it were not looked up
  sources_json VARCHAR, -- each source: kind, path as given, files read, crawls, bytes, modification times
  n_looked_up BIGINT, -- documents whose digest was looked up
  n_hard BIGINT, -- digest-equal captures recorded (any fetch time)
  n_weak BIGINT -- same-URL captures with another digest recorded
)""",
    ddl("attestation_evidence", ATTESTATION_COLUMNS),
    ddl("site_scores", SITE_COLUMNS),
)
"""The store's tables besides ``documents``, ``texts`` and the evidence tables (whose DDL comes from their
column lists)."""

SHARD_DEDUP_FIELDS = [pa.field("minhash", pa.list_(pa.uint32())), pa.field("bands", pa.list_(pa.uint64()))]
