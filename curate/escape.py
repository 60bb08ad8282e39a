"""Crawled strings written into files people open: Markdown (``ATTRIBUTION.md``) and CSV exports.

A page's title, author or URL is text the page's owner chose; rendered raw, it can become markup (a
``<script>`` in a CommonMark renderer) or a formula (``=cmd|…`` in a spreadsheet). Each writer escapes for
the format it writes, here.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

_MD_SPECIAL = re.compile(r"([\\`*_\[\]()!|])")  # inline markup; the values never start a line
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def md_text(value: str | None, default: str) -> str:
    """``value`` as literal Markdown text: HTML characters as entities, Markdown punctuation backslashed,
    line breaks folded to spaces; ``default`` when empty."""
    if not value or not value.strip():
        return default
    text = " ".join(value.split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def md_url(url: str | None) -> str:
    """A link for an http(s) URL (characters outside the URL syntax percent-encoded, so it cannot close the
    link); any other URL as escaped text."""
    if not url:
        return "unknown URL"
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        return md_text(url, "unknown URL")
    safe = quote(url, safe=":/?#@!$&'*+,;=%-._~")
    return f"<{safe.replace('(', '%28').replace(')', '%29')}>"


def csv_cell_sql(column: str) -> str:
    """SQL for a text column as a CSV cell that no spreadsheet reads as a formula: a value starting with
    ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading apostrophe (OWASP's advice)."""
    starts = " OR ".join(f"starts_with({column}, '{c}')" for c in ("=", "+", "-", "@", "\t", "\r"))
    return f"CASE WHEN {starts} THEN '''' || {column} ELSE {column} END AS {column}"
