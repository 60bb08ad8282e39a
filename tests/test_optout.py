"""AI/TDM opt-outs in headers and metas: Google's X-Robots-Tag grammar, RFC 9110 header handling, image-only
reservations, and markup that only looks like a signal."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from curate.licenses.tagger import optouts_from_headers, tag_html

# (X-Robots-Tag value, expected [(agent, applies_to)])
HEADER_CASES = [
    ("noai", [(None, "text")]),
    ("NoAI", [(None, "text")]),
    ("noindex, noai, nofollow", [(None, "text")]),
    ("noml", [(None, "text")]),
    ("noimageai", [(None, "images")]),
    ("noimageai, noai", [(None, "text")]),
    ("GPTBot: noai", [("GPTBot", "text")]),
    ("gptbot: noindex", [("gptbot", "text")]),
    ("googlebot: noindex, nofollow", []),
    ("noindex, nofollow", []),
    ("googlebot: noindex, GPTBot: noindex, nofollow", [("GPTBot", "text")]),
    ("unavailable_after: 25 Jun 2010 15:00:00 PST, noai", [(None, "text")]),
    ("max-snippet: 20, noimageai", [(None, "images")]),
    ("CCBot: noimageai, ClaudeBot: noai", [("CCBot", "images"), ("ClaudeBot", "text")]),
    ("all", []),
]


@pytest.mark.parametrize(("value", "expected"), HEADER_CASES, ids=[c[0] for c in HEADER_CASES])
def test_x_robots_tag_grammar(value: str, expected: list) -> None:
    for name in ("X-Robots-Tag", "x-robots-tag", "X-ROBOTS-TAG"):
        found = optouts_from_headers({name: value})
        assert sorted((o.agent, o.applies_to) for o in found) == sorted(expected), name
        assert all(o.kind == "x-robots-tag" and o.raw_value == value for o in found)


def _page(head: str) -> str:
    return f"<html><head><title>t</title>{head}</head><body><p>text</p></body></html>"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        ('<meta name="robots" content="noai, noimageai">', [(None, "text")]),
        ('<meta name="robots" content="noimageai">', [(None, "images")]),
        ('<META NAME="ROBOTS" CONTENT="NOAI">', [(None, "text")]),
        ('<meta name="GPTBot" content="noindex">', [("gptbot", "text")]),
        ('<meta name="googlebot" content="noindex">', []),
        ('<!-- <meta name="robots" content="noai"> -->', []),
        ('<!--[if IE]><meta name="robots" content="noai"><![endif]-->', []),
        ('<meta name="robots" content="noindex"><!-- noai -->', []),
    ],
)
def test_robots_metas(head: str, expected: list) -> None:
    v = tag_html(_page(head))
    assert sorted((o.agent, o.applies_to) for o in v.optouts) == sorted(expected)


def test_repeated_header_lines_are_one_value(tmp_path: Path) -> None:
    """RFC 9110: a field sent on several lines is their comma-separated list; the reader combines them, and a
    text opt-out makes ``documents.optout`` true while an image-only one does not."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    from curate.recipe import load_recipe
    from curate.run.commands import decide
    from curate.run.ingest import ingest
    from curate.store import open_store

    body = "<html><head><title>t</title></head><body><article><p>" + "Plain words about a town. " * 30
    pages = {
        "split": [("X-Robots-Tag", "noindex"), ("x-robots-tag", "noai")],
        "images": [("X-Robots-Tag", "noimageai")],
        "none": [("X-Robots-Tag", "googlebot: noindex")],
    }
    src = tmp_path / "h.warc.gz"
    with src.open("wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for name, extra in pages.items():
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html"), *extra], protocol="HTTP/1.1")
            writer.write_record(
                writer.create_warc_record(
                    f"https://e.example/{name}",
                    "response",
                    payload=io.BytesIO((body + "</p></article></body></html>").encode()),
                    http_headers=headers,
                    warc_headers_dict={"WARC-Date": "2019-05-01T00:00:00Z"},
                )
            )
    store = tmp_path / "s"
    recipe = load_recipe(None)
    ingest([str(src)], store, recipe)
    decide(store, recipe)
    con = open_store(store)
    try:
        rows = dict(
            (url.rsplit("/", 1)[1], rest)
            for url, *rest in con.execute(
                """SELECT d.url, d.optout, d.reason, string_agg(o.raw_value || '|' || o.applies_to, ';')
                   FROM documents d LEFT JOIN optout_evidence o USING (doc_id) GROUP BY ALL"""
            ).fetchall()
        )
    finally:
        con.close()
    assert rows["split"] == [True, "opted_out", "noindex, noai|text"]
    assert rows["images"][0] is False and rows["images"][1] != "opted_out" and rows["images"][2] == "noimageai|images"
    assert rows["none"][0] is False and rows["none"][2] is None
