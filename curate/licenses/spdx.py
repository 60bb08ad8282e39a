"""Licence URL → SPDX mapping, from ``licenses/cc_licenses.csv``.

``license_for_url(url)`` normalises any form of a Creative Commons, GFDL, ODC, OGL or Etalab licence URL
(scheme-less, ``www.``, odd casing, ``deed.xx``/``legalcode`` suffixes, query strings, HTML-escaped) and returns
the licence with its obligation flags. CC jurisdiction ports missing from the SPDX list become
``LicenseRef-CC-<CODE>-<VER>-<JUR>`` with the flags of their code.
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
