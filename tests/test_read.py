"""The reader on every real WARC fixture (the in-repo copies of ../shared/data/warc) and on broken files made from
them."""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from curate.read.warc import DOC_RECORD_TYPES, decode_payload, domain_of, iter_records
from curate.schema import Reason, status_for

from conftest import FIXTURE_WARC_DIRS, TEST_DATA, WARC_DIR, all_fixture_warcs, warc_fixture
from damaged import RUSSIAN, http_block, kinds, record, write_damaged_warc


def reason(meta: dict) -> str | None:
    """What the reader found that rules the record out (``ingest_reason``); None for a readable record."""
    return meta.get("ingest_reason")


def status(meta: dict) -> str | None:
    """The status ``curate decide`` gives a record for what the reader found (None: not decided by reading)."""
    r = reason(meta)
    return status_for(Reason(r)).value if r else None


def warcio_counts(path: Path) -> int:
    """Payload records (response/resource/conversion/revisit) and WAT metadata records, as plain warcio counts them."""
    with path.open("rb") as fh:
        return sum(
            1
            for r in ArchiveIterator(fh, arc2warc=True)
            if r.rec_type in DOC_RECORD_TYPES
            or (r.rec_type == "metadata" and (r.content_type or "").startswith("application/json"))
        )


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
        if not m.get("record_length") or reason(m) == "truncated_record":
            continue
        chunk = data[m["record_offset"] : m["record_offset"] + m["record_length"]]
        rec = next(iter(ArchiveIterator(io.BytesIO(chunk), arc2warc=True)))
        if m["warc_record_id"] is not None:  # NULL for ARC: ARC records have no record id
            assert rec.rec_headers.get_header("WARC-Record-ID") == m["warc_record_id"]
        assert rec.rec_headers.get_header("WARC-Target-URI") == m["url"]


def by_name(name: str) -> Path:
    return warc_fixture(name)


def test_truncated_record_is_quarantined() -> None:
    (doc,) = iter_records(str(by_name("clipped.warc.gz")))
    assert status(doc.metadata) == "quarantined"
    assert reason(doc.metadata) == "truncated_record"


def test_revisit_and_non_html_are_dropped_with_reasons() -> None:
    revisit = [d for d in iter_records(str(by_name("example.warc.gz"))) if d.metadata["record_type"] == "revisit"]
    assert [reason(d.metadata) for d in revisit] == ["revisit_record"]
    posts = list(iter_records(str(by_name("post-test.warc.gz"))))
    assert {reason(d.metadata) for d in posts} == {"unsupported_content_type"}


def test_wet_conversion_text_and_crawl_id() -> None:
    (doc,) = iter_records(str(by_name("whirlwind.warc.wet.gz")))
    assert doc.metadata["record_type"] == "conversion"
    assert "Escopete" in doc.text
    assert doc.metadata["crawl_id"] == "CC-MAIN-2024-22"


def test_arc_is_read_as_warc() -> None:
    (doc,) = iter_records(str(by_name("example.arc.gz")))
    assert doc.metadata["url"] == "http://example.com/"
    assert status(doc.metadata) is None
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


def ids(docs) -> list[str]:
    return [d.metadata["warc_record_id"] for d in docs if d.metadata.get("warc_record_id")]


def test_corrupt_gzip_member_mid_file_keeps_records_before_and_after(tmp_path: Path) -> None:
    src = by_name("sample-0000.warc.gz").read_bytes()
    good = list(iter_records(str(by_name("sample-0000.warc.gz"))))
    cut, end = good[10].metadata["record_offset"], good[11].metadata["record_offset"]
    broken = src[:cut] + b"\x1f\x8b\x08\x00garbage-not-deflate" + src[cut + 40 :]
    path = tmp_path / "broken.warc.gz"
    path.write_bytes(broken)
    docs = list(iter_records(str(path)))
    quarantined = [d.metadata for d in docs if status(d.metadata) == "quarantined"]
    assert len(quarantined) == 1
    q = quarantined[0]
    assert reason(q) == "read_error" and q["record_offset"] == cut
    assert cut < q["record_offset"] + q["record_length"] <= end - 17  # resumed at the next record boundary
    assert ids(docs) == ids(good[:10]) + ids(good[11:])  # only the damaged record is lost
    for d in docs:  # offsets after the damage are still true file offsets
        if d.metadata.get("warc_record_id"):
            chunk = broken[d.metadata["record_offset"] : d.metadata["record_offset"] + d.metadata["record_length"]]
            assert (
                next(iter(ArchiveIterator(io.BytesIO(chunk)))).rec_headers.get_header("WARC-Record-ID")
                == d.metadata["warc_record_id"]
            )


