"""Peak memory per stage and per task of the whole pipeline, on generated Common-Crawl-shaped input.

Runs the real commands one after another as subprocesses (``curate ingest``, ``dedup``, ``decide``, ``mix``,
``report``) into a fresh store and polls their process trees (``/proc`` through psutil, every 0.1 s):

- ``driver``: peak RSS of the command's own process (for ``ingest`` it also holds the store load);
- ``task``: peak RSS of the largest worker process (a stage-1 task, a tokenize or merge task), when the
  command ran its tasks in worker processes;
- ``tree``: peak of the summed RSS of the whole tree (what the machine must have);
- CPU seconds of the tree (every process as last seen by the poll) and documents per CPU-second.

Usage: python benchmarks/memory.py --mb 100 [--mb 1000 ...] [--file-mb 50] [--corpus-root /tmp] [--workers 2]
[--extractor resiliparse]  (``extract.extractor`` for the run; the recipe's default, trafilatura, otherwise)
[--timeline 60]  (print the stage-1 tasks' records read and each worker's RSS once a minute during the ingest)
[--keep DIR]  (keep each run folder under DIR)  [--resume DIR]  (go on with a kept run folder whose ingest stopped)
[--stages mix,report]  (only these stages; with --resume, to measure a stage again on a kept store)

The corpus for each size is written once by ``benchmarks/corpus.py`` (``--file-mb`` files, one stage-1 task each)
under ``--corpus-root`` and reused.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
STAGES = ("ingest", "dedup", "decide", "mix", "report")


def _progress(store: Path) -> tuple[int, int]:
    """(records read, stage-1 tasks done) from the progress files the running ingest's tasks write."""
    records = done = 0
    for f in store.glob("work/ingest-*/progress/*.json"):
        with contextlib.suppress(OSError, ValueError):
            d = json.loads(f.read_text(encoding="utf-8"))
            records, done = records + int(d["records"]), done + bool(d["done"])
    return records, done


def measure(
    cmd: list[str], poll_s: float = 0.1, timeline_s: float = 0.0, store: Path | None = None
) -> dict[str, float]:
    """Run ``cmd``; return its wall and CPU seconds and the peak RSS (MB) of its driver, largest worker and tree,
    and the largest worker's peak anonymous RSS (RSS less file-backed pages: memory-mapped files such as the mix's
    token files count in RSS but are page cache the kernel can drop).
    ``timeline_s`` > 0: also print, that often, the records its stage-1 tasks have read (from ``store``'s
    progress files) and the current RSS of the driver and of each worker (the flatness of a task's memory)."""
    import psutil

    start = time.perf_counter()
    next_line = start + timeline_s
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    root = psutil.Process(proc.pid)
    driver = task = tree = anon = 0
    cpu: dict[int, float] = {}  # CPU seconds of every process of the tree, as last seen (pool workers are not
    # the driver's children, so the driver's RUSAGE_CHILDREN would miss them)
    while proc.poll() is None:
        try:
            kids = root.children(recursive=True)
            rss_root = root.memory_info().rss
            t = root.cpu_times()
            cpu[root.pid] = t.user + t.system
        except psutil.Error:
            break
        rss_kids = []
        for k in kids:
            with contextlib.suppress(psutil.Error):
                info = k.memory_info()
                rss_kids.append(info.rss)
                anon = max(anon, info.rss - info.shared)
                t = k.cpu_times()
                cpu[k.pid] = t.user + t.system
        driver = max(driver, rss_root)
        if timeline_s and store is not None and time.perf_counter() >= next_line:
            next_line += timeline_s
            records, done = _progress(store)
            workers = " ".join(f"{r / 2**20:.0f}" for r in sorted(rss_kids, reverse=True) if r > 100 * 2**20)
            print(
                f"    {time.perf_counter() - start:7.0f} s  records {records:>8}  tasks done {done:>4}  "
                f"driver {rss_root / 2**20:.0f} MiB  workers (> 100 MiB) {workers or '-'} MiB",
                flush=True,
            )
        task = max(task, *rss_kids, 0)
        tree = max(tree, rss_root + sum(rss_kids))
        time.sleep(poll_s)
    _, err = proc.communicate()
    if proc.returncode != 0:
        print(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-1500:]}", file=sys.stderr, flush=True)
    mb = 1024 * 1024
    return {
        "failed": float(proc.returncode != 0),
        "wall_s": time.perf_counter() - start,
        "cpu_s": sum(cpu.values()),
        "driver_mb": driver / mb,
        "task_mb": task / mb,
        "tree_mb": tree / mb,
        "task_anon_mb": anon / mb,
    }


def corpus(root: Path, mb: int, file_mb: int) -> Path:
    """The generated corpus of ``mb`` MB in files of ``file_mb`` MB under ``root`` (written on first use)."""
    folder = root / f"mem-{mb}mb-{file_mb}"
    if not any(folder.glob("*.warc.gz")):
        sys.path.insert(0, str(HERE))
        from corpus import write_corpus

        write_corpus(folder, mb, file_mb)
    return folder


