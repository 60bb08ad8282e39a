"""Near-dedup quality and speed: curate vs datatrove's MinHash stages vs datasketch, same corpus, one run.

Corpus: ``--docs`` synthetic Zipf-English documents (~450 words, ~2.8 KB) of which 10% get planted copies:
exact copies and edited copies at target Jaccard levels 0.95/0.9/0.85/0.8 (true duplicates) and 0.75/0.7/0.6
(near misses). Truth is the *exact* Jaccard of word 5-gram sets, duplicate when >= 0.8.

Quality (curate, whole corpus): pairwise precision and recall of the clusters against the planted truth.
Speed (docs/s per core, CPU seconds): signatures alone and the whole stage (signatures, buckets, clustering),
for curate on the whole corpus and for all three on the same ``--peer-docs`` subset, with the same word
5-grams and the same number of hashes (curate's band split: 15 bands x 7 rows = 105 hashes).
Peak memory: curate's stage in its own process, reported per million documents.

Usage: python benchmarks/dedup.py [--docs 100000] [--peer-docs 5000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from itertools import combinations
from pathlib import Path

import numpy as np

LEVELS_DUP = (1.0, 0.95, 0.9, 0.85, 0.8)
LEVELS_MISS = (0.75, 0.7, 0.6)
BANDS, ROWS = 15, 7


def make_corpus(n_docs: int, seed: int = 1) -> tuple[list[str], list[tuple[int, int]]]:
    """Documents and the planted (original, copy) index pairs."""
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(50_000)])
    p = 1 / np.arange(1, len(vocab) + 1) ** 1.05
    p /= p.sum()
    n_base = int(n_docs / 1.25)
    docs = [" ".join(vocab[rng.choice(len(vocab), size=rng.integers(350, 550), p=p)]) for _ in range(n_base)]
    planted: list[tuple[int, int]] = []
    levels = LEVELS_DUP + LEVELS_MISS
    while len(docs) < n_docs:
        base = int(rng.integers(n_base))
        words = docs[base].split()
        target = levels[len(planted) % len(levels)]
        # replacing k scattered words breaks about 5k of the ~N 5-grams: J ~ (N - 5k) / (N + 5k)
        k = round(len(words) * (1 - target) / (5 * (1 + target))) if target < 1 else 0
        for i in rng.choice(len(words), size=k, replace=False):
            words[i] = f"edit{rng.integers(10**9)}"
        docs.append(" ".join(words))
        planted.append((base, len(docs) - 1))
    return docs, planted


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_curate(docs: list[str], work: Path, verify: str) -> dict[str, float]:
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    from curate.dedup.buckets import DedupBucketStep
    from curate.dedup.cluster import cluster_documents, split_chains
    from curate.dedup.minhash import Member, MinHasher, band_keys, choose_representatives, text_hash
    from curate.schema import DOCUMENT_COLUMNS, SHARD_DEDUP_FIELDS, arrow_schema
    from curate.store import duckdb_connect

    baseline = _rss_mb()
    t0 = time.process_time()
    mh = MinHasher(BANDS * ROWS, 5, seed=1)
    (work / "documents").mkdir(parents=True)
    schema = arrow_schema(DOCUMENT_COLUMNS, [pa.field("text", pa.string()), *SHARD_DEDUP_FIELDS])
    t_sig = 0.0
    for start in range(0, len(docs), 10_000):  # one shard per 10k documents, as stage-1 tasks write them
        rows = []
        for i, text in enumerate(docs[start : start + 10_000], start):
            t = time.process_time()
            sig = mh.signature(text)
            keys = band_keys(sig, BANDS, ROWS)
            t_sig += time.process_time() - t
            rows.append(
                {
                    "doc_id": f"d{i:08d}",
                    "text": text if verify == "exact" else None,
                    "text_hash": text_hash(text),
                    "minhash": sig.tolist(),
                    "bands": keys,
                    "status": "kept",
                }
            )
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), work / "documents" / f"{start // 10_000:05d}.parquet")
    list(DedupBucketStep(str(work), BANDS, "1GB").run(None, 0, 1) or ())
    con = duckdb_connect(":memory:", memory_limit="1GB", spill_dir=work / "tmp")
    roots = cluster_documents(
        con, work, threshold=0.8, num_perm=BANDS * ROWS, ngram=5, verify=verify, exact=True, near=True
    )
    when = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    chosen = choose_representatives([Member(d, True, when, False, 0, "") for d in roots], roots)
    chosen = split_chains(con, work, chosen, threshold=0.8, num_perm=BANDS * ROWS, verify=verify, ngram=5)
    total = time.process_time() - t0
    clusters: dict[str, list[int]] = {}
    for d, (rep, _, _) in chosen.items():
        clusters.setdefault(rep, []).append(int(d[1:]))
    for rep, members in clusters.items():  # the representative first
        members.sort(key=lambda i, r=int(rep[1:]): (i != r, i))
    (work / "clusters.json").write_text(json.dumps(list(clusters.values())))
    return {
        "sig_s": t_sig,
        "total_s": total,
        "stage_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - baseline,
    }


def run_datatrove(docs: list[str], work: Path) -> dict[str, float]:
    from datatrove.data import Document
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupSignature,
    )

    cfg = MinhashConfig(n_grams=5, num_buckets=BANDS, hashes_per_bucket=ROWS, seed=1)
    t0 = time.process_time()
    list(
        MinhashDedupSignature(str(work / "sigs"), cfg).run(
            (Document(text=t, id=str(i)) for i, t in enumerate(docs)), 0, 1
        )
        or ()
    )
    t_sig = time.process_time() - t0
    for b in range(BANDS):
        list(MinhashDedupBuckets(str(work / "sigs"), str(work / "buckets"), config=cfg).run(None, b, BANDS) or ())
    list(MinhashDedupCluster(str(work / "buckets"), str(work / "clusters"), config=cfg).run() or ())
    return {"sig_s": t_sig, "total_s": time.process_time() - t0}


def run_datasketch(docs: list[str]) -> dict[str, float]:
    from datasketch import MinHash, MinHashLSH

    t0 = time.process_time()
    sigs = []
    for t in docs:
        w = t.split()
        m = MinHash(num_perm=BANDS * ROWS, seed=1)
        m.update_batch([" ".join(w[i : i + 5]).encode() for i in range(len(w) - 4)])
        sigs.append(m)
    t_sig = time.process_time() - t0
    lsh = MinHashLSH(threshold=0.8, num_perm=BANDS * ROWS)
    for i, m in enumerate(sigs):
        lsh.query(m)
        lsh.insert(str(i), m)
    return {"sig_s": t_sig, "total_s": time.process_time() - t0}


def child(system: str, corpus: Path, n: int, verify: str) -> None:
    docs = json.loads(corpus.read_text())[:n]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if system == "curate":
            out = run_curate(docs, work, verify)
            out["clusters"] = json.loads((work / "clusters.json").read_text())
        elif system == "datatrove":
            out = run_datatrove(docs, work)
        else:
            out = run_datasketch(docs)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def quality(docs: list[str], planted: list[tuple[int, int]], clusters: list[list[int]]) -> dict[str, float]:
    from curate.dedup.minhash import jaccard

    cache: dict[tuple[int, int], float] = {}

    def j(a: int, b: int) -> float:
        key = (min(a, b), max(a, b))
        if key not in cache:
            cache[key] = jaccard(docs[key[0]], docs[key[1]], 5)
        return cache[key]

    groups: dict[int, list[int]] = {}
    for base, copy in planted:
        groups.setdefault(base, [base]).append(copy)
    # planted clusters: an original and its copies at Jaccard >= 0.8 with it (near misses stay outside)
    planted_clusters = [
        sorted({base} | {c for c in g if c != base and j(base, c) >= 0.8}) for base, g in groups.items()
    ]
    cluster_truth = {p for c in planted_clusters for p in combinations(c, 2)}
    predicted = {tuple(sorted(p)) for c in clusters for p in combinations(sorted(c), 2)}
    c_tp = len(predicted & cluster_truth)
    # stricter: a pair is true only when the two documents themselves are at Jaccard >= 0.8
    truth = {tuple(sorted(p)) for g in groups.values() for p in combinations(sorted(set(g)), 2) if j(*p) >= 0.8}
    tp = sum(1 for p in predicted if p in truth or j(*p) >= 0.8)
    found = sum(1 for p in truth if p in predicted)
    decisions = [(c[0], m) for c in clusters for m in c[1:]]  # each dropped member vs its representative
    good = sum(1 for rep, m in decisions if j(rep, m) >= 0.8)
    return {
        "cluster_precision": c_tp / len(predicted) if predicted else 1.0,
        "cluster_recall": c_tp / len(cluster_truth) if cluster_truth else 1.0,
        "precision": tp / len(predicted) if predicted else 1.0,
        "recall": found / len(truth) if truth else 1.0,
        "true_pairs": len(truth),
        "predicted_pairs": len(predicted),
        "decision_precision": good / len(decisions) if decisions else 1.0,
        "dropped": len(decisions),
    }


def spawn(system: str, corpus: Path, n: int, verify: str = "signature") -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", system, "--corpus", str(corpus), "--n", str(n), "--verify", verify],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--peer-docs", type=int, default=5_000)
    ap.add_argument("--child")
    ap.add_argument("--corpus", type=Path)
    ap.add_argument("--n", type=int)
    ap.add_argument("--verify", default="signature")
    args = ap.parse_args()
    if args.child:
        child(args.child, args.corpus, args.n, args.verify)
        return
    docs, planted = make_corpus(args.docs)
    corpus = Path(tempfile.mkdtemp()) / "corpus.json"
    corpus.write_text(json.dumps(docs))
    kb = sum(map(len, docs)) / len(docs) / 1000
    print(
        f"corpus: {len(docs)} docs, {kb:.1f} KB/doc, {len(planted)} planted copies; word 5-grams, {BANDS}x{ROWS} = {BANDS * ROWS} hashes"
    )
    for verify in ("signature", "exact"):
        r = spawn("curate", corpus, len(docs), verify)
        q = quality(docs, planted, r["clusters"])
        print(
            f"curate (verify={verify}) on {len(docs)} docs: vs planted clusters precision {q['cluster_precision']:.4f} "
            f"recall {q['cluster_recall']:.4f}; strict pairwise precision {q['precision']:.4f} recall {q['recall']:.4f} "
            f"({q['true_pairs']} true pairs, {q['predicted_pairs']} predicted); dropped-vs-representative precision "
            f"{q['decision_precision']:.4f} ({q['dropped']} dropped); signatures {len(docs) / r['sig_s']:.0f} docs/s/core, "
            f"whole stage {len(docs) / r['total_s']:.0f} docs/s/core; stage memory {r['stage_rss_mb']:.0f} MB above the loaded corpus "
            f"(~{r['stage_rss_mb'] * 1e6 / len(docs) / 1024:.2f} GB per million docs)"
        )
    n = min(args.peer_docs, len(docs))
    res = {s: spawn(s, corpus, n) for s in ("curate", "datatrove", "datasketch")}
    peer = res["datatrove"]
    print(f"\nsame {n}-doc subset, docs/s per core (CPU seconds):")
    print(f"{'system':<12}{'signatures':>12}{'whole stage':>13}{'sig vs datatrove':>18}{'stage vs datatrove':>20}")
    for s, r in res.items():
        print(
            f"{s:<12}{n / r['sig_s']:>12.0f}{n / r['total_s']:>13.0f}{peer['sig_s'] / r['sig_s']:>17.1f}x{peer['total_s'] / r['total_s']:>19.1f}x"
        )


if __name__ == "__main__":
    main()
