"""Licence URL → SPDX mapping, from ``licenses/cc_licenses.csv``.

``license_for_url(url)`` normalises any form of a Creative Commons, GFDL, ODC, OGL or Etalab licence URL
(scheme-less, ``www.``, odd casing, ``deed.xx``/``legalcode`` suffixes, query strings, HTML-escaped) and returns
the licence with its obligation flags. CC jurisdiction ports missing from the SPDX list become
``LicenseRef-CC-<CODE>-<VER>-<JUR>`` with the flags of their code.

``licenses_in_text(text)`` finds licences named in words: abbreviations (``CC BY-SA 4.0``, ``CC0``) and the full
Creative Commons names in the languages of the CC deeds (``Creative Commons Attribution-ShareAlike 4.0
International``, ``Namensnennung - Weitergabe unter gleichen Bedingungen``, ``Reconocimiento-CompartirIgual``,
``表示 - 継承`` …), and the GNU FDL. A name without a version maps to no SPDX id (it could be any version), except
``International`` (only 4.0 is named so) and ``Unported`` (3.0).
"""

from __future__ import annotations

import csv
import functools
import html
import re
from dataclasses import dataclass

from curate.resources import LICENSES_DIR

CC_PATH = re.compile(
    r"creativecommons\.org/(?P<kind>licenses|publicdomain)/(?P<code>[a-z+-]+)"
    r"(?:/(?P<ver>\d+(?:\.\d+)?))?(?:/(?P<jur>[a-z]{2}(?:-[a-z]{2})?))?(?=/|$|\?|#|\s|\")",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class License:
    """A licence with the flags a policy or an attribution file needs."""

    spdx_id: str
    name: str
    attribution_required: bool
    share_alike: bool
    noncommercial: bool
    no_derivatives: bool
    open_definition: bool
    tagger_class: str


def _flags_for_code(code: str) -> tuple[bool, bool, bool, bool]:
    parts = set(code.split("-"))
    return "by" in parts, "sa" in parts, "nc" in parts, "nd" in parts


@functools.cache
def _table() -> dict[str, License]:
    """Normalised URL path → Licence, for every row and URL form of the CSV."""
    out: dict[str, License] = {}
    with (LICENSES_DIR / "cc_licenses.csv").open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            lic = License(
                spdx_id=row["spdx_id"],
                name=row["spdx_name"],
                attribution_required=row["attribution_required"] == "1",
                share_alike=row["share_alike"] == "1",
                noncommercial=row["noncommercial"] == "1",
                no_derivatives=row["no_derivatives"] == "1",
                open_definition=row["open_definition_conformant"] == "1",
                tagger_class=row["tagger_class"],
            )
            for form in row["cc_url_path"].split("|"):
                key = form.strip().lower().rstrip("/")
                if key.startswith(("licenses/", "publicdomain/")):
                    key = "creativecommons.org/" + key
                out.setdefault(key, lic)
    return out


def license_by_spdx(spdx_id: str) -> License | None:
    """The licence with this SPDX id (``LicenseRef-CC-<CODE>-<VER>-<JUR>`` ports included), or None."""
    if spdx_id.startswith("LicenseRef-CC-"):
        parts = spdx_id.removeprefix("LicenseRef-CC-").rsplit("-", 2)
        if len(parts) != 3:
            return None
        code, ver, jur = parts
        return license_for_url(f"creativecommons.org/licenses/{code.lower()}/{ver}/{jur.lower()}/")
    for lic in _table().values():
        if lic.spdx_id == spdx_id:
            return lic
    return None


def _clean(url: str) -> str:
    u = html.unescape(url).strip().strip("\"'").lower()
    u = re.sub(r"^(?:https?:)?//", "", u)
    u = re.sub(r"^www\.", "", u)
    return u.split("#", 1)[0].split("?", 1)[0]


def license_for_url(url: str) -> License | None:
    """The licence a URL names, or None when it names none this table knows."""
    u = _clean(url)
    table = _table()
    m = CC_PATH.search(u)
    if m:
        kind, code = m.group("kind"), m.group("code")
        ver, jur = m.group("ver"), m.group("jur")
        if kind == "publicdomain" and code in ("zero", "mark"):
            return table.get(f"creativecommons.org/publicdomain/{code}/{ver or '1.0'}")
        if kind == "licenses" and code == "publicdomain":
            return table.get("creativecommons.org/licenses/publicdomain")
        if not ver:
            return None
        if jur in ("deed", "legalcode"):
            jur = None
        base = f"creativecommons.org/licenses/{code}/{ver}"
        if jur and f"{base}/{jur}" in table:
            return table[f"{base}/{jur}"]
        generic = table.get(base)
        if not jur:
            return generic
        by, sa, nc, nd = _flags_for_code(code)
        if not by and generic is None:
            return None
        return License(
            spdx_id=f"LicenseRef-CC-{code.upper()}-{ver}-{jur.upper()}",
            name=f"Creative Commons {code.upper()} {ver} {jur.upper()} (port)",
            attribution_required=by,
            share_alike=sa,
            noncommercial=nc,
            no_derivatives=nd,
            open_definition=not nc and not nd,
            tagger_class="restricted" if nc or nd else ("open-copyleft" if sa else "open-permissive"),
        )
    for key, lic in table.items():
        if not key.startswith("creativecommons.org") and u.rstrip("/").startswith(key):
            return lic
    return None


# Words for the licence elements, as the CC deeds and chooser snippets write them in their languages (lower-cased).
_BY = (
    r"attribution|namensnennung|reconocimiento|atribuci[oó]n|paternit[eé]|attribuzione|atribui[cç][aã]o|"
    r"naamsvermelding|uznanie autorstwa|атрибуция|erk[aä]nnande|navngivelse|nime[aä]|uve[dď]te p[uů]vod|"
    r"nevezd meg|atribuire|αναφορά|al[ıi]nt[ıi]|表示|署名|姓名標示|姓名标示|저작자표시"
)
_NC = (
    r"non-?\s?commercial|nicht-?\s?kommerziell|no-?\s?comercial|pas d.utilisation commerciale|non commerciale|"
    r"n[aã]o-?\s?comercial|niet-?\s?commercieel|niekomercyjn\w*|некоммерческ\w*|icke-?kommersiell|ikke-?kommerci\w*|"
    r"ep[aä]kaupallinen|neu[zž][ií]vejte komer[cč]n[eě]|非営利|非商业性使用|非商業性|비영리"
)
_ND = (
    r"no-?\s?deriv(?:atives|ative works|s)|keine bearbeitungen?|sin ?(?:obra ?)?derivadas?|pas de modifications?|"
    r"non opere derivate|sem ?deriva[cç](?:[oõ]es|ões)|geen ?afgeleide ?werken|bez utwor[oó]w zale[zż]nych|"
    r"без производных|inga bearbetningar|ingen bearbejdelse|改変禁止|禁止演绎|禁止改作|변경금지"
)
_SA = (
    r"share-?\s?alike|weitergabe unter gleichen bedingungen|compartir ?igual|partage dans les m[eê]mes conditions|"
    r"condividi allo stesso modo|compartilha ?igual|gelijk ?delen|na tych samych warunkach|на тех же условиях|"
    r"dela lika|del p[aå] samme vilk[aå]r|継承|相同方式共享|相同方式分享|동일조건변경허락"
)
_INTL = r"international|internacional|internationale?|internazionale|internationaal|mi[eę]dzynarodow\w*|всемирная|国際|国际|국제"
_CC_NAME = re.compile(
    r"creative\s*commons|creativecommons|クリエイティブ・?コモンズ|知识共享|知識共享|創用\s?cc|크리에이티브\s?커먼즈"
)
_CC_ABBR = re.compile(
    r"(?<![a-z0-9/.-])cc[\s-]?(by(?:[\s-]?(?:nc|nd|sa)){0,2})(?![a-z0-9])(?:[\s-]*(?:v|version\s*)?(\d\.\d)(?!\d))?"
)
_CC0 = re.compile(
    r"(?<![a-z0-9/.#-])(?:cc\s?0|cc[\s-]zero|creative\s*commons\s*(?:zero|cc0))(?![a-z0-9])(?:\s*(?:v\s*)?(1\.0))?"
)
_PDM = re.compile(r"public domain mark(?:\s*(1\.0))?")
_GFDL = re.compile(
    r"gnu free documentation licen[cs]e(?:[,\s]*(?:version|v\.?)?\s*(1\.[123]))?|\bgfdl(?:[\s-]*(1\.[123]))?"
)
_ELEMENTS = [
    (re.compile(rf"{_NC}|(?<![a-z])nc(?![a-z])"), "nc"),
    (re.compile(rf"{_ND}|(?<![a-z])nd(?![a-z])"), "nd"),
    (re.compile(rf"{_SA}|(?<![a-z])sa(?![a-z])"), "sa"),
]
_BY_RE = re.compile(_BY)
_VERSION = re.compile(r"(?<![\d.])([1-4]\.[05])(?![\d])")
_NAME_WINDOW = 110


@dataclass(frozen=True)
class TextLicense:
    """A licence named in words: the span in the (lower-cased) text that names it, and the licence (None when the
    name does not pin a version or an element)."""

    start: int
    end: int
    license: License | None


def _cc(code: str, ver: str | None) -> License | None:
    if not ver:
        return None
    return license_for_url(f"creativecommons.org/licenses/{code}/{ver}/")


def _code(elements: set[str]) -> str | None:
    if "nd" in elements and "sa" in elements:
        return None
    return "-".join(["by", *[e for e in ("nc", "nd", "sa") if e in elements]])


def licenses_in_text(text: str) -> list[TextLicense]:
    """Every licence named in words in ``text`` (lower-case it first), in order of position.

    A full Creative Commons name is read from ``Creative Commons`` up to its version number (or the next licence
    name, or 110 characters): its element words, in any of the deed languages, make the code; it needs the
    attribution element or another element, so ``a Creative Commons licence`` names none."""
    out: list[TextLicense] = []
    taken: list[tuple[int, int]] = []

    def add(start: int, end: int, lic: License | None) -> None:
        if any(s < end and start < e for s, e in taken):
            return
        taken.append((start, end))
        out.append(TextLicense(start, end, lic))

    for m in _CC0.finditer(text):
        add(m.start(), m.end(), license_for_url("creativecommons.org/publicdomain/zero/1.0/"))
    for m in _PDM.finditer(text):
        add(m.start(), m.end(), license_for_url("creativecommons.org/publicdomain/mark/1.0/"))
    for m in _GFDL.finditer(text):
        ver = m.group(1) or m.group(2)
        url = {"1.3": "gnu.org/licenses/fdl-1.3.html", "1.2": "gnu.org/licenses/old-licenses/fdl-1.2.html"}.get(
            ver or ""
        )
        add(m.start(), m.end(), license_for_url(url) if url else None)
    for m in _CC_ABBR.finditer(text):
        elements = set(re.split(r"[\s-]+", m.group(1))) - {"by"}
        code = _code(elements)
        ver = m.group(2)
        end = m.end()
        if not ver:  # "CC BY-SA 4.0 International", "CC BY International"
            tail = re.match(r"[\s-]*(?:" + _INTL + r")", text[end : end + 30])
            ver = "4.0" if tail else None
        add(m.start(), end, _cc(code, ver) if code else None)
    names = list(_CC_NAME.finditer(text))
    for i, m in enumerate(names):
        stop = min(len(text), m.end() + _NAME_WINDOW, names[i + 1].start() if i + 1 < len(names) else len(text))
        window = text[m.end() : stop]
        v = _VERSION.search(window)
        if v:
            window = window[: v.end()]
        else:
            cut = re.search(r"[.;!?。；|]\s|[.;!?。；|]$", window)
            window = window[: cut.start()] if cut else window
        elements = {e for rx, e in _ELEMENTS if rx.search(window)}
        has_by = bool(_BY_RE.search(window)) or bool(re.search(r"(?<![\w])by(?![\w])", window))
        ver = v.group(1) if v else None
        if not ver:
            if re.search(_INTL, window):
                ver = "4.0"
            elif "unported" in window:
                ver = "3.0"
        lic = None
        if has_by or elements:
            code = _code(elements)
            lic = _cc(code, ver) if code else None
        add(m.start(), m.end() + len(window), lic)
    out.sort(key=lambda t: t.start)
    return out
