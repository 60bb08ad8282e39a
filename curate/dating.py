"""Low-background tiers from capture time.

WARC-Date is hard evidence that the bytes existed then. It is parsed strictly (W3C ISO 8601 as the WARC spec
requires); a missing or malformed date gives no tier and a reason, never a guess or ``now()``. A date that
cannot be a capture date is refused the same way: before :data:`EARLIEST_CAPTURE` (web archiving began in
1996, the Internet Archive's first crawl; ARC files, the WARC format's ancestor, date from then) or later than
the moment the record is read (a capture from the future).

A malformed WARC-Date whose leading parts are certain is read as an interval instead, with the rule recorded
(:class:`curate.schema.DateRule`): ``2008-10-294T05:21:46-0700`` (ClueWeb09) has a certain year and month, so the
capture lies in [2008-10-01, 2008-11-01) local time, shifted by its readable UTC offset. ``warc_date`` stays NULL
(``date_reason`` says why); ``curate decide`` gives a tier only when the whole interval lies on one side of the
cutoff. A date with no time zone is UTC.
"""

from __future__ import annotations

import datetime as dt
import re

from datatrove.data import Document

from curate.schema import DateReason, DateRule, Meta
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


_YEAR_MONTH = re.compile(r"^(\d{4})(?:-(\d{2}))?(?=$|[^\d])(.*)$", re.DOTALL)
_OFFSET = re.compile(r"(?:(Z)|([+-])(\d{2}):?(\d{2}))$")
_NO_ZONE = re.compile(r"^[\dT:.\-]*$")  # the rest has no zone at all (only date/time digits and separators)
MAX_UTC_OFFSET = dt.timedelta(hours=14)  # the widest offset in use (UTC+14, Kiribati)


def parse_date_interval(
    raw: str | None, now: dt.datetime | None = None
) -> tuple[dt.datetime, dt.datetime, DateRule] | None:
    """For a WARC-Date that :func:`parse_warc_date` refuses as malformed: the half-open UTC interval
    [from, until) its certain leading parts prove, and the rule used; None when no part is certain or the
    interval cannot hold a capture (it ends before 1996 or starts after ``now``).

    A valid year and month give that month (:attr:`DateRule.MONTH`); a valid year alone gives that year
    (:attr:`DateRule.YEAR`). The local bounds are shifted by the date's own UTC offset when it ends with a readable
    one (``Z``, ``+02:00``, ``-0700``), read as UTC when the date carries no zone, and widened by 14 hours each
    way when something zone-like is there but unreadable.
    """
    if raw is None:
        return None
    text = raw.strip()
    m = _YEAR_MONTH.match(text)
    if not m:
        return None
    year, month, rest = int(m.group(1)), m.group(2), m.group(3)
    if month is not None and not 1 <= int(month) <= 12:
        return None  # a month field that is not a month: nothing before it is certain either
    if month is not None:
        rule = DateRule.MONTH
        start = dt.datetime(year, int(month), 1)
        end = dt.datetime(year + int(month) // 12, int(month) % 12 + 1, 1)
    else:
        rule = DateRule.YEAR
        start, end = dt.datetime(year, 1, 1), dt.datetime(year + 1, 1, 1)
    tz = _OFFSET.search(rest) if rest else None
    if tz and tz.group(1):
        shift, widen = dt.timedelta(0), dt.timedelta(0)
    elif tz:
        sign = 1 if tz.group(2) == "+" else -1
        shift, widen = sign * dt.timedelta(hours=int(tz.group(3)), minutes=int(tz.group(4))), dt.timedelta(0)
        if abs(shift) > MAX_UTC_OFFSET:
            shift, widen = dt.timedelta(0), MAX_UTC_OFFSET
    else:
        shift, widen = dt.timedelta(0), (dt.timedelta(0) if _NO_ZONE.match(rest) else MAX_UTC_OFFSET)
    lo = (start - shift - widen).replace(tzinfo=dt.UTC)
    hi = (end - shift + widen).replace(tzinfo=dt.UTC)
    if hi <= EARLIEST_CAPTURE or lo > (now or dt.datetime.now(dt.UTC)):
        return None
    return lo, hi, rule


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
        """Parse WARC-Date; a missing or malformed date stays NULL with a reason (and, malformed with a certain
        year or month, an interval with its rule)."""
        meta = doc.metadata
        if meta.get(Meta.RECORD_TYPE) is None:
            return
        raw = meta.get(Meta.WARC_DATE_RAW)
        captured, reason = parse_warc_date(raw)
        interval = parse_date_interval(raw) if reason == DateReason.MALFORMED else None
        rule = DateRule.EXACT if captured else (interval[2] if interval else None)
        meta.update(
            {
                Meta.WARC_DATE: captured,
                Meta.DATE_REASON: reason.value if reason else None,
                Meta.DATE_RULE: rule.value if rule else None,
                Meta.WARC_DATE_FROM: interval[0] if interval else None,
                Meta.WARC_DATE_UNTIL: interval[1] if interval else None,
            }
        )
        self.stat_update("dated" if captured else ("interval" if interval else f"undated_{reason}"))
