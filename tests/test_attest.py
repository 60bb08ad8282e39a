"""Attestation against a Common Crawl columnar index (real Parquet read by DuckDB) and an earlier store; date
intervals; the crawl calendar; certificates. Precision first: a wrongly attested page is a false claim."""

from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.attest import attest
from curate.certify import certificate, certify
from curate.crawl_calendar import crawl_range, load_calendar, outside_crawl
from curate.dating import parse_date_interval
from curate.digests import canonical_digest
from curate.errors import InputError, StoreError
from curate.recipe import load_recipe
from curate.run.commands import decide, report
from curate.schema import DateRule
from curate.store import open_store, writing

CUTOFF = dt.datetime(2022, 11, 30, tzinfo=dt.UTC)
FAR = dt.datetime(2099, 1, 1, tzinfo=dt.UTC)


def _hex(digest: str) -> str:
    return base64.b32decode(digest.removeprefix("sha1:")).hex()


def _row(url: str, fetched: dt.datetime, digest: str, wfile: str, offset: int = 100) -> dict:
    return {
        "url_surtkey": "example)/",
        "url": url,
        "fetch_time": fetched,
        "content_digest": digest,
        "warc_filename": wfile,
        "warc_record_offset": offset,
        "warc_record_length": 1234,
        "fetch_status": 200,
        "content_mime_detected": "text/html",
    }


def _write(folder: Path, crawl: str, rows: list[dict], tz: str | None = None) -> Path:
    """One index file in Common Crawl's layout: crawl=…/subset=warc/part-….parquet, fetch_time as CC writes it
    (a timestamp without a zone) unless ``tz``."""
    target = folder / f"crawl={crawl}" / "subset=warc"
    target.mkdir(parents=True, exist_ok=True)
    schema = pa.schema(
        [
            ("url_surtkey", pa.string()),
            ("url", pa.string()),
            ("fetch_time", pa.timestamp("us", tz=tz)),
            ("content_digest", pa.string()),
            ("warc_filename", pa.string()),
            ("warc_record_offset", pa.int32()),
            ("warc_record_length", pa.int32()),
            ("fetch_status", pa.int16()),
            ("content_mime_detected", pa.string()),
        ]
    )
    path = target / f"part-{len(list(target.iterdir())):05d}.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


@pytest.fixture(scope="module")
def planted(sample_run, tmp_path_factory):
    """A copy of the sample store, and an index with planted captures of its real post-cutoff documents."""
    root = tmp_path_factory.mktemp("attest")
    store = root / "store"
    store.mkdir()
    shutil.copyfile(sample_run.store, store / "provenance.duckdb")
    con = open_store(store)
    docs = con.execute(
        """SELECT doc_id, warc_payload_digest, url, reason FROM documents
           WHERE tier = 'post_cutoff' AND record_type = 'response' AND payload_digest_ok
             AND (status = 'kept' OR reason = 'mgt_above_threshold')
           ORDER BY reason NULLS FIRST, doc_id LIMIT 6"""
    ).fetchall()
    mgt = con.execute(
        """SELECT doc_id, warc_payload_digest FROM documents WHERE reason = 'mgt_above_threshold'
           AND payload_digest_ok AND tier = 'post_cutoff' ORDER BY doc_id LIMIT 1"""
    ).fetchone()
    con.close()
    (a, da, _, _), (b, db, _, _), (c, _, url_c, _), (d, dd, _, _), (e, de, _, _), (f, df, _, _) = docs
    changed = df[:-1] + ("A" if df[-1] != "A" else "B")  # one base32 character off: another payload
    index = root / "index"
    jan21 = dt.datetime(2021, 1, 20, 3, 4, 5)
    _write(
        index,
        "CC-MAIN-2021-04",
        [
            _row(
                "https://mirror.example/copy?utm_source=x", jan21, da.removeprefix("sha1:"), "crawl-data/a.warc.gz", 7
            ),
            _row("https://other.example/b", jan21, _hex(db), "crawl-data/b.warc.gz"),  # hex, no prefix
            _row(url_c, jan21, "AAAABBBBCCCCDDDDEEEEFFFFGGGGHHHH", "crawl-data/c.warc.gz"),  # same URL, other bytes
            _row("https://x.example/f", jan21, changed.removeprefix("sha1:"), "crawl-data/f.warc.gz"),
            _row("https://x.example/m", jan21, mgt[1], "crawl-data/m.warc.gz"),  # with the sha1: prefix
        ]
        + [_row(f"https://filler.example/{i}", jan21, f"{i:032d}".replace("0", "A")[:32], "x") for i in range(50)],
    )
    _write(  # one second after the cutoff (a zone-aware fetch time): recorded, never attests at this cutoff
        index,
        "CC-MAIN-2022-49",
        [_row("https://late.example/d", dt.datetime(2022, 11, 30, 0, 0, 1, tzinfo=dt.UTC), dd, "crawl-data/d.warc.gz")],
        tz="UTC",
    )
    _write(  # labelled with a crawl that ran in 2023 but fetched in 2021: a contradiction, never attests
        index,
        "CC-MAIN-2023-06",
        [_row("https://liar.example/e", jan21, de.removeprefix("sha1:"), "crawl-data/e.warc.gz")],
    )
    return {
        "root": root,
        "store": store,
        "index": index,
        "mirror": a,
        "hex": b,
        "same_url": c,
        "late": d,
        "future": e,
        "changed": f,
        "mgt": mgt[0],
    }


