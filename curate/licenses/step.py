"""The licence step of ingest: licence, copyright and opt-out evidence from the raw HTML and HTTP headers
(before extraction), and site-level opt-outs from the recipe's robots.txt / tdmrep.json snapshots.
"""

from __future__ import annotations

from typing import Any

from datatrove.data import Document

from curate.licenses.site_optout import SiteSignals
from curate.licenses.tagger import tag_html
from curate.recipe import Recipe
from curate.schema import (
    LICENSE_TAGGER_NAME,
    Flag,
    Meta,
    add_flag,
)
from curate.steps import CurateStep


class LicenseStep(CurateStep):
    """Licence, copyright and opt-out evidence from the raw HTML and HTTP headers (before extraction), and
    site-level opt-outs from the recipe's robots.txt / tdmrep.json snapshots."""

    name = "licence + opt-out evidence"

    def __init__(self, recipe: Recipe | None = None) -> None:
        super().__init__()
        o = recipe.optout if recipe else None
        self.robots_dir = o.robots_dir if o else ""
        self.tdmrep_dir = o.tdmrep_dir if o else ""
        self.snapshot_date = o.snapshot_date if o else ""
        self._site: Any = None

    def _site_signals(self, doc: Document) -> None:
        import datetime as dt
        from pathlib import Path

        if self._site is None:
            self._site = SiteSignals(
                Path(self.robots_dir) if self.robots_dir else None, Path(self.tdmrep_dir) if self.tdmrep_dir else None
            )
        url = doc.metadata.get(Meta.URL)
        if not self._site.checked(url):
            return
        found = self._site.for_url(url)
        doc.metadata[Meta.OPTOUT_SITE] = bool(found)
        when = dt.datetime.combine(dt.date.fromisoformat(self.snapshot_date), dt.time(), tzinfo=dt.UTC)
        doc.metadata.setdefault(Meta.OPTOUT_EVIDENCE, []).extend(
            {**o.__dict__, "source": "site-snapshot", "observed_at": when} for o in found
        )
        if found:
            self.stat_update("optout_site")

    def process(self, doc: Document) -> None:
        """Tag the raw HTML; records without HTML get NULL licence and opt-out (nothing could be checked). Lone
        surrogates escaped in the page's JSON-LD became U+FFFD: the record is flagged ``decode_errors``."""

        meta = doc.metadata
        html = meta.get(Meta.HTML)
        headers = meta.pop(Meta.HEADERS, None) or {}
        if (self.robots_dir or self.tdmrep_dir) and meta.get(Meta.RECORD_TYPE) is not None:
            self._site_signals(doc)
        if html is None:
            return
        v = tag_html(html, headers)
        meta.update(
            {
                Meta.TAGGED_LICENSE_SPDX: v.spdx_id,
                Meta.TAGGED_LICENSE_SCOPE: v.scope,
                Meta.TAGGED_LICENSE_CONFIDENCE: v.confidence,
                Meta.TAGGED_LICENSE_CONFLICT: v.conflict,
                Meta.LICENSE_SIGNALS: len(v.evidence),
                Meta.LICENSE_TAGGER: LICENSE_TAGGER_NAME,
                Meta.LICENSE_URL: v.license_url,
                Meta.OPTOUT: any(o.applies_to == "text" for o in v.optouts),
                **v.attribution,
            }
        )
        meta[Meta.LICENSE_EVIDENCE] = [e.__dict__ for e in v.evidence]
        if v.replaced:
            add_flag(meta, Flag.DECODE_ERRORS, f"lone surrogates escaped in JSON-LD replaced by U+FFFD: {v.replaced}")
        meta.setdefault(Meta.OPTOUT_EVIDENCE, []).extend({**o.__dict__, "source": "record"} for o in v.optouts)
        if v.spdx_id:
            self.stat_update(f"license_{v.scope}")
        if v.optouts:
            self.stat_update("optout")
