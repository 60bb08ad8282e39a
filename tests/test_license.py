"""Licence tagger on the real pages of ../shared/data/html (their in-repo copies) and on hand-made edge cases."""

from __future__ import annotations

import dataclasses
import hashlib
import io
from pathlib import Path

import pytest

from curate.licenses.spdx import license_for_url
from curate.licenses.tagger import optouts_from_headers, tag_html
from curate.read.warc import decode_payload
from curate.recipe import load_recipe
from curate.run.ingest import ingest
from curate.schema import Flag

from conftest import HTML_DATA, HTML_DIR, html_page, html_pages, license_index, store_query

INDEX = license_index()
EXPECTED = {"soldaini_net.html": "CC-BY-4.0", "an_wikipedia_org_wiki_Escopete.html": "CC-BY-SA-4.0"}
DCLM = "html-dclm-enricher/tests/baselines/mappers/enrichers/enricher_test_files/"


def page(rel: str) -> str:
    return decode_payload(html_page(rel), None)[0]


def test_pages_are_those_of_shared() -> None:
    """Every page the tests read (copied, or cut again from the WARC fixtures) has the digest that
    shared/data/html/SHA256SUMS lists, and every HTML page listed there is here."""
    sums = {}
    for line in (HTML_DATA / "SHA256SUMS").read_text().splitlines():
        digest, rel = line.split(maxsplit=1)
        sums[rel.removeprefix("./")] = digest
    pages = html_pages()
    assert set(pages) == {rel for rel in sums if rel.endswith(".html")}
    for rel, body in pages.items():
        assert hashlib.sha256(body).hexdigest() == sums[rel], rel


@pytest.mark.skipif(not HTML_DIR.is_dir(), reason=f"no {HTML_DIR} to compare the in-repo copies with")
def test_page_sums_are_those_of_shared() -> None:
    assert (HTML_DIR / "SHA256SUMS").read_text() == (HTML_DATA / "SHA256SUMS").read_text()
    index = "html-license-from-warc/index.tsv"
    assert (HTML_DIR / index).read_bytes() == (HTML_DATA / index).read_bytes()


@pytest.mark.parametrize("row", INDEX, ids=lambda r: r["file"])
def test_labelled_warc_pages(row: dict[str, str]) -> None:
    v = tag_html(page("html-license-from-warc/" + row["file"]))
    if row["license_signal"] == "rel-license":
        assert (v.spdx_id, v.scope) == (EXPECTED[row["file"]], "page")
    elif row["file"].startswith("creativecommons_org"):
        # the footer says "Except where otherwise noted, content on this site is licensed under a Creative Commons
        # Attribution 4.0 International license" (relative link, no rel); the CC links of the articles are photo
        # credits: they stay media evidence and do not change the page's licence
        assert (v.spdx_id, v.scope, v.conflict) == ("CC-BY-4.0", "page", False)
        assert any(e.scope == "media" for e in v.evidence)
    else:  # copyright-only pages carry no licence
        assert v.scope != "page"
    if row["license_signal"] == "copyright-footer-only" and row["copyright_snippet"].strip():
        assert v.spdx_id is None


def test_wikipedia_pages_are_cc_by_sa() -> None:
    for i in range(1, 6):
        v = tag_html(page(f"{DCLM}wikipedia_paragraph{i}.html"))
        assert (v.spdx_id, v.scope, v.conflict) == ("CC-BY-SA-4.0", "page", False), i
        assert any(e.kind == "rel-license-link" and e.location == "head" for e in v.evidence)
        assert tag_html(page(f"{DCLM}common_crawl_paragraph{i}.html")).spdx_id is None, i


def test_copyright_notice_evidence() -> None:
    v = tag_html(
        page(
            "html-license-from-warc/www_houstonpress_com_music_a_humble_chance_the_rapper_leads_a_spiritual_awakenin.html"
        )
    )
    notes = [e for e in v.evidence if e.kind == "copyright"]
    assert notes and "2016" in notes[0].raw_value


