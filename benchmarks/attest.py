"""Cost of `curate attest` index lookups on a generated Common Crawl columnar index of realistic shape.

Generates ROWS index rows in Common Crawl's layout (crawl=…/subset=warc/part-NNNNN.parquet, the index's columns,
base32 digests, URLs, timestamps without a zone as CC writes them), then times `curate.attest.lookup_index` (the
scan + join `curate attest` runs) for store sets of DOCS documents, a fraction of whose digests are planted in
the index. Prints seconds per lookup and the cost per million store documents and per billion index rows.

    python benchmarks/attest.py --rows 10000000 --docs 100000 1000000 --out /tmp/cc-index-bench

By hand, not in CI; timings depend on the machine (state it with the numbers).
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import time
from pathlib import Path

import duckdb

from curate.attest import lookup_index
from curate.digests import stored_forms
from curate.run.progress import NullReporter

CRAWLS = ("CC-MAIN-2020-05", "CC-MAIN-2020-10", "CC-MAIN-2021-04", "CC-MAIN-2021-10", "CC-MAIN-2022-05")


def generate(out: Path, rows: int, files_per_crawl: int) -> None:
    """Write the index: rows spread over CRAWLS x files_per_crawl files (row groups as DuckDB writes them)."""
    con = duckdb.connect()
    per_file = rows // (len(CRAWLS) * files_per_crawl)
    n = 0
    for c, crawl in enumerate(CRAWLS):
        folder = out / f"crawl={crawl}" / "subset=warc"
        folder.mkdir(parents=True, exist_ok=True)
        for f in range(files_per_crawl):
            start = n
            con.execute(
                f"""COPY (SELECT 'com,site' || (i % 100003) || ')/page/' || i AS url_surtkey,
                           'https://site' || (i % 100003) || '.example/page/' || i AS url,
                           TIMESTAMP '2020-01-15' + INTERVAL ({c} * 90) DAY + to_seconds(i % 1000000) AS fetch_time,
                           translate(substr(md5(i::VARCHAR) || md5((i + 7)::VARCHAR), 1, 32),
                                     '0123456789abcdef', 'ABCDEFGHIJKLMNOP') AS content_digest,
                           'crawl-data/{crawl}/segments/x/warc/part-' || (i % 80000) || '.warc.gz' AS warc_filename,
                           (i * 7919 % 1000000000)::INTEGER AS warc_record_offset,
                           (1000 + i % 50000)::INTEGER AS warc_record_length,
                           200::SMALLINT AS fetch_status, 'text/html' AS content_mime_detected
                    FROM range({start}, {start + per_file}) t(i))
                    TO '{folder / f"part-{f:05d}.parquet"}' (FORMAT parquet, COMPRESSION zstd)"""
            )
            n += per_file
    con.close()


def keys_for(docs: int, rows: int, planted: float) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Store-side keys: ``planted`` of the documents carry a digest present in the index (at spread row
    numbers), the rest a digest that is not."""
    con = duckdb.connect()
    step = max(1, rows // max(1, int(docs * planted)))
    hits = con.execute(
        f"""SELECT translate(substr(md5(i::VARCHAR) || md5((i + 7)::VARCHAR), 1, 32), '0123456789abcdef',
                             'ABCDEFGHIJKLMNOP') FROM range(0, {rows}, {step}) t(i) LIMIT {int(docs * planted)}"""
    ).fetchall()
    con.close()
    digests = [f"sha1:{h[0]}" for h in hits]
    digests += ["sha1:" + base64.b32encode(os.urandom(20)).decode() for _ in range(docs - len(digests))]
    keys: dict[str, list[str]] = {"key": [], "doc_id": [], "digest": []}
    urls: dict[str, list[str]] = {"url": [], "doc_id": []}
    for i, d in enumerate(digests):
        for form in stored_forms(d):
            keys["key"].append(form)
            keys["doc_id"].append(f"d{i}")
            keys["digest"].append(d)
        urls["url"].append(f"https://store{i}.example/x")
        urls["doc_id"].append(f"d{i}")
    return keys, urls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--files-per-crawl", type=int, default=4)
    ap.add_argument("--docs", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--planted", type=float, default=0.01)
    ap.add_argument("--memory", default="2GB")
    ap.add_argument("--out", type=Path, default=Path("/tmp/cc-index-bench"))
    args = ap.parse_args()
    index = args.out / "index"
    if not index.exists():
        t = time.perf_counter()
        generate(index, args.rows, args.files_per_crawl)
        print(f"generated {args.rows} rows in {time.perf_counter() - t:.1f} s")
    size = sum(p.stat().st_size for p in index.rglob("*.parquet"))
    print(
        f"index: {args.rows} rows, {size / 1e6:.0f} MB, {len(list(index.rglob('*.parquet')))} files; {os.cpu_count()} CPUs"
    )
    for docs in args.docs:
        keys, urls = keys_for(docs, args.rows, args.planted)
        for near in (False, True):
            t = time.perf_counter()
            found, _ = lookup_index(
                [str(index)],
                keys,
                urls,
                pass_id=1,
                near=near,
                memory_limit=args.memory,
                spill_dir=args.out / "spill",
                reporter=NullReporter(),
            )
            s = time.perf_counter() - t
            hard = sum(1 for e in found if e["strength"] == "hard")
            print(
                f"docs {docs:>9} near={near!s:<5} {s:7.1f} s  {hard} digest matches "
                f"(planted {int(docs * args.planted)})  {s / docs * 1e6:8.1f} s per million docs  "
                f"{s / args.rows * 1e9:8.0f} s per billion index rows"
            )
    shutil.rmtree(args.out / "spill", ignore_errors=True)


if __name__ == "__main__":
    main()
