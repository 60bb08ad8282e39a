"""The crawl calendar: each Common Crawl crawl id with the range of fetch dates it can hold.

A crawl id is not a date (``CC-MAIN-2022-49`` ran from late November into December 2022, across the 2022-11-30
cutoff), so the calendar is range evidence only: it never gives a tier. It flags contradictions: a capture
whose fetch time lies outside its crawl's range is from the future of that crawl, or mislabelled, and never
attests. The ranges ship in ``curate/data/crawl_calendar.csv`` (origin and derivation in its SOURCE.md); a
well-formed ``CC-MAIN-YYYY-WW`` id that is not listed gets a range by the same rule.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.errors import InputError
from curate.resources import CRAWL_CALENDAR

_CRAWL_ID = re.compile(r"^CC-MAIN-(\d{4})-(\d{2})$")
WEEKS_BEFORE = 6  # the derived range starts this many weeks before the id's ISO week (see SOURCE.md)
WEEKS_AFTER = 1  # and ends this many weeks after it


@dataclass(frozen=True)
class CrawlRange:
    """The fetch dates a crawl can hold: [first_fetch, last_fetch] whole UTC days, and where that comes from."""

    crawl: str
    first_fetch: dt.date
    last_fetch: dt.date
    basis: str

    @property
    def start(self) -> dt.datetime:
        """The first instant of the range (UTC)."""
        return dt.datetime.combine(self.first_fetch, dt.time(), dt.UTC)

    @property
    def end(self) -> dt.datetime:
        """The first instant after the range (UTC)."""
        return dt.datetime.combine(self.last_fetch + dt.timedelta(days=1), dt.time(), dt.UTC)

    def holds(self, when: dt.datetime) -> bool:
        """Whether ``when`` (aware) lies in the range."""
        return self.start <= when < self.end

    def as_dict(self) -> dict[str, str]:
        """Plain data (certificates, JSON)."""
        return {
            "crawl": self.crawl,
            "first_fetch": self.first_fetch.isoformat(),
            "last_fetch": self.last_fetch.isoformat(),
            "basis": self.basis,
        }


@functools.cache
def load_calendar(path: Path = CRAWL_CALENDAR) -> dict[str, CrawlRange]:
    """The calendar file (``crawl,first_fetch,last_fetch,basis``), by crawl id.

    Raises:
        InputError: the file is missing or a row is not a crawl with two ISO dates in order.
    """
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as e:
        raise InputError(f"cannot read the crawl calendar {path}: {e.strerror or e}") from None
    out: dict[str, CrawlRange] = {}
    for i, r in enumerate(rows, start=2):
        try:
            rng = CrawlRange(
                r["crawl"], dt.date.fromisoformat(r["first_fetch"]), dt.date.fromisoformat(r["last_fetch"]), r["basis"]
            )
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"{path}, line {i}: not a crawl row ({e})") from None
        if rng.last_fetch < rng.first_fetch:
            raise InputError(f"{path}, line {i}: last_fetch {rng.last_fetch} is before first_fetch {rng.first_fetch}")
        out[rng.crawl] = rng
    return out


def crawl_range(crawl: str | None) -> CrawlRange | None:
    """The range of ``crawl``: from the calendar, else derived from a well-formed ``CC-MAIN-YYYY-WW`` id (basis
    ``id-week-rule``); None for any other id (or none)."""
    if not crawl:
        return None
    known = load_calendar().get(crawl)
    if known is not None:
        return known
    m = _CRAWL_ID.match(crawl)
    if not m:
        return None
    try:
        week = dt.date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
    except ValueError:
        return None
    first = week - dt.timedelta(weeks=WEEKS_BEFORE)
    last = week + dt.timedelta(days=6, weeks=WEEKS_AFTER)
    return CrawlRange(crawl, first, last, "id-week-rule")


def outside_crawl(crawl: str | None, when: dt.datetime | None, now: dt.datetime) -> bool:
    """Whether a capture of ``crawl`` fetched at ``when`` contradicts the calendar: outside the crawl's range, or
    after ``now`` whatever the crawl. False when either is unknown."""
    if when is None:
        return False
    if when > now:
        return True
    rng = crawl_range(crawl)
    return rng is not None and not rng.holds(when)


def observed_ranges(con: Any) -> dict[str, CrawlRange]:
    """The store's own capture dates per crawl id (basis ``observed``): the WARC dates at hand, which extend the
    calendar to crawls it does not list."""
    rows = con.execute(
        """SELECT crawl_id, min(warc_date)::DATE, max(warc_date)::DATE FROM documents
           WHERE crawl_id IS NOT NULL AND warc_date IS NOT NULL GROUP BY 1 ORDER BY 1"""
    ).fetchall()
    return {c: CrawlRange(c, lo, hi, "observed") for c, lo, hi in rows}