@pytest.mark.parametrize(
    ("url", "spdx"),
    [
        ("https://creativecommons.org/licenses/by-sa/4.0/deed.an", "CC-BY-SA-4.0"),
        ("http://creativecommons.org/licenses/by/4.0/?ref=chooser-v1", "CC-BY-4.0"),
        ("//CreativeCommons.org/Licenses/BY-NC/3.0/de/", "CC-BY-NC-3.0-DE"),
        ("creativecommons.org/licenses/by-sa/3.0/es/", "LicenseRef-CC-BY-SA-3.0-ES"),
        ("https://creativecommons.org/publicdomain/zero/1.0/", "CC0-1.0"),
        ("https://creativecommons.org/publicdomain/mark/1.0/", "CC-PDM-1.0"),
        ("&quot;https://creativecommons.org/licenses/by/2.0/legalcode&quot;", "CC-BY-2.0"),
        ("https://www.gnu.org/licenses/fdl-1.3.html", "GFDL-1.3-or-later"),
        ("https://creativecommons.org/about/", None),
        ("https://example.org/licenses/by/4.0/", None),
    ],
)
def test_license_urls(url: str, spdx: str | None) -> None:
    lic = license_for_url(url)
    assert (lic.spdx_id if lic else None) == spdx


def test_port_flags_follow_the_code() -> None:
    lic = license_for_url("https://creativecommons.org/licenses/by-nc-sa/3.0/es/")
    assert lic and lic.noncommercial and lic.share_alike and not lic.open_definition


def test_jsonld_image_license_is_media_scope() -> None:
    html = """<html><head><script type="application/ld+json">
      {"@type": "ImageObject", "license": {"@id": "https://creativecommons.org/licenses/by/4.0/"}}</script></head>
      <body><p>Text</p></body></html>"""
    v = tag_html(html)
    assert (v.spdx_id, v.scope) == ("CC-BY-4.0", "media")


def test_jsonld_article_license_is_page_scope() -> None:
    html = '<script type="application/ld+json">[{"@type":"Article","license":"https://creativecommons.org/licenses/by-sa/4.0/"}]</script>'
    assert tag_html(html).scope == "page"


def test_conflicting_signals_are_flagged() -> None:
    html = """<head><link rel="license" href="https://creativecommons.org/licenses/by/4.0/">
      <meta name="license" content="https://creativecommons.org/licenses/by-nc/4.0/"></head>"""
    v = tag_html(html)
    assert v.conflict and v.scope == "unknown"


def test_figure_credit_link_is_media_only() -> None:
    html = """<article><p>Story text.</p><figure><img src=a.jpg><figcaption>Photo by X,
      <a href="https://creativecommons.org/licenses/by/2.0/">CC BY 2.0</a></figcaption></figure></article>"""
    v = tag_html(html)
    assert v.scope == "media" and v.evidence[0].location == "figure"


@pytest.mark.parametrize(
    "html",
    [
        "<html><head><link rel=LICENSE href='HTTPS://CREATIVECOMMONS.ORG/LICENSES/BY/4.0/'></head></html>",
        '<a rel="license" href="&quot;https://creativecommons.org/licenses/by/4.0/&quot;">x</a>',
        "<a rel=license href=//creativecommons.org/licenses/by/4.0/>x",
    ],
)
def test_odd_markup_still_maps(html: str) -> None:
    assert tag_html(html).spdx_id == "CC-BY-4.0"


@pytest.mark.parametrize(
    "html", ["", "<<<>>>", "<html><body>" * 5000, "\x00\x01 licence", "<a rel=license href='/relative/path'>x</a>"]
)
def test_bad_html_never_crashes(html: str) -> None:
    v = tag_html(html)
    assert v.spdx_id is None


def test_optout_headers_and_metas() -> None:
    assert [o.kind for o in optouts_from_headers({"X-Robots-Tag": "noai, noimageai"})] == ["x-robots-tag"]
    assert optouts_from_headers({"X-Robots-Tag": "GPTBot: noindex"})[0].agent == "GPTBot"
    assert optouts_from_headers({"X-Robots-Tag": "googlebot: noindex"}) == []
    assert optouts_from_headers({"tdm-reservation": "1"})[0].kind == "tdm-reservation"
    assert optouts_from_headers({"tdm-reservation": "0"}) == []
    assert optouts_from_headers({"Content-Usage": "train-ai=n"})[0].kind == "content-usage"
    v = tag_html(
        '<head><meta name="robots" content="noai"><meta name="tdm-reservation" content="1"><meta name="CCBot" content="noindex"></head>'
    )
    assert sorted(o.kind for o in v.optouts) == ["robots-meta", "robots-meta", "tdm-reservation"]
    assert {o.agent for o in v.optouts} == {None, "ccbot"}