def test_damaged_first_member_does_not_hide_the_records_after_it(tmp_path: Path) -> None:
    """A file whose first gzip member does not inflate to a record (here: a gzip header over plain bytes) is not
    'not a WARC': its first stretch is one read_error row and every record after it is read."""
    src = by_name("sample-0000.warc.gz").read_bytes()
    good = list(iter_records(str(by_name("sample-0000.warc.gz"))))
    first_end = good[1].metadata["record_offset"]
    broken = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + gzip.decompress(src[:first_end]) + src[first_end:]
    path = tmp_path / "bad-first.warc.gz"
    path.write_bytes(broken)
    docs = list(iter_records(str(path)))
    first = docs[0].metadata
    assert reason(first) == "read_error" and first["record_offset"] == 0
    assert "resumed at offset" in first["ingest_detail"]
    assert ids(docs[1:]) == ids(good[1:])
    not_warc = tmp_path / "not-a-warc.gz"
    not_warc.write_bytes(gzip.compress(b"just some text, no records\n" * 100))
    (only,) = list(iter_records(str(not_warc)))
    assert reason(only.metadata) == "unreadable_file"


def test_file_cut_in_last_record(tmp_path: Path) -> None:
    src = by_name("sample-0001.warc.gz").read_bytes()
    path = tmp_path / "cut.warc.gz"
    path.write_bytes(src[: len(src) - 3000])
    docs = list(iter_records(str(path)))
    assert docs and status(docs[-1].metadata) == "quarantined"
    assert all(status(d.metadata) != "quarantined" for d in docs[:-1])


def _warc(records: list[tuple[str, bytes, list[tuple[str, str]]]], gzip_: bool = True) -> bytes:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    buf = io.BytesIO()
    w = WARCWriter(buf, gzip=gzip_)
    for url, body, extra in records:
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8"), *extra], protocol="HTTP/1.1")
        w.write_record(w.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http))
    return buf.getvalue()


PAGE = b"<html><body><p>" + b"A plain page about rivers and stones. " * 20 + b"</p></body></html>"