@pytest.fixture(scope="module")
def attested(planted):
    result = attest(planted["store"], CUTOFF, indexes=[str(planted["index"])])
    decide(planted["store"], load_recipe(None))
    return result


def _tier(store: Path, doc_id: str) -> tuple[str, str]:
    con = open_store(store)
    try:
        return con.execute("SELECT tier, status FROM documents WHERE doc_id = ?", [doc_id]).fetchone()
    finally:
        con.close()


def test_planted_digests_attest_and_near_misses_do_not(planted, attested) -> None:
    assert attested.looked_up > 100
    assert _tier(planted["store"], planted["mirror"])[0] == "attested"  # same digest, another URL
    assert _tier(planted["store"], planted["hex"])[0] == "attested"  # the index spelled it in hex
    for near_miss in ("same_url", "late", "future", "changed"):
        assert _tier(planted["store"], planted[near_miss])[0] == "post_cutoff", near_miss
    assert attested.attested == 3  # mirror, hex, mgt


def test_evidence_is_recorded_with_coordinates_and_strength(planted, attested) -> None:
    con = open_store(planted["store"])
    rows = {
        r[0]: r[1:]
        for r in con.execute(
            """SELECT doc_id, kind, strength, url, fetch_time, tz_assumed, crawl, warc_filename, warc_record_offset, flag
               FROM attestation_evidence"""
        ).fetchall()
    }
    con.close()
    kind, strength, url, fetched, tz_assumed, crawl, wfile, offset, flag = rows[planted["mirror"]]
    assert (kind, strength, crawl, wfile, offset, flag) == (
        "index-capture",
        "hard",
        "CC-MAIN-2021-04",
        "crawl-data/a.warc.gz",
        7,
        None,
    )
    assert url == "https://mirror.example/copy?utm_source=x"
    assert fetched == dt.datetime(2021, 1, 20, 3, 4, 5, tzinfo=dt.UTC) and tz_assumed  # no zone in the index: UTC
    assert rows[planted["same_url"]][:2] == ("url-capture", "weak")
    assert rows[planted["late"]][0] == "index-capture" and rows[planted["late"]][4] is False  # zone given
    assert rows[planted["future"]][-1] == "outside_crawl_range"
    assert planted["changed"] not in rows


def test_attested_page_is_kept_when_only_the_index_holds_the_original(planted, attested) -> None:
    # a post-cutoff page the MGT rule dropped: its bytes were fetched in 2021, so it is low-background text
    assert _tier(planted["store"], planted["mgt"]) == ("attested", "kept")
    assert _tier(planted["store"], planted["mirror"]) == ("attested", "kept")