def test_huge_and_deep_pages_do_not_crash() -> None:
    huge = (
        "<html><head><link rel=license href='https://creativecommons.org/licenses/by/4.0/'></head><body>"
        + "<p>word " * 2_000_000
        + "</body></html>"
    )
    assert tag_html(huge).spdx_id == "CC-BY-4.0"
    deep = (
        "<div>" * 100_000
        + "&copy; 2020 Deep Inc"
        + "</div>" * 100_000
        + '<a rel="license" href="https://creativecommons.org/licenses/by/4.0/">x</a>'
    )
    v = tag_html(deep)
    assert v.spdx_id in ("CC-BY-4.0", None)  # lxml may refuse the depth; never an exception


def test_spdx_ids_of_ports_resolve_and_malformed_ones_do_not_crash() -> None:
    from curate.licenses.spdx import license_by_spdx

    port = license_by_spdx("LicenseRef-CC-BY-SA-3.0-ES")
    assert port and port.share_alike and port.open_definition
    assert (
        license_by_spdx("CC-BY-4.0") and license_by_spdx("LicenseRef-CC-X") is None and license_by_spdx("nope") is None
    )


# JSON may escape a lone surrogate ("\\ud800" is valid JSON); json.loads turns it into a str no UTF-8 text can hold
SURROGATE_PAGE = (
    '<html><head><title>Rain in the valley</title><script type="application/ld+json">{"@type": "Article", '
    '"headline": "Rain \\udc00in the valley", "license": "https://creativecommons.org/licenses/by/4.0/\\ud800"}'
    "</script></head><body><article><p>"
    + "Ordinary words about gardening, rain in the valley and the price of bread at the market. " * 30
    + "</p></article></body></html>"
)
CC_BY = "https://creativecommons.org/licenses/by/4.0/"


def test_lone_surrogates_escaped_in_jsonld_become_u_fffd() -> None:
    v = tag_html(SURROGATE_PAGE)
    assert (v.spdx_id, v.scope, v.replaced) == ("CC-BY-4.0", "page", 2)
    (e,) = v.evidence
    assert (e.kind, e.raw_value, e.spdx_id) == ("json-ld", CC_BY + "\ufffd", "CC-BY-4.0")
    assert v.license_url == CC_BY + "\ufffd" and v.attribution["title"] == "Rain \ufffdin the valley"
    for value in (*dataclasses.astuple(v.evidence[0]), v.license_url, *v.attribution.values()):
        if isinstance(value, str):
            value.encode("utf-8")  # strict: raises on a surrogate
    assert tag_html(SURROGATE_PAGE.replace("\\ud800", "\\ud83d\\ude00")).replaced == 1  # a pair is a character


def test_a_page_with_a_lone_surrogate_in_jsonld_gets_its_row_and_its_licence_evidence(tmp_path: Path) -> None:
    """One page must not cost its file: it is stored, with its licence evidence, flagged decode_errors."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    path = tmp_path / "surrogate.warc.gz"
    with path.open("wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for i, html in enumerate([SURROGATE_PAGE.replace("\\ud800", ""), SURROGATE_PAGE]):
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            writer.write_record(
                writer.create_warc_record(
                    f"http://example.org/{i}",
                    "response",
                    payload=io.BytesIO(html.encode()),
                    http_headers=http,
                    warc_headers_dict={"WARC-Date": "2020-01-01T00:00:00Z"},
                )
            )
    result = ingest([str(path)], tmp_path / "store", load_recipe(None))
    assert result.unread == [] and result.quarantined == 0
    rows = store_query(
        tmp_path / "store",
        """SELECT d.url, d.ingest_reason, d.flags, d.tagged_license_spdx, d.title, e.raw_value, e.spdx_id, e.scope
           FROM documents d JOIN license_evidence e USING (doc_id) ORDER BY d.url""",
    )
    assert rows == [
        ("http://example.org/0", None, [Flag.DECODE_ERRORS.value], "CC-BY-4.0", "Rain \ufffdin the valley", CC_BY,
         "CC-BY-4.0", "page"),
        ("http://example.org/1", None, [Flag.DECODE_ERRORS.value], "CC-BY-4.0", "Rain \ufffdin the valley",
         CC_BY + "\ufffd", "CC-BY-4.0", "page"),
    ]  # fmt: skip
