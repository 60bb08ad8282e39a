"""Low-background tiers from capture time.

WARC-Date is hard evidence that the bytes existed then. It is parsed strictly (W3C ISO 8601 as the WARC spec
requires); a missing or malformed date gives no tier and a reason, never a guess or ``now()``. A date that
cannot be a capture date is refused the same way: before :data:`EARLIEST_CAPTURE` (web archiving began in
1996, the Internet Archive's first crawl; ARC files, the WARC format's ancestor, date from then) or later than
the moment the record is read (a capture from the future).
"""

from __future__ import annotations

import datetime as dt
import re

from datatrove.data import Document

from curate.schema import DateReason, Meta
from curate.steps import CurateStep

EARLIEST_CAPTURE = dt.datetime(1996, 1, 1, tzinfo=dt.UTC)

_WARC_DATE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?(Z|[+-]\d{2}:\d{2})?$"
)


def parse_warc_date(raw: str | None, now: dt.datetime | None = None) -> tuple[dt.datetime | None, DateReason | None]:
    """Parse a WARC-Date into an aware UTC datetime, or (None, reason): missing, malformed, or implausible
    (before :data:`EARLIEST_CAPTURE` or after ``now``, the time of reading by default)."""
    value, reason = _parse(raw)
    if value is not None and not EARLIEST_CAPTURE <= value <= (now or dt.datetime.now(dt.UTC)):
        return None, DateReason.IMPLAUSIBLE
    return value, reason


def _parse(raw: str | None) -> tuple[dt.datetime | None, DateReason | None]:
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


class DateStep(CurateStep):
    """The capture date from WARC-Date, parsed strictly; the tier against a cutoff is ``curate decide``'s."""

    name = "capture date"

    def process(self, doc: Document) -> None:
        """Parse WARC-Date; a missing or malformed date stays NULL with a reason."""
        meta = doc.metadata
        if meta.get(Meta.RECORD_TYPE) is None:
            return
        captured, reason = parse_warc_date(meta.get(Meta.WARC_DATE_RAW))
        meta.update({Meta.WARC_DATE: captured, Meta.DATE_REASON: reason.value if reason else None})
        self.stat_update("dated" if captured else f"undated_{reason}")