def test_in_store_original_survives_and_its_recapture_is_its_duplicate(planted, attested) -> None:
    con = open_store(planted["store"])
    pairs = con.execute(
        """SELECT d.status, d.reason, o.tier, o.status, o.warc_date < d.warc_date FROM documents d
           JOIN documents o ON o.doc_id = d.reason_detail WHERE d.tier = 'attested' AND d.reason = 'duplicate_of'"""
    ).fetchall()
    con.close()
    assert len(pairs) >= 10
    assert all(p[2] == "pre_cutoff" and p[3] == "kept" and p[4] for p in pairs)


def test_another_cutoff_is_judged_from_the_store_alone(planted, attested, tmp_path) -> None:
    moved = tmp_path / "index-gone"
    shutil.move(planted["index"], moved)  # the index is not read again
    try:
        later = tmp_path / "later.toml"
        later.write_text("cutoff = 2022-12-01\n", encoding="utf-8")
        decide(planted["store"], load_recipe(later))
        assert _tier(planted["store"], planted["late"])[0] == "attested"  # fetched one second after 2022-11-30
        earlier = tmp_path / "earlier.toml"
        earlier.write_text("cutoff = 2021-01-01\n", encoding="utf-8")
        decide(planted["store"], load_recipe(earlier))
        assert _tier(planted["store"], planted["mirror"])[0] == "post_cutoff"  # fetched 2021-01-20: after it
    finally:
        shutil.move(moved, planted["index"])
        decide(planted["store"], load_recipe(None))


def test_certificate_names_the_evidence_chain(planted, attested) -> None:
    cert = certify(planted["store"], planted["mirror"])
    assert cert["tier"] == "attested" and cert["cutoff"] == "2022-11-30" and cert["hard_evidence_only"]
    assert cert["basis"] == ["index-capture"]
    item = next(i for i in cert["evidence"] if i["kind"] == "index-capture")
    assert item["coordinates"] == {
        "warc_filename": "crawl-data/a.warc.gz",
        "warc_record_offset": 7,
        "warc_record_length": 1234,
    }
    assert item["time_zone"] == "none given: read as UTC" and item["proves"] == "pre_cutoff"
    assert cert["versions"]["attest_passes"][0]["tool"] == "attest-digest-v1"
    assert cert["versions"]["attest_passes"][0]["sources"][0]["path"] == str(planted["index"])
    future = certify(planted["store"], planted["future"])
    assert future["tier"] == "post_cutoff" and "outside_crawl_range" in future["contradictions"]
    with pytest.raises(StoreError, match="no document"):
        certify(planted["store"], "no-such-doc")


def test_report_and_exports_carry_certificates(planted, attested) -> None:
    out = report(planted["store"], planted["root"] / "report.html")
    html = out.read_text(encoding="utf-8")
    assert "digest captured before the cutoff (index or earlier store)" in html
    certs = pq.read_table(planted["root"] / "provenance" / "certificates.parquet").to_pylist()
    by_id = {c["doc_id"]: c for c in certs}
    assert json.loads(by_id[planted["mirror"]]["certificate"])["basis"] == ["index-capture"]
    con = open_store(planted["store"])
    kept = con.execute("SELECT count(*) FROM documents WHERE status = 'kept'").fetchone()[0]
    con.close()
    assert len(certs) == kept


