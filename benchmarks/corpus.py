"""Write N MB of Common-Crawl-shaped WARC for benchmarks, offline and deterministically.

Each capture is a CC-style record group: request, response (gzip member each), metadata; one warcinfo per
file. Payloads alternate between the real fixture pages of ``../shared/data/html`` (with their own charsets)
and generated article pages (texts from ``../shared/data/mgt``) padded with site boilerplate (navigation,
inline CSS/JS, sidebars, footers) to realistic CC page sizes of 20-100 KB.

Usage: python benchmarks/corpus.py OUT_DIR --mb 100 [--file-mb 50] [--seed 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import io
import json
import random
import uuid
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
NS = uuid.UUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")


def _fixture_pages() -> list[bytes]:
    pages = sorted((SHARED / "html").rglob("*.html"))
    return [p.read_bytes() for p in pages]


def _texts() -> list[str]:
    with gzip.open(SHARED / "mgt" / "train.jsonl.gz", "rt", encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh]


def _boilerplate(rng: random.Random, target: int) -> tuple[str, str]:
    css = (
        "<style>"
        + "".join(f".c{i}{{margin:{i}px;padding:{i % 7}px;color:#{i:06x}}}" for i in range(rng.randrange(200, 600)))
        + "</style>"
    )
    js = (
        "<script>"
        + "".join(f"window.t{i}=function(a){{return a*{i}+{i % 13};}};" for i in range(rng.randrange(100, 400)))
        + "</script>"
    )
    nav = (
        "<nav><ul>"
        + "".join(f'<li><a href="/section/{i}">Section {i}</a></li>' for i in range(rng.randrange(30, 120)))
        + "</ul></nav>"
    )
    side = (
        "<aside><h3>Popular</h3><ul>"
        + "".join(
            f'<li><a href="/p/{rng.randrange(10**6)}">Story number {i} you may like</a></li>'
            for i in range(rng.randrange(20, 80))
        )
        + "</ul></aside>"
    )
    head, tail = css + js, nav + side
    while len(head) + len(tail) < target:
        tail += "<div class='ad'>" + "<span>sponsored</span>" * 40 + "</div>"
    return head, tail


def _generated_page(rng: random.Random, texts: list[str], target: int) -> bytes:
    body = "".join(f"<p>{t}</p>" for t in rng.sample(texts, 3))
    head, tail = _boilerplate(rng, max(0, target - len(body)))
    title = " ".join(body[3:60].split()[:6])
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>{head}</head><body>{tail}<main><article><h1>{title}</h1>{body}</article></main>"
        "<footer>&copy; 2021 Example Media</footer></body></html>"
    ).encode("utf-8", "replace")


def write_corpus(out: Path, total_mb: float, file_mb: float = 50, seed: int = 1) -> list[Path]:
    """Write WARC files totalling about ``total_mb`` MB (compressed) into ``out``; returns their paths."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    rng = random.Random(seed)
    pages, texts = _fixture_pages(), _texts()
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    n = 0
    written = 0.0
    while written < total_mb * 1e6:
        path = out / f"BENCH-MAIN-2021-10-{len(files):05d}.warc.gz"
        buf = io.BytesIO()
        w = WARCWriter(buf, gzip=True)
        w.write_record(
            w.create_warcinfo_record(
                path.name, {"isPartOf": "BENCH-MAIN-2021-10", "software": "curate benchmark corpus"}
            )
        )
        while buf.tell() < file_mb * 1e6 and written + buf.tell() < total_mb * 1e6:
            n += 1
            when = dt.datetime(2021, 3, 1) + dt.timedelta(seconds=n * 7)
            url = f"https://site{rng.randrange(5000)}.example/{n}.html"
            body = pages[n % len(pages)] if n % 2 else _generated_page(rng, texts, rng.randrange(20_000, 100_000))
            h = {
                "WARC-Date": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "WARC-Record-ID": f"<urn:uuid:{uuid.uuid5(NS, str(n))}>",
            }
            req = StatusAndHeaders(
                f"GET /{n}.html HTTP/1.1",
                [("Host", url.split("/")[2]), ("User-Agent", "CCBot/2.0")],
                is_http_request=True,
            )
            w.write_record(
                w.create_warc_record(
                    url,
                    "request",
                    http_headers=req,
                    warc_headers_dict=dict(h, **{"WARC-Record-ID": f"<urn:uuid:{uuid.uuid5(NS, f'q{n}')}>"}),
                )
            )
            resp = StatusAndHeaders(
                "200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(body)))], protocol="HTTP/1.1"
            )
            w.write_record(
                w.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=resp, warc_headers_dict=h)
            )
            meta = f"fetchTimeMs: {rng.randrange(50, 900)}\r\ncharset-detected: UTF-8\r\n".encode()
            w.write_record(
                w.create_warc_record(
                    url,
                    "metadata",
                    payload=io.BytesIO(meta),
                    warc_content_type="application/warc-fields",
                    warc_headers_dict=dict(h, **{"WARC-Record-ID": f"<urn:uuid:{uuid.uuid5(NS, f'm{n}')}>"}),
                )
            )
        path.write_bytes(buf.getvalue())
        written += buf.tell()
        files.append(path)
    return files


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--mb", type=float, default=100)
    ap.add_argument("--file-mb", type=float, default=50)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    for f in write_corpus(args.out, args.mb, args.file_mb, args.seed):
        print(f, f.stat().st_size)


def pack_documents(texts: list[str], n: int, doc_bytes: int) -> list[str]:
    """``n`` documents of about ``doc_bytes`` bytes each: ``texts`` joined by blank lines in turn (cycled when
    there are too few), cut at a word boundary."""
    docs: list[str] = []
    i = 0
    while len(docs) < n:
        parts: list[str] = []
        size = 0
        while size < doc_bytes:
            parts.append(texts[i % len(texts)])
            size += len(parts[-1].encode()) + 2
            i += 1
        docs.append("\n\n".join(parts).encode()[:doc_bytes].decode(errors="ignore").rsplit(" ", 1)[0])
    return docs
