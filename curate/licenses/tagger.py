"""Licence, copyright and opt-out evidence from raw HTML and HTTP headers.

``tag_html(html)`` parses the page once (lxml) and returns every signal it found with its DOM location and
a snippet, plus a page verdict: the SPDX id, its scope (``page``, ``media``, ``partial``, ``unknown``), a
confidence, and whether the signals conflict. A Creative Commons link without ``rel=license`` is recorded as
evidence but never makes a page verdict on its own: such links often cover an image or a part of the page. What
makes it one is the sentence around it: a licence named in words (with or without a link, in the deed languages,
see :mod:`curate.licenses.statements`) is read with its clause, and a footer notice or a clause that names the
page, its text or the site ("This work is licensed under …", "Los artículos de este blog están disponibles bajo …")
is a ``statement`` for the page, while image, map, audio, theme and plugin credits are media. Licence metas,
RDFa (``property="dc:rights"``, ``rel="cc:license"``) and microdata (``itemprop="license"``) may name the
licence in words too.

Verdict: one page licence with media exceptions is ``page`` (the media licences stay evidence, scope ``media``);
a page licence next to a licence for a part of the text is ``partial``; page signals that disagree are a
conflict, shown as scope ``unknown`` with the MOST restrictive candidate as the SPDX id (never the more
permissive one), every candidate kept as evidence.
Opt-out signals (``X-Robots-Tag``, robots meta incl. per-bot names, TDMRep, ``Content-Usage``) are returned
separately; they are never mixed with licences.
JSON-LD is the one place page markup can name a code point that is not a character: a JSON escape of a lone
surrogate (``"\\ud800"``). Its strings are made valid Unicode as it is parsed (U+FFFD, see
:func:`curate.read.charset.valid_unicode`) and ``Verdict.replaced`` counts them, so the evidence, licence URL and
attribution taken from it can be written like any other.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from curate.licenses.spdx import License, license_by_spdx, license_for_url, licenses_in_text
from curate.licenses.statements import classify
from curate.read.charset import valid_unicode
from curate.resources import LICENSES_DIR
from curate.schema import LICENSE_TAGGER_NAME, LicenseScope, Meta

# A DOM parse is needed only when a licence can be present; copyright notices and opt-out metas are found
# by cheap scans of the raw HTML.
# Creative Commons named in scripts whose pages often spell it out in their own words (ja, zh-Hans, zh-Hant, ko)
CC_NATIVE_NAMES = ("クリエイティブ", "知识共享", "知識共享", "創用", "크리에이티브")
LICENSE_KEYS = (
    "license",
    "licence",
    "creativecommons",
    "creative commons",
    "dc.rights",
    "dcterms.rights",
    "opendatacommons",
    "free documentation",
    "public domain mark",
    *CC_NATIVE_NAMES,
)
# "cc by", "cc0" in words; a bare substring test would also hit CSS colours (#cc0000) and class names
CC_ABBR_KEYS = ("cc by", "cc-by", "cc0", "cc zero", "cc&nbsp;by", "cc&#160;by")
COPYRIGHT_KEYS = ("©", "&copy;", "&#169;", "&#xa9;", "copyright")
_META_TAG = re.compile(r"<meta\b[^>]*>", re.IGNORECASE)
_ATTR = re.compile(r"""([a-zA-Z_:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""")
_TAG = re.compile(r"<[^>]*>")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # a JSON escape of a surrogate (paired or lone)
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
MEDIA_TYPES = {
    "imageobject",
    "videoobject",
    "audioobject",
    "mediaobject",
    "photograph",
    "musicrecording",
    "softwareapplication",
    "softwaresourcecode",
    "webapplication",
    "mobileapplication",
    "3dmodel",
}
LICENSE_META_NAMES = {
    "license",
    "dc.rights",
    "dcterms.license",
    "dc.license",
    "dcterms.rights",
    "og:license",
    "rights",
    "dc:rights",
    "dcterms:rights",
    "dct:rights",
    "dc:license",
    "dcterms:license",
    "dct:license",
    "cc:license",
    "xhv:license",
}
# RDFa / microdata attribute values (property, rel, itemprop) that name the page's licence or rights
RDF_LICENSE_TERMS = LICENSE_META_NAMES | {"schema:license"}
# Text nodes that may name a licence in words
_WORD_KEYS = (
    "creative commons",
    "cc by",
    "cc-by",
    "cc0",
    "cc zero",
    "free documentation licen",
    "public domain mark",
    *CC_NATIVE_NAMES,
)
# the same keys as the raw (lower-cased) HTML may spell them
_RAW_SPELLINGS = {
    "cc by": ("cc by", "cc&nbsp;by", "cc&#160;by"),
    "creative commons": ("creative commons", "creative&nbsp;commons"),
}
WORD_SPELLINGS = tuple(sp for k in _WORD_KEYS for sp in _RAW_SPELLINGS.get(k, (k,)))
RDF_GATE = (":licen", ":rights", 'itemprop="licen', "itemprop='licen", "itemprop=licen", 'property="licen')
RDF_XPATH = "//*[not(self::meta)][@property or @itemprop or contains(@rel, ':')]"
INLINE = {
    "a",
    "span",
    "em",
    "strong",
    "b",
    "i",
    "u",
    "small",
    "abbr",
    "cite",
    "code",
    "font",
    "sup",
    "sub",
    "time",
    "label",
    "bdi",
    "mark",
    "q",
    "s",
    "img",
    "br",
    "wbr",
}
FOOTER_ATTRS = ("footer", "colophon", "site-info", "copyright", "license", "licence", "legal", "impressum")
MAX_STATEMENT_BLOCKS = 24
AI_DIRECTIVES = {"noai", "noimageai", "noml"}
IMAGE_ONLY_DIRECTIVES = {"noimageai"}  # reserves images, not the text
_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
NON_AGENT_PREFIXES = {"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"}
SNIPPET = 240

# Signal kinds, strongest first; the rank decides the page verdict when signals agree.
KIND_RANK = {
    "rel-license-link": 0,
    "meta": 1,
    "json-ld": 2,
    "rdfa": 3,
    "rel-license-a": 4,
    "statement": 5,
    "cc-badge": 6,
    "cc-link": 7,
}
KIND_CONFIDENCE = {0: 0.95, 1: 0.9, 2: 0.85, 3: 0.85, 4: 0.8, 5: 0.75}


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
    replaced: int = 0  # lone surrogates the page's JSON-LD escapes (``"\\ud800"``), replaced by U+FFFD


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


def _valid_json(obj: Any) -> tuple[Any, int]:
    """A parsed JSON value with every string (keys too) made valid Unicode, and how many code points were replaced."""
    if isinstance(obj, str):
        return valid_unicode(obj)
    n = 0
    if isinstance(obj, list):
        items = []
        for item in obj:
            valid, k = _valid_json(item)
            items.append(valid)
            n += k
        return items, n
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            name, k = valid_unicode(key)
            out[name], m = _valid_json(value)
            n += k + m
        return out, n
    return obj, 0


def _load_jsonld(el: Any) -> tuple[Any, int] | None:
    """The JSON of a ``<script type="application/ld+json">`` element (None when it is not one or not JSON), its
    strings made valid Unicode (a JSON escape can name a lone surrogate), and how many code points were replaced."""
    if (el.get("type") or "").strip().lower() != "application/ld+json" or not el.text:
        return None
    try:
        data = json.loads(el.text)
    except ValueError:
        return None
    return _valid_json(data) if _SURROGATE_ESCAPE.search(el.text) else (data, 0)


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
    if not (any(k in low for k in LICENSE_KEYS) or _word_spellings(html, low, CC_ABBR_KEYS)):
        return verdict
    import lxml.html
    from lxml import etree

    try:
        tree = lxml.html.document_fromstring(html.encode("utf-8", "replace"))
    except (etree.ParserError, ValueError):
        return verdict
    ev = verdict.evidence
    seen: set[tuple[str, str, str]] = set()

    def add(
        kind: str,
        value: str,
        el: Any,
        *,
        scope: str | None = None,
        spdx: str | None = None,
        location: str | None = None,
        snippet: str | None = None,
    ) -> None:
        loc = location or _location(el)
        if spdx is None:
            lic = license_for_url(value)
            spdx = lic.spdx_id if lic else None
        key = (kind, value, loc)
        if key in seen:
            return
        seen.add(key)
        ev.append(Evidence(kind, value[:1000], spdx, loc, scope or _scope_for(loc, kind), snippet or _snippet(el)))

    cc_links: list[Any] = []
    for el in tree.iter("link", "a", "area"):
        href = el.get("href")
        if not href:
            continue
        if "license" in _rel(el):
            add("rel-license-link" if el.tag == "link" else "rel-license-a", href, el)
        elif el.tag == "a" and _licence_href(href):
            cc_links.append(el)
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
        if content and (name in LICENSE_META_NAMES or name == "copyright"):
            if license_for_url(content) or LICENSE_URL_HINT.search(content):
                add("meta", content, el)
                continue
            named = _named(content)
            if named:  # a licence named in words: the meta declares the page's rights, so unknown means page
                lic, scope = named
                add("meta", content, el, scope=_declared(scope), spdx=lic.spdx_id)
            elif name != "copyright":
                add("meta-rights", content, el, scope=LicenseScope.UNKNOWN.value)
    for el in tree.iter("script"):
        loaded = _load_jsonld(el)
        if loaded is None:
            continue
        data, replaced = loaded
        verdict.replaced += replaced
        for value, owner in _jsonld_licenses(data):
            media = any(t in owner.lower().split() for t in MEDIA_TYPES)
            add("json-ld", value, el, scope=LicenseScope.MEDIA.value if media else LicenseScope.PAGE.value)
    if any(k in low for k in RDF_GATE):
        _rdf_licenses(tree, add)
    consumed = _statements(tree, cc_links, add, _word_spellings(html, low))
    for el in cc_links:
        if el not in consumed:
            add("cc-link", el.get("href"), el)
    _decide(verdict)
    if verdict.spdx_id:
        verdict.attribution = attribution_fields(tree)
    return verdict


def _licence_href(href: str) -> bool:
    """Whether a link points to a licence this tagger knows (a cheap substring test before the regex)."""
    h = href.lower()
    hint = "commons.org" in h or "fdl" in h or "licen" in h
    return hint and bool(LICENSE_URL_HINT.search(h))


def _named(text: str) -> tuple[License, str] | None:
    """The one licence a short text names in words (all its names agree) and the scope its wording gives."""
    low = " ".join(text.split()).lower()
    found = [t for t in licenses_in_text(low) if t.license]
    if not found or len({t.license.spdx_id for t in found if t.license}) > 1 or found[0].license is None:
        return None
    return found[0].license, classify(low, found[0].start, found[0].end, footer=True)


def _declared(scope: str) -> str:
    """Scope of a licence in an element that declares the page's rights (meta, RDFa): page unless its wording
    says media or part."""
    return LicenseScope.PAGE.value if scope == LicenseScope.UNKNOWN.value else scope


def _owner_is_media(el: Any) -> bool:
    """Whether a microdata/RDFa licence belongs to a media object (an ``itemtype`` or ``typeof`` of a media or
    software type, or an ``about`` naming an image) rather than to the page."""
    node = el
    first = True
    while node is not None and isinstance(node.tag, str):
        about = (node.get("about") or "").lower().split("?", 1)[0]
        if about.endswith((".jpg", ".jpeg", ".png", ".gif", ".svg", ".webp", ".mp3", ".mp4", ".ogg", ".webm")):
            return True
        kind = node.get("itemtype") or node.get("typeof")
        if kind and not (first and node.get("itemprop")):
            return any(t.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1].lower() in MEDIA_TYPES for t in kind.split())
        first = False
        node = node.getparent()
    return False


def _rdf_licenses(tree: Any, add: Any) -> None:
    """RDFa (``property``/``rel`` ``cc:license``, ``dc:rights``, …) and microdata (``itemprop="license"``)."""
    for el in tree.xpath(RDF_XPATH):
        terms = {t.lower() for a in ("property", "itemprop") for t in (el.get(a) or "").split()}
        terms |= {t.lower() for t in (el.get("rel") or "").split() if ":" in t}
        if not terms & RDF_LICENSE_TERMS:
            continue
        media = _location(el) == "figure" or _owner_is_media(el)
        value = (el.get("href") or el.get("resource") or el.get("content") or el.get("src") or "").strip()
        if value and license_for_url(value):
            add("rdfa", value, el, scope=LicenseScope.MEDIA.value if media else LicenseScope.PAGE.value)
            continue
        text = value or " ".join(el.text_content().split())[:2000]
        named = _named(text) if text else None
        if named:
            lic, scope = named
            scope = LicenseScope.MEDIA.value if media else _declared(scope)
            add("rdfa", text, el, scope=scope, spdx=lic.spdx_id)


def _block(el: Any) -> Any:
    """The nearest block-level element around ``el`` (a paragraph, list item, footer div…); a very short block
    (just the licence link) is widened to its parent so the words around it count."""
    node = el
    while node.getparent() is not None and isinstance(node.tag, str) and node.tag.lower() in INLINE:
        node = node.getparent()
    parent = node.getparent()
    short = parent is not None and parent.tag not in ("body", "html") and len(node.text_content()) < 40
    if short and len(parent.text_content()) <= 600:
        node = parent
    return node


def _footerish(el: Any) -> bool:
    """Whether ``el`` sits in the page footer or in a block marked as the licence or copyright notice."""
    node = el
    while node is not None and isinstance(node.tag, str) and node.tag not in ("body", "html"):
        if node.tag == "footer" or (node.get("role") or "").lower() == "contentinfo":
            return True
        attrs = f"{node.get('class', '')} {node.get('id', '')}".lower()
        if any(w in attrs for w in FOOTER_ATTRS):
            return True
        node = node.getparent()
    return False


SKIP_TEXT_PARENTS = {"script", "style", "noscript", "title", "textarea", "template", "head", "option"}


@functools.lru_cache(maxsize=256)
def _text_xpath(spellings: tuple[str, ...]) -> Any:
    """A compiled XPath for the text nodes that contain one of ``spellings`` (exactly as the page writes them)."""
    from lxml import etree

    tests = " or ".join(f"contains(., '{v}')" for v in spellings if "'" not in v)
    return etree.XPath(f"//text()[{tests}]")


def _word_spellings(html: str, low: str, keys: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The licence words of the raw page (``keys``: all of them) as it spells them ("Creative Commons", "CC BY",
    "CC&nbsp;BY" as a no-break space), each as a whole word: the text-node search then tests only those, which
    keeps it one cheap pass. Plain substring searches, no regex over the whole page."""
    out: set[str] = set()
    same = len(html) == len(low)  # lower() kept every offset (it does, but for a few rare letters)
    for sp in keys or WORD_SPELLINGS:
        at, n = low.find(sp), 0
        while at != -1 and n < 8:
            before = low[at - 1] if at else " "
            after = low[at + len(sp)] if at + len(sp) < len(low) else " "
            ascii_key = sp[0].isascii()  # CJK words have no spaces around them
            glued = (before.isascii() and (before.isalnum() or before in "#-_")) or (
                after.isascii() and after.isalnum()
            )
            if not ascii_key or not glued:
                written = html[at : at + len(sp)] if same else sp
                out.add(written.replace("&nbsp;", "\u00a0").replace("&#160;", "\u00a0"))
                if not same:
                    out |= {sp.upper(), sp.title(), sp.capitalize()}
                n += 1
            at = low.find(sp, at + len(sp))
    return tuple(sorted(out))


def _statements(tree: Any, cc_links: list[Any], add: Any, spellings: tuple[str, ...]) -> set[Any]:
    """Licences named in words or by a plain link, read with the sentence around them; returns the links used.

    Candidate blocks come from text nodes that may name a licence (one XPath over the tree) and from the
    licence links; each block's text is scanned for licence names, each name is classified by its clause
    (:func:`curate.licenses.statements.classify`), and a link in the block pins the exact licence where the words
    leave it open. Statements in the running text that name three or more different licences are a discussion
    of licences: they count for nothing."""
    starts: list[Any] = []
    for t in _text_xpath(spellings)(tree) if spellings else ():
        parent = t.getparent()
        if parent is not None and getattr(t, "is_tail", False):
            parent = parent.getparent()
        if parent is None or not isinstance(parent.tag, str) or parent.tag.lower() in SKIP_TEXT_PARENTS:
            continue
        starts.append(parent)
    starts += cc_links
    blocks: list[Any] = []
    for el in starts:
        b = _block(el)
        if b not in blocks:
            blocks.append(b)
    found: list[tuple[str, str, Any, str, str, str, Any]] = []  # kind, value, block, scope, spdx, location, link
    for block in blocks[:MAX_STATEMENT_BLOCKS]:
        text = " ".join(block.text_content().split())[:100_000]
        low = text.lower()
        footer = _footerish(block)
        loc = _location(block)
        if footer and loc in ("main", "body"):
            loc = "footer"
        links: list[tuple[Any, str, License | None, str]] = []
        for a in block.iter("a"):
            href = a.get("href") or ""
            if a in cc_links or (_licence_href(href) and "license" not in _rel(a)):
                links.append((a, href, license_for_url(href), " ".join(a.text_content().split()).lower()))
        used_links: set[Any] = set()
        for m in licenses_in_text(low):
            link = next((x for x in links if x[3] and x[3] in low[max(0, m.start - 5) : m.end + 5]), None)
            if link is None:
                link = next((x for x in links if x[3] and low[m.start : m.end] in x[3]), None)
            lic = link[2] if link and link[2] else m.license
            if lic is None:
                continue
            scope = LicenseScope.MEDIA.value if loc == "figure" else classify(low, m.start, m.end, footer=footer)
            value = link[1] if link and link[2] else text[m.start : m.end]
            found.append(("statement", value, block, scope, lic.spdx_id, loc, link[0] if link else None))
            if link:
                used_links.add(link[0])
        for a, href, lic, atext in links:
            if a in used_links or lic is None or not atext:
                continue
            at = low.find(atext)
            if at < 0:
                continue
            scope = LicenseScope.MEDIA.value if loc == "figure" else classify(low, at, at + len(atext), footer=footer)
            found.append(("statement", href, block, scope, lic.spdx_id, loc, a))
    running = {f[4] for f in found if f[5] not in ("footer", "figure")}
    consumed: set[Any] = set()
    for kind, value, block, said, spdx, loc, link in found:
        discussion = len(running) >= 3 and loc not in ("footer", "figure") and said != LicenseScope.MEDIA.value
        scope = LicenseScope.UNKNOWN.value if discussion else said
        if scope == LicenseScope.UNKNOWN.value and link is not None:
            continue  # a bare link stays a cc-link
        add(kind, value, link if link is not None else block, scope=scope, spdx=spdx, location=loc)
        if link is not None:
            consumed.add(link)
    return consumed


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
        loaded = _load_jsonld(el)
        if loaded is not None:
            stack = [loaded[0]]
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


def _family(spdx: str) -> str:
    """CC licences compare by code and version (a jurisdiction port agrees with its generic licence)."""
    m = re.fullmatch(r"(?:LicenseRef-)?CC-([A-Z-]+?)-(\d\.\d)(?:-[A-Z]{2,3})?", spdx)
    return f"CC-{m.group(1)}-{m.group(2)}" if m else spdx


def restrictiveness(spdx: str) -> tuple[int, int, int, int, int, str]:
    """Sort key: higher is more restrictive (NC and ND first, then share-alike, attribution, non-open)."""
    lic = license_by_spdx(spdx)
    if lic is None:
        return (2, 1, 1, 1, 1, spdx)  # unknown to the table: assume the worst
    return (
        int(lic.noncommercial) + int(lic.no_derivatives),
        int(lic.no_derivatives),
        int(lic.share_alike),
        int(lic.attribution_required),
        int(not lic.open_definition),
        spdx,
    )


def page_claims(evidence: Iterable[Evidence]) -> set[str]:
    """SPDX ids of every signal that claims the page's text, or a part of it (scope page or partial)."""
    claims = (LicenseScope.PAGE.value, LicenseScope.PARTIAL.value)
    return {e.spdx_id for e in evidence if e.spdx_id and e.kind in KIND_RANK and e.scope in claims}


def _decide(v: Verdict) -> None:
    licenses = [e for e in v.evidence if e.spdx_id and e.kind in KIND_RANK]
    if not licenses:
        return
    page = [e for e in licenses if e.scope == LicenseScope.PAGE.value]
    part = [e for e in licenses if e.scope == LicenseScope.PARTIAL.value]
    media = [e for e in licenses if e.scope == LicenseScope.MEDIA.value]
    if page:
        page.sort(key=lambda e: KIND_RANK[e.kind])
        families = {_family(e.spdx_id or "") for e in page}
        if len(families) > 1:  # show the most restrictive candidate; every candidate stays evidence
            worst = max(page, key=lambda e: restrictiveness(e.spdx_id or ""))
            v.spdx_id, v.license_url = worst.spdx_id, worst.raw_value
            v.conflict = True
            v.scope = LicenseScope.UNKNOWN.value
            v.confidence = 0.3
            return
        best = page[0]
        v.spdx_id = best.spdx_id
        v.license_url = best.raw_value
        other_parts = {_family(e.spdx_id or "") for e in part} - families
        v.scope = LicenseScope.PARTIAL.value if other_parts else LicenseScope.PAGE.value
        v.confidence = KIND_CONFIDENCE.get(KIND_RANK[best.kind], 0.5)
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
    if v.conflict:  # never show the more permissive of two
        worst = max(weak, key=lambda e: restrictiveness(e.spdx_id or ""))
        v.spdx_id, v.license_url = worst.spdx_id, worst.raw_value


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


__all__ = [
    "LICENSE_TAGGER_NAME",
    "Evidence",
    "OptOut",
    "Verdict",
    "optouts_from_headers",
    "page_claims",
    "restrictiveness",
    "tag_html",
]