def run_size(
    folder: Path,
    workers: int,
    keep: Path | None,
    extractor: str | None = None,
    timeline_s: float = 0.0,
    resume: Path | None = None,
    only: frozenset[str] | None = None,
) -> tuple[dict[str, dict[str, float]], dict[str, int]]:
    """Every stage on ``folder`` into a fresh store (or, with ``resume``, a kept run folder whose ingest stopped:
    its stage-1 tasks are kept); returns the measurements by stage and the store's counts. Stops at the first
    stage that fails. ``only``: run just these stages (of ``STAGES``; on a ``resume`` folder whose earlier
    stages finished, e.g. to measure the mix again after a change)."""
    curate = [sys.executable, "-m", "curate.cli"]
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    tmp = resume or Path(tempfile.mkdtemp(prefix="curate-mem-", dir=keep))
    store = tmp / "store"
    print(f"{folder} → {store}", flush=True)
    recipe = tmp / "recipe.toml"
    text = f"[executor]\nworkers = {workers}\n"  # the mix's task count is the recipe default (automatic)
    if extractor:
        text += f'[extract]\nextractor = "{extractor}"\n'
    if resume is None:
        recipe.write_text(text, encoding="utf-8")
    common = ["--store", str(store), "-q"]
    again = ["--resume"] if resume else []
    stages = {
        "ingest": [*curate, "ingest", str(folder), *common, "--recipe", str(recipe), *again],
        "dedup": [*curate, "dedup", *common, "--recipe", str(recipe)],
        "decide": [*curate, "decide", *common, "--recipe", str(recipe)],
        "mix": [*curate, "mix", *common, "--out", str(tmp / "mix"), "--recipe", str(recipe)],
        "report": [*curate, "report", "--store", str(store), "--mix", str(tmp / "mix"), "-q"],
    }
    out = {}
    for name, cmd in stages.items():
        if only is not None and name not in only:
            continue
        out[name] = measure(cmd, timeline_s=timeline_s if name == "ingest" else 0.0, store=store)
        print(f"  {name}: {json.dumps({k: round(v, 1) for k, v in out[name].items()})}", flush=True)
        if out[name].get("failed"):
            print(f"  {name} failed: the later stages are not run", flush=True)
            break
    import duckdb

    con = duckdb.connect(str(store / "provenance.duckdb"), read_only=True)
    records, kept, texts = con.execute(
        "SELECT count(*), count(*) FILTER (status = 'kept'), (SELECT count(*) FROM texts) FROM documents"
    ).fetchall()[0]
    con.close()
    size = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
    counts = {"records": records, "kept": kept, "texts": texts, "store_bytes": size}
    if keep is None and resume is None:
        shutil.rmtree(tmp, ignore_errors=True)
    return out, counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, action="append", help="corpus size in MB (repeatable); default 100")
    ap.add_argument("--corpus-root", type=Path, default=Path("/tmp"))
    ap.add_argument("--file-mb", type=int, default=50, help="size of each generated WARC file: one stage-1 task")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--keep", type=Path, help="write the stores under this folder and keep them")
    ap.add_argument(
        "--extractor", help="extract.extractor for the run (trafilatura | resiliparse); recipe default if unset"
    )
    ap.add_argument(
        "--timeline", type=float, default=0.0, help="print the ingest's records read and RSS per worker every S seconds"
    )
    ap.add_argument(
        "--resume",
        type=Path,
        help="a run folder kept by --keep whose ingest stopped (e.g. in the load): resume it and run the rest",
    )
    ap.add_argument(
        "--stages",
        help=f"comma-separated stages to run (of {','.join(STAGES)}; default all), e.g. --resume DIR --stages mix",
    )
    ap.add_argument("--json", action="store_true", help="print one JSON object per size instead of the table")
    args = ap.parse_args()
    only = frozenset(args.stages.split(",")) if args.stages else None
    if only is not None and not only <= set(STAGES):
        ap.error(f"--stages: unknown {', '.join(sorted(only - set(STAGES)))} (stages: {', '.join(STAGES)})")
    if only is not None and "ingest" not in only and args.resume is None:
        ap.error("--stages without ingest needs --resume DIR (a kept run folder whose store exists)")
    print(
        f"python {sys.version.split()[0]} · {os.cpu_count()} cores · workers {args.workers} · "
        f"extractor {args.extractor or 'recipe default'}"
    )
    header = f"{'input':>8} {'stage':<8}{'wall s':>9}{'cpu s':>9}{'docs/cpu-s':>12}{'driver MB':>11}{'task MB':>9}{'anon MB':>9}{'tree MB':>9}"
    for mb in args.mb or [100]:
        folder = corpus(args.corpus_root, mb, args.file_mb)
        files = sorted(folder.glob("*.warc.gz"))
        stages, counts = run_size(folder, args.workers, args.keep, args.extractor, args.timeline, args.resume, only)
        if args.json:
            print(json.dumps({"mb": mb, "files": len(files), "stages": stages, **counts}))
            continue
        print(
            f"\n{mb} MB: {len(files)} files · {counts['records']} records · {counts['kept']} kept · "
            f"store {counts['store_bytes'] / 1e6:.0f} MB"
        )
        print(header)
        for name, m in stages.items():
            per = counts["records"] if name != "mix" else counts["kept"]
            rate = per / m["cpu_s"] if m["cpu_s"] else 0.0
            task = f"{m['task_mb']:>9.0f}{m['task_anon_mb']:>9.0f}" if m["task_mb"] else f"{'-':>9}{'-':>9}"
            print(
                f"{mb:>6}MB {name:<8}{m['wall_s']:>9.1f}{m['cpu_s']:>9.1f}{rate:>12.1f}"
                f"{m['driver_mb']:>11.0f}{task}{m['tree_mb']:>9.0f}"
            )


if __name__ == "__main__":
    main()