def test_earlier_store_attests(sample_run, tmp_path) -> None:
    """The pre-cutoff originals live in an earlier store only: their re-captures are attested from it."""
    ref, own = tmp_path / "ref", tmp_path / "own"
    for s in (ref, own):
        s.mkdir()
        shutil.copyfile(sample_run.store, s / "provenance.duckdb")
    with writing(own, "test: originals only in the earlier store") as con:
        originals = [
            r[0]
            for r in con.execute(
                """SELECT DISTINCT o.doc_id FROM documents d JOIN documents o ON o.doc_id = d.reason_detail
                   WHERE d.tier = 'attested' AND d.reason = 'duplicate_of'"""
            ).fetchall()
        ]
        recaptured = [
            r[0]
            for r in con.execute(
                "SELECT doc_id FROM documents WHERE tier = 'attested' AND reason = 'duplicate_of'"
            ).fetchall()
        ]
        con.execute(f"DELETE FROM documents WHERE doc_id IN ({', '.join('?' for _ in originals)})", originals)
    result = attest(own, CUTOFF, store_refs=[ref])
    assert result.attested >= len(recaptured) > 0
    decide(own, load_recipe(None))
    con = open_store(own)
    rows = con.execute(
        f"SELECT tier FROM documents WHERE doc_id IN ({', '.join('?' for _ in recaptured)})", recaptured
    ).fetchall()
    kinds = {r[0] for r in con.execute("SELECT kind FROM attestation_evidence WHERE strength = 'hard'").fetchall()}
    con.close()
    assert {r[0] for r in rows} == {"attested"}
    assert kinds == {"earlier-store-capture"}
    with pytest.raises(StoreError, match="is the store being attested"):
        attest(own, CUTOFF, store_refs=[own])


def test_bad_index_input_is_named(planted, tmp_path) -> None:
    missing = tmp_path / "missing"
    missing.mkdir()
    pq.write_table(pa.table({"url": ["u"], "fetch_time": [dt.datetime(2020, 1, 1)]}), missing / "part.parquet")
    with pytest.raises(InputError, match=r"lacks the column\(s\) content_digest, warc_filename"):
        attest(planted["store"], CUTOFF, indexes=[str(missing)])
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InputError, match=f"cannot read index file {broken}"):
        attest(planted["store"], CUTOFF, indexes=[str(broken)])
    with pytest.raises(InputError, match="matches no Parquet file"):
        attest(planted["store"], CUTOFF, indexes=[str(tmp_path / "nowhere" / "*.parquet")])
    text_time = tmp_path / "text-time"
    _write(text_time, "CC-MAIN-2021-04", [_row("u", dt.datetime(2021, 1, 20), "A" * 32, "w")])
    part = next(text_time.rglob("*.parquet"))
    t = pq.read_table(part)
    pq.write_table(t.set_column(2, "fetch_time", pa.array(["2021-01-20"])), part)
    with pytest.raises(InputError, match="fetch_time is VARCHAR"):
        attest(planted["store"], CUTOFF, indexes=[str(text_time)])
    b64 = tmp_path / "b64"
    _write(b64, "CC-MAIN-2021-04", [_row("u", dt.datetime(2021, 1, 20), "qUqP5cyxm6YcTAhz05Hph5gvu9M=", "w")])
    with pytest.raises(InputError, match="no SHA-1 digest in base32 or hex"):
        attest(planted["store"], CUTOFF, indexes=[str(b64)])
    with pytest.raises(InputError, match="give at least one"):
        attest(planted["store"], CUTOFF)


def test_digest_forms() -> None:
    b32 = "sha1:2KFI7ZOMWGNGOHCMBBZ5HE7JQ6YC7O6P"
    assert canonical_digest(b32.lower()) == b32
    assert canonical_digest(b32.removeprefix("sha1:")) == b32
    assert canonical_digest(_hex(b32)) == b32 and canonical_digest("SHA1:" + _hex(b32).upper()) == b32
    with pytest.raises(InputError, match="sha256, not SHA-1"):
        canonical_digest("sha256:" + "a" * 64)
    with pytest.raises(InputError, match="looks like base64"):
        canonical_digest("qUqP5cyxm6YcTAhz05Hph5gvu9M=")
    with pytest.raises(InputError, match="not a SHA-1 digest"):
        canonical_digest("sha1:ABC")


