"""Read + extract throughput: curate's provenance reader vs datatrove's WarcReader → Trafilatura, same files, one run.

Each configuration runs in its own subprocess on one core (so peak RSS is its own), over the same WARC files:

- ``datatrove``: datatrove's ``WarcReader`` → ``Trafilatura()`` (its defaults: favour_precision, 1 s timeout,
  extraction in its sandbox process), the peer.
- ``curate-trafilatura``: ``curate.read.iter_records`` (full provenance: offsets, digests checked, charset
  detection, quarantine) → licence/opt-out tagger on the raw HTML → trafilatura (favor_precision).
- ``curate-resiliparse``: the same with resiliparse's main-content extraction.

Prints docs/s and MB/s per core (CPU seconds of the process and its children), the licence stage's share of the
time, peak RSS, and ratios against the peer.

Usage: python benchmarks/ingest.py [--mb 100] [--corpus DIR] [--configs datatrove,curate-trafilatura,curate-resiliparse]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_datatrove(files: list[str]) -> dict[str, float]:
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.readers import WarcReader

    folder = os.path.dirname(files[0])
    reader = WarcReader(folder, glob_pattern="*.warc.gz")
    docs = chars = 0
    for doc in Trafilatura().run(reader.run()):
        docs += 1
        chars += len(doc.text)
    return {"docs_out": docs, "chars": chars, "license_s": 0.0}


def run_curate(files: list[str], extractor: str) -> dict[str, float]:
    from curate.extract import extract_text
    from curate.licenses.tagger import tag_html
    from curate.read.warc import iter_records

    docs = chars = 0
    license_s = 0.0
    for path in files:
        for doc in iter_records(path):
            html = doc.metadata.pop("_html", None)
            if html is None:
                continue
            t = time.process_time()
            tag_html(html, doc.metadata.get("_headers"))
            license_s += time.process_time() - t
            text = extract_text(html, extractor, doc.metadata.get("url"))
            if text:
                docs += 1
                chars += len(text)
    return {"docs_out": docs, "chars": chars, "license_s": license_s}


def child(config: str, files: list[str]) -> None:
    """Run one configuration and print its measurements as JSON."""
    from warcio.archiveiterator import ArchiveIterator

    responses = sum(1 for f in files for r in ArchiveIterator(open(f, "rb")) if r.rec_type == "response")  # noqa: SIM115
    before = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    out = run_datatrove(files) if config == "datatrove" else run_curate(files, config.split("-", 1)[1])
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(a.ru_utime + a.ru_stime - (b.ru_utime + b.ru_stime) for a, b in zip(after, before, strict=True))
    rss = max(after[0].ru_maxrss, after[1].ru_maxrss) / 1024
    print(
        json.dumps({"config": config, "responses": responses, "cpu_s": cpu, "wall_s": wall, "peak_rss_mb": rss, **out})
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=100, help="corpus size to generate (ignored with --corpus)")
    ap.add_argument("--corpus", type=Path, help="existing folder of *.warc.gz to use")
    ap.add_argument("--configs", default="datatrove,curate-trafilatura,curate-resiliparse")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args, rest = ap.parse_known_args()
    if args.child:
        child(args.child, rest)
        return
    corpus = args.corpus
    if corpus is None:
        sys.path.insert(0, str(HERE))
        from corpus import write_corpus

        corpus = Path(f"/tmp/curate-bench-{int(args.mb)}mb")
        if not corpus.exists():
            write_corpus(corpus, args.mb)
    files = sorted(str(p) for p in corpus.glob("*.warc.gz"))
    mb = sum(os.path.getsize(f) for f in files) / 1e6
    results = []
    for config in args.configs.split(","):
        proc = subprocess.run(
            [sys.executable, __file__, "--child", config, *files], capture_output=True, text=True, check=True
        )
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    peer = next((r for r in results if r["config"] == "datatrove"), None)
    print(
        f"corpus: {corpus} · {len(files)} files · {mb:.1f} MB compressed · {results[0]['responses']} responses · python {sys.version.split()[0]}"
    )
    print(
        f"{'config':<20}{'docs/s/core':>12}{'MB/s/core':>11}{'docs out':>10}{'licence %':>10}{'peak RSS MB':>13}{'vs datatrove':>14}"
    )
    for r in results:
        dps = r["responses"] / r["cpu_s"]
        ratio = f"{dps / (peer['responses'] / peer['cpu_s']):.2f}x" if peer else "-"
        share = 100 * r["license_s"] / r["cpu_s"]
        print(
            f"{r['config']:<20}{dps:>12.1f}{mb / r['cpu_s']:>11.2f}{r['docs_out']:>10}{share:>9.1f}%{r['peak_rss_mb']:>13.0f}{ratio:>14}"
        )


if __name__ == "__main__":
    main()
