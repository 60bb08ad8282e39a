"""Strict WARC-Date parsing and tiers: an unknown date is NULL with a reason, never a guess."""

from __future__ import annotations

import datetime as dt

import pytest

from curate.dating import parse_warc_date


@pytest.mark.parametrize(
    ("raw", "expected", "reason"),
    [
        ("2020-08-08T17:27:41Z", dt.datetime(2020, 8, 8, 17, 27, 41, tzinfo=dt.UTC), None),
        ("2017-03-06T04:02:06.5Z", dt.datetime(2017, 3, 6, 4, 2, 6, 500000, tzinfo=dt.UTC), None),
        ("2022-11-30T01:00:00+02:00", dt.datetime(2022, 11, 29, 23, 0, tzinfo=dt.UTC), None),
        ("2008-10-294T05:21:46-0700", None, "warc_date_malformed"),
        ("2022-02-30T00:00:00Z", None, "warc_date_malformed"),
        ("yesterday", None, "warc_date_malformed"),
        ("", None, "warc_date_missing"),
        (None, None, "warc_date_missing"),
    ],
)
def test_parse(raw: str | None, expected: dt.datetime | None, reason: str | None) -> None:
    value, why = parse_warc_date(raw)
    assert value == expected
    assert (why.value if why else None) == reason