@pytest.mark.parametrize(
    ("raw", "interval", "rule"),
    [
        ("2008-10-294T05:21:46-0700", ("2008-10-01T07:00:00+00:00", "2008-11-01T07:00:00+00:00"), DateRule.MONTH),
        ("2008-10-294T05:21:46", ("2008-10-01T00:00:00+00:00", "2008-11-01T00:00:00+00:00"), DateRule.MONTH),
        ("2022-11-31T10:00:00Z", ("2022-11-01T00:00:00+00:00", "2022-12-01T00:00:00+00:00"), DateRule.MONTH),
        ("2008-12-xx", ("2008-11-30T10:00:00+00:00", "2009-01-01T14:00:00+00:00"), DateRule.MONTH),  # zone unreadable
        ("2008", ("2008-01-01T00:00:00+00:00", "2009-01-01T00:00:00+00:00"), DateRule.YEAR),
        ("2021-13-45T00:00:00Z", None, None),  # no month 13: nothing is certain
        ("yesterday", None, None),
        ("1990-05-40", None, None),  # before web archiving
    ],
)
def test_date_intervals(raw: str, interval: tuple[str, str] | None, rule: DateRule | None) -> None:
    got = parse_date_interval(raw)
    if interval is None:
        assert got is None
        return
    assert got is not None
    assert (got[0].isoformat(), got[1].isoformat(), got[2]) == (*interval, rule)


def test_clueweb_interval_proves_the_tier_and_one_containing_the_cutoff_does_not(sample_con, tmp_path) -> None:
    rows = sample_con.execute(
        "SELECT DISTINCT tier, date_rule, warc_date_from FROM documents WHERE warc_date_raw LIKE '2008-10-294%'"
    ).fetchall()
    assert rows == [("pre_cutoff", "year-month-certain", dt.datetime(2008, 10, 1, 7, tzinfo=dt.UTC))]
    doc = sample_con.execute("SELECT doc_id FROM documents WHERE warc_date_raw LIKE '2008-10-294%' LIMIT 1").fetchone()
    cert = certificate(sample_con, doc[0])
    assert cert["basis"] == ["warc-date-interval"] and cert["hard_evidence_only"]
    # the same interval against a cutoff inside it proves nothing
    store = tmp_path / "s"
    store.mkdir()
    path = sample_con.execute("SELECT file FROM pragma_database_list WHERE name = current_database()").fetchone()[0]
    shutil.copyfile(path, store / "provenance.duckdb")
    inside = tmp_path / "inside.toml"
    inside.write_text("cutoff = 2008-10-15\n", encoding="utf-8")
    decide(store, load_recipe(inside))
    con = open_store(store)
    tiers = con.execute("SELECT DISTINCT tier FROM documents WHERE warc_date_raw LIKE '2008-10-294%'").fetchall()
    con.close()
    assert tiers == [(None,)]


def test_calendar_is_range_evidence() -> None:
    cal = load_calendar()
    assert len(cal) > 100
    straddle = crawl_range("CC-MAIN-2022-49")
    assert straddle is not None and straddle.holds(CUTOFF - dt.timedelta(days=3)) and straddle.holds(CUTOFF)
    unlisted = crawl_range("CC-MAIN-2031-10")
    assert unlisted is not None and unlisted.basis == "id-week-rule"
    assert crawl_range("CURATE-SAMPLE-2024") is None
    now = dt.datetime.now(dt.UTC)
    assert outside_crawl("CC-MAIN-2023-06", dt.datetime(2021, 1, 20, tzinfo=dt.UTC), now)
    assert not outside_crawl("CC-MAIN-2021-04", dt.datetime(2021, 1, 20, tzinfo=dt.UTC), now)
    assert outside_crawl(None, FAR, now)  # from the future of the lookup itself


