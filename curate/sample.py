"""Build the sample crawl that ships in ``sample/``: a generated WARC plus copies of real WARC fixtures.

The generated ``sample/generated/sample-crawl.warc.gz`` is made deterministically (fixed seed, record ids and
dates; gzip headers without timestamps) from the labelled texts of ``shared/data/mgt`` — only from groups of
the classifier's *validation* split, so the demo's MGT scores are honest. It gives every stage work to do:
human and model-generated texts captured before and after the cutoff, exact re-captures and edited
near-duplicates, licence markup of every kind (page, media-only, non-commercial, conflicting), opt-out
headers and metas, and bad records (malformed date, 404, non-HTML, revisit, undecodable bytes).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import io
import json
import random
import shutil
import uuid
from pathlib import Path
from typing import Any

from curate.digests import sha1_digest
from curate.errors import InputError
from curate.resources import SAMPLE_DIR
from curate.score.labelled import is_validation_group, read_labelled

SEED = 20221130
N_PAGES = 300
CRAWL_ID = "CURATE-SAMPLE-2024"
NS = uuid.UUID("5a1e6d2c-4b1f-4f0e-9c59-2b8d4d3f0c11")
FIXTURES = [
    "warc-resiliparse/tests/data/warcfile.warc.gz",
    "warc-resiliparse/tests/data/clipped.warc.gz",
    "warc-resiliparse/tests/data/clueweb-quirk.warc.gz",
    "warc-whirlwind/whirlwind.warc.gz",
    "warc-whirlwind/whirlwind.warc.wet.gz",
    "warc-dolma/tests/data/warc/sample-0000.warc.gz",
    "warc-dolma/tests/data/warc/sample-0001.warc.gz",
    "warc-warcio/test/data/example.warc.gz",
    "warc-warcio/test/data/example-iana.org-chunked.warc",
    "warc-warcio/test/data/post-test.warc.gz",
]
SITES = [
    "daily-ledger",
    "river-review",
    "open-notes",
    "field-journal",
    "city-desk",
    "quiet-pages",
    "north-post",
    "lab-log",
]
LICENSE_MARKUP = {
    "link": '<link rel="license" href="https://creativecommons.org/licenses/by/4.0/">',
    "a-footer": '<footer>Text is available under <a rel="license" href="http://creativecommons.org/licenses/by-sa/4.0/deed.en">CC BY-SA 4.0</a>.</footer>',
    "meta": '<meta name="dcterms.license" content="https://creativecommons.org/publicdomain/zero/1.0/">',
    "jsonld": '<script type="application/ld+json">{"@context":"https://schema.org","@type":"Article","license":"https://creativecommons.org/licenses/by/3.0/"}</script>',
    "media": '<figure><img src="photo.jpg" alt=""><figcaption>Photo: J. Doe, <a href="https://creativecommons.org/licenses/by/2.0/">CC BY 2.0</a></figcaption></figure>',
    "nc": '<link rel="license" href="https://creativecommons.org/licenses/by-nc-nd/4.0/">',
    "conflict": '<link rel="license" href="https://creativecommons.org/licenses/by/4.0/"><meta name="license" content="https://creativecommons.org/licenses/by-nc/4.0/">',
}


def _date(rng: random.Random, pre: bool) -> dt.datetime:
    lo, hi = (
        (dt.datetime(2019, 1, 1), dt.datetime(2022, 11, 1))
        if pre
        else (dt.datetime(2023, 1, 15), dt.datetime(2025, 6, 1))
    )
    return lo + dt.timedelta(seconds=rng.randrange(int((hi - lo).total_seconds())))


def _page(title: str, text: str, site: str, extra_head: str = "", extra_body: str = "") -> bytes:
    paras = "\n".join(f"<p>{html.escape(p.strip())}</p>" for p in text.split("\n") if p.strip())
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>{extra_head}</head>\n<body>"
        f'<nav><a href="/">Home</a> · <a href="/archive">Archive</a> · <a href="/about">About {site}</a></nav>\n'
        f"<main><article><h1>{html.escape(title)}</h1>\n{paras}\n</article></main>\n{extra_body}"
        f'<footer class="site-footer">&copy; {site.replace("-", " ").title()} · <a href="/contact">Contact</a></footer>'
        "</body></html>\n"
    ).encode()


def _edit(text: str, rng: random.Random) -> str:
    """A near-duplicate: a few words changed or removed (Jaccard of 5-grams stays high)."""
    words = text.split(" ")
    for _ in range(max(1, len(words) // 80)):
        i = rng.randrange(len(words))
        words[i] = rng.choice(["indeed", "also", "however", "really", ""])
    return " ".join(w for w in words if w)


def _pick_rows(rows: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:

    val = [r for r in rows if is_validation_group(str(r["group"])) and 600 <= len(r["text"]) <= 4000]
    humans = sorted((r for r in val if r["label"] == "human"), key=lambda r: r["id"])
    machines = sorted((r for r in val if r["label"] == "machine"), key=lambda r: r["id"])
    rng.shuffle(humans)
    rng.shuffle(machines)
    return humans[: N_PAGES // 2] + machines[: N_PAGES // 2]


class _Writer:
    def __init__(self, fh: io.BufferedWriter) -> None:
        from warcio.warcwriter import WARCWriter

        self.w = WARCWriter(fh, gzip=True, warc_version="WARC/1.1")
        self.n = 0

    def _headers(self, when: dt.datetime, extra: dict[str, str] | None = None) -> dict[str, str]:
        self.n += 1
        h = {
            "WARC-Record-ID": f"<urn:uuid:{uuid.uuid5(NS, str(self.n))}>",
            "WARC-Date": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        h.update(extra or {})
        return h

    def warcinfo(self) -> None:
        info = {"software": "curate sample builder", "isPartOf": CRAWL_ID, "description": "generated sample crawl"}
        rec = self.w.create_warcinfo_record("sample-crawl.warc.gz", info)
        rec.rec_headers.replace_header("WARC-Record-ID", self._headers(dt.datetime(2025, 6, 1))["WARC-Record-ID"])
        rec.rec_headers.replace_header("WARC-Date", "2025-06-01T00:00:00Z")
        self.w.write_record(rec)

    def response(
        self,
        url: str,
        when: dt.datetime | None,
        body: bytes,
        *,
        status: str = "200 OK",
        ctype: str = "text/html; charset=utf-8",
        extra_http: list[tuple[str, str]] | None = None,
        raw_date: str | None = None,
    ) -> None:
        from warcio.statusandheaders import StatusAndHeaders

        http = StatusAndHeaders(
            status,
            [("Content-Type", ctype), ("Content-Length", str(len(body))), *(extra_http or [])],
            protocol="HTTP/1.1",
        )
        headers = self._headers(when or dt.datetime(2024, 1, 1))
        if raw_date is not None:
            headers["WARC-Date"] = raw_date
        rec = self.w.create_warc_record(
            url, "response", payload=io.BytesIO(body), http_headers=http, warc_headers_dict=headers
        )
        self.w.write_record(rec)

    def revisit(self, url: str, when: dt.datetime, digest: str, refers_date: str) -> None:
        from warcio.statusandheaders import StatusAndHeaders

        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
        headers = self._headers(when, {"WARC-Refers-To-Target-URI": url, "WARC-Refers-To-Date": refers_date})
        rec = self.w.create_revisit_record(url, digest, url, refers_date, http_headers=http)
        for k, v in headers.items():
            rec.rec_headers.replace_header(k, v)
        self.w.write_record(rec)


def generate_warc(rows: list[dict[str, Any]], path: Path) -> dict[str, int]:
    """Write the generated sample WARC to ``path``; returns counts of what it planted."""
    rng = random.Random(SEED)
    picked = _pick_rows(rows, rng)
    planted = {
        "pages": 0,
        "exact_recaptures": 0,
        "near_duplicates": 0,
        "license_pages": 0,
        "optouts": 0,
        "bad_records": 0,
    }
    buf = io.BytesIO()
    w = _Writer(buf)  # type: ignore[arg-type]
    w.warcinfo()
    kinds = list(LICENSE_MARKUP)
    first_captures: list[tuple[str, dt.datetime, bytes, str]] = []
    for i, r in enumerate(picked):
        site = SITES[i % len(SITES)]
        human = r["label"] == "human"
        old_generator = r.get("generator") in ("gpt2-xl", "gpt-neo-2.7B", "gpt-j-6B", "opt-2.7b", "gpt-neox-20b")
        pre = rng.random() < (0.6 if human else (0.3 if old_generator else 0.0))
        when = _date(rng, pre)
        title = " ".join(r["text"].split()[:8]).strip(" ,.;:") or "Untitled"
        head, body_extra, http_extra = "", "", []
        if rng.random() < 0.2:
            kind = kinds[i % len(kinds)]
            markup = LICENSE_MARKUP[kind]
            if kind in ("a-footer", "media"):
                body_extra = markup
            else:
                head = markup
            planted["license_pages"] += 1
        roll = rng.random()
        if roll < 0.03:
            http_extra = [("X-Robots-Tag", "noai, noimageai")]
            planted["optouts"] += 1
        elif roll < 0.05:
            head += '<meta name="robots" content="noai">' if i % 2 else '<meta name="tdm-reservation" content="1">'
            planted["optouts"] += 1
        url = f"https://{site}.example/{when.year}/{hashlib.sha1(r['id'].encode()).hexdigest()[:10]}.html"
        body = _page(title, r["text"], site, head, body_extra)
        w.response(url, when, body, extra_http=http_extra)
        planted["pages"] += 1
        if pre and human:
            first_captures.append((url, when, body, r["text"]))
    for j, (url, _when, body, text) in enumerate(first_captures[:40]):
        later = _date(rng, False)
        if j % 2 == 0:
            w.response(url, later, body)
            planted["exact_recaptures"] += 1
        else:
            site = url.split("//")[1].split(".")[0]
            w.response(
                url.replace(".html", "-copy.html").replace(site, "mirror-site"),
                later,
                _page("Reposted", _edit(text, rng), "mirror-site"),
            )
            planted["near_duplicates"] += 1
    bad_when = dt.datetime(2021, 5, 5)
    w.response(
        "https://broken-dates.example/a.html",
        None,
        _page("Bad date", picked[0]["text"], "broken-dates"),
        raw_date="2021-13-45T99:00:00Z",
    )
    w.response(
        "https://daily-ledger.example/missing.html",
        bad_when,
        b"<html><body>Not found</body></html>",
        status="404 Not Found",
    )
    w.response(
        "https://files.example/report.pdf",
        bad_when,
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\n",
        ctype="application/pdf",
    )
    w.response(
        "https://binary.example/x.html", bad_when, random.Random(7).randbytes(4000), ctype="text/html; charset=utf-8"
    )
    w.response(
        "https://daily-ledger.example/xss.html",
        dt.datetime(2020, 2, 2),
        _page("<script>alert('xss')</script> A page whose title is markup", picked[1]["text"], "daily-ledger"),
        extra_http=[("X-Robots-Tag", "noai <img src=x onerror=alert(1)>")],
    )
    url0, when0, body0, _ = first_captures[0]
    digest = sha1_digest(body0)
    w.revisit(url0, _date(rng, False), digest, when0.strftime("%Y-%m-%dT%H:%M:%SZ"))
    planted["bad_records"] = 5
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    return planted


def build_sample(data: Path, warc_fixtures: Path, out: Path | None = None) -> list[Path]:
    """(Re)build ``sample/``: the generated WARC, the real fixtures with their LICENSE/NOTICE, and SOURCE.md."""

    if not data.exists():
        raise InputError(f"labelled texts {data} not found (they live in ../shared/data/mgt/train.jsonl.gz)")
    target = out or SAMPLE_DIR
    rows = read_labelled(data)
    planted = generate_warc(rows, target / "generated" / "sample-crawl.warc.gz")
    written = [target / "generated" / "sample-crawl.warc.gz"]
    (target / "generated" / "planted.json").write_text(
        json.dumps(planted, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    for rel in FIXTURES:
        src = warc_fixtures / rel
        if not src.exists():
            raise InputError(f"WARC fixture {src} not found")
        origin = rel.split("/", 1)[0]
        dst = target / "fixtures" / origin / Path(rel).name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        for extra in ("LICENSE", "NOTICE"):
            if (warc_fixtures / origin / extra).exists():
                shutil.copyfile(warc_fixtures / origin / extra, dst.parent / extra)
        written.append(dst)
    return written
