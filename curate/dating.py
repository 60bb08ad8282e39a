"""Low-background tiers from capture time.

WARC-Date is hard evidence that the bytes existed then. It is parsed strictly (W3C ISO 8601 as the WARC spec
requires); a missing or malformed date gives no tier and a reason, never a guess or ``now()``.
"""

from __future__ import annotations

import datetime as dt
import re

from datatrove.data import Document

from curate.recipe import Recipe
from curate.schema import DateReason, Tier
from curate.steps import CurateStep

_WARC_DATE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?(Z|[+-]\d{2}:\d{2})?$"
)


def parse_warc_date(raw: str | None) -> tuple[dt.datetime | None, DateReason | None]:
    """Parse a WARC-Date into an aware UTC datetime, or (None, reason)."""
    if raw is None or not raw.strip():
        return None, DateReason.MISSING
    m = _WARC_DATE.match(raw.strip())
    if not m:
        return None, DateReason.MALFORMED
    y, mo, d, h, mi, s, frac, tz = m.groups()
    try:
        micro = int((frac or "0")[:6].ljust(6, "0"))
        value = dt.datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0), micro)
    except ValueError:
        return None, DateReason.MALFORMED
    if tz in (None, "Z"):
        return value.replace(tzinfo=dt.UTC), None
    sign = 1 if tz[0] == "+" else -1
    offset = dt.timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
    return (value - sign * offset).replace(tzinfo=dt.UTC), None


def tier_for(captured: dt.datetime | None, cutoff: dt.datetime) -> Tier | None:
    """``pre_cutoff`` when captured strictly before the cutoff, else ``post_cutoff``; None when unknown."""
    if captured is None:
        return None
    return Tier.PRE_CUTOFF if captured < cutoff else Tier.POST_CUTOFF


class DateStep(CurateStep):
    """Tier from WARC-Date against the recipe's cutoff."""

    name = "date tier"

    def __init__(self, recipe: Recipe) -> None:
        super().__init__()
        self.cutoff = recipe.cutoff_datetime

    def process(self, doc: Document) -> None:
        """Parse WARC-Date strictly; unknown dates get no tier and a reason."""
        from curate.dating import parse_warc_date, tier_for

        meta = doc.metadata
        if meta.get("record_type") is None:
            return
        captured, reason = parse_warc_date(meta.get("warc_date_raw"))
        tier = tier_for(captured, self.cutoff)
        meta.update(warc_date=captured, tier=tier.value if tier else None, date_reason=reason.value if reason else None)
        self.stat_update(f"tier_{tier.value if tier else 'unknown'}")