def test_cli_attest_and_certify(planted, attested) -> None:
    from typer.testing import CliRunner

    from curate.cli import app

    runner = CliRunner()
    r = runner.invoke(
        app, ["attest", "--store", str(planted["store"]), "--index", str(planted["index"]), "--json", "--no-near"]
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["attested_before_cutoff"] == 3 and data["weak"] == 0
    r = runner.invoke(app, ["certify", "--store", str(planted["store"]), planted["mirror"]])
    assert r.exit_code == 0 and "index-capture [hard]" in r.output and "crawl-data/a.warc.gz" in r.output
    r = runner.invoke(app, ["attest", "--store", str(planted["store"]), "--index", str(planted["root"] / "nope")])
    assert r.exit_code == 2 and "matches no Parquet file" in r.output


# Fetch dates published or measured by others, to check the calendar's derived ranges against (facts, cited):
# Common Crawl's announcement of CC-MAIN-2024-51 ("crawled between December 1st and December 15th", 2024), and the
# earliest/latest en.wikipedia.org capture per crawl measured on the CDX server by E. Ross, "Common Crawl Time
# Ranges" (skeptric.com, 2021-11-27).
PUBLISHED_FETCH_DAYS = {
    "CC-MAIN-2024-51": ("2024-12-01", "2024-12-15"),
    "CC-MAIN-2021-43": ("2021-10-15", "2021-10-28"),
    "CC-MAIN-2021-39": ("2021-09-16", "2021-09-29"),
    "CC-MAIN-2021-31": ("2021-07-23", "2021-08-06"),
    "CC-MAIN-2021-25": ("2021-06-12", "2021-06-25"),
    "CC-MAIN-2021-21": ("2021-05-05", "2021-05-19"),
    "CC-MAIN-2021-17": ("2021-04-10", "2021-04-23"),
    "CC-MAIN-2021-10": ("2021-02-24", "2021-03-09"),
    "CC-MAIN-2021-04": ("2021-01-15", "2021-01-28"),
    "CC-MAIN-2020-50": ("2020-11-23", "2020-12-06"),
    "CC-MAIN-2020-45": ("2020-10-19", "2020-11-01"),
    "CC-MAIN-2020-40": ("2020-09-18", "2020-10-02"),
    "CC-MAIN-2020-34": ("2020-08-03", "2020-08-15"),
    "CC-MAIN-2020-29": ("2020-07-02", "2020-07-16"),
    "CC-MAIN-2020-24": ("2020-05-24", "2020-06-07"),
    "CC-MAIN-2020-16": ("2020-03-28", "2020-04-10"),
    "CC-MAIN-2020-10": ("2020-02-16", "2020-02-29"),
    "CC-MAIN-2020-05": ("2020-01-17", "2020-01-29"),
}


@pytest.mark.parametrize("crawl", sorted(PUBLISHED_FETCH_DAYS))
def test_calendar_ranges_hold_the_published_fetch_days(crawl: str) -> None:
    """The derived range of every crawl with published or measured fetch days holds them (a range that missed
    real captures would flag true evidence as a contradiction), and is listed in the calendar."""
    first, last = (dt.date.fromisoformat(d) for d in PUBLISHED_FETCH_DAYS[crawl])
    rng = load_calendar()[crawl]
    assert rng.first_fetch <= first and last <= rng.last_fetch
    assert (rng.last_fetch - rng.first_fetch).days <= 60  # range evidence, not a whole season


def test_looking_up_every_document_serves_an_earlier_cutoff(planted, attested, tmp_path: Path) -> None:
    """By default only what the cutoff leaves unproven is looked up; ``every`` looks up all documents with a
    digest, so a later decide with an earlier cutoff (here 2021-01-01, before the planted 2021-01-20 captures) finds
    the evidence in the store: nothing fetched after that cutoff attests."""
    store = tmp_path / "store"
    store.mkdir()
    shutil.copyfile(planted["store"] / "provenance.duckdb", store / "provenance.duckdb")
    con = open_store(store)
    (with_digest,) = con.execute(
        """SELECT count(*) FROM documents WHERE warc_payload_digest IS NOT NULL AND coalesce(payload_digest_ok, true)
           AND record_type IN ('response', 'resource')"""
    ).fetchone()
    con.close()
    every = attest(store, CUTOFF, indexes=[str(planted["index"])], every=True)
    assert attested.looked_up < every.looked_up <= with_digest
    assert every.attested == attested.attested
    early = tmp_path / "early.toml"
    early.write_text("cutoff = 2021-01-01\n", encoding="utf-8")
    decide(store, load_recipe(early))
    assert _tier(store, planted["mirror"])[0] == "post_cutoff"  # its earlier capture is after 2021-01-01