def test_lying_content_length_in_uncompressed_warc(tmp_path: Path) -> None:
    raw = _warc([(f"http://x{i}.example/", PAGE, []) for i in range(3)], gzip_=False)
    real = str(len(PAGE) + len(b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"))
    first_cl = raw.index(b"Content-Length: ", raw.index(b"http://x1.example/"))
    line_end = raw.index(b"\r\n", first_cl)
    lied = (
        raw[:first_cl] + b"Content-Length: " + str(int(raw[first_cl + 16 : line_end]) - 300).encode() + raw[line_end:]
    )
    path = tmp_path / "lie.warc"
    path.write_bytes(lied)
    docs = {d.metadata.get("url"): d.metadata for d in iter_records(str(path))}
    assert status(docs["http://x0.example/"]) is None and status(docs["http://x2.example/"]) is None
    assert reason(docs["http://x1.example/"]) == "digest_mismatch"
    assert real  # the real length is what the record would have needed


def test_huge_declared_length_is_a_truncated_record_not_an_allocation(tmp_path: Path) -> None:
    raw = _warc([("http://big.example/", PAGE, []), ("http://ok.example/", PAGE, [])])
    member_end = raw.index(b"\x1f\x8b\x08", 10)
    first = gzip.decompress(raw[:member_end])
    cl = first.index(b"Content-Length: ")
    patched = first[:cl] + b"Content-Length: 2147483648" + first[first.index(b"\r\n", cl) :]
    path = tmp_path / "huge.warc.gz"
    path.write_bytes(gzip.compress(patched) + raw[member_end:])
    docs = list(iter_records(str(path)))
    assert reason(docs[0].metadata) == "truncated_record"
    assert docs[-1].metadata["url"] == "http://ok.example/" and status(docs[-1].metadata) is None


def test_body_claiming_gzip_is_read_as_is(tmp_path: Path) -> None:
    path = tmp_path / "ce.warc.gz"
    path.write_bytes(_warc([("http://ce.example/", PAGE, [("Content-Encoding", "gzip")])]))
    (doc,) = iter_records(str(path))
    assert status(doc.metadata) is None and "rivers and stones" in doc.metadata["_html"]


def test_malformed_record_headers_then_good_records(tmp_path: Path) -> None:
    good = _warc([("http://a.example/", PAGE, []), ("http://b.example/", PAGE, [])])
    bad = gzip.compress(
        b"WARC/1.0\r\nWARC-Type: response\r\nthis line is not a header\r\nContent-Length: abc\r\n\r\nxx\r\n\r\n"
    )
    path = tmp_path / "hdr.warc.gz"
    path.write_bytes(good[: good.index(b"\x1f\x8b\x08", 10)] + bad + good[good.index(b"\x1f\x8b\x08", 10) :])
    docs = list(iter_records(str(path)))
    assert [d.metadata.get("url") for d in docs if d.metadata.get("url")] == ["http://a.example/", "http://b.example/"]
    bad_rows = [d.metadata for d in docs if status(d.metadata) == "quarantined"]
    assert [reason(m) for m in bad_rows] == ["read_error"] and "missing WARC-Record-ID" in bad_rows[0]["ingest_detail"]


@pytest.mark.parametrize("content", [b"", b"this is not a WARC file\n", gzip.compress(b"plain text, gzipped\n")])
def test_unreadable_files_become_one_row(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.warc.gz"
    path.write_bytes(content)
    (doc,) = iter_records(str(path))
    assert status(doc.metadata) == "quarantined"
    assert reason(doc.metadata) == "unreadable_file"
    assert doc.metadata["record_offset"] == 0


def test_malformed_date_is_kept_raw() -> None:
    docs = list(iter_records(str(by_name("clueweb-quirk.warc.gz"))))
    assert {d.metadata["warc_date_raw"] for d in docs} == {"2008-10-294T05:21:46-0700"}


def test_decode_payload() -> None:
    assert decode_payload("héllo".encode("cp1252"), "windows-1252")[0] == "héllo"
    assert decode_payload('<meta charset="koi8-r">привет'.encode("koi8-r"), None)[1] == "koi8-r"
    assert decode_payload(bytes(range(256)) * 20, "utf-8")[:3] == (None, None, None)
    unknown = decode_payload(b"plain ascii", "no-such-charset")
    assert unknown.text == "plain ascii" and [f for f, _ in unknown.flags] == ["charset_unknown_label"]


# Real sentences in each legacy charset family, as pages that declare the charset only in a <meta> (HTTP says
# just text/html). Each holds characters that Python's codec of the same label cannot decode where the WHATWG
# decoder can (GBK's 镕, Windows-31J's ①, Big5-HKSCS's 峯), or that a wrong guess would garble.
LEGACY = {
    "windows-1251": "Москва — столица России, крупнейший по численности населения город страны. " * 3,
    "koi8-r": "Съешь же ещё этих мягких французских булок, да выпей чаю. Широкая электрификация губерний. " * 3,
    "shift_jis": "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。①②③の順に記す。" * 3,
    "euc-jp": "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。薄暗い所で泣いていた。" * 3,
    "iso-2022-jp": "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。" * 3,
    "gb2312": "北京是中华人民共和国的首都，是全国的政治中心、文化中心。朱镕基曾任国务院总理。" * 3,
    "gbk": "上海是中国的经济中心之一，位于长江入海口。朱镕基曾任上海市市长。" * 3,
    "gb18030": "广州是广东省的省会，历史悠久，是海上丝绸之路的起点之一。" * 3,
    "big5": "臺北市是中華民國的首都，位於臺灣北部的臺北盆地。香港的「峯」字常見於地名。" * 3,
    "windows-1250": "Příliš žluťoučký kůň úpěl ďábelské ódy. Zażółć gęślą jaźń. Árvíztűrő tükörfúrógép. " * 3,
    "iso-8859-2": "Příliš žluťoučký kůň úpěl ďábelské ódy. Zażółć gęślą jaźń. Árvíztűrő tükörfúrógép. " * 3,
}
WHATWG_CODEC = {"shift_jis": "cp932", "gb2312": "gb18030", "gbk": "gb18030", "big5": "big5hkscs"}
META_FORMS = (
    '<meta charset="{}">',
    '<meta http-equiv="Content-Type" content="text/html; charset={}">',
    "<META CONTENT='text/html; charset={}' HTTP-EQUIV='content-type'>",
)


def _response_warc(path: Path, pages: list[tuple[str, bytes, str]]) -> Path:
    """A gzipped WARC of HTTP 200 responses written by warcio: (url, body, Content-Type) each."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with path.open("wb") as fh:
        w = WARCWriter(fh, gzip=True)
        for url, body, ctype in pages:
            http = StatusAndHeaders("200 OK", [("Content-Type", ctype)], protocol="HTTP/1.1")
            w.write_record(w.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http))
    return path


@pytest.mark.parametrize("label", sorted(LEGACY))
def test_legacy_charset_declared_only_in_meta_decodes_to_the_right_text(tmp_path: Path, label: str) -> None:
    text = LEGACY[label]
    body = text.encode(WHATWG_CODEC.get(label, label))
    pages = []
    for i, form in enumerate(META_FORMS):
        head = b"<html><head><title>t</title>" + form.format(label).encode() + b"</head><body><p>"
        pages.append((f"http://legacy.example/{label}/{i}", head + body + b"</p></body></html>", "text/html"))
    padding = b"<script>var x = 1;</script>" * 60  # the <meta> after the first 1024 bytes, still in <head>
    late = b"<html><head>" + padding + META_FORMS[0].format(label).encode() + b"</head><body><p>" + body + b"</p>"
    pages.append((f"http://legacy.example/{label}/late", late, "text/html"))
    docs = list(iter_records(str(_response_warc(tmp_path / "legacy.warc.gz", pages))))
    assert len(docs) == len(pages)
    for doc in docs:
        m = doc.metadata
        assert reason(m) is None, m.get("ingest_detail")
        assert text in m["_html"], m["url"]
        assert m["charset_source"] == "meta" and m["flags"] == []


def test_whatwg_labels_decode_as_browsers_do() -> None:
    # iso-8859-1 and ascii are windows-1252 labels: 0x80 is the euro sign, not a C1 control
    d = decode_payload(b"<p>Price: 5 \x80, caf\xe9</p>", "iso-8859-1")
    assert (d.text, d.charset, d.source) == ("<p>Price: 5 €, café</p>", "windows-1252", "header")
    assert decode_payload(b"<p>\x93quoted\x94</p>", "us-ascii").text == "<p>“quoted”</p>"
    # a server default of iso-8859-1 over a page whose bytes are UTF-8 with multi-byte characters: UTF-8
    page = "<p>Zürich, Genève — naïve café</p>".encode()
    d = decode_payload(page, "iso-8859-1")
    assert d.text == page.decode() and d.charset == "utf-8" and [f for f, _ in d.flags] == ["charset_conflict"]
    # a byte-order mark overrides the declarations
    d = decode_payload(b"\xef\xbb\xbf<p>ol\xc3\xa1</p>", "windows-1251")
    assert (d.text, d.source) == ("<p>olá</p>", "bom") and [f for f, _ in d.flags] == ["charset_conflict"]
    # a <meta> inside a comment is no declaration
    commented = b'<!-- <meta charset="koi8-r"> --><meta charset="windows-1251"><p>' + RUSSIAN.encode("cp1251")
    assert decode_payload(commented, None).charset == "windows-1251"


def test_an_unsure_guess_is_a_flagged_failure_not_a_wrong_text() -> None:
    # undeclared bytes that are not UTF-8 and that no detector reads with confidence: no text, and the reason
    noise = bytes((i * 151 + 7) % 128 + 128 for i in range(300))
    d = decode_payload(b"<html><body><p>" + noise + b"</p></body></html>", None)
    assert d.text is None and "detector" in (d.detail or "")
    # a page cut in the middle of a multi-byte character keeps its text and says so
    cut = ("<p>" + "Привет, мир. " * 50 + "мир").encode()[:-1]
    d = decode_payload(cut, "utf-8")
    assert d.text is not None and d.text.endswith("мир. ми") and [f for f, _ in d.flags] == ["decode_errors"]


@pytest.mark.parametrize("kind", kinds(), ids=lambda k: k.name)
def test_each_damaged_record_gets_its_reason_or_flag(tmp_path: Path, kind) -> None:
    path = tmp_path / "one.warc.gz"
    path.write_bytes(kind.member)
    (doc,) = iter_records(str(path))
    m = doc.metadata
    assert m["url"] == kind.url
    assert reason(m) == kind.reason, m.get("ingest_detail")
    assert set(kind.flags) <= set(m["flags"]), m["flag_detail"]
    if kind.reason is None:  # kept despite the damage: the text is still there
        assert "ferry" in m["_html"] or "мост" in m["_html"]


def test_a_corrupt_member_among_damaged_records_costs_only_itself(tmp_path: Path) -> None:
    all_kinds, offset = write_damaged_warc(tmp_path / "damaged.warc.gz")
    docs = [d.metadata for d in iter_records(str(tmp_path / "damaged.warc.gz"))]
    assert [m["url"] for m in docs if m.get("url")] == [k.url for k in all_kinds]
    (bad,) = [m for m in docs if not m.get("url")]
    assert bad["record_offset"] == offset and reason(bad) == "read_error" and bad.get("flags") is None


def test_clean_records_carry_an_empty_flag_list() -> None:
    docs = [d.metadata for d in iter_records(str(by_name("sample-0000.warc.gz")))]
    assert docs and all(m["flags"] == [] and m["flag_detail"] is None for m in docs)


def test_domain_of() -> None:
    assert domain_of("https://WWW.Example.org/a?b") == "example.org"
    assert domain_of("not a url") is None
    assert domain_of(None) is None


def _sums(path: Path) -> dict[tuple[str, str], str]:
    """SHA256SUMS lines by (origin folder, file name): the in-repo copies keep the folder, not the upstream path."""
    out = {}
    for line in path.read_text().splitlines():
        digest, rel = line.split(maxsplit=1)
        parts = Path(rel).parts  # ./warc-dolma/tests/data/warc/sample-0000.warc.gz: pathlib drops the "."
        out[(parts[0], parts[-1])] = digest
    return out


def test_fixture_digests_match_source() -> None:
    """Every in-repo fixture is byte-identical to its ../shared/data/warc original (SHA256SUMS copied from there),
    and every WARC listed there has an in-repo copy."""
    import hashlib

    sums = _sums(TEST_DATA / "warc" / "SHA256SUMS")
    copies = [p for d in FIXTURE_WARC_DIRS for p in d.rglob("*") if p.is_file() and p.parent.name.startswith("warc-")]
    for p in copies:
        assert sums[(p.parent.name, p.name)] == hashlib.sha256(p.read_bytes()).hexdigest(), p
    listed = {name for (_, name) in sums if ".warc" in name or ".arc" in name}
    assert listed == {p.name for p in copies if ".warc" in p.name or ".arc" in p.name}
    assert {p.name for p in all_fixture_warcs()} == {n for n in listed if "paths" not in n}


@pytest.mark.skipif(not WARC_DIR.is_dir(), reason=f"no {WARC_DIR} to compare the in-repo copies with")
def test_fixture_sums_are_those_of_shared() -> None:
    assert (WARC_DIR / "SHA256SUMS").read_text() == (TEST_DATA / "warc" / "SHA256SUMS").read_text()


def test_too_large_payload_is_dropped_without_buffering(tmp_path: Path) -> None:
    path = tmp_path / "big.warc.gz"
    path.write_bytes(_warc([("http://big.example/", PAGE * 10, []), ("http://ok.example/", PAGE, [])]))
    docs = list(iter_records(str(path), max_payload=2048))
    assert [reason(d.metadata) for d in docs] == ["too_large", None]


def test_extraction_time_limit_counts_cpu_time_not_waiting() -> None:
    import time

    from curate.extract import ExtractTimeout, time_limit

    with pytest.raises(ExtractTimeout), time_limit(0.05):
        while True:  # a page that keeps the extractor busy
            pass
    with time_limit(0.05):  # waiting (as a process does on a loaded machine) is not the page's cost
        time.sleep(0.3)


def test_the_first_page_is_not_charged_for_loading_the_extractor() -> None:
    """Importing trafilatura and its first use take ~0.7 CPU-s (more wall time on a busy machine): the step warms
    the extractor up outside the page's limit, so a fresh worker's first page is judged like any other (a
    cluster run under load once dropped its tasks' first pages as extract_timeout and differed from the local run)."""
    code = (
        "from datatrove.data import Document\n"
        "from curate.extract import ExtractStep\n"
        "from curate.schema import Meta\n"
        "step = ExtractStep('trafilatura', page_dates=False, timeout_s=0.25)\n"
        "page = '<html><body><article><p>A short page: trafilatura tries its fallbacks on it.</p></article></body></html>'\n"
        "docs = [Document(text='', id=str(i), metadata={Meta.HTML: page, Meta.URL: 'http://a.example/'}) for i in range(3)]\n"
        "for d in docs:\n"
        "    step.process(d)\n"
        "print([d.metadata.get(Meta.INGEST_REASON) for d in docs], [len(d.text) > 20 for d in docs])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.split("\n")[0] == "[None, None, None] [True, True, True]", done.stdout + done.stderr


def test_paths_listing(tmp_path: Path) -> None:
    from curate.errors import InputError
    from curate.read.inputs import read_paths_listing, resolve_inputs

    cc = read_paths_listing(str(warc_fixture("CC-MAIN-2024-22.warc.paths.gz")), "s3://commoncrawl/")
    assert len(cc) == 300 and cc[0].startswith("s3://commoncrawl/part-00000-")
    base = str(FIXTURE_WARC_DIRS[0])
    listing = tmp_path / "warc.paths.gz"
    listing.write_bytes(gzip.compress(b"warc-dolma/sample-0000.warc.gz\nwarc-warcio/example.warc.gz\n"))
    files = resolve_inputs([str(listing)], base)
    assert sorted(Path(f).name for f in files) == ["example.warc.gz", "sample-0000.warc.gz"]
    listing.write_bytes(gzip.compress(b"nope.warc.gz\n"))
    with pytest.raises(InputError, match="not under"):
        resolve_inputs([str(listing)], base)


def test_wat_records_carry_license_links(tmp_path: Path) -> None:
    import json

    from warcio.warcwriter import WARCWriter

    wat = {
        "Envelope": {
            "Payload-Metadata": {
                "HTTP-Response-Metadata": {
                    "HTML-Metadata": {
                        "Head": {
                            "Link": [
                                {
                                    "path": "LINK@/href",
                                    "url": "https://creativecommons.org/licenses/by-sa/4.0/deed.an",
                                    "rel": "license",
                                }
                            ]
                        },
                        "Links": [
                            {"path": "A@/href", "url": "https://example.org/about"},
                            {"path": "A@/href", "url": "http://creativecommons.org/licenses/by/2.0/"},
                        ],
                    }
                }
            }
        }
    }
    buf = io.BytesIO()
    w = WARCWriter(buf, gzip=True)
    w.write_record(
        w.create_warc_record(
            "https://an.wikipedia.org/wiki/Escopete",
            "metadata",
            payload=io.BytesIO(json.dumps(wat).encode()),
            warc_content_type="application/json",
        )
    )
    path = tmp_path / "x.warc.wat.gz"
    path.write_bytes(buf.getvalue())
    (doc,) = iter_records(str(path))
    m = doc.metadata
    assert (m["record_type"], status(m), reason(m)) == ("metadata", "dropped", "wat_metadata")
    kinds = {(e["kind"], e["spdx_id"], e["scope"]) for e in m["_license_evidence"]}
    assert kinds == {("wat-rel-license-link", "CC-BY-SA-4.0", "page"), ("wat-cc-link", "CC-BY-2.0", "unknown")}
    (real,) = iter_records(str(warc_fixture("whirlwind.warc.wat.gz")))
    assert reason(real.metadata) == "wat_metadata" and real.metadata["_license_evidence"] == []


def test_http_last_modified_is_read_as_an_http_date(tmp_path: Path) -> None:
    """Last-Modified in any of RFC 9110's three HTTP-date forms becomes a UTC time; a value that is not an
    HTTP-date, or none, stays NULL (soft evidence is never guessed)."""
    import datetime as dt

    html = b"<html><body><p>" + b"words " * 60 + b"</p></body></html>"
    values = {
        "imf": "Sun, 06 Nov 1994 08:49:37 GMT",
        "rfc850": "Sunday, 06-Nov-94 08:49:37 GMT",
        "asctime": "Sun Nov  6 08:49:37 1994",
        "garbage": "yesterday",
        "none": None,
    }
    members = [
        record(
            f"http://lm.example/{name}",
            *http_block(["Content-Type: text/html", *([f"Last-Modified: {v}"] if v else [])], html),
        )
        for name, v in values.items()
    ]
    path = tmp_path / "lm.warc.gz"
    path.write_bytes(b"".join(members))
    got = {d.metadata["url"].rsplit("/", 1)[1]: d.metadata.get("http_last_modified") for d in iter_records(str(path))}
    when = dt.datetime(1994, 11, 6, 8, 49, 37, tzinfo=dt.UTC)
    assert got == {"imf": when, "rfc850": when, "asctime": when, "garbage": None, "none": None}
