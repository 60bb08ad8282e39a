"""The reader on every real WARC fixture and on broken files made from them."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from curate.read import DOC_RECORD_TYPES, decode_payload, domain_of, iter_records

from conftest import WARC_DIR, all_fixture_warcs


def warcio_counts(path: Path) -> int:
    """Payload records (response/resource/conversion/revisit) as plain warcio counts them."""
    with path.open("rb") as fh:
        return sum(1 for r in ArchiveIterator(fh, arc2warc=True) if r.rec_type in DOC_RECORD_TYPES)


@pytest.mark.parametrize("path", all_fixture_warcs(), ids=lambda p: p.name)
def test_one_document_per_payload_record(path: Path) -> None:
    docs = list(iter_records(str(path)))
    readable = [d for d in docs if d.metadata.get("record_type")]
    assert len(readable) == warcio_counts(path)
    assert len({d.metadata["doc_id"] for d in docs}) == len(docs)


@pytest.mark.parametrize("path", all_fixture_warcs(), ids=lambda p: p.name)
def test_coordinates_fetch_the_same_record(path: Path) -> None:
    data = path.read_bytes()
    for doc in iter_records(str(path)):
        m = doc.metadata
        if not m.get("record_length") or m.get("reason") == "truncated_record":
            continue
        chunk = data[m["record_offset"] : m["record_offset"] + m["record_length"]]
        rec = next(iter(ArchiveIterator(io.BytesIO(chunk), arc2warc=True)))
        if m["warc_record_id"] is not None:  # NULL for ARC: ARC records have no record id
            assert rec.rec_headers.get_header("WARC-Record-ID") == m["warc_record_id"]
        assert rec.rec_headers.get_header("WARC-Target-URI") == m["url"]


def by_name(name: str) -> Path:
    return next(p for p in all_fixture_warcs() if p.name == name)


def test_truncated_record_is_quarantined() -> None:
    (doc,) = iter_records(str(by_name("clipped.warc.gz")))
    assert doc.metadata["status"] == "quarantined"
    assert doc.metadata["reason"] == "truncated_record"


def test_revisit_and_non_html_are_dropped_with_reasons() -> None:
    revisit = [d for d in iter_records(str(by_name("example.warc.gz"))) if d.metadata["record_type"] == "revisit"]
    assert [d.metadata["reason"] for d in revisit] == ["revisit_record"]
    posts = list(iter_records(str(by_name("post-test.warc.gz"))))
    assert {d.metadata["reason"] for d in posts} == {"unsupported_content_type"}


def test_wet_conversion_text_and_crawl_id() -> None:
    (doc,) = iter_records(str(by_name("whirlwind.warc.wet.gz")))
    assert doc.metadata["record_type"] == "conversion"
    assert "Escopete" in doc.text
    assert doc.metadata["crawl_id"] == "CC-MAIN-2024-22"


def test_arc_is_read_as_warc() -> None:
    (doc,) = iter_records(str(by_name("example.arc.gz")))
    assert doc.metadata["url"] == "http://example.com/"
    assert doc.metadata.get("status") is None
    assert doc.metadata["warc_record_id"] is None  # warcio would invent one; provenance is never invented


def test_charset_from_page_when_header_has_none() -> None:
    docs = list(iter_records(str(by_name("warcfile.warc.gz"))))
    charsets = {d.metadata.get("charset") for d in docs}
    assert {"gb2312", "gbk", "windows-1251"} & charsets


def test_payload_digests_checked() -> None:
    ok = [d.metadata.get("payload_digest_ok") for d in iter_records(str(by_name("sample-0000.warc.gz")))]
    assert True in ok and False not in ok
    clueweb = [d.metadata.get("payload_digest_ok") for d in iter_records(str(by_name("clueweb-quirk.warc.gz")))]
    assert set(clueweb) == {False}


def test_corrupt_gzip_mid_file_keeps_records_before(tmp_path: Path) -> None:
    src = by_name("sample-0000.warc.gz").read_bytes()
    good = list(iter_records(str(by_name("sample-0000.warc.gz"))))
    cut = good[10].metadata["record_offset"]
    broken = src[:cut] + b"\x1f\x8b\x08\x00garbage-not-deflate" + src[cut + 40 :]
    path = tmp_path / "broken.warc.gz"
    path.write_bytes(broken)
    docs = list(iter_records(str(path)))
    assert [d.metadata["warc_record_id"] for d in docs[:10]] == [d.metadata["warc_record_id"] for d in good[:10]]
    last = docs[-1].metadata
    assert last["status"] == "quarantined" and last["reason"] == "read_error"
    assert last["record_offset"] == cut


def test_file_cut_in_last_record(tmp_path: Path) -> None:
    src = by_name("sample-0001.warc.gz").read_bytes()
    path = tmp_path / "cut.warc.gz"
    path.write_bytes(src[: len(src) - 3000])
    docs = list(iter_records(str(path)))
    assert docs and docs[-1].metadata["status"] == "quarantined"
    assert all(d.metadata.get("status") != "quarantined" for d in docs[:-1])


@pytest.mark.parametrize("content", [b"", b"this is not a WARC file\n", gzip.compress(b"plain text, gzipped\n")])
def test_unreadable_files_become_one_row(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.warc.gz"
    path.write_bytes(content)
    (doc,) = iter_records(str(path))
    assert doc.metadata["status"] == "quarantined"
    assert doc.metadata["reason"] == "unreadable_file"
    assert doc.metadata["record_offset"] == 0


def test_malformed_date_is_kept_raw() -> None:
    docs = list(iter_records(str(by_name("clueweb-quirk.warc.gz"))))
    assert {d.metadata["warc_date_raw"] for d in docs} == {"2008-10-294T05:21:46-0700"}


def test_decode_payload() -> None:
    assert decode_payload("héllo".encode("cp1252"), "windows-1252")[0] == "héllo"
    assert decode_payload('<meta charset="koi8-r">привет'.encode("koi8-r"), None)[1] == "koi8-r"
    assert decode_payload(bytes(range(256)) * 20, "utf-8") == (None, None, None)
    assert decode_payload(b"plain ascii", "no-such-charset")[0] == "plain ascii"


def test_domain_of() -> None:
    assert domain_of("https://WWW.Example.org/a?b") == "example.org"
    assert domain_of("not a url") is None
    assert domain_of(None) is None


def test_fixture_digests_match_source() -> None:
    assert (WARC_DIR / "SHA256SUMS").exists()
