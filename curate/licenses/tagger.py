"""Licence, copyright and opt-out evidence from raw HTML and HTTP headers.

``tag_html(html)`` parses the page once (lxml) and returns every signal it found with its DOM location and
a snippet, plus a page verdict: the SPDX id, its scope (``page``, ``media``, ``partial``, ``unknown``), a
confidence, and whether the signals conflict. A Creative Commons link without ``rel=license`` is recorded as
evidence but never makes a page verdict on its own: such links often cover an image or a part of the page.
Opt-out signals (``X-Robots-Tag``, robots meta incl. per-bot names, TDMRep, ``Content-Usage``) are returned
separately; they are never mixed with licences.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from curate.licenses.spdx import license_for_url
from curate.resources import LICENSES_DIR
from curate.schema import LICENSE_TAGGER_NAME, LicenseScope, Meta

# A DOM parse is needed only when a licence can be present; copyright notices and opt-out metas are found
# by cheap scans of the raw HTML.
LICENSE_KEYS = ("license", "licence", "creativecommons", "dc.rights", "dcterms.rights", "opendatacommons")
COPYRIGHT_KEYS = ("©", "&copy;", "&#169;", "&#xa9;", "copyright")
_META_TAG = re.compile(r"<meta\b[^>]*>", re.IGNORECASE)
_ATTR = re.compile(r"""([a-zA-Z_:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""")
_TAG = re.compile(r"<[^>]*>")
LICENSE_URL_HINT = re.compile(
    r"creativecommons\.org/(?:licenses|publicdomain)/|gnu\.org/(?:licenses|copyleft)/.*fdl|opendatacommons\.org/"
    r"licenses/|open-government-licence|licence-ouverte",
    re.IGNORECASE,
)
COPYRIGHT = re.compile(
    r"(?:©|copyright)\s*(?:©\s*)?(?P<years>(?:19|20)\d{2}(?:\s*[-–]\s*(?:19|20)?\d{2,4})?)?[\s,]*"
    r"(?P<holder>[^.|\n<>]{0,80})",
    re.IGNORECASE,
)
MEDIA_TYPES = {"imageobject", "videoobject", "audioobject", "mediaobject", "photograph"}
LICENSE_META_NAMES = {"license", "dc.rights", "dcterms.license", "dc.license", "dcterms.rights", "og:license"}
AI_DIRECTIVES = {"noai", "noimageai", "noml"}
IMAGE_ONLY_DIRECTIVES = {"noimageai"}  # reserves images, not the text
_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
NON_AGENT_PREFIXES = {"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"}
SNIPPET = 240

# Signal kinds, strongest first; the rank decides the page verdict when signals agree.
KIND_RANK = {"rel-license-link": 0, "meta": 1, "json-ld": 2, "rel-license-a": 3, "cc-badge": 4, "cc-link": 5}


@dataclass
class Evidence:
    """One licence or copyright signal."""

    kind: str
    raw_value: str
    spdx_id: str | None
    location: str
    scope: str
    snippet: str


@dataclass
class OptOut:
    """One opt-out signal; ``agent`` is None when it applies to every crawler; ``applies_to`` is ``text`` (the
    page's text may not be used) or ``images`` (a reservation for images only, e.g. ``noimageai``)."""

    kind: str
    raw_value: str
    agent: str | None
    applies_to: str = "text"


@dataclass
class Verdict:
    """What the page's licence signals add up to."""

    spdx_id: str | None = None
    scope: str | None = None
    confidence: float | None = None
    conflict: bool = False
    license_url: str | None = None
    evidence: list[Evidence] = field(default_factory=list)
    optouts: list[OptOut] = field(default_factory=list)
    attribution: dict[str, str] = field(default_factory=dict)  # title, author, site_name when the page states them


@functools.cache
def ai_agent_names() -> tuple[str, ...]:
    """Crawler names (robots.txt product tokens) from the ai.robots.txt list shipped in ``licenses/``."""

    data = json.loads((LICENSES_DIR / "ai-robots-txt" / "robots.json").read_text(encoding="utf-8"))
    return tuple(sorted(data))


@functools.cache
def ai_agents() -> frozenset[str]:
    """The same names lower-cased, for case-insensitive matching."""
    return frozenset(k.lower() for k in ai_agent_names())


def _location(el: Any) -> str:
    """head | footer | figure | main | body, from the element's ancestors."""
    node = el
    while node is not None:
        tag = node.tag if isinstance(node.tag, str) else ""
        tag = tag.lower()
        if tag == "head":
            return "head"
        if tag in ("figure", "figcaption", "picture"):
            return "figure"
        attrs = f"{node.get('class', '')} {node.get('id', '')}".lower()
        if tag == "footer" or "footer" in attrs:
            return "footer"
        if any(w in attrs for w in ("credit", "caption", "wp-caption", "image-license", "photo")):
            return "figure"
        if tag in ("main", "article"):
            return "main"
        node = node.getparent()
    return "body"


def _snippet(el: Any) -> str:
    from lxml import etree

    try:
        text = str(etree.tostring(el, encoding="unicode", with_tail=False))
    except (ValueError, TypeError):
        text = ""
    from itertools import islice

    parent = el.getparent()
    context = " ".join("".join(islice(parent.itertext(), 40)).split()) if parent is not None else ""
    return (text[:SNIPPET] + (" | " + context[:SNIPPET] if context else ""))[: 2 * SNIPPET]


def _rel(el: Any) -> set[str]:
    return {r.lower() for r in (el.get("rel") or "").split()}


def _jsonld_licenses(obj: Any, parent_type: str = "") -> Iterator[tuple[str, str]]:
    """(licence value, @type of its owner) for every ``license`` key in a JSON-LD tree."""
    if isinstance(obj, list):
        for item in obj:
            yield from _jsonld_licenses(item, parent_type)
    elif isinstance(obj, dict):
        t = obj.get("@type", parent_type)
        t = " ".join(t) if isinstance(t, list) else str(t)
        lic = obj.get("license")
        values = lic if isinstance(lic, list) else [lic]
        for v in values:
            url = v.get("@id") or v.get("url") if isinstance(v, dict) else v
            if isinstance(url, str) and url.strip():
                yield url.strip(), t
        for k, v in obj.items():
            if k != "license":
                yield from _jsonld_licenses(v, t)


def _scope_for(location: str, kind: str) -> str:
    if location == "figure":
        return LicenseScope.MEDIA.value
    if kind in ("rel-license-link", "meta", "json-ld", "rel-license-a"):
        return LicenseScope.PAGE.value
    return LicenseScope.UNKNOWN.value


def tag_html(html: str, headers: dict[str, str] | None = None) -> Verdict:
    """All licence, copyright and opt-out signals of a page, and the page verdict.

    Never raises on bad HTML: an unparseable page yields the header and raw-scan signals only. Attribution
    fields are read when the page has licence signals (that is when an attribution is owed).
    """
    verdict = Verdict()
    verdict.optouts.extend(optouts_from_headers(headers or {}))
    low = html.lower()  # once: every scan below is a plain substring search on it
    end_head = low.find("</head>")
    head = html[: end_head + 7] if end_head != -1 else html[:65536]
    if "<!--" in head:  # a commented-out meta is not a signal
        head = _COMMENT.sub("", head)
    meta_attrs = [_attrs(m.group(0)) for m in _META_TAG.finditer(head)] if "<meta" in low else []
    for a in meta_attrs:
        name = (a.get("name") or a.get("property") or "").strip().lower()
        verdict.optouts.extend(_optouts_from_meta(name, (a.get("content") or "").strip()))
    verdict.evidence.extend(_copyright_notices(html, low, meta_attrs))
    if not any(k in low for k in LICENSE_KEYS):
        return verdict
    import lxml.html
    from lxml import etree

    try:
        tree = lxml.html.document_fromstring(html.encode("utf-8", "replace"))
    except (etree.ParserError, ValueError):
        return verdict
    ev = verdict.evidence
    seen: set[tuple[str, str, str]] = set()

    def add(kind: str, value: str, el: Any, scope: str | None = None) -> None:
        loc = _location(el)
        lic = license_for_url(value)
        key = (kind, value, loc)
        if key in seen:
            return
        seen.add(key)
        ev.append(
            Evidence(
                kind, value[:1000], lic.spdx_id if lic else None, loc, scope or _scope_for(loc, kind), _snippet(el)
            )
        )

    for el in tree.iter("link", "a", "area"):
        href = el.get("href")
        if not href:
            continue
        if "license" in _rel(el):
            add("rel-license-link" if el.tag == "link" else "rel-license-a", href, el)
        elif el.tag == "a" and LICENSE_URL_HINT.search(href):
            add("cc-link", href, el)
    for el in tree.iter("img"):
        src = el.get("src") or ""
        if re.search(r"(?:i\.creativecommons\.org|licensebuttons\.net)/(?:l|p)/", src, re.IGNORECASE):
            path = re.sub(r"^.*?/(l|p)/", "", src)
            code = path.rsplit("/", 1)[0]
            url = (
                "creativecommons.org/licenses/" if "/l/" in src.lower() else "creativecommons.org/publicdomain/"
            ) + code
            add("cc-badge", url, el)
    for el in tree.iter("meta"):
        name = (el.get("name") or el.get("property") or "").strip().lower()
        content = (el.get("content") or "").strip()
        if content and name in LICENSE_META_NAMES:
            if license_for_url(content) or LICENSE_URL_HINT.search(content):
                add("meta", content, el)
            else:
                add("meta-rights", content, el, scope=LicenseScope.UNKNOWN.value)
    for el in tree.iter("script"):
        if (el.get("type") or "").strip().lower() != "application/ld+json" or not el.text:
            continue
        try:
            data = json.loads(el.text)
        except ValueError:
            continue
        for value, owner in _jsonld_licenses(data):
            media = any(t in owner.lower().split() for t in MEDIA_TYPES)
            add("json-ld", value, el, scope=LicenseScope.MEDIA.value if media else LicenseScope.PAGE.value)
    _decide(verdict)
    if verdict.spdx_id:
        verdict.attribution = attribution_fields(tree)
    return verdict


def wat_license_evidence(wat: dict[str, Any]) -> list[Evidence]:
    """Licence evidence from a Common Crawl WAT record's HTML metadata (links with ``rel=license``, licence URLs)."""
    html_meta = (
        wat.get("Envelope", {}).get("Payload-Metadata", {}).get("HTTP-Response-Metadata", {}).get("HTML-Metadata", {})
    )
    links = list(html_meta.get("Links", []) or []) + list((html_meta.get("Head", {}) or {}).get("Link", []) or [])
    out: list[Evidence] = []
    seen: set[tuple[str, str]] = set()
    for link in links:
        if not isinstance(link, dict):
            continue
        url, rel, where = (
            str(link.get("url") or link.get("href") or ""),
            str(link.get("rel") or "").lower(),
            str(link.get("path") or ""),
        )
        if not url:
            continue
        tag = where.split("@", 1)[0].upper()
        if "license" in rel.split():
            kind = "rel-license-link" if tag == "LINK" else "rel-license-a"
        elif LICENSE_URL_HINT.search(url):
            kind = "cc-link"
        else:
            continue
        if (kind, url) in seen:
            continue
        seen.add((kind, url))
        lic = license_for_url(url)
        location = "head" if tag == "LINK" else "body"
        scope = LicenseScope.PAGE.value if kind.startswith("rel-license") else LicenseScope.UNKNOWN.value
        out.append(
            Evidence(
                f"wat-{kind}",
                url[:1000],
                lic.spdx_id if lic else None,
                location,
                scope,
                f"WAT {where}: {url}"[:SNIPPET],
            )
        )
    return out


def _attrs(tag: str) -> dict[str, str]:
    import html as html_lib

    return {
        m.group(1).lower(): html_lib.unescape(m.group(2) or m.group(3) or m.group(4) or "") for m in _ATTR.finditer(tag)
    }


def _in_block(low: str, pos: int, tag: str) -> bool:
    """Whether ``pos`` lies inside a ``<tag>`` element of the lower-cased page (nearest open/close before it)."""
    return low.rfind(f"<{tag}", 0, pos) > low.rfind(f"</{tag}", 0, pos)


def _copyright_notices(html: str, low: str, meta_attrs: list[dict[str, str]]) -> list[Evidence]:
    """Copyright notices from a scan of the raw HTML (outside scripts and styles) and the copyright meta."""
    import html as html_lib

    out: list[Evidence] = []
    for a in meta_attrs:
        if (a.get("name") or "").lower() == "copyright" and a.get("content"):
            out.append(
                Evidence(
                    "copyright", a["content"][:200], None, "head", LicenseScope.UNKNOWN.value, a["content"][:SNIPPET]
                )
            )
    seen: set[str] = set()
    positions: list[int] = []
    for key in COPYRIGHT_KEYS:
        at = low.find(key)
        while at != -1 and len(positions) < 200:
            positions.append(at)
            at = low.find(key, at + 1)
    for pos in sorted(positions):
        if _in_block(low, pos, "script") or _in_block(low, pos, "style"):
            continue
        window = html[max(0, pos - 80) : pos + 400]
        text = " ".join(
            html_lib.unescape(_TAG.sub(" ", window[window.rfind(">", 0, pos - max(0, pos - 80)) + 1 :])).split()
        )
        found = COPYRIGHT.search(text)
        if not found or not (found.group("years") or found.group("holder").strip()):
            continue
        value = " ".join(found.group(0).split())[:200]
        if value in seen:
            continue
        seen.add(value)
        loc = "footer" if _in_block(low, pos, "footer") or low.find("footer", max(0, pos - 2000), pos) != -1 else "body"
        out.append(Evidence("copyright", value, None, loc, LicenseScope.UNKNOWN.value, text[:SNIPPET]))
        if len(seen) >= 3:
            break
    return out


def _first(values: Iterable[Any]) -> str | None:
    for v in values:
        if isinstance(v, str) and " ".join(v.split()):
            return " ".join(v.split())[:300]
    return None


def _jsonld_objects(tree: Any) -> Iterator[dict[str, Any]]:
    for el in tree.iter("script"):
        if (el.get("type") or "").strip().lower() == "application/ld+json" and el.text:
            try:
                data = json.loads(el.text)
            except ValueError:
                continue
            stack = [data]
            while stack:
                obj = stack.pop()
                if isinstance(obj, list):
                    stack.extend(obj)
                elif isinstance(obj, dict):
                    yield obj
                    stack.extend(v for k, v in obj.items() if k == "@graph")


def _names(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        yield from _names(value.get("name"))
    elif isinstance(value, list):
        for v in value:
            yield from _names(v)


def attribution_fields(tree: Any) -> dict[str, str]:
    """Title, author and site name as the page states them (ccREL, meta, JSON-LD, byline), for TASL attribution."""
    metas: dict[str, str] = {}
    for el in tree.iter("meta"):
        key = (el.get("name") or el.get("property") or "").strip().lower()
        if key and el.get("content") and key not in metas:
            metas[key] = el.get("content")
    objects = [o for o in _jsonld_objects(tree) if "license" in o or "headline" in o or "author" in o]
    title = _first(
        [
            *(el.text_content() for el in tree.xpath('//*[@property="dct:title" or @property="dc:title"]')),
            metas.get("og:title"),
            metas.get("dc.title"),
            *(o.get("headline") for o in objects),
            *(el.text_content() for el in tree.iter("title")),
        ]
    )
    author = _first(
        [
            *(el.text_content() for el in tree.xpath('//*[@property="cc:attributionName"]')),
            metas.get("author"),
            metas.get("dc.creator"),
            metas.get("article:author"),
            *(n for o in objects for n in _names(o.get("author") or o.get("creator"))),
            *(
                el.text_content()
                for el in tree.xpath(
                    '//*[@rel="author" or contains(concat(" ", normalize-space(@class), " "), " byline ")]'
                )
            ),
        ]
    )
    site = _first([metas.get("og:site_name"), metas.get("application-name")])
    return {k: v for k, v in ((Meta.TITLE, title), (Meta.AUTHOR, author), (Meta.SITE_NAME, site)) if v}


def _decide(v: Verdict) -> None:
    licenses = [e for e in v.evidence if e.spdx_id and e.kind in KIND_RANK]
    if not licenses:
        return
    page = [e for e in licenses if e.scope == LicenseScope.PAGE.value]
    media = [e for e in licenses if e.scope == LicenseScope.MEDIA.value]
    if page:
        page.sort(key=lambda e: KIND_RANK[e.kind])
        best = page[0]
        ids = {e.spdx_id for e in page}
        v.spdx_id = best.spdx_id
        v.license_url = best.raw_value
        if len(ids) > 1:
            v.conflict = True
            v.scope = LicenseScope.UNKNOWN.value
            v.confidence = 0.3
        else:
            v.scope = (
                LicenseScope.PARTIAL.value if media and {e.spdx_id for e in media} - ids else LicenseScope.PAGE.value
            )
            v.confidence = {0: 0.95, 1: 0.9, 2: 0.85, 3: 0.8}.get(KIND_RANK[best.kind], 0.5)
        return
    if media:
        v.spdx_id = media[0].spdx_id
        v.license_url = media[0].raw_value
        v.scope = LicenseScope.MEDIA.value
        v.confidence = 0.6
        v.conflict = len({e.spdx_id for e in media}) > 1
        return
    weak = sorted(licenses, key=lambda e: KIND_RANK[e.kind])
    v.spdx_id = weak[0].spdx_id
    v.license_url = weak[0].raw_value
    v.scope = LicenseScope.UNKNOWN.value
    v.confidence = 0.3
    v.conflict = len({e.spdx_id for e in weak}) > 1


def _directives(value: str) -> Iterable[tuple[str | None, str]]:
    """(agent as written or None, lower-cased directive) pairs of an X-Robots-Tag / robots meta value.

    Google's grammar: comma-separated directives, each optionally prefixed ``agent:``; an agent prefix holds for
    the directives after it until the next one (``googlebot: noindex, nofollow``); ``unavailable_after: DATE``
    and the ``max-…`` directives take values, not agents."""
    agent: str | None = None
    for raw in value.split(","):
        part = raw.strip()
        head, sep, rest = part.partition(":")
        if sep and head.strip().lower() not in NON_AGENT_PREFIXES and " " not in head.strip():
            agent, part = head.strip(), rest.strip()
        for token in part.split():
            yield agent, token.lower()


def _ai_optouts(kind: str, value: str, *, named_agent: str | None = None) -> list[OptOut]:
    """The opt-outs in one directive list: per agent (None: every crawler), a text opt-out where a directive
    reserves text (``noai``, ``noml``, or ``noindex``/``none`` for an AI crawler), else an image-only one."""
    found: dict[str | None, str] = {}
    for agent, d in _directives(value):
        who = agent or named_agent
        ai = who is not None and who.lower() in ai_agents()
        if who is not None and who != "*" and not ai and d not in AI_DIRECTIVES:
            continue  # a search-engine directive for a crawler that is not an AI crawler
        if d in AI_DIRECTIVES - IMAGE_ONLY_DIRECTIVES or (ai and d in ("noindex", "none")):
            found[who] = "text"
        elif d in IMAGE_ONLY_DIRECTIVES:
            found.setdefault(who, "images")
    return [OptOut(kind, value, None if who in (None, "*") else who, scope) for who, scope in found.items()]


def optouts_from_headers(headers: dict[str, str]) -> list[OptOut]:
    """Opt-out signals in HTTP headers. Names are case-insensitive, and a header sent on several lines is one
    comma-separated value (RFC 9110 5.3): the reader combines them."""
    out: list[OptOut] = []
    h = {k.lower(): v for k, v in headers.items() if v}
    if "x-robots-tag" in h:
        out += _ai_optouts("x-robots-tag", h["x-robots-tag"])
    if h.get("tdm-reservation", "").strip() == "1":
        out.append(OptOut("tdm-reservation", h["tdm-reservation"], None))
    if "content-usage" in h and re.search(r"(?:train-ai|ai-use|train-genai)\s*=\s*n", h["content-usage"], re.I):
        out.append(OptOut("content-usage", h["content-usage"], None))
    return out


def _optouts_from_meta(name: str, content: str) -> list[OptOut]:
    if name == "tdm-reservation":
        return [OptOut("tdm-reservation", content, None)] if content.strip() == "1" else []
    if name == "robots":
        return _ai_optouts("robots-meta", content)
    if name in ai_agents():
        return _ai_optouts("robots-meta", content, named_agent=name)
    return []


__all__ = ["LICENSE_TAGGER_NAME", "Evidence", "OptOut", "Verdict", "optouts_from_headers", "tag_html"]
